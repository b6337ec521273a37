package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
	"github.com/nats-io/nats.go/jetstream"
)

// markedPrepared is prepared data with the marker in every personal field.
func markedPrepared(marker string) map[string]any {
	return map[string]any{
		"firstName": "Ann" + marker, "lastName": "Lee" + marker, "middleName": "M" + marker,
		"email": "ann." + marker + "@example.com", "phoneNumber": "+15550100", "dateOfBirth": "1990-01-02",
		"socialSecurityNumber": "ssn-" + marker, "personalNumber": "pn-" + marker,
		"address": map[string]any{"line1": "1 " + marker + " St", "city": "City" + marker, "postalCode": "PC" + marker, "country": "USA"},
		"id":      map[string]any{"idNumber": "id-" + marker, "type": "PASSPORT"},
	}
}

// erase asks for a job's erasure and waits for its tombstone.
func (b *bundle) erase(t *testing.T, jobID string) pipeline.JobView {
	t.Helper()
	if r := b.do(t, http.MethodDelete, "/v1/verifications/"+jobID, "", nil, nil); r.status != http.StatusAccepted && r.status != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s", jobID, r.status, r.body)
	}
	return b.waitErased(t, jobID)
}

// waitErased waits for a job's tombstone.
func (b *bundle) waitErased(t *testing.T, jobID string) pipeline.JobView {
	t.Helper()
	var v pipeline.JobView
	pipelinetest.Eventually(t, waitLong, func() bool { v = b.job(t, jobID); return v.Status == pipeline.StatusErased }, "job "+jobID+" not erased")
	return v
}

// remainsOf lists the messages about jobID still stored but for those an
// erasure keeps: its erased event, its audit record and its erasure task
// (until the task's late pass).
func (b *bundle) remainsOf(t *testing.T, jobID string) []string {
	t.Helper()
	var out []string
	for _, m := range pipelinetest.AllMessages(t, b.stack.JS) {
		if m.Header.Get(messages.HeaderJobID) == jobID && m.Subject != b.subj.Event(messages.KindErased) &&
			m.Stream != b.subj.StreamAudit() && m.Stream != b.subj.StreamErasures() {
			out = append(out, fmt.Sprintf("%s/%d %s", m.Stream, m.Seq, m.Subject))
		}
	}
	return out
}

// Jobs of every channel, with a marker in every personal field, are erased
// in every state they can be in (queued, launched, finalized, failed and
// dead-lettered, decided, on an existing account): afterwards the marker is
// in no message of any stream on the server (key-value and object-store
// streams included), and Jumio saw exactly the expected DELETEs.
func TestErasureLeavesNoTrace(t *testing.T) {
	t.Parallel()
	const marker = "zq9ERASEmarker7"
	b := setup(t, func(o *localstack.Options) { o.Workers, o.Retrievers = 0, 0 })
	ctx := context.Background()
	jobs := map[string]string{} // state → job ID

	// Queued: no worker runs yet.
	queued := emailJob("order-" + marker + "-queued")
	queued["userReference"] = "user-" + marker
	queued["preparedData"] = markedPrepared(marker)
	jobs["queued"] = b.submit(t, queued, 202, nil)
	if r := b.do(t, http.MethodDelete, "/v1/verifications/"+jobs["queued"], "", nil, nil); r.status != http.StatusAccepted {
		t.Fatalf("DELETE queued: %d %s", r.status, r.body)
	}
	if v := b.job(t, jobs["queued"]); v.Status != pipeline.StatusErasing || v.Erasure == nil || v.Erasure.Source != messages.ErasureRequest {
		t.Errorf("queued job while erasing: %+v", v)
	}
	if _, err := b.stack.AddWorker(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b.erase(t, jobs["queued"])

	// Failed and dead-lettered; launched (web); finalized (no retriever yet).
	b.sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusBadRequest)
	failed := emailJob("order-" + marker + "-failed")
	failed["preparedData"] = markedPrepared(marker)
	jobs["failed"] = b.submit(t, failed, 202, nil)
	b.dlq.WaitN(t, 1, waitLong, pipelinetest.ForJob[[]byte](jobs["failed"]), "the failed job's dead letter")
	web := webJob("order-" + marker + "-web")
	web["userReference"] = "user-" + marker
	web["preparedData"] = markedPrepared(marker)
	jobs["launched"] = b.submit(t, web, 202, nil)
	finalized := emailJob("order-" + marker + "-final")
	finalized["preparedData"] = markedPrepared(marker)
	jobs["finalized"] = b.submit(t, finalized, 202, nil)
	pipelinetest.Eventually(t, waitLong, func() bool {
		return b.job(t, jobs["launched"]).Status == pipeline.StatusLaunched && b.job(t, jobs["finalized"]).Status == pipeline.StatusFinalized &&
			b.job(t, jobs["failed"]).Status == pipeline.StatusFailed
	}, "launched, finalized and failed jobs")
	for _, s := range []string{"launched", "finalized", "failed"} {
		b.erase(t, jobs[s])
	}

	// Decided, with images (multipart), and a new execution on an existing
	// account (erasing it deletes only that execution).
	if _, err := b.stack.AddRetriever(ctx, nil); err != nil {
		t.Fatal(err)
	}
	decided := emailJob("order-" + marker + "-decided")
	decided["userReference"] = "user-" + marker
	decided["preparedData"] = markedPrepared(marker)
	jobs["decided"] = b.submit(t, decided, 202, map[string]string{"Idempotency-Key": "idem-" + marker})
	b.waitDecision(t, jobs["decided"])

	imgReq := map[string]any{"customerInternalReference": "order-" + marker + "-img", "userReference": "user-" + marker,
		"workflowDefinition": pipelinetest.IDWorkflow(10011), "channel": "API", "userConsent": pipelinetest.Consent()}
	img := append(jumiotest.PNG(640, 400), []byte(marker)...) // bytes after IEND: the image itself carries the marker
	ct, body := multipartBody(t, imgReq, map[string][]byte{"FRONT": img, "BACK": img, "FACE": jumiotest.JPEG(480, 640)}, "FRONT", "BACK", "FACE")
	r := b.do(t, http.MethodPost, "/v1/verifications", ct, body, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("multipart: %d %s", r.status, r.body)
	}
	var sub struct{ JobID string }
	r.json(t, &sub)
	jobs["images"] = sub.JobID
	b.waitDecision(t, jobs["images"])

	owner := b.submit(t, emailJob("order-owner-unmarked"), 202, nil)
	ownerDecision := b.waitDecision(t, owner)
	update := emailJob("order-" + marker + "-update")
	update["accountId"] = ownerDecision.AccountID
	update["preparedData"] = markedPrepared(marker)
	jobs["update"] = b.submit(t, update, 202, nil)
	b.waitDecision(t, jobs["update"])

	before := b.sim.Stats()
	for _, s := range []string{"decided", "images", "update"} {
		v := b.erase(t, jobs[s])
		want := messages.JumioDeleted
		if v.Erasure == nil || v.Erasure.Jumio != want || v.Erasure.CompletedAt.IsZero() || v.AccountID != "" || v.Decision != nil {
			t.Errorf("%s tombstone: %+v", s, v)
		}
	}
	after := b.sim.Stats()
	if n := after.Requests[string(jumiotest.RouteDeleteAccount)] - before.Requests[string(jumiotest.RouteDeleteAccount)]; n != 2 {
		t.Errorf("account DELETEs for decided jobs: %d, want 2 (decided, images)", n)
	}
	if n := after.Requests[string(jumiotest.RouteDeleteExecution)] - before.Requests[string(jumiotest.RouteDeleteExecution)]; n != 1 {
		t.Errorf("execution DELETEs: %d, want 1 (the update on an existing account)", n)
	}
	// Accounts deleted in all: launched and finalized (created), decided,
	// images; the queued and failed jobs never had one.
	if n := after.Requests[string(jumiotest.RouteDeleteAccount)]; n != 4 {
		t.Errorf("account DELETEs in all: %d, want 4", n)
	}
	for _, s := range []string{"queued", "failed"} {
		if v := b.job(t, jobs[s]); v.Erasure == nil || v.Erasure.Jumio != messages.JumioNotCreated {
			t.Errorf("%s tombstone: %+v", s, v)
		}
	}

	// The marker is nowhere on the server.
	for _, m := range pipelinetest.AllMessages(t, b.stack.JS) {
		if m.Contains(marker) {
			t.Errorf("the marker survives in %s/%d (%s)", m.Stream, m.Seq, m.Subject)
		}
	}
	// One audit record and one erased event per erasure, no personal data.
	audits := pipelinetest.Record(t, b.stack.JS, b.subj.StreamAudit(), b.subj.Audits(), messages.DecodeAudit)
	recs := audits.WaitN(t, len(jobs), waitLong, func(pipelinetest.Received[*messages.AuditRecord]) bool { return true }, "audit records")
	for _, a := range recs {
		if a.Value.Action != messages.AuditErasure || a.Value.Actor == "" || a.Value.Removed == nil || a.Value.CompletedAt == nil {
			t.Errorf("audit record %s", a.Raw)
		}
	}
	isErased := func(m pipelinetest.Received[*messages.Event]) bool { return m.Value.Kind == messages.KindErased }
	b.events.WaitN(t, len(jobs), waitLong, isErased, "erased events") // published after each tombstone
	erasedEvents := b.events.Where(isErased)
	if len(erasedEvents) != len(jobs) {
		t.Errorf("%d erased events, want %d", len(erasedEvents), len(jobs))
	}
	for _, e := range erasedEvents {
		if e.Value.CustomerInternalReference != "" || e.Value.AccountID != "" || e.Value.Region != "" {
			t.Errorf("erased event carries more than IDs: %s", e.Raw)
		}
	}

	// The job ID and the Idempotency-Key are never used again.
	again := emailJob("order-" + marker + "-decided")
	again["jobId"] = jobs["decided"]
	if r := b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(jsonBody(again)), nil); r.status != http.StatusConflict {
		t.Errorf("resubmitting an erased job ID: %d %s", r.status, r.body)
	}
	if r := b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(jsonBody(decided)), map[string]string{"Idempotency-Key": "idem-" + marker}); r.status != http.StatusConflict {
		t.Errorf("reusing an erased job's Idempotency-Key: %d %s", r.status, r.body)
	}
	// The tombstone says nothing else.
	raw := b.do(t, http.MethodGet, "/v1/verifications/"+jobs["decided"], "", nil, nil).body
	var fields map[string]any
	_ = json.Unmarshal(raw, &fields)
	if len(fields) != 3 || fields["erasure"] == nil {
		t.Errorf("tombstone %s: want only jobId, status and erasure", raw)
	}
}

// An erasure accepted at any step boundary of the saga stops the job: no
// Jumio call for it starts after the 202 but the DELETE, and no decision is
// published by a retriever that reads the job after it. The retriever starts
// after the 202: one already deciding when the erasure is accepted may still
// publish (it read the record before), a race no check can close across two
// streams; the erasure removes what it published (checked below, and by
// TestErasureRemovesADecisionPublishedBesideIt).
func TestErasureStopsTheSagaAtEachStep(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"account", "prepared_data", "part:FRONT", "part:BACK", "part:FACE", "finalize", "announce"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			paused, resume := make(chan struct{}), make(chan struct{})
			var once sync.Once
			b := setup(t, func(o *localstack.Options) {
				o.Retrievers = 0
				o.Worker.AfterCheckpoint = func(s string) {
					if s == step {
						once.Do(func() { close(paused); <-resume })
					}
				}
			})
			ref := "order-boundary-" + strings.ReplaceAll(step, ":", "-")
			job := map[string]any{"customerInternalReference": ref, "workflowDefinition": pipelinetest.IDWorkflow(10164),
				"channel": "API", "userConsent": pipelinetest.Consent(), "preparedData": map[string]any{"firstName": "Ann", "email": "a@example.com"}}
			img := jumiotest.PNG(640, 400)
			ct, body := multipartBody(t, job, map[string][]byte{"FRONT": img, "BACK": img, "FACE": jumiotest.JPEG(480, 640)}, "FRONT", "BACK", "FACE")
			r := b.do(t, http.MethodPost, "/v1/verifications", ct, body, nil)
			if r.status != http.StatusAccepted {
				t.Fatalf("submit: %d %s", r.status, r.body)
			}
			var sub struct{ JobID string }
			r.json(t, &sub)
			select {
			case <-paused:
			case <-time.After(waitLong):
				t.Fatalf("the worker never reached %s", step)
			}
			if r := b.do(t, http.MethodDelete, "/v1/verifications/"+sub.JobID, "", nil, nil); r.status != http.StatusAccepted {
				t.Fatalf("DELETE: %d %s", r.status, r.body)
			}
			at202 := b.sim.Stats()
			decisionsAt202 := len(b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](sub.JobID)))
			close(resume)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := b.stack.AddRetriever(ctx, nil); err != nil {
				t.Fatal(err)
			}
			v := b.erase(t, sub.JobID)
			after := b.sim.Stats()
			for _, route := range []jumiotest.Route{jumiotest.RouteCreateAccount, jumiotest.RouteUpdateAccount, jumiotest.RouteUploadPart,
				jumiotest.RouteUploadPreparedData, jumiotest.RouteFinalize} {
				if n := after.Requests[string(route)] - at202.Requests[string(route)]; n != 0 {
					t.Errorf("%d %s calls after the 202", n, route)
				}
			}
			if v.Erasure.Jumio != messages.JumioDeleted || after.Requests[string(jumiotest.RouteDeleteAccount)] != 1 {
				t.Errorf("Jumio: %s, %d account DELETEs", v.Erasure.Jumio, after.Requests[string(jumiotest.RouteDeleteAccount)])
			}
			if d := b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](sub.JobID)); len(d) != decisionsAt202 {
				t.Errorf("a decision was published after the 202")
			}
			for _, m := range b.remainsOf(t, sub.JobID) {
				t.Errorf("a message about the erased job remains: %s", m)
			}
		})
	}
}

// A retriever that found the job not being erased publishes its decision
// after the erasure was accepted, while the erasure runs or after it ended:
// the erasure (which finds the decision in the record) or the retriever
// (which finds the tombstone) removes it, and only the erased event, the
// audit record and the erasure task remain.
func TestErasureRemovesADecisionPublishedBesideIt(t *testing.T) {
	t.Parallel()
	for _, release := range []string{"while-erasing", "after-erased"} {
		t.Run(release, func(t *testing.T) {
			t.Parallel()
			reached, resume := make(chan string, 1), make(chan struct{})
			var once sync.Once
			hold := make(chan struct{}) // closed when the erasure may finish
			b := setup(t, func(o *localstack.Options) {
				o.Retriever.BeforeDecision = func(jobID string) {
					once.Do(func() { reached <- jobID; <-resume })
				}
				if release == "while-erasing" {
					// The erasure pauses after its first pass removed the
					// job's data, before its tombstone.
					var first sync.Once
					o.Worker.AfterCheckpoint = func(s string) {
						if s == "erasure:data_removed" {
							first.Do(func() { <-hold })
						}
					}
				} else {
					close(hold)
				}
			})
			jobID := b.submit(t, emailJob("order-decision-beside-erasure"), http.StatusAccepted, nil)
			select {
			case got := <-reached:
				if got != jobID {
					t.Fatalf("the retriever decided %s, want %s", got, jobID)
				}
			case <-time.After(waitLong):
				t.Fatal("the retriever never came to publish the decision")
			}
			if r := b.do(t, http.MethodDelete, "/v1/verifications/"+jobID, "", nil, nil); r.status != http.StatusAccepted {
				t.Fatalf("DELETE: %d %s", r.status, r.body)
			}
			if release == "after-erased" {
				b.waitErased(t, jobID)
				close(resume)
			} else {
				// The first pass has removed the data (the decision is not
				// published yet): let the retriever publish and record it,
				// then let the erasure commit, which finds the record changed.
				pipelinetest.Eventually(t, waitLong, func() bool {
					return b.job(t, jobID).Status == pipeline.StatusErasing
				}, "job not erasing")
				close(resume)
				b.decisions.WaitN(t, 1, waitLong, pipelinetest.ForJob[*messages.DecisionEvent](jobID), "the decision published beside the erasure")
				close(hold)
				b.waitErased(t, jobID)
			}
			b.decisions.WaitN(t, 1, waitLong, pipelinetest.ForJob[*messages.DecisionEvent](jobID), "the decision published beside the erasure")
			pipelinetest.Eventually(t, waitLong, func() bool { return len(b.remainsOf(t, jobID)) == 0 }, "a message about the erased job remains")
		})
	}
}

// While Jumio is down the erasure waits (the job stays ERASING); once
// Jumio answers again it ends ERASED.
func TestErasureWaitsForJumio(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	jobID := b.submit(t, emailJob("order-erase-down"), 202, nil)
	b.waitDecision(t, jobID)
	b.sim.FailNext(jumiotest.RouteDeleteAccount, 5, http.StatusServiceUnavailable)
	if r := b.do(t, http.MethodDelete, "/v1/verifications/"+jobID, "", nil, nil); r.status != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		return b.sim.Stats().Responses[string(jumiotest.RouteDeleteAccount)]["503"] >= 3
	}, "the erasure never retried")
	if v := b.job(t, jobID); v.Status != pipeline.StatusErasing {
		t.Errorf("while Jumio is down: %+v", v)
	}
	v := b.erase(t, jobID)
	if v.Erasure.Jumio != messages.JumioDeleted {
		t.Errorf("erasure = %+v", v.Erasure)
	}
}

// Retention: three workers whose clocks are past the retention period of
// the jobs that ended erase each of them exactly once (source RETENTION),
// and leave the jobs still running alone.
func TestRetentionErasesEachExpiredJobOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	var ended []string
	for i := range 5 {
		id := b.submit(t, emailJob(fmt.Sprintf("order-retention-%d", i)), 202, nil)
		b.waitDecision(t, id)
		ended = append(ended, id)
	}
	running := b.submit(t, webJob("order-retention-running"), 202, nil)
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, running).Status == pipeline.StatusLaunched }, "web job not launched")

	later := time.Now().Add(31 * 24 * time.Hour)
	for range 3 {
		if _, err := b.stack.AddWorker(ctx, func(c *pipeline.WorkerConfig) {
			c.Retention, c.RetentionEvery = 30*24*time.Hour, 20*time.Millisecond
			c.Now = func() time.Time { return later }
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ended {
		if v := b.waitErased(t, id); v.Erasure.Source != messages.ErasureRetention || v.Erasure.Jumio != messages.JumioDeleted {
			t.Errorf("%s: %+v", id, v.Erasure)
		}
	}
	audits := pipelinetest.Record(t, b.stack.JS, b.subj.StreamAudit(), b.subj.Audits(), messages.DecodeAudit)
	audits.WaitN(t, len(ended), waitLong, func(pipelinetest.Received[*messages.AuditRecord]) bool { return true }, "audit records")
	perJob := map[string]int{}
	for _, a := range audits.Where(func(pipelinetest.Received[*messages.AuditRecord]) bool { return true }) {
		perJob[a.Value.JobID]++
		if a.Value.Actor != "retention" {
			t.Errorf("audit actor %q", a.Value.Actor)
		}
	}
	for _, id := range ended {
		if perJob[id] != 1 {
			t.Errorf("%s erased %d times", id, perJob[id])
		}
	}
	if n := b.sim.Stats().Requests[string(jumiotest.RouteDeleteAccount)]; n != len(ended) {
		t.Errorf("%d account DELETEs at Jumio, want %d", n, len(ended))
	}
	if v := b.job(t, running); v.Status != pipeline.StatusLaunched {
		t.Errorf("a running job was erased by retention: %+v", v)
	}
}

// An erasure whose job record changes after a pass removed the data goes
// round again (the second pass purges the job's webhook data once more);
// the erased event, announced after the tombstone, is still delivered to
// the endpoint subscribed to everything. Found by the soak: the second
// pass purged the erased event's own delivery, announced by the first.
func TestErasureGoingRoundTwiceDeliversTheErasedEvent(t *testing.T) {
	t.Parallel()
	var (
		js     atomic.Pointer[jetstream.JetStream]
		target atomic.Pointer[string]
		passes atomic.Int32
	)
	b := setup(t, func(o *localstack.Options) {
		o.WebhookReceiver, o.Notifiers = true, 1
		dev := pipeline.WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}
		o.Ingest.Webhooks, o.Notifier.Webhooks = dev, dev
		o.Worker.AfterCheckpoint = func(step string) {
			if step != "erasure:data_removed" || passes.Add(1) != 1 {
				return
			}
			// A stage records something about the job during the first
			// pass: the tombstone's compare-and-swap fails, and the
			// erasure goes round again.
			ctx := context.Background()
			kv, err := (*js.Load()).KeyValue(ctx, "KYC_JOBS_STATE")
			if err != nil {
				t.Error(err)
				return
			}
			e, err := kv.Get(ctx, "job."+*target.Load())
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := kv.Update(ctx, e.Key(), e.Value(), e.Revision()); err != nil {
				t.Error(err)
			}
		}
	})
	js.Store(&b.stack.JS)
	jobID := b.submit(t, emailJob("order-erase-twice"), 202, nil)
	b.waitDecision(t, jobID)
	target.Store(&jobID)
	b.erase(t, jobID)
	if n := passes.Load(); n < 2 {
		t.Fatalf("the erasure made %d pass(es); the test needs it to go round again", n)
	}
	path := "/v1/webhook-endpoints/" + b.stack.ReceiverEndpoint.ID + "/deliveries?limit=1000"
	pipelinetest.Eventually(t, waitLong, func() bool {
		var out struct{ Deliveries []pipeline.WebhookAttempt }
		b.do(t, http.MethodGet, path, "", nil, nil).json(t, &out)
		for _, d := range out.Deliveries {
			if d.JobID == jobID && d.EventType == "verification.erased" && d.Outcome == pipeline.AttemptDelivered {
				return true
			}
		}
		return false
	}, "the erased event was never delivered to the endpoint subscribed to everything")
}

// heldLimiter holds the first Jumio call of one class until released.
type heldLimiter struct {
	class   jumio.EndpointClass
	once    sync.Once
	held    chan struct{}
	release chan struct{}
}

func (l *heldLimiter) Wait(ctx context.Context, class jumio.EndpointClass) error {
	if class == l.class {
		l.once.Do(func() { close(l.held); <-l.release })
	}
	return nil
}

// A Jumio call that waited for the rate limiter while the job's erasure
// was accepted is not made: the erasure guard reads the job record again
// before the call goes out. Found by the soak: an account creation 6 s
// after the 202 (a worker waiting for its account slot and the limiter
// during a partition) and status calls 1-4 s after it (retriever polls).
func TestErasureStopsACallThatWaitedForTheRateLimiter(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		class  jumio.EndpointClass
		routes []jumiotest.Route
	}{
		{jumio.ClassAccount, []jumiotest.Route{jumiotest.RouteCreateAccount, jumiotest.RouteUploadPreparedData, jumiotest.RouteFinalize}},
		{jumio.ClassRetrieval, []jumiotest.Route{jumiotest.RouteStatus, jumiotest.RouteDetails}},
	} {
		t.Run(string(c.class), func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			lim := &heldLimiter{class: c.class, held: make(chan struct{}), release: make(chan struct{})}
			b := setup(t, func(o *localstack.Options) {
				o.JumioLimiter = lim
				o.Worker.Now, o.Retriever.Now = clock.Now, clock.Now
			})
			jobID := b.submit(t, emailJob("order-held-"+string(c.class)), 202, nil)
			select {
			case <-lim.held:
			case <-time.After(waitLong):
				t.Fatalf("no %s call was ever made", c.class)
			}
			if r := b.do(t, http.MethodDelete, "/v1/verifications/"+jobID, "", nil, nil); r.status != http.StatusAccepted {
				t.Fatalf("DELETE: %d %s", r.status, r.body)
			}
			at202 := b.sim.Stats()
			clock.Advance(time.Second) // the call waited: its stage's last look at the job is old
			close(lim.release)
			b.waitErased(t, jobID)
			after := b.sim.Stats()
			for _, route := range c.routes {
				if n := after.Requests[string(route)] - at202.Requests[string(route)]; n != 0 {
					t.Errorf("%d %s calls after the 202", n, route)
				}
			}
		})
	}
}
