package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// A job accepted but not yet picked up by a worker is one message in the
// jobs queue and has no record. From the 202 on, GET answers ACCEPTED from
// that message (its submission time as createdAt), LookupJob, PendingJob
// and PendingJobs read it, a repeat is 200 and another request under the same
// Idempotency-Key 409; nothing is in the job-state bucket until a worker
// runs. The record the worker then creates from the message says what the
// pending job said (the same createdAt and job sequence), and the job is
// decided.
func TestPendingJobIsVisibleFromThe202(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) { o.Workers = 0 })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	js, subj := b.stack.JS, b.subj
	kv, err := js.KeyValue(ctx, subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	store := pipeline.NewJobStore(kv, nil)

	job := emailJob("order-pending-1")
	key := map[string]string{"Idempotency-Key": "pending-key-1"}
	id := b.submit(t, job, http.StatusAccepted, key)
	v := b.job(t, id)
	if v.Status != pipeline.StatusAccepted || v.CreatedAt.IsZero() || v.AccountID != "" || v.Decision != nil {
		t.Fatalf("GET of a pending job: %+v", v)
	}
	if _, _, err := store.Get(ctx, id); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Fatalf("a pending job has a record already: %v", err)
	}
	pending, err := pipeline.PendingJob(ctx, js, subj, id)
	if err != nil || pending.Status != pipeline.StatusAccepted || pending.JobSeq == 0 || pending.CustomerInternalReference != "order-pending-1" ||
		!pending.CreatedAt.Equal(v.CreatedAt) || len(pending.Timeline) != 1 {
		t.Fatalf("PendingJob = %+v, %v (GET said created %s)", pending, err, v.CreatedAt)
	}
	var listed []string
	if err := pipeline.PendingJobs(ctx, js, store, subj, func(r *pipeline.JobRecord) bool {
		listed = append(listed, r.JobID+" "+r.Status)
		return true
	}); err != nil || len(listed) != 1 || listed[0] != id+" "+pipeline.StatusAccepted {
		t.Fatalf("PendingJobs = %v, %v", listed, err)
	}
	looked, err := pipeline.LookupJob(ctx, js, store, subj, id)
	if err != nil || looked.Status != pipeline.StatusAccepted || looked.JobSeq != pending.JobSeq {
		t.Fatalf("LookupJob of a pending job = %+v, %v", looked, err)
	}

	// Repeats compare with the pending message.
	r := b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(jsonBody(job)), key)
	if r.status != http.StatusOK {
		t.Errorf("a repeat of a pending job: %d %s", r.status, r.body)
	}
	other := emailJob("order-pending-other")
	if r := b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(jsonBody(other)), key); r.status != http.StatusConflict {
		t.Errorf("another request under a pending job's Idempotency-Key: %d %s", r.status, r.body)
	}

	// Unknown jobs stay unknown everywhere.
	if _, err := pipeline.PendingJob(ctx, js, subj, "job_nobody"); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("PendingJob of an unknown job: %v", err)
	}
	if _, err := pipeline.LookupJob(ctx, js, store, subj, "job_nobody"); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("LookupJob of an unknown job: %v", err)
	}
	if r := b.do(t, http.MethodGet, "/v1/verifications/job_nobody", "", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("GET of an unknown job: %d %s", r.status, r.body)
	}

	if _, err := b.stack.AddWorker(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.stack.AddRetriever(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b.waitDecision(t, id)
	rec, _, err := store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.CreatedAt.Equal(v.CreatedAt) || rec.JobSeq != pending.JobSeq || len(rec.Timeline) == 0 ||
		rec.Timeline[0].Status != pipeline.StatusAccepted || rec.Timeline[0].Note != "submitted over HTTP" {
		t.Errorf("the worker's record differs from the pending job: created %s seq %d timeline %+v; pending: created %s seq %d",
			rec.CreatedAt, rec.JobSeq, rec.Timeline, v.CreatedAt, pending.JobSeq)
	}
	if _, err := pipeline.PendingJob(ctx, js, subj, id); !errors.Is(err, pipeline.ErrJobNotFound) {
		t.Errorf("the decided job's message is still pending: %v", err)
	}
	listed = nil
	if err := pipeline.PendingJobs(ctx, js, store, subj, func(r *pipeline.JobRecord) bool { listed = append(listed, r.JobID); return true }); err != nil || len(listed) != 0 {
		t.Errorf("PendingJobs after the job ran = %v, %v", listed, err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, id).Status == pipeline.StatusDecided }, "GET never said DECIDED")
	if n := len(b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](id))); n != 1 {
		t.Errorf("%d decisions for the job, want 1 (the repeat made no second job)", n)
	}
}

// A repeat of a job stored after the job's own message left the queue
// (while the job is still in flight: not announced, not finished) and
// JetStream's duplicate window passed is answered 200 from the record, and
// the worker drops its message instead of running the job a second time
// beside the first.
func TestRepeatAfterTheJobMessageLeftRunsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Workers = 0
		o.Topology.DuplicateWindow = 500 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	js, subj := b.stack.JS, b.subj
	kv, err := js.KeyValue(ctx, subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	store := pipeline.NewJobStore(kv, nil)
	jobs, err := js.Stream(ctx, subj.StreamJobs())
	if err != nil {
		t.Fatal(err)
	}

	job := emailJob("order-repeat-in-flight")
	job["jobId"] = "job-repeat-in-flight"
	id := b.submit(t, job, http.StatusAccepted, nil)
	pending, err := pipeline.PendingJob(ctx, js, subj, id)
	if err != nil {
		t.Fatal(err)
	}
	// The job as a worker leaves it mid-saga: its record created from its
	// message, which has left the queue.
	if err := jobs.DeleteMsg(ctx, pending.JobSeq); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Create(ctx, pending); err != nil {
		t.Fatal(err)
	}

	// Within the duplicate window JetStream drops the repeat's message;
	// after it, the message is stored. Either way the answer is 200.
	pipelinetest.Eventually(t, waitLong, func() bool {
		if r := b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(jsonBody(job)), nil); r.status != http.StatusOK {
			t.Fatalf("a repeat of a job in flight: %d %s", r.status, r.body)
		}
		_, err := pipeline.PendingJob(ctx, js, subj, id)
		return err == nil
	}, "no repeat was stored after the duplicate window")
	if _, err := b.stack.AddWorker(ctx, nil); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		info, err := jobs.Info(ctx)
		return err == nil && info.State.Msgs == 0
	}, "the repeat's message was never acknowledged")
	if n := b.sim.Stats().Requests["create_account"]; n != 0 {
		t.Errorf("%d account creations: the repeat ran the job again", n)
	}
	if rec, _, err := store.Get(ctx, id); err != nil || rec.Status != pipeline.StatusAccepted || rec.JobSeq != pending.JobSeq {
		t.Errorf("the job's record after the repeat was dropped: %+v, %v", rec, err)
	}
}
