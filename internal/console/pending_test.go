package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// TestPendingJobInTheConsole: a job accepted but not yet picked up by a
// worker has no record (nor index entries) yet: its page shows it ACCEPTED
// from its message in the queue, a search by its job ID finds it, and it
// can be erased from its page; once a worker runs, the erasure completes and
// the job's message has left the queue.
func TestPendingJobInTheConsole(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{}) // no worker: the job message stays queued
	id := f.submit(t, emailJob("order-pending-1", "cust-pending-1", "pending@example.com"))

	support := f.browser(t)
	support.signIn(supportKey)
	p := support.get("/console/jobs/" + id)
	if p.status != http.StatusOK {
		t.Fatalf("the page of a pending job: %d", p.status)
	}
	contains(t, p, `<span class="badge s-accepted">ACCEPTED</span>`, "from the job&#39;s message in the queue", `id="erase"`)
	lacks(t, p, "order-pending-1", "pending@example.com")

	found := support.get("/console/jobs?q=" + url.QueryEscape(id))
	contains(t, found, `href="/console/jobs/`+id+`"`, "1 job(s) match")
	if none := support.get("/console/jobs?q=job_nobody"); none.status != http.StatusOK {
		t.Errorf("search for an unknown job ID: %d", none.status)
	} else {
		contains(t, none, "No job matches.")
	}
	if filtered := support.get("/console/jobs?q=" + url.QueryEscape(id) + "&status=" + pipeline.StatusDecided); filtered.status == http.StatusOK {
		contains(t, filtered, "No job matches.")
	}

	p = support.action("/console/jobs/"+id, "/console/jobs/"+id+"/erase", url.Values{"confirm": {"yes"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("erase a pending job: %d %q", p.status, p.loc)
	}
	if rec := f.record(t, id); rec.Status != pipeline.StatusErasing || rec.Erasure == nil || rec.Erasure.Actor != "support" {
		t.Fatalf("a pending job after its erasure was requested: %+v", rec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := f.stack.AddWorker(ctx, nil); err != nil {
		t.Fatal(err)
	}
	f.waitStatus(t, id, pipeline.StatusErased)
	pipelinetest.Eventually(t, testTimeout, func() bool {
		_, err := pipeline.PendingJob(ctx, f.stack.JS, f.subj, id)
		return errors.Is(err, pipeline.ErrJobNotFound)
	}, "the erased job's message never left the queue")
	contains(t, support.get("/console/jobs/"+id), ">ERASED<")
}
