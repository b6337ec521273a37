package pipeline

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// The soak of 2026-12-07 04:15: a delivery of an erased job's accepted
// event, in flight during the erasure, wrote its log entry two seconds
// after the erasure's purge, and its check of the event read a stream
// leader just elected that still had it. The erasure task comes back
// lateWebhookPurgeAfter later and removes what is not about the erased
// event: pending deliveries, log entries and attempt counters; the erased
// event's own stay.
func TestErasureLatePassRemovesLateWebhookData(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	const jobID = "job-late-1"
	at := time.Now().UTC()
	publishLate := func(typ webhooks.EventType, wid string) {
		t.Helper()
		job := &webhookJob{WebhookID: wid, EndpointID: "ep_late", JobID: jobID, EventID: string(typ) + ":" + jobID, Type: typ,
			Timestamp: at, Stream: topo.Subjects.StreamEvents(), Sequence: 1}
		o, err := job.outMsg(topo.Subjects, wid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := publishAll(ctx, js, o); err != nil {
			t.Fatal(err)
		}
		e := &webhookLogEntry{WebhookAttempt: WebhookAttempt{WebhookID: wid, EndpointID: "ep_late", JobID: jobID, EventType: string(typ),
			EventID: job.EventID, Attempt: 1, At: at, Outcome: AttemptFailed}, Stream: job.Stream, Sequence: 1, Timestamp: at}
		if _, err := publishLog(ctx, js, topo.Subjects, e); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(attemptState{Failed: 1, Next: at, Job: job})
		kv, err := js.KeyValue(ctx, topo.Subjects.BucketWebhookAttempts())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, attemptKey(jobID, wid, 1), b); err != nil {
			t.Fatal(err)
		}
	}
	publishLate(webhooks.EventAccepted, "msg_late_accepted")
	publishLate(webhooks.EventErased, "msg_late_erased")
	// And a decided index entry that reached the server after the
	// erasure's purge (listings trust decided entries: JobQuery.Summaries).
	lateEntry := topo.Subjects.IndexJob(StatusDecided, "emea-1", "PASSED", jobID)
	if _, err := js.Publish(ctx, lateEntry, []byte(`{"jobId":"`+jobID+`","status":"DECIDED"}`)); err != nil {
		t.Fatal(err)
	}

	// Before its time the late pass waits; then it removes the three
	// messages about the accepted event.
	w := &Worker{stage: &stage{js: js, topo: topo, subj: topo.Subjects, log: zap.NewNop(), now: time.Now}}
	r := &erasureRun{eraser: &eraser{stage: w.stage, w: w}, log: zap.NewNop()}
	tomb := &JobRecord{JobID: jobID, Status: StatusErased, Erasure: &Erasure{CompletedAt: time.Now().Add(-time.Minute)}}
	if o, err := r.latePass(ctx, tomb); err != nil || o.action != actRetry || o.delay <= 0 || o.delay > lateWebhookPurgeAfter {
		t.Fatalf("a late pass before its time: %v, %v; want a retry within %v", o, err, lateWebhookPurgeAfter)
	}
	tomb.Erasure.CompletedAt = time.Now().Add(-lateWebhookPurgeAfter)
	if o, err := r.latePass(ctx, tomb); err != nil || o.action != actAck {
		t.Fatalf("the late pass: %v, %v", o, err)
	}
	if idx, err := js.Stream(ctx, topo.Subjects.StreamIndex()); err != nil {
		t.Fatal(err)
	} else if _, err := idx.GetLastMsgForSubject(ctx, lateEntry); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("the late index entry after the late pass: %v", err)
	}
	for _, c := range []struct{ stream, subject string }{
		{topo.Subjects.StreamWebhooks(), topo.Subjects.WebhookDeliveriesOfJob(jobID)},
		{topo.Subjects.StreamWebhookLog(), topo.Subjects.WebhookLogsOfJob(jobID)},
		{"KV_" + topo.Subjects.BucketWebhookAttempts(), "$KV." + topo.Subjects.BucketWebhookAttempts() + ".att." + jobID + ".>"},
	} {
		st, err := js.Stream(ctx, c.stream)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for seq := uint64(1); ; {
			m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(c.subject))
			if err != nil {
				break
			}
			seq = m.Sequence + 1
			left = append(left, string(m.Data))
		}
		if len(left) != 1 || !json.Valid([]byte(left[0])) || !strings.Contains(left[0], "msg_late_erased") {
			t.Errorf("%s after the late pass: %q; want only the erased event's", c.stream, left)
		}
	}
}
