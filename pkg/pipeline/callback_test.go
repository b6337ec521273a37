package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

func callbackBody(accountID, execID, status string) []byte {
	b, _ := json.Marshal(map[string]any{
		"callbackSentAt":    "2026-11-22T10:00:00.000Z",
		"workflowExecution": map[string]any{"id": execID, "href": "https://retrieval.amer-1.jumio.ai/api/v1/workflow-executions/" + execID, "definitionKey": "10164", "status": status},
		"account":           map[string]any{"id": accountID, "href": "https://retrieval.amer-1.jumio.ai/api/v1/accounts/" + accountID},
	})
	return b
}

func (b *bundle) callback(t *testing.T, path string, body []byte, header map[string]string) response {
	t.Helper()
	h := map[string]string{"Authorization": ""}
	for k, v := range header {
		h[k] = v
	}
	return b.do(t, http.MethodPost, path, "application/json", bytes.NewReader(body), h)
}

func TestCallbackDefenses(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Workers, o.Retrievers = 0, 0
		o.Ingest.Callbacks = pipeline.CallbackConfig{
			Secret:         "path-secret-7b1e9c",
			Allowlist:      []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			RatePerSecond:  0.001, Burst: 3,
		}
	})
	body := callbackBody("7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e", "PROCESSED")
	good := "/v1/callbacks/jumio/path-secret-7b1e9c"
	fromJumio := map[string]string{"X-Forwarded-For": "198.51.100.9, 203.0.113.5"}
	for _, tt := range []struct {
		name   string
		path   string
		header map[string]string
		want   int
	}{
		{"bare route when a secret is set", "/v1/callbacks/jumio", fromJumio, 404},
		{"wrong secret", "/v1/callbacks/jumio/guess", fromJumio, 404},
		{"source outside the allowlist", good, nil, 403},
		{"spoofed hop left of an untrusted one", good, map[string]string{"X-Forwarded-For": "203.0.113.5, 198.51.100.9"}, 403},
		{"allowlisted source via a trusted proxy", good, fromJumio, 200},
		{"duplicate is still answered 200", good, fromJumio, 200},
		{"third within the rate", good, fromJumio, 200},
		{"over the rate limit", good, fromJumio, 429},
	} {
		if r := b.callback(t, tt.path, body, tt.header); r.status != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.want)
		}
	}
}

// A forged PROCESSED callback for a real execution Jumio has not decided
// produces no decision: the retriever asks Jumio, which says INITIATED.
// A callback for an execution no job knows causes no Jumio call at all, and
// is not stored.
func TestForgedCallbacks(t *testing.T) {
	t.Parallel()
	// The forged PROCESSED takes the message ID of the real callback (one
	// per execution and status), so the decision comes from the poll task:
	// every 500 ms after its schedule here, every 20 minutes by default.
	b := setup(t, func(o *localstack.Options) { o.Retriever.PollTailEvery = 500 * time.Millisecond })
	jobID := b.submit(t, webJob("order-forged-1"), 202, nil)
	launched := b.events.WaitN(t, 1, waitLong, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.JobID == jobID && m.Value.Kind == messages.KindLaunched
	}, "launched")[0].Value

	before := b.sim.Stats()
	if r := b.callback(t, "/v1/callbacks/jumio", callbackBody(launched.AccountID, launched.WorkflowExecutionID, "PROCESSED"), nil); r.status != 200 {
		t.Fatalf("forged callback: %d %s", r.status, r.body)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		return b.sim.Stats().Requests["status"] > before.Requests["status"] && consumerIdle(t, b, b.subj.StreamCallbacks(), pipeline.ConsumerRetrieverCallback)
	}, "forged callback not handled")
	if got := b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](jobID)); len(got) != 0 {
		t.Fatalf("a forged callback produced a decision:%s", pipelinetest.Describe(got))
	}
	if d := b.sim.Stats().Requests["details"] - before.Requests["details"]; d != 0 {
		t.Errorf("details read %d times for an undecided execution", d)
	}

	unknownBefore := b.sim.Stats()
	stored := callbacksStored(t, b)
	r := b.callback(t, "/v1/callbacks/jumio", callbackBody("7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e", "PROCESSED"), nil)
	if r.status != 200 {
		t.Fatalf("unknown-execution callback: %d", r.status)
	}
	// Not stored at all (Security II, finding 2): only counted.
	if n := callbacksStored(t, b); n != stored {
		t.Errorf("a callback for an unknown execution was stored")
	}
	// A known execution with another account is unknown too.
	if r := b.callback(t, "/v1/callbacks/jumio", callbackBody("7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", launched.WorkflowExecutionID, "PROCESSED"), nil); r.status != 200 {
		t.Fatalf("callback with another account: %d", r.status)
	}
	if n := callbacksStored(t, b); n != stored {
		t.Errorf("a callback naming a known execution with another account was stored")
	}
	// The job's own poll task keeps reading its execution's status
	// meanwhile; a call for the unknown execution would be answered 404.
	after := b.sim.Stats()
	for _, route := range []string{"status", "details"} {
		if got, was := after.Responses[route]["404"], unknownBefore.Responses[route]["404"]; got != was {
			t.Errorf("a callback for an unknown execution caused %d %s calls", got-was, route)
		}
	}
	if after.Requests["token"] != unknownBefore.Requests["token"] {
		t.Errorf("a callback for an unknown execution caused %d token calls", after.Requests["token"]-unknownBefore.Requests["token"])
	}
	// The real decision still arrives when the user finishes (through the
	// poll task: Jumio's own PROCESSED callback is a duplicate).
	if err := b.sim.CompleteWeb(launched.WorkflowExecutionID); err != nil {
		t.Fatal(err)
	}
	if dec := b.waitDecision(t, jobID); dec.Decision.Type != messages.DecisionPassed {
		t.Errorf("decision = %+v", dec.Decision)
	}
}

// callbacksStored returns how many callbacks were ever stored in the
// callbacks stream (its last sequence).
func callbacksStored(t *testing.T, b *bundle) uint64 {
	t.Helper()
	ctx := context.Background()
	st, err := b.stack.JS.Stream(ctx, b.subj.StreamCallbacks())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}
