package kycctl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// kycctl index backfill indexes a record written without the index (as
// 9aa777e wrote them), after which kycctl jobs lists it; a second run adds
// nothing.
func TestIndexBackfill(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	ctx := context.Background()
	kv, err := s.JS.KeyValue(ctx, s.Topology.Subjects.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rec := &pipeline.JobRecord{JobID: "kycctl-old-1", Status: pipeline.StatusFailed, Region: "amer-1", Channel: messages.ChannelAPI,
		CustomerInternalReference: "ctl-old-1", CreatedAt: now, UpdatedAt: now}
	if _, _, err := pipeline.NewJobStore(kv, nil).Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if r := ctl(t, s.NATSURL, "jobs", "--state", "FAILED"); r.err != nil || strings.Contains(r.out, "kycctl-old-1") {
		t.Fatalf("before the backfill: %s", r)
	}
	r := ctl(t, s.NATSURL, "index", "backfill", "--json")
	if r.err != nil {
		t.Fatalf("index backfill: %s", r)
	}
	if got := decodeJSON[pipeline.BackfillResult](t, r); got.Indexed != 1 || got.References != 1 {
		t.Errorf("index backfill: %+v, want 1 indexed with 1 reference", got)
	}
	r = eventually(t, "the backfilled job listed", func() result { return ctl(t, s.NATSURL, "jobs", "--state", "FAILED") },
		func(r result) bool { return r.err == nil && strings.Contains(r.out, "kycctl-old-1") })
	contains(t, r, "kycctl-old-1", "FAILED")
	r = ctl(t, s.NATSURL, "index", "backfill")
	contains(t, r, "0 indexed now", "1 indexed already")
}
