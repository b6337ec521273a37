package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Idempotency keys (Security II, finding 9). The job ID is the body's jobId,
// else derived from the Idempotency-Key; so a key sent with bodies naming
// different jobIds was ignored, and each got its own 202. Now a key names
// one job: the first submission that uses it records the binding (the key
// idem.<the key's derived ID> in the job-state bucket, whose TTL it shares
// with job records), and a later submission with the key and another job
// is a conflict (409).

// errKeyConflict says an Idempotency-Key is already bound to another job.
var errKeyConflict = errors.New("pipeline: Idempotency-Key already names another job")

func idemClaimKey(idemKey string) string { return "idem." + messages.IdempotentJobID(idemKey) }

// claimIdempotencyKey binds idemKey to the request's job (its jobId, or the
// ID derived from the key) unless it is bound already. It returns
// errKeyConflict when the key names another job, or a JetStream error.
func (in *Ingest) claimIdempotencyKey(ctx context.Context, req *messages.VerificationRequest, idemKey string) error {
	if idemKey == "" {
		return nil
	}
	derived := messages.IdempotentJobID(idemKey)
	jobID := req.JobID
	if jobID == "" {
		jobID = derived
	}
	kv := in.store.kv
	if jobID != derived {
		// A key used before bindings were recorded names its derived job.
		if _, _, err := in.store.Get(ctx, derived); err == nil {
			return errKeyConflict
		} else if !errors.Is(err, ErrJobNotFound) {
			return err
		}
	}
	_, err := kv.Create(ctx, idemClaimKey(idemKey), []byte(jobID))
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := kv.Get(ctx, idemClaimKey(idemKey))
		if gerr != nil {
			return fmt.Errorf("pipeline: read Idempotency-Key binding: %w", gerr)
		}
		if string(e.Value()) != jobID {
			return errKeyConflict
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("pipeline: record Idempotency-Key binding: %w", err)
	}
	return nil
}
