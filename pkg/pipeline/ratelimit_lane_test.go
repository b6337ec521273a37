package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// laneLimiter returns a region's shared limiter on a fresh bucket whose
// clock stands still at now and whose waits are recorded, not slept.
func laneLimiter(t *testing.T, limits RateLimits, now time.Time, slept *[]time.Duration) *SharedLimiter {
	t.Helper()
	_, _, js := pipelinetest.RunJetStream(t)
	if err := Provision(t.Context(), js, Topology{}); err != nil {
		t.Fatal(err)
	}
	ls, err := NewLimiters(t.Context(), js, Topology{}, limits, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := ls.For(jumio.RegionAMER)
	l.now = func() time.Time { return now }
	l.sleep = func(_ context.Context, d time.Duration) bool { *slept = append(*slept, d); return true }
	return l
}

// 3,000 executions waiting for their users are polled all at once (the
// clock stands still, so every poll competes for the same slots); then a
// callback's two retrievals (status, details) come. With the callbacks'
// lane they wait for no poll; sharing one queue (CallbackShare < 0) they
// would wait behind every poll reserved within MaxWait (jumio-api.md
// §10.8: "callbacks never queue behind polls").
func TestCallbacksNeverQueueBehindPolls(t *testing.T) {
	t.Parallel()
	limits := RateLimits{Retrieval: Rate{PerSecond: 15, Burst: 10}, MaxWait: 20 * time.Second}
	slot := time.Second / 15 // one retrieval slot of the tenant
	for _, c := range []struct {
		name    string
		share   float64
		maxWait time.Duration // the longest either callback call may wait
	}{
		{"callbacks' lane", DefaultCallbackShare, slot},
		{"one queue", -1, -1}, // measured, then checked to be worse
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var slept []time.Duration
			limits := limits
			limits.CallbackShare = c.share
			l := laneLimiter(t, limits, time.Unix(1_800_000_000, 0), &slept)
			admitted, throttled := 0, 0
			for range 3000 {
				err := l.Wait(t.Context(), jumio.ClassRetrieval)
				switch {
				case err == nil:
					admitted++
				case errors.Is(err, jumio.ErrThrottled):
					throttled++
				default:
					t.Fatal(err)
				}
			}
			if admitted == 0 || throttled == 0 || admitted+throttled != 3000 {
				t.Fatalf("polls: %d admitted, %d sent back to wait", admitted, throttled)
			}
			slept = nil
			ctx := withCallbackPriority(t.Context())
			var cbErr error
			for range 2 { // status, then details
				if err := l.Wait(ctx, jumio.ClassRetrieval); err != nil {
					cbErr = err
				}
			}
			var longest time.Duration
			for _, d := range slept {
				longest = max(longest, d)
			}
			t.Logf("%s: %d polls admitted within MaxWait, %d sent back; the callback's calls waited at most %v (err %v)", c.name, admitted, throttled, longest, cbErr)
			if c.maxWait >= 0 {
				if cbErr != nil || longest > c.maxWait {
					t.Fatalf("a callback waited %v (err %v) behind %d polls; at most one slot (%v) allowed", longest, cbErr, admitted, c.maxWait)
				}
				return
			}
			// One queue: the callback is behind the polls (it would wait
			// many seconds, or be sent back to the queue).
			if cbErr == nil && longest < 10*time.Second {
				t.Fatalf("with one queue the callback waited only %v: the test does not load the limiter", longest)
			}
		})
	}
}
