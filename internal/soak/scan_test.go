package soak

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestRetryTransientResumes: a read interrupted by "no responders" (seen
// after a node loss, when the marker scan's ordered consumer had no leader
// yet) resumes after the last message read, so each message is handed on
// once; a permanent error ends the read at once; the attempts are bounded.
func TestRetryTransientResumes(t *testing.T) {
	const last = 10
	var handed []uint64
	failAt := map[uint64]bool{4: true, 8: true} // a transient error before these
	tries := 0
	err := retryTransient(context.Background(), 5, 0, func(next *uint64) error {
		tries++
		*next = max(*next, 1)
		for ; *next <= last; *next++ {
			if failAt[*next] {
				delete(failAt, *next)
				return fmt.Errorf("fetch: %w", nats.ErrNoResponders)
			}
			handed = append(handed, *next)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("retryTransient: %v", err)
	}
	if tries != 3 {
		t.Errorf("tries = %d, want 3", tries)
	}
	if len(handed) != last {
		t.Fatalf("handed %v, want 1..%d once each", handed, last)
	}
	for i, seq := range handed {
		if seq != uint64(i+1) {
			t.Fatalf("handed %v, want 1..%d once each", handed, last)
		}
	}

	permanent := errors.New("stream not found")
	tries = 0
	err = retryTransient(context.Background(), 5, 0, func(*uint64) error { tries++; return permanent })
	if !errors.Is(err, permanent) || tries != 1 {
		t.Errorf("permanent error: err %v after %d tries, want it after 1", err, tries)
	}

	tries = 0
	err = retryTransient(context.Background(), 3, 0, func(*uint64) error { tries++; return errScanStalled })
	if !errors.Is(err, errScanStalled) || tries != 3 {
		t.Errorf("always transient: err %v after %d tries, want errScanStalled after 3", err, tries)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = retryTransient(ctx, 3, 1, func(*uint64) error { return nats.ErrTimeout })
	if !errors.Is(err, nats.ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v, want the read's error and the context's", err)
	}
}
