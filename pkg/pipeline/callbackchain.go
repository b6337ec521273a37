package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// A callback-triggered retrieval chain is one callback message retried on
// the poll schedule until Jumio confirms its status (attempt.notYet). At
// most one chain runs per execution at a time (Security II, finding 3):
// forged callbacks that differed only in callbackSentAt each started a full
// chain, and 50 of them drew 153 status calls in 15 s from the tenant's
// shared retrieval budget. Ingest now stores one callback per execution and
// status; and the chain's callback holds a claim in the job-state bucket
// (key cbchain.<executionId>: its stream sequence and until when the claim
// holds). Another callback for the execution meanwhile is acknowledged
// without a Jumio call: the running chain, and the execution's own poll
// task, cover it.

// chainClaim is the value of a cbchain.<executionId> key.
type chainClaim struct {
	Seq   uint64    `json:"seq"`   // the callback's sequence in the callbacks stream
	Until time.Time `json:"until"` // the claim lapses then (zero: released)
}

func chainKey(executionID string) string { return "cbchain." + executionID }

// chainSpan is how long a claim holds without its chain ending: the
// schedule's length, one longest backoff and two ack waits (a chain whose
// retriever died is redelivered after an ack wait and keeps its claim).
func (r *Retriever) chainSpan() time.Duration {
	return r.cfg.Schedule[len(r.cfg.Schedule)-1] + r.cfg.Backoff.Max + 2*r.topo.RetrieverAckWait
}

// inChain runs a callback's retrieval if the callback holds, or can take,
// its execution's chain claim; else it acknowledges the callback. A chain
// that ends (acknowledged or terminated) without a decision releases the
// claim; after a decision (decided reports one) it is left to lapse: every
// later callback for the execution finds the job decided before it asks
// for the claim.
func (r *Retriever) inChain(ctx context.Context, m jetstream.Msg, executionID string, log *zap.Logger, retrieve func(context.Context) outcome, decided func() bool) outcome {
	md, err := m.Metadata()
	if err != nil {
		return retrieve(ctx) // not a JetStream message: nothing to claim with
	}
	seq := md.Sequence.Stream
	own, err := r.claimChain(ctx, executionID, seq)
	if err != nil {
		log.Warn("cannot claim the callback's retrieval chain; will retry", zap.Error(err))
		return retry(r.backoff.Delay(deliveries(m)))
	}
	if !own {
		r.m.callback("coalesced")
		log.Debug("another callback's retrieval of this execution is running; this one is covered by it")
		return ack()
	}
	o := retrieve(ctx)
	if (o.action == actAck || o.action == actTerminate) && !decided() {
		r.releaseChain(context.WithoutCancel(ctx), executionID, seq)
	}
	return o
}

// claimChain reports whether the callback at seq holds the execution's
// chain claim, taking it when there is none or it lapsed.
func (r *Retriever) claimChain(ctx context.Context, executionID string, seq uint64) (bool, error) {
	kv, key := r.store.kv, chainKey(executionID)
	now := r.now()
	val, err := json.Marshal(chainClaim{Seq: seq, Until: now.Add(r.chainSpan()).UTC()})
	if err != nil {
		return false, err
	}
	// Usually the execution's first callback: the claim is created in one
	// request, without reading first.
	if _, err := kv.Create(ctx, key, val); err == nil {
		return true, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("pipeline: create chain claim: %w", err)
	}
	for range 5 {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := kv.Create(ctx, key, val); err == nil {
				return true, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return false, fmt.Errorf("pipeline: create chain claim: %w", err)
			}
			continue
		}
		if err != nil {
			return false, fmt.Errorf("pipeline: read chain claim: %w", err)
		}
		var c chainClaim
		if err := json.Unmarshal(e.Value(), &c); err == nil {
			if c.Seq == seq {
				return true, nil
			}
			if now.Before(c.Until) {
				return false, nil
			}
		}
		if _, err := kv.Update(ctx, key, val, e.Revision()); err == nil {
			return true, nil
		} else if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, fmt.Errorf("pipeline: take chain claim: %w", err)
		}
	}
	return false, errors.New("pipeline: chain claim contended")
}

// releaseChain lets the next callback for the execution start a chain at
// once. Best effort: a claim left behind lapses after chainSpan.
func (r *Retriever) releaseChain(ctx context.Context, executionID string, seq uint64) {
	kv, key := r.store.kv, chainKey(executionID)
	e, err := kv.Get(ctx, key)
	if err != nil {
		return
	}
	var c chainClaim
	if json.Unmarshal(e.Value(), &c) != nil || c.Seq != seq {
		return
	}
	if val, err := json.Marshal(chainClaim{Seq: seq}); err == nil {
		_, _ = kv.Update(ctx, key, val, e.Revision())
	}
}
