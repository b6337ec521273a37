package jumio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// WorkflowKey identifies a workflow definition (for example 10164, "ID +
// Selfie + Supporting Data"). Jumio's examples send it both as a JSON number
// and as a string; WorkflowKey accepts both and sends numeric keys as numbers.
type WorkflowKey string

// MarshalJSON encodes numeric keys as JSON numbers and others as strings.
func (k WorkflowKey) MarshalJSON() ([]byte, error) {
	// Only a canonical JSON number goes out as one: "007" as a number would
	// be invalid JSON.
	if k != "" && isDigits(string(k)) && (k == "0" || k[0] != '0') {
		return []byte(k), nil
	}
	return json.Marshal(string(k))
}

// UnmarshalJSON accepts a JSON number or string.
func (k *WorkflowKey) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*k = WorkflowKey(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("workflow key must be a number or a string: %w", err)
	}
	if _, err := strconv.ParseUint(n.String(), 10, 64); err != nil {
		return fmt.Errorf("workflow key must be a non-negative integer, got %s", n)
	}
	*k = WorkflowKey(n.String())
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 18
}

// Workflow definition keys Jumio documents. Tenants often have custom ones.
const (
	WorkflowWatchlistScreening WorkflowKey = "10010" // standalone screening; DATA credential; userReference required
	WorkflowIDIV               WorkflowKey = "10011" // ID + identity verification (ID, SELFIE, FACEMAP)
	WorkflowIDIVScreening      WorkflowKey = "10013" // ID+IV + screening + proof of residency + address + DL checks
	WorkflowPhoneVerification  WorkflowKey = "10065" // standalone phone risk (prepared data)
	WorkflowEmailVerification  WorkflowKey = "10066" // standalone email risk (prepared data)
	WorkflowPreparedData       WorkflowKey = "10148" // prepared-data risk signals (Standalone Risk Signal quickstart)
	WorkflowIDIVSupporting     WorkflowKey = "10163" // ID & identity verification + supporting data
	WorkflowIDSelfie           WorkflowKey = "10164" // ID + Selfie + supporting data
)

// Credential categories.
const (
	CategoryID       = "ID"
	CategorySelfie   = "SELFIE"
	CategoryFacemap  = "FACEMAP"
	CategoryDocument = "DOCUMENT"
	CategoryData     = "DATA"
)

// Channels through which a credential can be acquired.
const (
	ChannelWeb = "WEB"
	ChannelAPI = "API"
	ChannelSDK = "SDK"
)

// Part classifiers for credential uploads.
const (
	PartFront        = "FRONT"
	PartBack         = "BACK"
	PartFace         = "FACE"
	PartPreparedData = "PREPARED_DATA"
)

// AccountRequest is the body of account create (POST) and update (PUT).
//
// Jumio API docs: https://documentation.jumio.ai/docs/developer-resources/API/CreateUpdateAccounts/creating-and-updating-accounts
type AccountRequest struct {
	CustomerInternalReference string             `json:"customerInternalReference"`
	WorkflowDefinition        WorkflowDefinition `json:"workflowDefinition"`
	UserReference             string             `json:"userReference,omitempty"`
	ReportingCriteria         string             `json:"reportingCriteria,omitempty"`
	CallbackURL               string             `json:"callbackUrl,omitempty"`
	TokenLifetime             string             `json:"tokenLifetime,omitempty"`
	Web                       *WebSettings       `json:"web,omitempty"`
	UserConsent               *UserConsent       `json:"userConsent,omitempty"`
}

// WorkflowDefinition selects the workflow and optionally customizes its
// credentials and capabilities.
type WorkflowDefinition struct {
	Key          WorkflowKey                `json:"key"`
	Credentials  []CredentialDefinition     `json:"credentials,omitempty"`
	Capabilities map[string]json.RawMessage `json:"capabilities,omitempty"`
}

// CredentialDefinition customizes the acquisition of one credential.
type CredentialDefinition struct {
	ID       string           `json:"id,omitempty"`
	Category string           `json:"category,omitempty"`
	Country  *PredefinedValue `json:"country,omitempty"`
	Type     *PredefinedValue `json:"type,omitempty"`
}

// PredefinedValue restricts a choice (country, document type) offered to the
// end user. PredefinedType is DEFINED (fixed) or RECOMMENDED.
type PredefinedValue struct {
	PredefinedType string   `json:"predefinedType,omitempty"`
	Values         []string `json:"values,omitempty"`
}

// WebSettings configures the hosted web flow.
type WebSettings struct {
	SuccessURL string `json:"successUrl,omitempty"`
	ErrorURL   string `json:"errorUrl,omitempty"`
	Locale     string `json:"locale,omitempty"`
}

// UserConsent records the end user's consent, required by Jumio for API and
// custom-UI acquisition of IDs and biometrics in some jurisdictions.
type UserConsent struct {
	UserIP       string        `json:"userIp,omitempty"`
	UserLocation *UserLocation `json:"userLocation,omitempty"`
	Consent      *Consent      `json:"consent,omitempty"`
}

// UserLocation is where the end user gave consent.
type UserLocation struct {
	Country string `json:"country,omitempty"`
	State   string `json:"state,omitempty"`
}

// Consent says whether and when consent was obtained.
type Consent struct {
	Obtained   string `json:"obtained,omitempty"`
	ObtainedAt string `json:"obtainedAt,omitempty"`
}

// AccountResponse is Jumio's answer to account create and update.
type AccountResponse struct {
	Timestamp         string                 `json:"timestamp,omitempty"`
	Account           Ref                    `json:"account"`
	Web               *WebResponse           `json:"web,omitempty"`
	SDK               *SDKResponse           `json:"sdk,omitempty"`
	WorkflowExecution WorkflowExecutionStart `json:"workflowExecution"`
}

// Ref is a reference to a Jumio object by ID (and sometimes URL).
type Ref struct {
	ID   string `json:"id"`
	Href string `json:"href,omitempty"`
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

// ParseTimestamp parses Jumio's timestamps (YYYY-MM-DDThh:mm:ss.SSSZ, or any
// RFC 3339 time). The zero time and false are returned for an empty string or
// an unparseable one.
func ParseTimestamp(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// FormatTimestamp formats t the way Jumio does (UTC, millisecond precision).
func FormatTimestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
