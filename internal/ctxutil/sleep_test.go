package ctxutil_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
)

// guard bounds every wait in these tests, so a Sleep that ignores its
// context fails the test instead of hanging it for an hour.
const guard = 10 * time.Second

func TestSleep(t *testing.T) {
	t.Parallel()
	cancelled := func(t *testing.T) context.Context {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		return ctx
	}
	live := func(t *testing.T) context.Context { return t.Context() }
	timeout := func(d time.Duration) func(*testing.T) context.Context {
		return func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), d)
			t.Cleanup(cancel)
			return ctx
		}
	}
	tests := []struct {
		name string
		ctx  func(*testing.T) context.Context
		d    time.Duration
		want bool
	}{
		{name: "short wait with a live context elapses", ctx: live, d: 2 * time.Millisecond, want: true},
		{name: "zero duration returns at once", ctx: live, d: 0, want: true},
		{name: "negative duration returns at once", ctx: live, d: -time.Second, want: true},
		{name: "context cancelled before the call", ctx: cancelled, d: time.Hour, want: false},
		{name: "context cancelled before the call wins over a zero duration", ctx: cancelled, d: 0, want: false},
		{name: "deadline before d ends the wait", ctx: timeout(5 * time.Millisecond), d: time.Hour, want: false},
		{name: "deadline after d lets d elapse", ctx: timeout(time.Hour), d: 2 * time.Millisecond, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := tt.ctx(t)
			start := time.Now()
			done := make(chan bool, 1)
			go func() { done <- ctxutil.Sleep(ctx, tt.d) }()
			select {
			case got := <-done:
				if got != tt.want {
					t.Fatalf("Sleep(ctx, %s) = %v, want %v", tt.d, got, tt.want)
				}
				// Sleep must never report an elapsed wait that was cut short.
				if got && time.Since(start) < tt.d {
					t.Fatalf("Sleep(ctx, %s) reported true after only %s", tt.d, time.Since(start))
				}
			case <-time.After(guard):
				t.Fatalf("Sleep(ctx, %s) did not return within %s", tt.d, guard)
			}
		})
	}
}

func TestSleepCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan bool, 1)
	go func() { done <- ctxutil.Sleep(ctx, time.Hour) }()
	cancel()
	select {
	case got := <-done:
		if got {
			t.Fatal("Sleep reported that an hour elapsed after its context was cancelled")
		}
	case <-time.After(guard):
		t.Fatalf("Sleep did not return within %s of its context being cancelled", guard)
	}
}

// TestSleepBubble runs Sleep on synctest's fake clock, where the goroutine
// is known to be blocked inside Sleep before the context is cancelled, and
// durations are exact.
func TestSleepBubble(t *testing.T) {
	t.Parallel()
	t.Run("returns after exactly d", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			if !ctxutil.Sleep(context.Background(), 90*time.Minute) {
				t.Fatal("Sleep with a live context reported false")
			}
			if got := time.Since(start); got != 90*time.Minute {
				t.Fatalf("Sleep returned after %s, want 1h30m0s", got)
			}
		})
	})
	t.Run("cancel while blocked ends the wait at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			start := time.Now()
			done := make(chan bool, 1)
			go func() { done <- ctxutil.Sleep(ctx, time.Hour) }()
			synctest.Wait() // the goroutine is now durably blocked in Sleep
			select {
			case got := <-done:
				t.Fatalf("Sleep returned %v before its context ended", got)
			default:
			}
			cancel()
			synctest.Wait()
			select {
			case got := <-done:
				if got {
					t.Fatal("Sleep reported true after its context was cancelled")
				}
			default:
				t.Fatal("Sleep still blocked after its context was cancelled")
			}
			if got := time.Since(start); got != 0 {
				t.Fatalf("cancelled Sleep took %s of fake time, want 0", got)
			}
		})
	})
	t.Run("deadline ends the wait at the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			if ctxutil.Sleep(ctx, time.Hour) {
				t.Fatal("Sleep reported true although the deadline came first")
			}
			if got := time.Since(start); got != time.Minute {
				t.Fatalf("Sleep returned after %s, want the 1m0s deadline", got)
			}
		})
	})
}
