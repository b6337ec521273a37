package pipeline_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// TestCallbackDeadLetterOnlyRetriggers: a callback is only a trigger. When
// its retrieval gives up, its dead letter names the job (for operators and
// erasure) but the job is not failed: its poll task decides it. Replaying
// the callback's letter republishes the callback as ingest stored it (no
// Kyc-Job-Id header) and leaves the job record as it is, even when the job
// FAILED meanwhile; replaying the poll task's letter is what resumes the
// job. Before, the callback's give-up failed the job, and replaying its
// letter moved the job back from FAILED (Security II, "not done here").
func TestCallbackDeadLetterOnlyRetriggers(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Retrievers = 0
		o.Retriever.Schedule = []time.Duration{time.Second, 2 * time.Second}
	})
	ctx := context.Background()
	jobID := b.submit(t, emailJob("order-cb-letter-1"), 202, nil)
	var rec *pipeline.JobRecord
	pipelinetest.Eventually(t, waitLong, func() bool {
		rec, _ = jobRecord(t, b.stack.JS, b.subj, jobID)
		return rec.Announced && streamMsgs(t, b, b.subj.StreamCallbacks()) > 0
	}, "the job was not announced and its callback stored")

	// The callback's retrieval is refused for good (400); so is the poll
	// task's, a second later.
	b.sim.FailNext(jumiotest.RouteStatus, 2, http.StatusBadRequest)
	retriever, err := b.stack.AddRetriever(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	letters := func(f pipeline.DLQFilter) []pipeline.DeadLetter {
		list, err := pipeline.ListDeadLetters(ctx, b.stack.JS, b.subj, f)
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		return len(letters(pipeline.DLQFilter{})) == 1 && consumerIdle(t, b, b.subj.StreamCallbacks(), pipeline.ConsumerRetrieverCallback)
	}, "the callback was not dead-lettered")
	cbLetter := letters(pipeline.DLQFilter{})[0]
	if cbLetter.OriginalSubject != b.subj.Callback("amer-1") || cbLetter.JobID != jobID || cbLetter.Stage != messages.StageRetriever {
		t.Fatalf("letter %+v", cbLetter)
	}
	if rec, _ = jobRecord(t, b.stack.JS, b.subj, jobID); rec.Status == pipeline.StatusFailed {
		t.Fatalf("the callback's give-up failed the job (%+v)", rec.LastError)
	}
	if dl, err := pipeline.GetDeadLetter(ctx, b.stack.JS, b.subj, cbLetter.Sequence); err != nil {
		t.Fatal(err)
	} else if !hasMessage(rec, b.subj.StreamDLQ(), dl.Sequence) {
		t.Errorf("the job record does not list the callback's letter (erasure needs it): %v", rec.Messages)
	}

	// The poll task gives up: the job fails, with its own letter.
	pipelinetest.Eventually(t, waitLong, func() bool { return len(letters(pipeline.DLQFilter{})) == 2 }, "the poll task was not dead-lettered")
	pipelinetest.Eventually(t, waitLong, func() bool {
		rec, _ = jobRecord(t, b.stack.JS, b.subj, jobID)
		return rec.Status == pipeline.StatusFailed
	}, "the job did not fail")
	_, failedRev := jobRecord(t, b.stack.JS, b.subj, jobID)

	// Replay the callback's letter with no retriever running, to look at
	// what is republished.
	if err := retriever.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.ReplayDeadLetter(ctx, b.stack.JS, b.subj, cbLetter.Sequence, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.Subject != b.subj.Callback("amer-1") {
		t.Errorf("replayed to %s", res.Subject)
	}
	st, err := b.stack.JS.Stream(ctx, b.subj.StreamCallbacks())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, b.subj.Callback("amer-1"))
	if err != nil {
		t.Fatal(err)
	}
	if h := msg.Header.Get(messages.HeaderJobID); h != "" {
		t.Errorf("the replayed callback carries %s: %s", messages.HeaderJobID, h)
	}
	if h := msg.Header.Get(messages.HeaderReplayOf); h != strconv.FormatUint(cbLetter.Sequence, 10) {
		t.Errorf("%s = %q", messages.HeaderReplayOf, h)
	}
	if rec, rev := jobRecord(t, b.stack.JS, b.subj, jobID); rev != failedRev || rec.Status != pipeline.StatusFailed {
		t.Fatalf("replaying the callback's letter changed the job: %s at revision %d (was FAILED at %d)", rec.Status, rev, failedRev)
	}
	if _, err := b.stack.AddRetriever(ctx, nil); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		return consumerIdle(t, b, b.subj.StreamCallbacks(), pipeline.ConsumerRetrieverCallback)
	}, "the replayed callback was not handled")
	if rec, rev := jobRecord(t, b.stack.JS, b.subj, jobID); rev != failedRev || rec.Status != pipeline.StatusFailed {
		t.Fatalf("the replayed callback changed the job: %s at revision %d (was FAILED at %d)", rec.Status, rev, failedRev)
	}
	if n := len(b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](jobID))); n != 0 {
		t.Fatalf("%d decisions for a failed job", n)
	}

	// The poll task's letter resumes the job.
	polls := letters(pipeline.DLQFilter{JobID: jobID, Stage: messages.StageRetriever})
	var pollLetter *pipeline.DeadLetter
	for i := range polls {
		if polls[i].Sequence != cbLetter.Sequence {
			pollLetter = &polls[i]
		}
	}
	if pollLetter == nil || pollLetter.OriginalSubject != b.subj.Retrieve("amer-1") {
		t.Fatalf("the poll task's letter: %+v", polls)
	}
	if _, err := pipeline.ReplayDeadLetter(ctx, b.stack.JS, b.subj, pollLetter.Sequence, time.Hour); err != nil {
		t.Fatal(err)
	}
	b.waitDecision(t, jobID)
	pipelinetest.Eventually(t, waitLong, func() bool {
		rec, _ = jobRecord(t, b.stack.JS, b.subj, jobID)
		return rec.Status == pipeline.StatusDecided
	}, "the replayed poll task did not decide the job")
}

// streamMsgs is how many messages a stream holds.
func streamMsgs(t *testing.T, b *bundle, stream string) uint64 {
	t.Helper()
	st, err := b.stack.JS.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// hasMessage reports whether a job record lists a message.
func hasMessage(rec *pipeline.JobRecord, stream string, seq uint64) bool {
	for _, m := range rec.Messages {
		if m.Stream == stream && m.Seq == seq {
			return true
		}
	}
	return false
}
