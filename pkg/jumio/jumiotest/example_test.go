package jumiotest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// Start a simulator and get an OAuth2 token with a plain HTTP client, as
// Jumio's quickstart does with curl.
func Example() {
	s := jumiotest.NewServer(jumiotest.Options{})
	defer s.Close()

	creds := s.Credentials()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		panic(err)
	}
	req.SetBasicAuth(creds.ClientID, creds.ClientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Example Corp Onboarding/1.0") // Jumio requires one
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, tok.TokenType, tok.ExpiresIn)
	fmt.Println("JWT segments:", len(strings.Split(tok.AccessToken, ".")))
	fmt.Println("tokens issued:", s.Stats().TokensIssued)
	// Output:
	// 200 Bearer 3600
	// JWT segments: 3
	// tokens issued: 1
}

// Drive a web flow with the kycpipe client: create the account, let the
// simulated end user finish, then retrieve the decision.
func Example_webFlow() {
	s := jumiotest.NewServer(jumiotest.Options{})
	defer s.Close()
	c, err := jumio.New(s.Credentials(), jumio.WithBaseURL(s.URL), jumio.WithUserAgent("Example Corp Onboarding/1.0"))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	acct, err := c.CreateAccount(ctx, &jumio.AccountRequest{
		CustomerInternalReference: "order-42-warn", // DeriveOutcome: a WARNING
		WorkflowDefinition:        jumio.WorkflowDefinition{Key: jumio.WorkflowIDIV},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("hand to the user:", strings.HasPrefix(acct.Web.Href, s.URL+"/web/v4/app?"))

	if err := s.CompleteWeb(acct.WorkflowExecution.ID); err != nil {
		panic(err)
	}
	d, err := c.WorkflowDetails(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Workflow.Status, d.Decision.Type, d.Decision.Risk.Score)
	fmt.Println("imageChecks:", d.Capabilities.ImageChecks[0].Decision.Details.Label)
	// Output:
	// hand to the user: true
	// PROCESSED WARNING 50
	// imageChecks: REPEATED_FACE
}
