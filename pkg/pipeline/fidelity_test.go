package pipeline_test

import (
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// Standalone screening reports a watchlist hit as watchlistScreening
// WARNING / ALERT under an overall PASSED: the event goes to PASSED, and its
// alerts and the Kyc-Alerts header say so (DESIGN 3.2).
func TestAlertUnderPassed(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	jobID := b.submit(t, map[string]any{
		"customerInternalReference": "order-alert-1", "userReference": "customer-alert-1",
		"workflowDefinition": map[string]any{"key": 10010}, "channel": "API",
		"preparedData": map[string]any{"firstName": "JANE", "lastName": "DOE", "dateOfBirth": "1990-01-02"},
	}, 202, nil)
	got := b.decisions.WaitN(t, 1, waitLong, pipelinetest.ForJob[*messages.DecisionEvent](jobID), "decision")[0]
	dec := got.Value
	if dec.Decision.Type != messages.DecisionPassed || got.Subject != b.subj.Decision(messages.DecisionPassed) {
		t.Fatalf("decision %+v on %s, want PASSED", dec.Decision, got.Subject)
	}
	if len(dec.Alerts) != 1 || dec.Alerts[0] != (messages.Alert{Capability: "watchlistScreening", Decision: "WARNING", Label: "ALERT"}) {
		t.Fatalf("alerts = %+v", dec.Alerts)
	}
	if h := got.Header.Get(messages.HeaderAlerts); h != "watchlistScreening:ALERT" {
		t.Fatalf("%s header = %q", messages.HeaderAlerts, h)
	}

	// A decision without alerts carries no header.
	plain := b.submit(t, emailJob("order-alert-none"), 202, nil)
	got = b.decisions.WaitN(t, 1, waitLong, pipelinetest.ForJob[*messages.DecisionEvent](plain), "decision")[0]
	if len(got.Value.Alerts) != 0 || got.Header.Get(messages.HeaderAlerts) != "" {
		t.Fatalf("alerts %+v, header %q on a clean decision", got.Value.Alerts, got.Header.Get(messages.HeaderAlerts))
	}
}

// Expired executions have details (jumio-api.md §10.9): the retriever reads
// them once and passes Jumio's own decision on, in the simulator's default
// mode (NOT_EXECUTED / TOKEN_EXPIRED / -1) and in its 2023 mode (REJECTED /
// 100, a real capture).
func TestExpiredExecutionCarriesJumiosDecision(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		as2023    bool
		wantType  string
		wantLabel string
		wantScore float64
	}{
		{"documented", false, messages.DecisionNotExecuted, jumio.StatusTokenExpired, -1},
		{"2023 capture", true, messages.DecisionRejected, "REJECTED", 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clock := jumiotest.NewClock(time.Now())
			b := setup(t, func(o *localstack.Options) {
				o.Sim.Now = clock.Now
				o.Sim.Switches.ExpiredAsRejected = c.as2023
			})
			job := webJob("order-expire-" + map[bool]string{true: "2023", false: "doc"}[c.as2023])
			job["tokenLifetime"] = "5m"
			jobID := b.submit(t, job, 202, nil)
			b.events.WaitN(t, 1, waitLong, func(m pipelinetest.Received[*messages.Event]) bool {
				return m.Value.JobID == jobID && m.Value.Kind == messages.KindLaunched
			}, "launched")
			// The user never starts: the transaction token expires.
			clock.Advance(6 * time.Minute)
			b.sim.Sweep()
			got := b.decisions.WaitN(t, 1, waitLong, pipelinetest.ForJob[*messages.DecisionEvent](jobID), "decision")[0]
			d := got.Value
			if d.Status != jumio.StatusTokenExpired || d.Decision.Type != c.wantType || d.Decision.Label != c.wantLabel ||
				d.Decision.RiskScore == nil || *d.Decision.RiskScore != c.wantScore {
				t.Fatalf("decision = %+v (status %s)", d.Decision, d.Status)
			}
			if got.Subject != b.subj.Decision(c.wantType) {
				t.Fatalf("published on %s", got.Subject)
			}
			if len(d.Capabilities["usability"]) == 0 || d.CustomerInternalReference == "" {
				t.Fatalf("the expired execution's details were not used: %+v", d)
			}
		})
	}
}
