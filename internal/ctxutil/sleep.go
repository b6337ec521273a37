package ctxutil

import (
	"context"
	"time"
)

// Sleep waits for d to elapse or for ctx to end, whichever comes first, and
// reports whether d elapsed.
//
// If ctx is already done when Sleep is called, it returns false at once,
// whatever d is. Otherwise a d of zero or less returns true at once. The
// timer Sleep uses is stopped before it returns, so an early return leaves
// nothing running. Sleep is safe for concurrent use.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
