package pipeline_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// A job record written by the release before ownAccount (or rewritten by
// it during a rolling upgrade, which drops the fields it does not know)
// cannot say whether the job created its Jumio account. Its erasure deletes
// the job's workflow execution only, never the account: the account may
// hold other jobs' executions. A current record of a job that created its
// account still gets the account deleted.
func TestErasureOfARecordWithoutOwnAccountKeepsTheAccount(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	owner := b.submit(t, emailJob("order-upg-owner"), 202, nil)
	ownerDecision := b.waitDecision(t, owner)
	update := emailJob("order-upg-update")
	update["accountId"] = ownerDecision.AccountID
	onExisting := b.submit(t, update, 202, nil)
	b.waitDecision(t, onExisting)
	created := b.submit(t, emailJob("order-upg-created"), 202, nil)
	createdDecision := b.waitDecision(t, created)

	kv, err := b.stack.JS.KeyValue(ctx, b.subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	// The old release's view of the two records: without ownAccount and
	// existingAccount, which it did not know.
	for _, id := range []string{owner, onExisting} {
		e, err := kv.Get(ctx, "job."+id)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := json.Unmarshal(e.Value(), &raw); err != nil {
			t.Fatal(err)
		}
		if id == owner && raw["ownAccount"] != true {
			t.Fatalf("the owner's record does not say it created its account: %s", e.Value())
		}
		delete(raw, "ownAccount")
		delete(raw, "existingAccount")
		v, _ := json.Marshal(raw)
		if _, err := kv.Update(ctx, "job."+id, v, e.Revision()); err != nil {
			t.Fatal(err)
		}
	}

	before := b.sim.Stats()
	for _, id := range []string{onExisting, owner, created} {
		if v := b.erase(t, id); v.Erasure == nil || v.Erasure.Jumio != messages.JumioDeleted {
			t.Errorf("%s tombstone: %+v", id, v)
		}
		if id == onExisting {
			// The account's other execution (the owner's) is untouched.
			if info, ok := b.sim.Execution(ownerDecision.WorkflowExecutionID); !ok || info.Deleted {
				t.Errorf("erasing the job on an existing account deleted the owner's execution: %+v (found %v)", info, ok)
			}
		}
	}
	after := b.sim.Stats()
	if n := after.Requests[string(jumiotest.RouteDeleteExecution)] - before.Requests[string(jumiotest.RouteDeleteExecution)]; n != 2 {
		t.Errorf("execution DELETEs: %d, want 2 (the records without ownAccount)", n)
	}
	if n := after.Requests[string(jumiotest.RouteDeleteAccount)] - before.Requests[string(jumiotest.RouteDeleteAccount)]; n != 1 {
		t.Errorf("account DELETEs: %d, want 1 (the current record of a job that created its account)", n)
	}
	if info, ok := b.sim.Execution(ownerDecision.WorkflowExecutionID); !ok || !info.Deleted {
		t.Errorf("owner's execution after its own erasure: %+v (found %v)", info, ok)
	}
	if info, ok := b.sim.Execution(createdDecision.WorkflowExecutionID); !ok || !info.Deleted {
		t.Errorf("created job's execution: %+v (found %v); want deleted with its account", info, ok)
	}
	if got := b.job(t, owner).Status; got != pipeline.StatusErased {
		t.Errorf("owner status %s", got)
	}
}
