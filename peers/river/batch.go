package riverpeer

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// batcher turns concurrent single requests into batches: each flusher takes
// the first waiting item, then whatever else is already waiting (up to max),
// and handles them in one transaction. Nothing waits for a batch to fill, so
// a lone request costs no latency, and under load the batches grow by
// themselves.
type batcher[T, R any] struct {
	in       chan *pending[T, R]
	max      int
	flushers int
	flush    func(ctx context.Context, items []T) ([]R, error)
}

type pending[T, R any] struct {
	item T
	res  R
	err  error
	done chan struct{}
}

func newBatcher[T, R any](max, flushers int, flush func(context.Context, []T) ([]R, error)) *batcher[T, R] {
	return &batcher[T, R]{in: make(chan *pending[T, R], max*flushers), max: max, flushers: flushers, flush: flush}
}

// do queues item and waits for its batch to be flushed.
func (b *batcher[T, R]) do(ctx context.Context, item T) (R, error) {
	p := &pending[T, R]{item: item, done: make(chan struct{})}
	select {
	case b.in <- p:
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		// The batch may still commit; the caller's client retries with the
		// same job ID, which is idempotent.
		var zero R
		return zero, ctx.Err()
	}
}

// run flushes batches until ctx ends.
func (b *batcher[T, R]) run(ctx context.Context) {
	done := make(chan struct{})
	for range b.flushers {
		go func() {
			defer func() { done <- struct{}{} }()
			batch := make([]*pending[T, R], 0, b.max)
			items := make([]T, 0, b.max)
			for {
				batch, items = batch[:0], items[:0]
				select {
				case p := <-b.in:
					batch = append(batch, p)
				case <-ctx.Done():
					return
				}
			fill:
				for len(batch) < b.max {
					select {
					case p := <-b.in:
						batch = append(batch, p)
					default:
						break fill
					}
				}
				for _, p := range batch {
					items = append(items, p.item)
				}
				res, err := b.flushRetrying(ctx, items)
				for i, p := range batch {
					if err != nil {
						p.err = err
					} else {
						p.res = res[i]
					}
					close(p.done)
				}
			}
		}()
	}
	for range b.flushers {
		<-done
	}
}

// flushRetrying repeats a batch that lost a deadlock or serialization race
// (its transaction was rolled back whole).
func (b *batcher[T, R]) flushRetrying(ctx context.Context, items []T) ([]R, error) {
	for attempt := 1; ; attempt++ {
		res, err := b.flush(ctx, items)
		var pgErr *pgconn.PgError
		if err == nil || attempt == 3 || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return res, err
		}
	}
}
