package pipeline_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// When JetStream stops redelivering (MaxDeliver reached before the worker's
// own budget), the advisory is turned into a dead letter, the job into
// FAILED, and the message leaves the work queue.
func TestMaxDeliveriesAreDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Topology.WorkerMaxDeliver = 3
		o.Worker.RetryBudget = 100
	})
	b.sim.FailNext(jumiotest.RouteCreateAccount, 1000, http.StatusServiceUnavailable)
	jobID := b.submit(t, emailJob("order-maxdel-1"), 202, nil)

	dl := b.dlq.WaitN(t, 1, waitLong, pipelinetest.ForJob[[]byte](jobID), "dead letter")[0]
	if dl.Header.Get(messages.HeaderReason) != messages.ReasonMaxDeliveries || dl.Header.Get(messages.HeaderDeliveries) != "3" ||
		dl.Subject != b.subj.DLQ(messages.StageWorker) {
		t.Errorf("dead letter %s %v", dl.Subject, dl.Header)
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, jobID).Status == pipeline.StatusFailed }, "job not FAILED")
	if v := b.job(t, jobID); v.Error == nil || v.Error.Code != messages.ErrCodeMaxDeliveries {
		t.Errorf("job error = %+v", v.Error)
	}
	stream, _ := b.stack.JS.Stream(context.Background(), b.subj.StreamJobs())
	pipelinetest.Eventually(t, waitLong, func() bool {
		info, err := stream.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	}, "the max-delivered job is still in the work queue")
	if n := b.sim.Stats().Requests["create_account"]; n != 3 {
		t.Errorf("create_account requests = %d, want 3", n)
	}
}

// A job Jumio refused with a 400 is replayed once the cause is fixed: it
// ends in one account and one decision, and the dead letter is gone.
func TestReplayAfterFix(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	b.sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusBadRequest)
	jobID := b.submit(t, emailJob("order-replay-1"), 202, nil)
	b.dlq.WaitN(t, 1, waitLong, pipelinetest.ForJob[[]byte](jobID), "dead letter")

	list, err := pipeline.ListDeadLetters(ctx, b.stack.JS, b.subj, pipeline.DLQFilter{Stage: messages.StageWorker, Reason: messages.ReasonTerminal})
	if err != nil || len(list) != 1 || list[0].JobID != jobID || list[0].OriginalSubject != b.subj.JobSubmit(jobID) {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if other, _ := pipeline.ListDeadLetters(ctx, b.stack.JS, b.subj, pipeline.DLQFilter{Stage: messages.StageRetriever}); len(other) != 0 {
		t.Errorf("retriever filter matched %d", len(other))
	}
	got, err := pipeline.GetDeadLetter(ctx, b.stack.JS, b.subj, list[0].Sequence)
	if err != nil || got.Error == "" || got.Deliveries != 1 {
		t.Fatalf("show = %+v, %v", got, err)
	}

	// The cause is fixed (the fault was one-off); replay, twice at once.
	var wg sync.WaitGroup
	results := make([]*pipeline.ReplayResult, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = pipeline.ReplayDeadLetter(ctx, b.stack.JS, b.subj, list[0].Sequence, time.Hour)
		}()
	}
	wg.Wait()
	if errs[0] != nil && errs[1] != nil {
		t.Fatalf("both replays failed: %v / %v", errs[0], errs[1])
	}
	dec := b.waitDecision(t, jobID)
	st := b.sim.Stats()
	if st.AccountsByReference["order-replay-1"] != 1 || st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 {
		t.Errorf("accounts=%v finalizes=%v", st.AccountsByReference, st.FinalizesByExecution)
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, jobID).Status == pipeline.StatusDecided }, "not decided")
	if left, _ := pipeline.ListDeadLetters(ctx, b.stack.JS, b.subj, pipeline.DLQFilter{}); len(left) != 0 {
		t.Errorf("%d dead letters left after replay", len(left))
	}
	if _, err := pipeline.ReplayDeadLetter(ctx, b.stack.JS, b.subj, list[0].Sequence, time.Hour); err == nil {
		t.Error("replaying a replayed (removed) dead letter succeeded")
	}
}

// A job that failed after its account was created resumes from its
// checkpoint on replay: no second account, one finalize.
func TestReplayResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	b.sim.FailNext(jumiotest.RouteFinalize, 1, http.StatusBadRequest)
	jobID := b.submit(t, emailJob("order-replay-2"), 202, nil)
	b.dlq.WaitN(t, 1, waitLong, pipelinetest.ForJob[[]byte](jobID), "dead letter")
	// The dead letter is stored first, then the job is marked failed.
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, jobID).Status == pipeline.StatusFailed }, "job not failed")
	if v := b.job(t, jobID); v.AccountID == "" {
		t.Fatalf("job = %+v", v)
	}
	list, _ := pipeline.ListDeadLetters(ctx, b.stack.JS, b.subj, pipeline.DLQFilter{JobID: jobID})
	if len(list) != 1 {
		t.Fatalf("dead letters for the job: %d", len(list))
	}
	if _, err := pipeline.ReplayDeadLetter(ctx, b.stack.JS, b.subj, list[0].Sequence, time.Hour); err != nil {
		t.Fatal(err)
	}
	dec := b.waitDecision(t, jobID)
	st := b.sim.Stats()
	if st.AccountsByReference["order-replay-2"] != 1 || st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 || st.Uploads != 1 {
		t.Errorf("accounts=%v finalizes=%v uploads=%d", st.AccountsByReference, st.FinalizesByExecution, st.Uploads)
	}
}
