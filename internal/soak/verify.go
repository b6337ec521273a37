package soak

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Pipeline is a pipeline whose end state [Verify] checks with the soak's
// invariants: the one [Run] drives, or one run by someone else (the network
// partition harness, internal/chaosnet, runs its processes in network
// namespaces).
type Pipeline struct {
	JS       jetstream.JetStream
	Subjects messages.Subjects
	// Accepted maps the job ID of every submission answered 2xx to its
	// customerInternalReference.
	Accepted map[string]string
	// SimStats reads the Jumio simulator's counters (from another process:
	// GET /_sim/stats).
	SimStats func(context.Context) (jumiotest.Stats, error)
	// Erasures are the erasures requested during the run (see [Eraser]);
	// the jobs whose erasure was answered 2xx are checked as erased, the
	// others as usual.
	Erasures []Erasure
	// CallLog reads the simulator's call log (GET /_sim/call-log); nil
	// skips the check of Jumio calls after an erasure.
	CallLog func(context.Context) (jumiotest.CallLog, error)
	// Webhooks are the endpoints registered and the receiver's journal;
	// nil when the run had no notifier.
	Webhooks *Webhooks
	// DrainTimeout bounds the wait for the last jobs (default 5m).
	DrainTimeout time.Duration
	Progress     io.Writer // progress lines (default: discarded)
}

// InFlightGrace is how long after an erasure's 202 a Jumio call for the
// job may still arrive at the simulator and count as "already on the wire"
// (DESIGN 3.7: "one already on the wire may finish"): the call's check
// passed before the erasure was recorded, and it arrives a little later
// (the network, a loaded machine). A call later than that is a finding.
const InFlightGrace = time.Second

// Verify waits until every accepted job has a decision or a dead letter,
// every accepted erasure is done and the notifiers are idle (or
// DrainTimeout passed), then fills r with what the streams, the job
// records, the simulator and the webhook receiver say, and r.Invariants
// with the soak's invariants. Run-specific fields of r (mode, kills,
// faults) are left to the caller.
func Verify(ctx context.Context, p Pipeline, r *Report) error {
	h := &harness{o: Options{DrainTimeout: p.DrainTimeout, Progress: p.Progress}.withDefaults(), js: p.JS, subj: p.Subjects,
		accepted: p.Accepted, refs: map[string]string{}}
	for job, ref := range p.Accepted {
		h.refs[ref] = job
	}
	return h.verify(ctx, p, r)
}

func (h *harness) verify(ctx context.Context, p Pipeline, r *Report) error {
	erased := map[string]string{} // accepted erasures: job ID → reference
	for _, e := range p.Erasures {
		if !e.Accepted.IsZero() {
			erased[e.JobID] = e.Ref
		}
	}
	h.erased, h.hooks = erased, p.Webhooks
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
	tombstones := map[string]*pipeline.JobRecord{}
	if kv, err := p.JS.KeyValue(ctx, p.Subjects.BucketJobs()); err == nil {
		_ = pipeline.NewJobStore(kv, time.Now).List(ctx, func(rec *pipeline.JobRecord) bool {
			r.AmbiguousCreates += rec.AmbiguousCreates
			if rec.AmbiguousCreates > 0 {
				ambiguous[rec.JobID] = true
			}
			if _, ok := erased[rec.JobID]; ok {
				tombstones[rec.JobID] = rec
			}
			return true
		})
	}
	evaluate(r, h.accepted, h.refs, res, ambiguous, st, erased)
	if len(p.Erasures) > 0 {
		if err := h.checkErasures(ctx, p, r, erased, tombstones); err != nil {
			return err
		}
	}
	if p.Webhooks != nil {
		jobs := map[string]bool{}
		for j := range erased {
			jobs[j] = true
		}
		wr, err := h.checkWebhooks(ctx, p.Webhooks, jobs)
		if err != nil {
			return err
		}
		r.Webhooks = wr
		r.Invariants = append(r.Invariants, webhookInvariants(wr)...)
	}
	return nil
}

// checkErasures computes the erasure invariants: every accepted erasure
// done, no marker of an erased job left (the scan), no Jumio call after the
// 202 (the call log).
func (h *harness) checkErasures(ctx context.Context, p Pipeline, r *Report, erased map[string]string, tombstones map[string]*pipeline.JobRecord) error {
	e := &ErasureReport{Requested: len(p.Erasures), ByMoment: map[string]int{}, StatusBefore: map[string]int{}, Jumio: map[string]int{}}
	for _, er := range p.Erasures {
		if er.Accepted.IsZero() {
			e.NotAccepted = append(e.NotAccepted, fmt.Sprintf("%s (last answer %d after %d attempts)", er.JobID, er.Status, er.Attempts))
			continue
		}
		e.Accepted++
		e.ByMoment[er.Moment]++
		e.StatusBefore[cmpOr(er.StatusBefore, "unknown")]++
		rec := tombstones[er.JobID]
		switch {
		case rec != nil && rec.Status == pipeline.StatusErased && rec.Erasure != nil:
			e.Completed++
			e.Jumio[rec.Erasure.Jumio]++
			if d := rec.Erasure.CompletedAt.Sub(er.Accepted); d > e.SlowestCompletion {
				e.SlowestCompletion = d
			}
		case rec != nil:
			e.Unfinished = append(e.Unfinished, er.JobID+" "+rec.Status)
		default:
			e.Unfinished = append(e.Unfinished, er.JobID+" (no record)")
		}
	}
	var eps []WebhookEndpoint
	if p.Webhooks != nil {
		eps = p.Webhooks.Endpoints
	}
	h.logf("scanning every stream for markers of the %d erased jobs", len(erased))
	scan, err := scanMarkers(ctx, h.js, newScanTarget(h.subj, erased, eps))
	if err != nil {
		return err
	}
	e.Scan = scan
	if p.CallLog != nil {
		log, err := p.CallLog(ctx)
		if err != nil {
			return fmt.Errorf("soak: simulator call log: %w", err)
		}
		if !log.Enabled {
			return fmt.Errorf("soak: the simulator's call log is off")
		}
		e.Calls = callsAfterErasure(p.Erasures, log)
	}
	r.Erasure = e
	r.Invariants = append(r.Invariants, erasureInvariants(e)...)
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ErasureReport is what became of the erasures.
type ErasureReport struct {
	Requested, Accepted, Completed int
	NotAccepted, Unfinished        []string
	// ByMoment counts the accepted erasures by planned moment; StatusBefore
	// by the job's status read just before the DELETE.
	ByMoment, StatusBefore map[string]int
	// Jumio counts the tombstones' Jumio outcomes (DELETED, NOT_FOUND,
	// NOT_CREATED).
	Jumio             map[string]int
	SlowestCompletion time.Duration // from the 202 to the tombstone's completedAt
	Scan              *ScanReport
	Calls             *CallsReport
}

// CallsReport is the Jumio calls for erased jobs that arrived after the
// erasure's 202, deletions apart.
type CallsReport struct {
	Checked   int // erased jobs checked
	Deletions int // DELETE calls for them (any time)
	// InFlight are calls within InFlightGrace of the 202; Late the others
	// (findings). Each "job route +delay status".
	InFlight, Late []string
}

// callsAfterErasure reads the call log for the accepted erasures.
func callsAfterErasure(erasures []Erasure, log jumiotest.CallLog) *CallsReport {
	c := &CallsReport{}
	for _, er := range erasures {
		if er.Accepted.IsZero() {
			continue
		}
		c.Checked++
		for _, call := range log.ByReference[er.Ref] {
			if call.Route == jumiotest.RouteDeleteAccount || call.Route == jumiotest.RouteDeleteExecution {
				c.Deletions++
				continue
			}
			d := call.At.Sub(er.Accepted)
			if d <= 0 {
				continue
			}
			line := fmt.Sprintf("%s %s +%s %d", er.JobID, call.Route, d.Round(time.Millisecond), call.Status)
			if d <= InFlightGrace {
				c.InFlight = append(c.InFlight, line)
			} else {
				c.Late = append(c.Late, line)
			}
		}
	}
	sort.Strings(c.InFlight)
	sort.Strings(c.Late)
	return c
}

func erasureInvariants(e *ErasureReport) []Invariant {
	invs := []Invariant{
		{"erasures requested (DELETE) answered 2xx", fmt.Sprintf("%d of %d%s", e.Accepted, e.Requested, listTail(e.NotAccepted)), "all", e.Accepted == e.Requested && e.Requested > 0},
		{"accepted erasures done (tombstone ERASED)", fmt.Sprintf("%d of %d%s", e.Completed, e.Accepted, listTail(e.Unfinished)), "all", e.Completed == e.Accepted},
	}
	if s := e.Scan; s != nil {
		var allowed []string
		for place, n := range s.Allowed {
			allowed = append(allowed, fmt.Sprintf("%s %d", place, n))
		}
		sort.Strings(allowed)
		byPlace := map[string]int{}
		for _, f := range s.Findings {
			byPlace[FindingPlace(f)]++
		}
		var findings []string
		for place, n := range byPlace {
			findings = append(findings, fmt.Sprintf("%s: %d", place, n))
		}
		sort.Strings(findings)
		invs = append(invs, Invariant{"no marker of an erased job anywhere (every message of every stream, bucket and object store)",
			fmt.Sprintf("%d findings in %d messages of %d streams%s; job IDs where the design keeps them: %s", len(s.Findings), s.Messages, s.Streams,
				listTail(findings), cmpOr(strings.Join(allowed, ", "), "none")),
			"0 findings", len(s.Findings) == 0})
	}
	if c := e.Calls; c != nil {
		byRoute := map[string]int{}
		for _, l := range c.Late {
			if f := strings.Fields(l); len(f) > 1 {
				byRoute[f[1]]++
			}
		}
		var routes []string
		for r, n := range byRoute {
			routes = append(routes, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(routes)
		invs = append(invs, Invariant{"no Jumio call for a job after its erasure's 202 (DELETE apart)",
			fmt.Sprintf("%d erased jobs: %d later calls (%s)%s; %d within %s of the 202 (on the wire)%s; %d DELETEs", c.Checked, len(c.Late),
				cmpOr(strings.Join(routes, ", "), "none"), listTail(c.Late), len(c.InFlight), InFlightGrace, listTail(c.InFlight), c.Deletions),
			"0 later calls", len(c.Late) == 0})
	}
	return invs
}

func webhookInvariants(w *WebhookReport) []Invariant {
	return []Invariant{
		{"every event of a non-erased job (and every erased event) delivered to every subscribed endpoint",
			fmt.Sprintf("%d of %d (endpoints %d; missing %d%s)", w.Delivered, w.Expected, w.Endpoints, len(w.Missing), listTail(w.Missing)),
			"all", w.Expected > 0 && w.Delivered == w.Expected},
		{"one webhook-id per (event, endpoint) among successful deliveries",
			fmt.Sprintf("%d events with more than one; %d deliveries of unknown events%s%s", len(w.EventsWithSeveralIDs), len(w.Unexplained),
				listTail(w.EventsWithSeveralIDs), listTail(w.Unexplained)),
			"0", len(w.EventsWithSeveralIDs) == 0 && len(w.Unexplained) == 0},
		{"webhook deliveries dead-lettered (the retry schedule exhausted)", fmt.Sprintf("%d", w.DeadLetters), "0", w.DeadLetters == 0},
	}
}

// listTail renders up to 5 items of a list, for an invariant's value.
func listTail(items []string) string {
	if len(items) == 0 {
		return ""
	}
	n := min(len(items), 5)
	s := ": " + strings.Join(items[:n], "; ")
	if len(items) > n {
		s += fmt.Sprintf("; … (%d more)", len(items)-n)
	}
	return s
}

// evaluate computes the invariants of a run from its end state: nothing
// lost, one Jumio execution per job, one decision per execution, at most
// one finalize per execution, and none both decided and dead-lettered. The
// jobs in erased (accepted erasures) are not counted as lost: their
// decisions and dead letters are erased too (the erasure invariants check
// them).
func evaluate(r *Report, accepted, refs map[string]string, res *drainResult, ambiguous map[string]bool, st jumiotest.Stats, erased map[string]string) {
	r.Accepted = len(accepted)
	r.DecisionsByType = res.decisionsByType
	for job := range accepted {
		d, dl := res.decisionsByJob[job] > 0, res.deadByJob[job] > 0
		_, gone := erased[job]
		switch {
		case gone:
			r.Erased++
			if d || dl {
				r.ErasedButKept++
			}
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
	lost := fmt.Sprintf("%d = %d + %d (lost %d)", r.Accepted, r.Decided, r.DeadLettered, r.Lost)
	if r.Erased > 0 {
		lost = fmt.Sprintf("%d = %d + %d + %d erased (lost %d)", r.Accepted, r.Decided, r.DeadLettered, r.Erased, r.Lost)
	}
	r.Invariants = []Invariant{
		{"jobs accepted = decided + dead-lettered (nothing lost)", lost, "lost = 0", r.Lost == 0 && r.Accepted > 0 && r.Decided+r.DeadLettered > 0},
		{"Jumio accounts/executions per job", fmt.Sprintf("max %d, %d jobs with more than one", r.MaxExecutionsPerJob, r.JobsWithMultipleExecutions), "= 1", r.JobsWithMultipleExecutions == 0},
		{"jobs with more than one account flagged by the worker (none silent)", fmt.Sprintf("%d of %d flagged ambiguous", r.JobsWithMultipleExecutions-r.UndetectedMultipleExecutions, r.JobsWithMultipleExecutions), "all", r.UndetectedMultipleExecutions == 0},
		{"decision events per execution", fmt.Sprintf("max %d, %d executions with more than one", r.MaxDecisionsPerExecution, r.ExecutionsWithMultipleDecisions), "= 1", r.ExecutionsWithMultipleDecisions == 0},
		{"finalize calls per execution", fmt.Sprintf("max %d", r.MaxFinalizesPerExecution), "≤ 1", r.MaxFinalizesPerExecution <= 1},
		{"429s as a share of Jumio calls", fmt.Sprintf("%.2f%% (%d of %d; injected bursts included)", share, r.Jumio429, r.JumioCalls), "reported", true},
		{"jobs both decided and dead-lettered", fmt.Sprintf("%d", r.DecidedAndDeadLettered), "= 0", r.DecidedAndDeadLettered == 0},
	}
}
