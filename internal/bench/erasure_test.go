package bench

import (
	"context"
	"testing"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// The erasure step's seeding writes jobs the pipeline can erase: each
// seeded job erased through a real worker ends ERASED with its event and
// decision gone, and the others keep theirs.
func TestErasureStepSmoke(t *testing.T) {
	s, err := localstack.Start(context.Background(), localstack.Options{DataDir: t.TempDir(), Workers: 1, Logger: pipelinetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	ids, err := SeedJobs(ctx, s.JS, s.Topology, 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 300 {
		t.Fatalf("seeded %d", len(ids))
	}
	if err := EraseJobs(ctx, s.JS, s.Topology, ids[:10], pipelinetest.DefaultTimeout); err != nil {
		t.Fatal(err)
	}
	erased := map[string]bool{}
	for _, id := range ids[:10] {
		erased[id] = true
	}
	left := map[string]int{}
	for _, m := range pipelinetest.AllMessages(t, s.JS) {
		if id := m.Header.Get(messages.HeaderJobID); id != "" && m.Subject != s.Topology.Subjects.Event(messages.KindErased) && m.Stream != s.Topology.Subjects.StreamAudit() &&
			m.Stream != s.Topology.Subjects.StreamErasures() { // the task, until its late pass
			left[id]++
		}
	}
	for _, id := range ids {
		if erased[id] && left[id] != 0 || !erased[id] && left[id] != 2 {
			t.Errorf("%s (erased %v): %d messages left", id, erased[id], left[id])
		}
	}
	idx, err := pipeline.NewJobIndex(ctx, s.JS, s.Topology)
	if err != nil {
		t.Fatal(err)
	}
	page, err := idx.List(ctx, pipeline.JobQuery{Status: pipeline.StatusDecided, Limit: 500})
	if err != nil || len(page.Jobs) != 290 {
		t.Fatalf("the index lists %d decided jobs (want 290): %v", len(page.Jobs), err)
	}
}
