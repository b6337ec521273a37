package soak

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Pipeline is a pipeline run by someone else than [Run] (the network
// partition harness, internal/chaosnet, runs its processes in network
// namespaces), whose end state [Verify] checks with the soak's invariants.
type Pipeline struct {
	JS       jetstream.JetStream
	Subjects messages.Subjects
	// Accepted maps the job ID of every submission answered 2xx to its
	// customerInternalReference.
	Accepted map[string]string
	// SimStats reads the Jumio simulator's counters (from another process:
	// GET /_sim/stats).
	SimStats func(context.Context) (jumiotest.Stats, error)
	// DrainTimeout bounds the wait for the last jobs (default 5m).
	DrainTimeout time.Duration
	Progress     io.Writer // progress lines (default: discarded)
}

// Verify waits until every accepted job has a decision or a dead letter (or
// DrainTimeout passed), then fills r with what the streams, the job records
// and the simulator say, and r.Invariants with the soak's invariants plus
// one more: no job is both decided and dead-lettered. Run-specific fields of
// r (mode, kills, faults) are left to the caller.
func Verify(ctx context.Context, p Pipeline, r *Report) error {
	h := &harness{o: Options{DrainTimeout: p.DrainTimeout, Progress: p.Progress}.withDefaults(), js: p.JS, subj: p.Subjects,
		accepted: p.Accepted, refs: map[string]string{}}
	for job, ref := range p.Accepted {
		h.refs[ref] = job
	}
	start := time.Now()
	res, err := h.drain(ctx)
	r.DrainDuration = time.Since(start)
	if err != nil {
		return err
	}
	st, err := p.SimStats(ctx)
	if err != nil {
		return fmt.Errorf("soak: simulator stats: %w", err)
	}
	ambiguous := map[string]bool{}
	if kv, err := p.JS.KeyValue(ctx, p.Subjects.BucketJobs()); err == nil {
		_ = pipeline.NewJobStore(kv, time.Now).List(ctx, func(rec *pipeline.JobRecord) bool {
			r.AmbiguousCreates += rec.AmbiguousCreates
			if rec.AmbiguousCreates > 0 {
				ambiguous[rec.JobID] = true
			}
			return true
		})
	}
	evaluate(r, p.Accepted, h.refs, res, ambiguous, st)
	return nil
}

// evaluate computes the invariants of a run from its end state: the same
// computation as (*harness).check, with the simulator's counters given.
func evaluate(r *Report, accepted, refs map[string]string, res *drainResult, ambiguous map[string]bool, st jumiotest.Stats) {
	r.Accepted = len(accepted)
	r.DecisionsByType = res.decisionsByType
	for job := range accepted {
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
	for ref, job := range refs {
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
		{"jobs accepted = decided + dead-lettered (nothing lost)", fmt.Sprintf("%d = %d + %d (lost %d)", r.Accepted, r.Decided, r.DeadLettered, r.Lost), "lost = 0", r.Lost == 0 && r.Accepted > 0 && r.Decided+r.DeadLettered > 0},
		{"Jumio accounts/executions per job", fmt.Sprintf("max %d, %d jobs with more than one", r.MaxExecutionsPerJob, r.JobsWithMultipleExecutions), "= 1", r.JobsWithMultipleExecutions == 0},
		{"jobs with more than one account flagged by the worker (none silent)", fmt.Sprintf("%d of %d flagged ambiguous", r.JobsWithMultipleExecutions-r.UndetectedMultipleExecutions, r.JobsWithMultipleExecutions), "all", r.UndetectedMultipleExecutions == 0},
		{"decision events per execution", fmt.Sprintf("max %d, %d executions with more than one", r.MaxDecisionsPerExecution, r.ExecutionsWithMultipleDecisions), "= 1", r.ExecutionsWithMultipleDecisions == 0},
		{"finalize calls per execution", fmt.Sprintf("max %d", r.MaxFinalizesPerExecution), "≤ 1", r.MaxFinalizesPerExecution <= 1},
		{"429s as a share of Jumio calls", fmt.Sprintf("%.2f%% (%d of %d; injected bursts included)", share, r.Jumio429, r.JumioCalls), "reported", true},
		{"jobs both decided and dead-lettered", fmt.Sprintf("%d", r.DecidedAndDeadLettered), "= 0", r.DecidedAndDeadLettered == 0},
	}
}
