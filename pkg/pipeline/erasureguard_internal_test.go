package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// A call waiting for its rate-limiter slot is checked for its job's
// erasure checkLead before the slot, while it waits (the read must not
// move the call off its slot), and an erasure found stops it.
func TestWaitCheckedChecksBeforeTheSlot(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	kv, err := js.KeyValue(ctx, topo.Subjects.BucketLimits())
	if err != nil {
		t.Fatal(err)
	}
	l := NewSharedLimiter(kv, jumio.RegionAMER, RateLimits{Account: Rate{PerSecond: 1, Burst: 1}, MaxWait: time.Minute}, nil, nil)
	var slept []time.Duration
	l.sleep = func(_ context.Context, d time.Duration) bool { slept = append(slept, d); return true }
	checks := 0
	check := func(context.Context) error { checks++; return ErrErasing }
	if err := l.Wait(ctx, jumio.ClassAccount); err != nil { // the burst
		t.Fatal(err)
	}
	err = l.waitChecked(ctx, jumio.ClassAccount, check)
	if !errors.Is(err, ErrErasing) || checks != 1 {
		t.Fatalf("waitChecked: %v after %d checks, want ErrErasing after 1", err, checks)
	}
	if len(slept) != 2 || slept[1] != checkLead || slept[0] < 500*time.Millisecond {
		t.Errorf("slept %v: want the wait up to checkLead before the slot, then checkLead", slept)
	}
}
