package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/internal/termprobe"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// The regression test of the spurious dead letter (docs/RELIABILITY.md): on
// a cluster, the NATS server's MSG_TERMINATED advisory for a pending message
// that was deleted can reach the dead-letter sweeper while the message is
// still readable by sequence. This test puts the sweeper in exactly that
// state on one node, deterministically: the poll tasks stay in their stream
// (the first poll is a minute away), and the test publishes the advisories
// the server would, with the reason the server really gives (read from a
// real deletion by internal/termprobe), into the advisories stream.
func TestSweeperTellsGiveUpsFromServerTerminations(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Retriever.Schedule = []time.Duration{time.Minute}
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	js := b.stack.JS
	store := jobStore(t, b)
	polls, err := js.Stream(ctx, b.subj.StreamRetrieve())
	if err != nil {
		t.Fatal(err)
	}

	// The server's own reason for a deleted pending message.
	probe, err := termprobe.Run(ctx, b.stack.NC, js, termprobe.Options{Stream: "SCRATCH", Messages: 1})
	if err != nil || probe.Advisories != 1 {
		t.Fatalf("termprobe: %+v, %v", probe, err)
	}
	serverReason := probe.First.Reason

	// A job decided on its callback. Its poll task is still pending: the
	// retriever no longer deletes it (the deletion is what made the server
	// terminate it).
	decided := b.submit(t, emailJob("order-sweep-decided"), 202, nil)
	b.waitDecision(t, decided)
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, decided).Status == pipeline.StatusDecided }, "not decided")
	rec, _, err := store.Get(ctx, decided)
	if err != nil || rec.PollSequence == 0 {
		t.Fatalf("record %+v, %v", rec, err)
	}
	if _, err := polls.GetMsg(ctx, rec.PollSequence); err != nil {
		t.Fatalf("the decided job's poll task is gone (%v): the retriever deleted it", err)
	}

	// The advisory a cluster delivers while the deleted message is still
	// readable: not a give-up, since the job is decided.
	advise(t, b, pipeline.AdvisoryTerminated, rec.PollSequence, 1, serverReason)
	sweepDone(t, b)
	// A max-delivered message of a decided job is not a give-up either; the
	// sweeper clears it from its work queue.
	advise(t, b, pipeline.AdvisoryMaxDeliveries, rec.PollSequence, 20000, "")
	sweepDone(t, b)
	if _, err := polls.GetMsg(ctx, rec.PollSequence); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("the decided job's max-delivered poll task is still there (%v)", err)
	}
	sweepDone(t, b) // the server's advisory for that deletion
	if v := b.job(t, decided); v.Status != pipeline.StatusDecided || v.Error != nil {
		t.Errorf("decided job now %s, error %+v", v.Status, v.Error)
	}

	// Jobs that are not finished (their callbacks are lost; the first poll
	// is a minute away), each with a poll task pending.
	b.sim.SetCallbackOptions(jumiotest.CallbackOptions{DropRate: 1})
	live := map[string]*pipeline.JobRecord{}
	for _, ref := range []string{"order-sweep-server", "order-sweep-stage", "order-sweep-other"} {
		id := b.submit(t, emailJob(ref), 202, nil)
		pipelinetest.Eventually(t, waitLong, func() bool {
			r, _, err := store.Get(ctx, id)
			return err == nil && r.Status == pipeline.StatusFinalized && r.PollSequence > 0
		}, "job %s not finalized with a poll task", id)
		live[ref], _, _ = store.Get(ctx, id)
	}
	cases := []struct {
		ref, reason string
		deadLetter  bool
	}{
		// The server removes a message its unfinished job needs: keep it.
		{"order-sweep-server", serverReason, true},
		// A stage gave up: it dead-lettered the message itself, once.
		{"order-sweep-stage", messages.ReasonRetryBudget + ": " + messages.ErrCodeRetryBudget, false},
		// Another client terminated it: keep it.
		{"order-sweep-other", "operator cleanup", true},
	}
	for _, c := range cases {
		advise(t, b, pipeline.AdvisoryTerminated, live[c.ref].PollSequence, 1, c.reason)
	}
	sweepDone(t, b)
	for _, c := range cases {
		id := live[c.ref].JobID
		got := b.dlq.Where(pipelinetest.ForJob[[]byte](id))
		if !c.deadLetter {
			if len(got) != 0 || b.job(t, id).Status != pipeline.StatusFinalized {
				t.Errorf("%s (%q): %d dead letters, job %s; want none, FINALIZED", c.ref, c.reason, len(got), b.job(t, id).Status)
			}
			continue
		}
		got = b.dlq.WaitN(t, 1, waitLong, pipelinetest.ForJob[[]byte](id), "dead letter for "+c.ref)
		h := got[0].Header
		if got[0].Subject != b.subj.DLQ(messages.StageRetriever) || h.Get(messages.HeaderReason) != messages.ReasonTerminal ||
			!strings.Contains(h.Get(messages.HeaderError), c.reason) || h.Get(messages.HeaderOriginalStream) != b.subj.StreamRetrieve() {
			t.Errorf("%s: dead letter %s %v", c.ref, got[0].Subject, h)
		}
		pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, id).Status == pipeline.StatusFailed }, "%s not FAILED", c.ref)
	}

	// Nothing ever dead-lettered the decided job.
	if got := b.dlq.Where(pipelinetest.ForJob[[]byte](decided)); len(got) != 0 {
		t.Errorf("the decided job has %d dead letters", len(got))
	}
}

// jobStore opens the stack's job-state bucket.
func jobStore(t *testing.T, b *bundle) *pipeline.JobStore {
	t.Helper()
	kv, err := b.stack.JS.KeyValue(context.Background(), b.subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.NewJobStore(kv, time.Now)
}

// advise stores an advisory about the retriever's poll consumer in the
// advisories stream, shaped as nats-server sends it.
func advise(t *testing.T, b *bundle, prefix string, seq, deliveries uint64, reason string) {
	t.Helper()
	typ := "io.nats.jetstream.advisory.v1.terminated"
	if prefix == pipeline.AdvisoryMaxDeliveries {
		typ = "io.nats.jetstream.advisory.v1.max_deliver"
	}
	body, err := json.Marshal(map[string]any{"type": typ, "id": "test", "timestamp": time.Now().UTC(),
		"stream": b.subj.StreamRetrieve(), "consumer": pipeline.ConsumerRetrieverPoll, "consumer_seq": 1,
		"stream_seq": seq, "deliveries": deliveries, "reason": reason})
	if err != nil {
		t.Fatal(err)
	}
	subject := prefix + b.subj.StreamRetrieve() + "." + pipeline.ConsumerRetrieverPoll
	if _, err := b.stack.JS.Publish(context.Background(), subject, body); err != nil {
		t.Fatalf("publish advisory on %s: %v", subject, err)
	}
}

// sweepDone waits until the sweeper has handled every stored advisory (the
// advisories stream is a work queue: an acked advisory is gone).
func sweepDone(t *testing.T, b *bundle) {
	t.Helper()
	st, err := b.stack.JS.Stream(context.Background(), b.subj.StreamAdvisories())
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	}, "the sweeper has not handled every advisory")
}
