package kycctl_test

import (
	"context"
	"testing"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// TestStatusOfAPendingJob: a job accepted but not yet picked up by a worker
// has no record yet; kycctl status shows it ACCEPTED from its message in
// the jobs queue (its submission in the timeline, no events), kycctl jobs
// lists it under ACCEPTED, a repeated submit reports it ACCEPTED, and erase
// queues its erasure (ERASING), which a worker started later completes.
func TestStatusOfAPendingJob(t *testing.T) {
	t.Parallel()
	s := startStackWith(t, func(o *localstack.Options) { o.Workers, o.Retrievers = 0, 0 })
	url := s.NATSURL
	const jobID = "kycctl-pending-1"
	file := writeFile(t, "job.json", `{"jobId":"`+jobID+`","customerInternalReference":"ctl-pending-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"`+piiMarker+`"}}`)
	if r := ctl(t, url, "submit", file); r.err != nil {
		t.Fatalf("submit: %s", r)
	}

	r := ctl(t, url, "status", jobID, "--json")
	if r.err != nil {
		t.Fatalf("status of a pending job: %s", r)
	}
	st := decodeJSON[statusJSON](t, r)
	if st.JobID != jobID || st.Status != pipeline.StatusAccepted || st.Region != "amer-1" || st.Channel != "API" || st.AccountID != "" ||
		len(st.Timeline) != 1 || st.Timeline[0].Status != pipeline.StatusAccepted || st.Timeline[0].Note != "submitted with kycctl" || len(st.Events) != 0 {
		t.Errorf("status of a pending job: %+v", st)
	}
	lacks(t, r, piiMarker)
	r = ctl(t, url, "status", jobID)
	contains(t, r, jobID, pipeline.StatusAccepted, "TIMELINE", "submitted with kycctl")
	lacks(t, r, piiMarker)

	rows := decodeJSON[[]jobRowJSON](t, ctl(t, url, "jobs", "--state", "ACCEPTED", "--older-than", "1ns", "--json"))
	if len(rows) != 1 || rows[0].JobID != jobID || rows[0].Status != pipeline.StatusAccepted || rows[0].Channel != "API" {
		t.Errorf("jobs --state ACCEPTED lists %+v, want the pending job", rows)
	}
	if rows := decodeJSON[[]jobRowJSON](t, ctl(t, url, "jobs", "--state", "ACCEPTED", "--older-than", "1h", "--json")); len(rows) != 0 {
		t.Errorf("jobs --older-than 1h lists %+v: the pending job is newer", rows)
	}
	if rows := decodeJSON[[]jobRowJSON](t, ctl(t, url, "jobs", "--state", "FAILED", "--json")); len(rows) != 0 {
		t.Errorf("jobs --state FAILED lists %+v", rows)
	}
	if sub := decodeJSON[submitJSON](t, ctl(t, url, "submit", file, "--json")); sub.Result != "repeat" || sub.Status != pipeline.StatusAccepted {
		t.Errorf("a repeat of a pending job: %+v", sub)
	}
	if r := ctl(t, url, "status", "kycctl-nobody"); r.err == nil {
		t.Errorf("status of an unknown job: %s", r)
	}

	r = ctl(t, url, "erase", jobID, "--json")
	if rows := decodeJSON[[]struct{ JobID, Status string }](t, r); len(rows) != 1 || rows[0].Status != pipeline.StatusErasing {
		t.Fatalf("erase a pending job: %s", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	if _, err := s.AddWorker(ctx, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pending job erased", func() result { return ctl(t, url, "status", jobID, "--json") }, func(r result) bool {
		return r.err == nil && decodeJSON[statusJSON](t, r).Status == pipeline.StatusErased
	})
}
