package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The retention sweep (DESIGN 3.7, KYCPIPE_RETENTION) queues the erasure of
// every job that ended longer ago than the retention period. Every worker
// runs it, but only the holder of a lease in the job-state bucket sweeps,
// so replicas do not repeat each other; and an erasure task is deduplicated
// on the job ID and idempotent, so a job is erased exactly once even if two
// sweeps overlap. Each sweep queues at most RetentionBatch erasures; the
// erasers' Jumio deletions go through the shared rate limiter.

// retentionLeaseKey is the lease of the retention sweep.
const retentionLeaseKey = "lease.retention"

type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

func (w *Worker) retentionSweep(ctx context.Context) {
	holder := messages.NewJobID(w.now()) // any unique name of this process
	for {
		if !ctxutil.Sleep(ctx, w.cfg.RetentionEvery) {
			return
		}
		if ok, err := w.acquireLease(ctx, holder, 2*w.cfg.RetentionEvery); err != nil || !ok {
			if err != nil {
				w.log.Warn("retention sweep: cannot take the lease", zap.Error(err))
			}
			continue
		}
		n, err := w.sweepRetention(ctx)
		if err != nil {
			w.log.Warn("retention sweep failed; it runs again", zap.Error(err))
		}
		if n > 0 {
			w.log.Info("retention sweep queued erasures", zap.Int("jobs", n), zap.Duration("retention", w.cfg.Retention))
		}
	}
}

// acquireLease takes (or renews) the lease for d, with compare-and-swap.
func (w *Worker) acquireLease(ctx context.Context, holder string, d time.Duration) (bool, error) {
	now := w.now().UTC()
	b, _ := json.Marshal(lease{Holder: holder, Until: now.Add(d)})
	e, err := w.store.kv.Get(ctx, retentionLeaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		_, err = w.store.kv.Create(ctx, retentionLeaseKey, b)
		return err == nil, ignoreKeyExists(err)
	}
	if err != nil {
		return false, err
	}
	var cur lease
	_ = json.Unmarshal(e.Value(), &cur)
	if cur.Holder != holder && now.Before(cur.Until) {
		return false, nil
	}
	_, err = w.store.kv.Update(ctx, retentionLeaseKey, b, e.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return false, nil
	}
	return err == nil, err
}

func ignoreKeyExists(err error) error {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil
	}
	return err
}

// sweepRetention queues the erasure of up to RetentionBatch jobs that ended
// before now - Retention, and returns how many it queued.
func (w *Worker) sweepRetention(ctx context.Context) (int, error) {
	idx := &JobIndex{js: w.js, subj: w.subj, store: w.store}
	cutoff := w.now().Add(-w.cfg.Retention)
	jobs, err := idx.Ended(ctx, cutoff, w.cfg.RetentionBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, rec := range jobs {
		if _, err := RequestErasure(ctx, w.js, w.store, w.subj, ErasureRequest{JobID: rec.JobID, Source: messages.ErasureRetention, Actor: "retention"}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
