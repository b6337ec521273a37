package pipeline_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

const upstreamTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

// The W3C trace context of the submission runs through every stage to the
// decision event, and every stage and Jumio call records a span in it.
func TestTracePropagation(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b := setup(t, func(o *localstack.Options) { o.TracerProvider = tp })
	traceparent := "00-" + upstreamTrace + "-00f067aa0ba902b7-01"
	jobID := b.submit(t, emailJob("order-trace-1"), 202, map[string]string{"traceparent": traceparent})

	dec := b.decisions.WaitN(t, 1, waitLong, pipelinetest.ForJob[*messages.DecisionEvent](jobID), "decision")[0]
	if got := dec.Header.Get("traceparent"); !strings.Contains(got, upstreamTrace) {
		t.Errorf("decision event traceparent %q, want trace %s", got, upstreamTrace)
	}
	for _, ev := range b.events.Where(pipelinetest.ForJob[*messages.Event](jobID)) {
		if !strings.Contains(ev.Header.Get("traceparent"), upstreamTrace) {
			t.Errorf("%s event has traceparent %q", ev.Value.Kind, ev.Header.Get("traceparent"))
		}
	}
	want := []string{"POST submit", "worker worker", "jumio token", "jumio create account", "jumio upload prepared data",
		"jumio finalize", "jumio workflow status", "jumio workflow details"}
	var names []string
	pipelinetest.Eventually(t, waitLong, func() bool {
		names = names[:0]
		seen := map[string]bool{}
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() == upstreamTrace {
				seen[s.Name()] = true
				names = append(names, s.Name())
			}
		}
		retriever := seen["retriever retrieve"] || seen["retriever retriever-polls"]
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return retriever
	}, "spans of the job's trace: %v", names)
}

func scrape(t *testing.T, b *bundle) string {
	t.Helper()
	r := b.do(t, http.MethodGet, "/metrics", "", nil, nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	return string(r.body)
}

// TestMetrics checks the main series after a decided and a failed job, and
// that no identifier or applicant data is ever a label value.
func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ok := b.submit(t, emailJob("order-metrics-1"), 202, nil)
	dec := b.waitDecision(t, ok)
	b.sim.FailNext(jumiotest.RouteCreateAccount, 1, 400)
	failed := b.submit(t, emailJob("order-metrics-2"), 202, nil)
	b.dlq.WaitN(t, 1, waitLong, pipelinetest.ForJob[[]byte](failed), "dead letter")
	b.do(t, http.MethodPost, "/v1/verifications", "text/plain", bytes.NewReader([]byte("x")), nil)

	want := []string{
		`kycpipe_submissions_total{result="accepted"} 2`,
		`kycpipe_submissions_total{result="invalid"} 1`,
		`kycpipe_http_requests_total{code="202",route="submit"} 2`,
		`kycpipe_http_requests_total{code="415",route="submit"} 1`,
		`kycpipe_decisions_total{type="PASSED"} 1`,
		`kycpipe_jobs_finished_total{outcome="decided"} 1`,
		`kycpipe_jobs_finished_total{outcome="failed"} 1`,
		`kycpipe_dead_letters_total{reason="terminal",stage="worker"} 1`,
		`kycpipe_jumio_calls_total{class="account",code="200",op="create account"} 1`,
		`kycpipe_jumio_calls_total{class="account",code="400",op="create account"} 1`,
		`kycpipe_jumio_calls_total{class="token",code="200",op="token"} 1`,
		`kycpipe_finalizes_total 1`,
		`kycpipe_saga_step_seconds_count{result="ok",step="account"} 1`,
		`kycpipe_callback_to_decision_seconds_count 1`,
		`kycpipe_consumer_pending{consumer="worker",stream="KYC_JOBS"} 0`,
		`kycpipe_consumer_ack_pending{consumer="retriever-callbacks",stream="KYC_CALLBACKS"} 0`,
	}
	var body string
	pipelinetest.Eventually(t, waitLong, func() bool {
		body = scrape(t, b)
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	}, "metrics missing; want all of %v", want)
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("missing %s", w)
		}
	}
	for _, id := range []string{ok, failed, dec.AccountID, dec.WorkflowExecutionID, "order-metrics-1", "jane.doe"} {
		if strings.Contains(body, id) {
			t.Errorf("metrics expose %q", id)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "kycpipe_") && strings.Contains(line, "{") {
			labels := line[strings.Index(line, "{"):strings.Index(line, "}")]
			if strings.ContainsAny(labels, "@") || strings.Contains(labels, "job_") {
				t.Errorf("suspicious label values: %s", line)
			}
		}
	}
}
