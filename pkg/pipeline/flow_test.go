package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

func TestAPIPreparedDataFlow(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	jobID := b.submit(t, emailJob("order-api-1"), 202, nil)

	dec := b.waitDecision(t, jobID)
	if dec.Decision.Type != messages.DecisionPassed || dec.WorkflowDefinitionKey != "10066" || dec.CustomerInternalReference != "order-api-1" {
		t.Errorf("decision = %+v", dec)
	}
	if got := dec.Capabilities["emailVerification"]; len(got) != 1 {
		t.Errorf("capabilities = %+v", dec.Capabilities)
	}
	st := b.sim.Stats()
	if st.AccountsByReference["order-api-1"] != 1 || st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 {
		t.Errorf("jumio: accounts=%v finalizes=%v", st.AccountsByReference, st.FinalizesByExecution)
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, jobID).Status == pipeline.StatusDecided }, "job not DECIDED")
	v := b.job(t, jobID)
	if v.Decision == nil || v.Decision.Type != messages.DecisionPassed || v.AccountID != dec.AccountID {
		t.Errorf("job view = %+v", v)
	}
	evs := b.events.WaitN(t, 2, waitLong, pipelinetest.ForJob[*messages.Event](jobID), "events")
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Value.Kind]++
	}
	if kinds[messages.KindAccepted] != 1 || kinds[messages.KindFinalized] != 1 {
		t.Errorf("events = %v", kinds)
	}
}

func TestWebFlow(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	jobID := b.submit(t, webJob("order-web-1"), 202, nil)

	launched := b.events.WaitN(t, 1, waitLong, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.JobID == jobID && m.Value.Kind == messages.KindLaunched
	}, "launched event")[0].Value
	if launched.Web == nil || launched.Web.Href == "" || launched.WorkflowExecutionID == "" {
		t.Fatalf("launched event = %+v", launched)
	}
	// The worker publishes the event, then records that it did.
	var v pipeline.JobView
	pipelinetest.Eventually(t, waitLong, func() bool { v = b.job(t, jobID); return v.Status == pipeline.StatusLaunched }, "job LAUNCHED")
	if v.Web == nil || v.Web.Href != launched.Web.Href {
		t.Fatalf("job view = %+v", v)
	}
	// The end user finishes the hosted flow.
	if err := b.sim.CompleteWeb(launched.WorkflowExecutionID); err != nil {
		t.Fatal(err)
	}
	dec := b.waitDecision(t, jobID)
	if dec.WorkflowExecutionID != launched.WorkflowExecutionID || dec.Decision.Type != messages.DecisionPassed {
		t.Errorf("decision = %+v", dec)
	}
	for _, c := range []string{"similarity", "liveness", "usability", "extraction"} {
		if len(dec.Capabilities[c]) == 0 {
			t.Errorf("decision lacks capability %s: %v", c, dec.Capabilities)
		}
	}
	if dec.Extraction != nil {
		t.Error("extraction (PII) in the decision event without IncludeExtraction")
	}
	if st := b.sim.Stats(); st.Finalizes != 0 || st.AccountsByReference["order-web-1"] != 1 {
		t.Errorf("web flow: finalizes=%d accounts=%v", st.Finalizes, st.AccountsByReference)
	}
}

func TestExistingAccountUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	first := b.waitDecision(t, b.submit(t, emailJob("order-acct-1"), 202, nil))
	job := emailJob("order-acct-2")
	job["accountId"] = first.AccountID
	second := b.waitDecision(t, b.submit(t, job, 202, nil))
	if second.AccountID != first.AccountID || second.WorkflowExecutionID == first.WorkflowExecutionID {
		t.Errorf("second execution %s on account %s, want a new execution on %s", second.WorkflowExecutionID, second.AccountID, first.AccountID)
	}
	st := b.sim.Stats()
	if st.AccountsCreated != 1 || st.ExecutionsCreated != 2 || st.Requests["update_account"] != 1 {
		t.Errorf("accounts=%d executions=%d updates=%d", st.AccountsCreated, st.ExecutionsCreated, st.Requests["update_account"])
	}
}

func TestIdempotentSubmissions(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	key := map[string]string{"Idempotency-Key": "client-retry-7f3a"}
	id := b.submit(t, emailJob("order-idem-1"), 202, key)
	if again := b.submit(t, emailJob("order-idem-1"), 200, key); again != id {
		t.Fatalf("repeated Idempotency-Key gave job %s, want %s", again, id)
	}
	b.submit(t, emailJob("order-idem-other"), 409, key)

	withID := emailJob("order-idem-2")
	withID["jobId"] = "client-job-42"
	if got := b.submit(t, withID, 202, nil); got != "client-job-42" {
		t.Fatalf("jobId = %s", got)
	}
	b.submit(t, withID, 200, nil)
	changed := emailJob("order-idem-3")
	changed["jobId"] = "client-job-42"
	b.submit(t, changed, 409, nil)

	b.waitDecision(t, id)
	b.waitDecision(t, "client-job-42")
	st := b.sim.Stats()
	for _, ref := range []string{"order-idem-1", "order-idem-2"} {
		if st.AccountsByReference[ref] != 1 {
			t.Errorf("%s: %d accounts, want 1", ref, st.AccountsByReference[ref])
		}
	}
	if st.AccountsCreated != 2 {
		t.Errorf("accounts created = %d, want 2", st.AccountsCreated)
	}
}

func TestDuplicateAndReorderedCallbacks(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Sim.Callbacks = jumiotest.CallbackOptions{Duplicates: 2, Reorder: true, Intermediate: true}
	})
	jobID := b.submit(t, emailJob("order-dup-1"), 202, nil)
	dec := b.waitDecision(t, jobID)
	// Every callback (3 statuses × 3 copies) must have been handled.
	pipelinetest.Eventually(t, waitLong, func() bool {
		info, ok := b.sim.Execution(dec.WorkflowExecutionID)
		return ok && len(info.CallbacksSent) == 9 && consumerIdle(t, b, b.subj.StreamCallbacks(), pipeline.ConsumerRetrieverCallback)
	}, "callbacks not all delivered and handled")
	if got := b.decisions.Where(func(m pipelinetest.Received[*messages.DecisionEvent]) bool {
		return m.Value.WorkflowExecutionID == dec.WorkflowExecutionID
	}); len(got) != 1 {
		t.Fatalf("%d decisions for one execution:%s", len(got), pipelinetest.Describe(got))
	}
}

func TestLostCallbackDecidedByPolling(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) { o.Sim.Callbacks = jumiotest.CallbackOptions{DropRate: 1} })
	jobID := b.submit(t, emailJob("order-lost-1"), 202, nil)
	dec := b.waitDecision(t, jobID)
	if info, _ := b.sim.Execution(dec.WorkflowExecutionID); info.CallbacksDropped == 0 || len(info.CallbacksSent) != 0 {
		t.Errorf("callbacks: sent %v dropped %d; want all dropped", info.CallbacksSent, info.CallbacksDropped)
	}
}

func TestJobPublishedStraightToJetStream(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	job := emailJob("order-plain-1")
	job["jobId"] = "plain-nats-1"
	body, _ := json.Marshal(job)
	// A plain NATS client, as the nats CLI would publish.
	if err := b.stack.NC.Publish(b.subj.JobsSubmit(), body); err != nil {
		t.Fatal(err)
	}
	dec := b.waitDecision(t, "plain-nats-1")
	if dec.CustomerInternalReference != "order-plain-1" {
		t.Errorf("decision = %+v", dec)
	}
	if v := b.job(t, "plain-nats-1"); v.Status != pipeline.StatusDecided {
		pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, "plain-nats-1").Status == pipeline.StatusDecided }, "not decided")
	}
}

func TestJumioServerErrorsThenSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.sim.FailNext(jumiotest.RouteCreateAccount, 3, http.StatusInternalServerError)
	b.sim.FailNext(jumiotest.RouteFinalize, 1, http.StatusBadGateway)
	jobID := b.submit(t, emailJob("order-5xx-1"), 202, nil)
	dec := b.waitDecision(t, jobID)
	st := b.sim.Stats()
	if st.AccountsByReference["order-5xx-1"] != 1 || st.Requests["create_account"] != 4 {
		t.Errorf("accounts=%v create requests=%d", st.AccountsByReference, st.Requests["create_account"])
	}
	if st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 {
		t.Errorf("finalizes = %v", st.FinalizesByExecution)
	}
}

func TestJumioBadRequestIsTerminal(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusBadRequest)
	jobID := b.submit(t, emailJob("order-400-1"), 202, nil)

	failed := b.events.WaitN(t, 1, waitLong, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.JobID == jobID && m.Value.Kind == messages.KindFailed
	}, "failed event")[0].Value
	if failed.Error == nil || failed.Error.Status != 400 || failed.Error.Code != messages.ErrCodeJumioRejected {
		t.Errorf("failed event = %+v", failed)
	}
	dl := b.dlq.WaitN(t, 1, waitLong, pipelinetest.ForJob[[]byte](jobID), "dead letter")[0]
	if dl.Subject != b.subj.DLQ(messages.StageWorker) || dl.Header.Get(messages.HeaderReason) != messages.ReasonTerminal ||
		dl.Header.Get(messages.HeaderOriginalSubject) != b.subj.JobSubmit(jobID) || dl.Header.Get(messages.HeaderDeliveries) != "1" {
		t.Errorf("dead letter %s headers %v", dl.Subject, dl.Header)
	}
	if _, err := messages.DecodeRequest(dl.Raw); err != nil {
		t.Errorf("dead letter does not carry the original job: %v", err)
	}
	// failJob publishes the failed event before it writes FAILED (the
	// record lists the event, for erasure): the record follows.
	var v pipeline.JobView
	pipelinetest.Eventually(t, waitLong, func() bool { v = b.job(t, jobID); return v.Status == pipeline.StatusFailed }, "job not FAILED")
	if v.Error == nil || v.Error.Code != messages.ErrCodeJumioRejected {
		t.Errorf("job view = %+v", v)
	}
	// Terminated, not retried: nothing is pending and Jumio saw one call.
	pipelinetest.Eventually(t, waitLong, func() bool { return consumerIdle(t, b, b.subj.StreamJobs(), pipeline.ConsumerWorker) }, "worker consumer not idle")
	if n := b.sim.Stats().Requests["create_account"]; n != 1 {
		t.Errorf("create_account requests = %d, want 1 (no retry storm)", n)
	}
}

func TestWorkerStoppedBetweenAccountAndUpload(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) { o.Workers = 0 })
	ctx := context.Background()
	b.sim.SetLatency(jumiotest.RouteUploadPreparedData, time.Minute)
	first, err := b.stack.AddWorker(ctx, func(c *pipeline.WorkerConfig) { c.ShutdownGrace = 10 * time.Millisecond })
	if err != nil {
		t.Fatal(err)
	}
	jobID := b.submit(t, emailJob("order-stop-1"), 202, nil)
	pipelinetest.Eventually(t, waitLong, func() bool {
		st := b.sim.Stats()
		return st.AccountsCreated == 1 && st.Requests["upload_prepared_data"] == 1
	}, "the worker never reached the upload")
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if v := b.job(t, jobID); v.Status != pipeline.StatusAccountCreated {
		t.Fatalf("after the stop the job is %s, want ACCOUNT_CREATED", v.Status)
	}
	b.sim.SetLatency(jumiotest.RouteUploadPreparedData, 0)
	if _, err := b.stack.AddWorker(ctx, nil); err != nil {
		t.Fatal(err)
	}
	dec := b.waitDecision(t, jobID)
	st := b.sim.Stats()
	if st.AccountsCreated != 1 || st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 || st.Uploads != 1 {
		t.Errorf("accounts=%d finalizes=%v uploads=%d", st.AccountsCreated, st.FinalizesByExecution, st.Uploads)
	}
	if got := b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](jobID)); len(got) != 1 {
		t.Errorf("%d decisions", len(got))
	}
}

// consumerIdle reports whether a consumer has nothing pending or in flight.
func consumerIdle(t *testing.T, b *bundle, stream, consumer string) bool {
	t.Helper()
	c, err := b.stack.JS.Consumer(context.Background(), stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

// A full jobs stream refuses new jobs with 503 + Retry-After instead of
// discarding old ones, and nothing is half-stored.
func TestFullQueueBackPressure(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Workers = 0 // nothing drains the queue
		o.Topology.JobsMaxMsgs = 2
	})
	b.submit(t, emailJob("order-full-1"), 202, nil)
	b.submit(t, emailJob("order-full-2"), 202, nil)
	body, _ := json.Marshal(emailJob("order-full-3"))
	r := b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(body), map[string]string{"Idempotency-Key": "full-3"})
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("full queue: %d %v %s", r.status, r.header, r.body)
	}
	// The refused job left no record: a retry later is a fresh submission.
	if g := b.do(t, http.MethodGet, "/v1/verifications/"+messages.IdempotentJobID("full-3"), "", nil, nil); g.status != http.StatusNotFound {
		t.Errorf("refused job has a record: %d %s", g.status, g.body)
	}
	// Once a worker drains the queue, submissions are accepted again.
	if _, err := b.stack.AddWorker(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return consumerIdle(t, b, b.subj.StreamJobs(), pipeline.ConsumerWorker) }, "queue not drained")
	b.submit(t, emailJob("order-full-3"), 202, map[string]string{"Idempotency-Key": "full-3"})
}

// A single-slot worker drains a backlog without stalling for the pull
// expiry between messages (the PullMaxMessages(1) trap in JETSTREAM.md).
func TestBacklogDrainsWithoutStalls(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Workers = 0
		o.Worker.Concurrency = 1
	})
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, b.submit(t, emailJob(fmt.Sprintf("order-backlog-%d", i)), 202, nil))
	}
	if _, err := b.stack.AddWorker(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// One 30 s stall would blow this deadline; the backlog takes well under a second.
	b.decisions.WaitN(t, len(ids), 25*time.Second, func(pipelinetest.Received[*messages.DecisionEvent]) bool { return true }, "decisions")
}
