package pipeline

import (
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Records written without the index (a release before it) are indexed by
// Backfill, with their references, and listed and found afterwards;
// indexed and erased jobs are left as they are, and a second run adds
// nothing.
func TestJobIndexBackfill(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	ctx := t.Context()
	f.seed(t, "job-indexed", StatusDecided, "amer-1", "PASSED", "order-indexed", "")
	old := NewJobStore(f.kv, nil) // writes records only, as 9aa777e did
	for _, id := range []string{"job-old-1", "job-old-2"} {
		rec, rev, err := old.Create(ctx, &JobRecord{JobID: id, Status: StatusAccepted, Region: "emea-1", Channel: messages.ChannelAPI,
			CustomerInternalReference: "order-" + id, UserReference: "user-" + id, CreatedAt: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := old.Update(ctx, rec, rev, func(r *JobRecord) error {
			r.SetStatus(time.Now(), StatusDecided, "")
			r.Decision = &messages.DecisionSummary{Type: "REJECTED"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := old.Create(ctx, &JobRecord{JobID: "job-old-erased", Status: StatusErased, CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	f.waitIndexed(t, 1)

	res, err := f.idx.Backfill(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (BackfillResult{Records: 4, Indexed: 2, Present: 1, Skipped: 1, References: 4}); res != want {
		t.Errorf("backfill: %+v, want %+v", res, want)
	}
	f.waitIndexed(t, 3)
	if ids := f.listAll(t, JobQuery{Decision: "REJECTED", Region: "emea-1"}); len(ids) != 2 {
		t.Errorf("REJECTED in emea-1 after the backfill: %v", ids)
	}
	if found, err := f.idx.Search(ctx, "user-job-old-2"); err != nil || len(found) != 1 || found[0].JobID != "job-old-2" {
		t.Errorf("search by user reference after the backfill: %v, %v", recordIDs(found), err)
	}
	again, err := f.idx.Backfill(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (BackfillResult{Records: 4, Present: 3, Skipped: 1}); again != want {
		t.Errorf("second backfill: %+v, want %+v", again, want)
	}
}
