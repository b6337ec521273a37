package pipeline

import (
	"testing"
	"time"
)

// After Jumio's 10-step schedule, an execution is polled every tail until
// its deadline (jumio-api.md §10.8), not at the schedule's last interval.
func TestPollDelayTail(t *testing.T) {
	t.Parallel()
	s := JumioRetrievalSchedule
	want := []time.Duration{40, 20, 40, 60, 80, 100, 120, 140, 160, 180}
	for n, w := range want {
		if got := PollDelay(s, DefaultPollTailEvery, n+1); got != w*time.Second {
			t.Errorf("poll %d: %v, want %v", n+1, got, w*time.Second)
		}
	}
	for _, n := range []int{11, 12, 100} {
		if got := PollDelay(s, DefaultPollTailEvery, n); got != 20*time.Minute {
			t.Errorf("poll %d after the schedule: %v, want 20m", n, got)
		}
	}
	if got := PollDelay(s, 0, 11); got != 180*time.Second {
		t.Errorf("without a tail the last interval repeats: %v", got)
	}
}
