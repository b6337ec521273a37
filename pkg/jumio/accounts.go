package jumio

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Channels through which a credential can be acquired.
const (
	ChannelWeb = "WEB"
	ChannelAPI = "API"
	ChannelSDK = "SDK"
)

// AccountResponse is Jumio's answer to account create and update.
type AccountResponse struct {
	Timestamp         string                 `json:"timestamp,omitempty"`
	Account           Ref                    `json:"account"`
	Web               *WebResponse           `json:"web,omitempty"`
	SDK               *SDKResponse           `json:"sdk,omitempty"`
	WorkflowExecution WorkflowExecutionStart `json:"workflowExecution"`
}

// WebResponse carries the hosted web flow's URL for the end user.
type WebResponse struct {
	Href       string `json:"href,omitempty"`
	SuccessURL string `json:"successUrl,omitempty"`
	ErrorURL   string `json:"errorUrl,omitempty"`
}

// SDKResponse carries the token that initializes Jumio's mobile SDKs.
type SDKResponse struct {
	Token string `json:"token,omitempty"`
}

// WorkflowExecutionStart is the workflow execution created by an account call.
type WorkflowExecutionStart struct {
	ID          string            `json:"id"`
	Credentials []CredentialStart `json:"credentials,omitempty"`
}

// CredentialStart is one credential to acquire. API is present only when the
// API channel is allowed.
type CredentialStart struct {
	ID              string         `json:"id"`
	Category        string         `json:"category"`
	Label           string         `json:"label,omitempty"`
	AllowedChannels []string       `json:"allowedChannels,omitempty"`
	API             *CredentialAPI `json:"api,omitempty"`
}

// CredentialAPI holds the transaction token and the URLs to upload parts and
// to finalize. The URLs must be used exactly as returned; their host differs
// from the account host. Token is a secret: never log it.
type CredentialAPI struct {
	Token             string            `json:"token"`
	Parts             map[string]string `json:"parts"` // lowercase classifier → upload URL (remaining parts after an upload)
	WorkflowExecution string            `json:"workflowExecution,omitempty"`
}

// AllowsChannel reports whether the credential may be acquired over ch.
func (c CredentialStart) AllowsChannel(ch string) bool {
	for _, a := range c.AllowedChannels {
		if a == ch {
			return true
		}
	}
	return false
}

// PartURL returns the upload URL for classifier (FRONT, BACK, FACE,
// PREPARED_DATA), looked up case-insensitively as Jumio uses lowercase keys.
func (c CredentialAPI) PartURL(classifier string) (string, bool) {
	for k, v := range c.Parts {
		if equalFold(k, classifier) {
			return v, true
		}
	}
	return "", false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// CreateAccount creates a new account with a first workflow execution.
// It returns the account, execution, credentials with their upload URLs and
// transaction tokens, and web.href / sdk.token for web- and SDK-capable
// workflows.
//
// Jumio API docs: https://documentation.jumio.ai/docs/developer-resources/API/CreateUpdateAccounts/creating-and-updating-accounts
func (c *Client) CreateAccount(ctx context.Context, req *AccountRequest) (*AccountResponse, error) {
	var out AccountResponse
	if err := c.doOAuth(ctx, opCreateAccount, http.MethodPost, c.accountURL+"/api/v1/accounts", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateAccount starts a new workflow execution on an existing account
// (a returning user). The request body has the same shape as for
// [Client.CreateAccount]. An unknown account yields an error matching
// [ErrNotFound].
func (c *Client) UpdateAccount(ctx context.Context, accountID string, req *AccountRequest) (*AccountResponse, error) {
	if accountID == "" {
		return nil, fmt.Errorf("jumio: %s: %w: empty account ID", opUpdateAccount, ErrInvalidArgument)
	}
	var out AccountResponse
	u := c.accountURL + "/api/v1/accounts/" + url.PathEscape(accountID)
	if err := c.doOAuth(ctx, opUpdateAccount, http.MethodPut, u, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
