package jumio_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// Example runs an API-channel verification against the simulator: create
// the account, upload prepared data, finalize, then read the decision.
func Example() {
	sim := jumiotest.NewServer(jumiotest.Options{})
	defer sim.Close()
	ctx := context.Background()

	c, err := jumio.New(sim.Credentials(), jumio.WithBaseURL(sim.URL), jumio.WithUserAgent("Acme Onboarding/1.0"))
	if err != nil {
		panic(err)
	}
	acct, err := c.CreateAccount(ctx, &jumio.AccountRequest{
		CustomerInternalReference: "order-1234",
		WorkflowDefinition:        jumio.WorkflowDefinition{Key: jumio.WorkflowEmailVerification},
	})
	if err != nil {
		panic(err)
	}
	cred := acct.WorkflowExecution.Credentials[0]
	partURL, _ := cred.API.PartURL(jumio.PartPreparedData)
	if _, err := c.UploadPreparedData(ctx, partURL, cred.API.Token, &jumio.PreparedData{Email: "jane@example.com"}); err != nil {
		panic(err)
	}
	if _, err := c.Finalize(ctx, cred.API.WorkflowExecution, cred.API.Token); err != nil {
		panic(err)
	}
	st, err := c.WorkflowStatus(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("status:", st.WorkflowExecution.Status)
	if jumio.IsTerminalStatus(st.WorkflowExecution.Status) {
		d, err := c.WorkflowDetails(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
		if err != nil {
			panic(err)
		}
		fmt.Println("decision:", d.Decision.Type)
		for _, r := range d.Capabilities.All() {
			fmt.Printf("%s: %s %s\n", r.Name, r.Decision.Type, r.Decision.Details.Label)
		}
	}
	// Output:
	// status: PROCESSED
	// decision: PASSED
	// emailVerification: PASSED LOW_RISK
}

// ExampleParseCallback reads a Jumio callback: it only says which
// execution to retrieve.
func ExampleParseCallback() {
	body := `{"callbackSentAt":"2026-11-22T10:00:00.000Z",
	  "workflowExecution":{"id":"2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e","href":"https://retrieval.emea-1.jumio.ai/api/v1/workflow-executions/2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e","definitionKey":"10066","status":"PROCESSED"},
	  "account":{"id":"7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f","href":"https://retrieval.emea-1.jumio.ai/api/v1/accounts/7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"}}`
	cb, err := jumio.ParseCallback(strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	fmt.Println(cb.Account.ID, cb.WorkflowExecution.ID, cb.WorkflowExecution.Status, jumio.IsTerminalStatus(cb.WorkflowExecution.Status))
	// Output: 7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f 2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e PROCESSED true
}

// ExampleIsRetryable shows how a caller branches on Jumio's errors.
func ExampleIsRetryable() {
	sim := jumiotest.NewServer(jumiotest.Options{})
	defer sim.Close()
	c, _ := jumio.New(sim.Credentials(), jumio.WithBaseURL(sim.URL))
	req := &jumio.AccountRequest{CustomerInternalReference: "order-1", WorkflowDefinition: jumio.WorkflowDefinition{Key: "10066"}}

	for _, status := range []int{503, 429, 400} {
		sim.FailNext(jumiotest.RouteCreateAccount, 1, status)
		_, err := c.CreateAccount(context.Background(), req)
		switch {
		case errors.Is(err, jumio.ErrRateLimited):
			fmt.Println(status, "rate limited: wait, without counting a failure")
		case jumio.IsRetryable(err):
			fmt.Println(status, "retry later with backoff")
		default:
			fmt.Println(status, "terminal: fix the request")
		}
	}
	// Output:
	// 503 retry later with backoff
	// 429 rate limited: wait, without counting a failure
	// 400 terminal: fix the request
}

// ExampleValidateAccountRequest checks a request against Jumio's rules
// before sending it.
func ExampleValidateAccountRequest() {
	err := jumio.ValidateAccountRequest(&jumio.AccountRequest{
		CustomerInternalReference: "order<1>",
		WorkflowDefinition:        jumio.WorkflowDefinition{Key: jumio.WorkflowIDSelfie},
		TokenLifetime:             "90d",
	})
	var ve *jumio.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fmt.Fprintf(os.Stdout, "%s: %s\n", f.Field, f.Code)
		}
	}
	// Output:
	// customerInternalReference: forbidden_characters
	// tokenLifetime: out_of_range
}
