package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// A Jumio call for a job may wait a long time between the stage's last
// look at the job and the moment it goes out: for the worker's account
// slot, for the shared rate limiter (seconds during a partition or under
// load). An erasure accepted meanwhile must still stop it (DESIGN 3.7: no
// call is started after the 202). The stages put an erasureGuard on the
// job's context; every Jumio client the pipeline builds waits through
// guardedLimiter, which, while the call waits for its rate-limiter slot
// (checkLead before it, so that the read does not move the call off its
// slot), reads the job record again when the last look is older than
// guardRecheck, and stops the call with ErrErasing when the job is being
// erased. Calls that did not wait cost nothing.

// guardRecheck is how old the last look at a job may be when one of its
// Jumio calls goes out. It is well under the "already on the wire" grace
// the soak allows a call after an erasure's 202 (one second).
const guardRecheck = 200 * time.Millisecond

// erasureGuard is the last look at one job's erasure.
type erasureGuard struct {
	jobID string
	store *JobStore
	now   func() time.Time

	mu      sync.Mutex
	checked time.Time
}

type erasureGuardKey struct{}

// withErasureGuard returns ctx carrying a guard for jobID whose last look
// is now (the stage has just read the job's record).
func withErasureGuard(ctx context.Context, store *JobStore, jobID string, now func() time.Time) (context.Context, *erasureGuard) {
	g := &erasureGuard{jobID: jobID, store: store, now: now, checked: now()}
	return context.WithValue(ctx, erasureGuardKey{}, g), g
}

// withoutErasureGuard returns ctx for calls an erasure must not stop (a
// DELETE of what a job created).
func withoutErasureGuard(ctx context.Context) context.Context {
	return context.WithValue(ctx, erasureGuardKey{}, (*erasureGuard)(nil))
}

// looked records a look at the job's record made by the stage itself.
func (g *erasureGuard) looked() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.checked = g.now()
	g.mu.Unlock()
}

// check reads the job's record again when the last look is older than
// guardRecheck. It returns ErrErasing for a job being erased, and an
// infraError when the record cannot be read (the call is not made blind).
func (g *erasureGuard) check(ctx context.Context) error {
	g.mu.Lock()
	fresh := g.now().Sub(g.checked) < guardRecheck
	g.mu.Unlock()
	if fresh {
		return nil
	}
	rec, _, err := g.store.Get(ctx, g.jobID)
	if err != nil {
		return &infraError{fmt.Errorf("check for an erasure before a Jumio call: %w", err)}
	}
	if rec.Erasing() {
		return ErrErasing
	}
	g.looked()
	return nil
}

// guardedLimiter is the jumio.Limiter of every client the pipeline builds:
// the configured limiter (if any), then the job's erasure guard (if the
// context carries one).
type guardedLimiter struct {
	inner jumio.Limiter
}

// Wait implements jumio.Limiter.
func (l guardedLimiter) Wait(ctx context.Context, class jumio.EndpointClass) error {
	g, _ := ctx.Value(erasureGuardKey{}).(*erasureGuard)
	if shared, ok := l.inner.(*SharedLimiter); ok && g != nil {
		// Checked while the call waits for its slot, not after: the
		// record read must not move the call off its slot.
		return shared.waitChecked(ctx, class, g.check)
	}
	if l.inner != nil {
		if err := l.inner.Wait(ctx, class); err != nil {
			return err
		}
	}
	if g != nil {
		return g.check(ctx)
	}
	return nil
}
