// Command existing-account-update runs a new Jumio workflow execution on an
// account that already exists: a returning customer verified again without
// a second Jumio account. A job whose request names an accountId makes the
// worker call PUT /accounts/{accountId} instead of POST /accounts.
//
// Against `make run`, with nothing else to set:
//
//	go run ./examples/existing-account-update
//
// It submits a first job (the email-risk sample), waits for its decision,
// then submits the update for the account that job created and waits for
// that decision too, printing one line per step. With -account it skips the
// first job and updates an account you name (the accountId of a job that
// reached Jumio: a UUID; ingest refuses anything else with 422).
//
// INGEST (default http://127.0.0.1:8080) and KYCPIPE_API_KEY (default make
// run's key) point it at another ingest. The requests are built with the
// wire types of package messages (github.com/kycpipe/kycpipe/pkg/messages).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

func main() {
	ingest := flag.String("ingest", envOr("INGEST", "http://127.0.0.1:8080"), "ingest's base URL (env INGEST)")
	key := flag.String("api-key", envOr("KYCPIPE_API_KEY", "kycpipe-local-dev-key"), "API key with the submit and read scopes (env KYCPIPE_API_KEY)")
	account := flag.String("account", "", "update this Jumio account (a UUID) instead of creating one with a first job")
	wait := flag.Duration("wait", 2*time.Minute, "how long to wait for each decision")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &client{base: strings.TrimRight(*ingest, "/"), key: *key, http: &http.Client{Timeout: 30 * time.Second}, out: os.Stdout}
	if err := c.run(ctx, *account, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "existing-account-update:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// request is the job of this example: an API-channel email risk check
// (workflow 10066), which the simulator decides at once.
func request(ref string) *messages.VerificationRequest {
	return &messages.VerificationRequest{
		CustomerInternalReference: ref,
		UserReference:             "customer-8812",
		WorkflowDefinition:        messages.WorkflowDefinition{Key: "10066"},
		Channel:                   messages.ChannelAPI,
		PreparedData:              &messages.PreparedData{Email: "jane.doe@example.com"},
	}
}

type client struct {
	base, key string
	http      *http.Client
	out       io.Writer
}

// run submits the first job (unless account is given) and the update, and
// waits for both decisions.
func (c *client) run(ctx context.Context, account string, wait time.Duration) error {
	if account == "" {
		id, err := c.submit(ctx, request("order-2026-0004"), "first job: creates the Jumio account")
		if err != nil {
			return err
		}
		job, err := c.waitDecided(ctx, id, wait)
		if err != nil {
			return err
		}
		account = job.AccountID
	}
	upd := request("order-2026-0004-update")
	upd.AccountID = account
	id, err := c.submit(ctx, upd, "update: a new workflow execution on account "+account)
	if err != nil {
		return err
	}
	job, err := c.waitDecided(ctx, id, wait)
	if err != nil {
		return err
	}
	if job.AccountID != account {
		return fmt.Errorf("job %s ran on account %s, not %s", id, job.AccountID, account)
	}
	return nil
}

// jobView is the part of GET /v1/verifications/{jobId} this example reads.
type jobView struct {
	JobID               string                    `json:"jobId"`
	Status              string                    `json:"status"`
	AccountID           string                    `json:"accountId"`
	WorkflowExecutionID string                    `json:"workflowExecutionId"`
	Decision            *messages.DecisionSummary `json:"decision"`
	Error               *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// problem is ingest's error body (RFC 9457).
type problem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field, Code, Message string
	} `json:"errors"`
}

// call sends one request to ingest and decodes a 2xx answer into out.
func (c *client) call(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var p problem
		if json.Unmarshal(b, &p) == nil && p.Detail != "" {
			msg := fmt.Sprintf("%s %s: %d: %s", method, path, resp.StatusCode, p.Detail)
			for _, f := range p.Errors {
				msg += fmt.Sprintf("; %s: %s", f.Field, f.Message)
			}
			return errors.New(msg)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return json.Unmarshal(b, out)
}

// submit posts the job and prints its ID.
func (c *client) submit(ctx context.Context, req *messages.VerificationRequest, what string) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	var accepted struct{ JobID, Status string }
	if err := c.call(ctx, http.MethodPost, "/v1/verifications", body, &accepted); err != nil {
		return "", err
	}
	fmt.Fprintf(c.out, "%s  %-8s  %s\n", accepted.JobID, accepted.Status, what)
	return accepted.JobID, nil
}

// waitDecided polls the job until it is decided, and prints the decision.
func (c *client) waitDecided(ctx context.Context, id string, wait time.Duration) (*jobView, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var job jobView
		if err := c.call(ctx, http.MethodGet, "/v1/verifications/"+id, nil, &job); err != nil {
			return nil, err
		}
		switch job.Status {
		case "DECIDED":
			decision := "-"
			if job.Decision != nil {
				decision = job.Decision.Type
			}
			fmt.Fprintf(c.out, "%s  %-8s  %s on account %s, execution %s\n", id, job.Status, decision, job.AccountID, job.WorkflowExecutionID)
			return &job, nil
		case "FAILED":
			msg := "no error recorded"
			if job.Error != nil {
				msg = job.Error.Code + ": " + job.Error.Message
			}
			return nil, fmt.Errorf("job %s failed: %s", id, msg)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("job %s is still %s after %s: %w", id, job.Status, wait, ctx.Err())
		case <-tick.C:
		}
	}
}
