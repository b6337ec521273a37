package soak

import (
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// evaluate turns an end state into the invariants: a lost job, a job both
// decided and dead-lettered, a second decision, an unflagged second
// account each fail theirs.
func TestEvaluate(t *testing.T) {
	accepted := map[string]string{"j1": "r1", "j2": "r2", "j3": "r3"}
	refs := map[string]string{"r1": "j1", "r2": "j2", "r3": "j3"}
	base := func() (*drainResult, jumiotest.Stats) {
		return &drainResult{
				decisionsByJob: map[string]int{"j1": 1, "j2": 1, "j3": 1}, decisionsByExec: map[string]int{"e1": 1, "e2": 1, "e3": 1},
				decisionsByType: map[string]int{"PASSED": 3}, deadByJob: map[string]int{},
			}, jumiotest.Stats{ExecutionsByReference: map[string]int{"r1": 1, "r2": 1, "r3": 1},
				FinalizesByExecution: map[string]int{"e1": 1, "e2": 1, "e3": 1}}
	}
	for _, tc := range []struct {
		name      string
		mutate    func(*drainResult, *jumiotest.Stats, map[string]bool)
		failing   []int // indexes of the invariants that must fail
		okFlagged bool  // OKExceptFlaggedDuplicates
	}{
		{"clean", func(*drainResult, *jumiotest.Stats, map[string]bool) {}, nil, true},
		{"lost", func(d *drainResult, _ *jumiotest.Stats, _ map[string]bool) { delete(d.decisionsByJob, "j2") }, []int{0}, false},
		{"both", func(d *drainResult, _ *jumiotest.Stats, _ map[string]bool) { d.deadByJob["j1"] = 1 }, []int{6}, false},
		{"second decision", func(d *drainResult, _ *jumiotest.Stats, _ map[string]bool) { d.decisionsByExec["e1"] = 2 }, []int{3}, false},
		{"flagged second account", func(_ *drainResult, s *jumiotest.Stats, amb map[string]bool) {
			s.ExecutionsByReference["r3"] = 2
			amb["j3"] = true
		}, []int{1}, true},
		{"silent second account", func(_ *drainResult, s *jumiotest.Stats, _ map[string]bool) { s.ExecutionsByReference["r3"] = 2 }, []int{1, 2}, false},
		{"second finalize", func(_ *drainResult, s *jumiotest.Stats, _ map[string]bool) { s.FinalizesByExecution["e2"] = 2 }, []int{4}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, st := base()
			amb := map[string]bool{}
			tc.mutate(d, &st, amb)
			r := &Report{}
			evaluate(r, accepted, refs, d, amb, st)
			want := map[int]bool{}
			for _, i := range tc.failing {
				want[i] = true
			}
			for i, inv := range r.Invariants {
				if inv.OK == want[i] {
					t.Errorf("invariant %q: OK = %v (%s)", inv.Name, inv.OK, inv.Value)
				}
			}
			if r.OKExceptFlaggedDuplicates() != tc.okFlagged {
				t.Errorf("OKExceptFlaggedDuplicates = %v", !tc.okFlagged)
			}
		})
	}
}
