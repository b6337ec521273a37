package soak

import (
	"context"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/nats-io/nats.go"
)

// drainResult is what the streams say at the end.
type drainResult struct {
	decisionsByJob  map[string]int
	decisionsByExec map[string]int
	decisionsByType map[string]int
	deadByJob       map[string]int
}

// erasing counts the accepted erasures whose job record is not the
// tombstone yet.
func (h *harness) erasing(ctx context.Context) int {
	if len(h.erased) == 0 {
		return 0
	}
	kv, err := h.js.KeyValue(ctx, h.subj.BucketJobs())
	if err != nil {
		return len(h.erased)
	}
	store := pipeline.NewJobStore(kv, time.Now)
	n := 0
	for job := range h.erased {
		if rec, _, err := store.Get(ctx, job); err != nil || rec.Status != pipeline.StatusErased {
			n++
		}
	}
	if n == 0 {
		// Every tombstone written: the tasks stay queued for the erasure's
		// late pass (two minutes later), which removes webhook data that
		// deliveries in flight wrote after the erasure.
		st, err := h.js.Stream(ctx, h.subj.StreamErasures())
		if err != nil {
			return 1
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 1
		}
		n = int(info.State.Msgs)
	}
	return n
}

// drain waits until every accepted job has a decision or a dead letter,
// every accepted erasure is done, and the notifiers have nothing left to
// deliver.
func (h *harness) drain(ctx context.Context) (*drainResult, error) {
	if err := h.waitJetStream(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(h.o.DrainTimeout)
	var res *drainResult
	for {
		var err error
		res, err = h.collect(ctx)
		if err == nil {
			pending := 0
			for job := range h.accepted {
				if _, erased := h.erased[job]; !erased && res.decisionsByJob[job] == 0 && res.deadByJob[job] == 0 {
					pending++
				}
			}
			erasing := h.erasing(ctx)
			quiet, hooks := true, ""
			if h.hooks != nil {
				var qerr error
				if quiet, hooks, qerr = webhooksQuiet(ctx, h.js, h.subj); qerr != nil {
					quiet, hooks = false, qerr.Error()
				}
			}
			if pending == 0 && erasing == 0 && quiet {
				return res, nil
			}
			h.logf("draining: %d jobs still in flight, %d erasures not done%s", pending, erasing, map[bool]string{true: "", false: "; webhooks: " + hooks}[quiet])
		} else {
			h.logf("draining: cannot read the streams yet: %v", err)
		}
		if time.Now().After(deadline) {
			if res == nil {
				return nil, err
			}
			return res, nil
		}
		if !ctxutil.Sleep(ctx, 3*time.Second) {
			return nil, ctx.Err()
		}
	}
}

func (h *harness) collect(ctx context.Context) (*drainResult, error) {
	res := &drainResult{decisionsByJob: map[string]int{}, decisionsByExec: map[string]int{}, decisionsByType: map[string]int{}, deadByJob: map[string]int{}}
	err := h.readStream(ctx, h.subj.StreamDecisions(), func(_ string, _ uint64, _ nats.Header, data []byte) {
		d, err := messages.DecodeDecision(data)
		if err != nil {
			return
		}
		res.decisionsByJob[d.JobID]++
		res.decisionsByExec[d.WorkflowExecutionID]++
		res.decisionsByType[d.Decision.Type]++
	})
	if err != nil {
		return nil, err
	}
	err = h.readStream(ctx, h.subj.StreamDLQ(), func(_ string, _ uint64, hdr nats.Header, _ []byte) {
		if j := hdr.Get(messages.HeaderJobID); j != "" {
			res.deadByJob[j]++
		}
	})
	return res, err
}

// readStream hands every message of stream to fn, resuming after
// transient errors (readAll).
func (h *harness) readStream(ctx context.Context, stream string, fn func(subject string, seq uint64, hdr nats.Header, data []byte)) error {
	return readAll(ctx, h.js, stream, func(subject string, seq uint64, hdr map[string][]string, data []byte) {
		fn(subject, seq, nats.Header(hdr), data)
	})
}
