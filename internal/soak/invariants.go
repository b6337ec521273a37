package soak

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// drainResult is what the streams say at the end.
type drainResult struct {
	decisionsByJob  map[string]int
	decisionsByExec map[string]int
	decisionsByType map[string]int
	deadByJob       map[string]int
}

// drain waits until every accepted job has a decision or a dead letter.
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
				if res.decisionsByJob[job] == 0 && res.deadByJob[job] == 0 {
					pending++
				}
			}
			if pending == 0 {
				return res, nil
			}
			h.logf("draining: %d jobs still in flight", pending)
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
	err := h.readStream(ctx, h.subj.StreamDecisions(), func(m jetstream.Msg) {
		d, err := messages.DecodeDecision(m.Data())
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
	err = h.readStream(ctx, h.subj.StreamDLQ(), func(m jetstream.Msg) {
		if j := m.Headers().Get(messages.HeaderJobID); j != "" {
			res.deadByJob[j]++
		}
	})
	return res, err
}

func (h *harness) readStream(ctx context.Context, stream string, fn func(jetstream.Msg)) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := h.js.Stream(cctx, stream)
	if err != nil {
		return err
	}
	info, err := st.Info(cctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := h.js.OrderedConsumer(cctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	seen := uint64(0)
	for seen < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			seen++
			fn(m)
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				return nil
			}
		}
		if n == 0 {
			return batch.Error()
		}
	}
	return nil
}

// check computes the invariants.
func (h *harness) check(ctx context.Context, res *drainResult) (*Report, error) {
	r := &h.report
	r.Accepted, r.NotAccepted = len(h.accepted), h.notAcc
	r.Kills, r.NATSRestarts = int(h.kills.Load()), int(h.natsRe.Load())
	r.FaultsInjected, r.LatencySpikes = int(h.faults.Load()), int(h.spikes.Load())
	r.DecisionsByType = res.decisionsByType
	for job := range h.accepted {
		d, dl := res.decisionsByJob[job] > 0, res.deadByJob[job] > 0
		switch {
		case d && dl:
			r.DecidedAndDeadLettered++
			r.Decided++
		case d:
			r.Decided++
		case dl:
			r.DeadLettered++
		default:
			r.Lost++
		}
	}
	for _, n := range res.decisionsByExec {
		r.MaxDecisionsPerExecution = max(r.MaxDecisionsPerExecution, n)
		if n > 1 {
			r.ExecutionsWithMultipleDecisions++
		}
	}
	ambiguous := map[string]bool{} // jobs the worker flagged: a possible second account
	if kv, err := h.js.KeyValue(ctx, h.subj.BucketJobs()); err == nil {
		_ = pipeline.NewJobStore(kv, time.Now).List(ctx, func(rec *pipeline.JobRecord) bool {
			r.AmbiguousCreates += rec.AmbiguousCreates
			if rec.AmbiguousCreates > 0 {
				ambiguous[rec.JobID] = true
			}
			return true
		})
	}
	st := h.sim.Stats()
	for ref, job := range h.refs {
		n := st.ExecutionsByReference[ref]
		r.MaxExecutionsPerJob = max(r.MaxExecutionsPerJob, n)
		if n > 1 {
			r.JobsWithMultipleExecutions++
			if !ambiguous[job] {
				r.UndetectedMultipleExecutions++
			}
		}
	}
	for _, n := range st.FinalizesByExecution {
		r.MaxFinalizesPerExecution = max(r.MaxFinalizesPerExecution, n)
	}
	for route, codes := range st.Responses {
		if route == string(jumiotest.RouteCallback) {
			continue
		}
		for code, n := range codes {
			r.JumioCalls += n
			if code == "429" {
				r.Jumio429 += n
				if route == string(jumiotest.RouteCreateAccount) || route == string(jumiotest.RouteUpdateAccount) {
					r.Jumio429Account += n
				}
			}
			if route == string(jumiotest.RouteCreateAccount) || route == string(jumiotest.RouteUpdateAccount) {
				r.AccountCalls += n
			}
		}
	}
	r.CallbacksSent, r.CallbacksDropped = st.CallbacksSent, st.CallbacksDropped
	r.TokenRequests, r.TokensIssued = st.TokenRequests, st.TokensIssued
	share := 0.0
	if r.JumioCalls > 0 {
		share = 100 * float64(r.Jumio429) / float64(r.JumioCalls)
	}
	r.Invariants = []Invariant{
		{"jobs accepted = decided + dead-lettered (nothing lost)", fmt.Sprintf("%d = %d + %d (lost %d)", r.Accepted, r.Decided, r.DeadLettered, r.Lost), "lost = 0", r.Lost == 0 && r.Accepted > 0},
		{"Jumio accounts/executions per job", fmt.Sprintf("max %d, %d jobs with more than one", r.MaxExecutionsPerJob, r.JobsWithMultipleExecutions), "= 1", r.JobsWithMultipleExecutions == 0},
		{"jobs with more than one account flagged by the worker (none silent)", fmt.Sprintf("%d of %d flagged ambiguous", r.JobsWithMultipleExecutions-r.UndetectedMultipleExecutions, r.JobsWithMultipleExecutions), "all", r.UndetectedMultipleExecutions == 0},
		{"decision events per execution", fmt.Sprintf("max %d, %d executions with more than one", r.MaxDecisionsPerExecution, r.ExecutionsWithMultipleDecisions), "= 1", r.ExecutionsWithMultipleDecisions == 0},
		{"finalize calls per execution", fmt.Sprintf("max %d", r.MaxFinalizesPerExecution), "≤ 1", r.MaxFinalizesPerExecution <= 1},
		{"429s as a share of Jumio calls", fmt.Sprintf("%.2f%% (%d of %d; injected bursts included)", share, r.Jumio429, r.JumioCalls), "reported", true},
	}
	if r.Decided+r.DeadLettered == 0 {
		r.Invariants[0].OK = false
	}
	return r, nil
}
