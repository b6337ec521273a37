package upgrade

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/internal/soak"
)

// Report is the outcome of a run.
type Report struct {
	Seed     uint64
	Old, New string
	Nodes    int

	LoadDuration           time.Duration
	Submitted, NotAccepted int
	Refused                map[string]int // 4xx answers to valid submissions, by status and release
	AcceptedBy             map[string]int // jobs by the release of the ingest that accepted them
	ByPhase, ByKind        map[string]int

	Kills                              map[string]int // SIGKILLs (restarted with the same release), by release
	ReplacedByKill, ReplacedGracefully int
	MixedFleet                         string

	// The new release's first process, started before its topology was
	// provisioned: how long it was watched, whether it became ready or
	// exited before provisioning (it must do neither), and how long after
	// provisioning it was ready.
	EarlyStartWaited, EarlyStartReadyAfter time.Duration
	EarlyStartReadyBeforeProvision         bool
	EarlyStartWaitedForTopology            bool
	ProvisionTook                          time.Duration

	Soak        soak.Report
	DeadLetters map[string]int // by stage/reason, before the replay
	// UnexplainedDeadLetters are the dead letters that are not the old
	// release's known defect (deadLetter.knownOldDefect), by stage/reason.
	UnexplainedDeadLetters map[string]int
	// Replayed counts the known defect's dead letters replayed with the new
	// kycctl after the roll; ReplayedDecided the jobs decided afterwards.
	Replayed, ReplayedDecided int
	// ReplayFailures are up to 5 dead letters of replayed jobs read after
	// the replay: why a replayed job was not decided.
	ReplayFailures     []string
	DeadLetterExamples map[string][]string // by stage/reason: job, original subject, error
	// UnexplainedExamples are up to 5 of the unexplained dead letters, as
	// DeadLetterExamples shows them.
	UnexplainedExamples []string
	Decode              map[string]*DecodeResult
	Records             *RecordStats
	Erasure             *ErasureStats

	BalancerRelayed, BalancerFailed int64
	Invariants                      []soak.Invariant
}

// OK reports whether every invariant holds, the soak's included; like the
// soak, a second Jumio account is accepted when the worker flagged it.
func (r *Report) OK() bool {
	return r.Soak.OKExceptFlaggedDuplicates() && allOK(r.Invariants)
}

// Failures lists the invariants that fail, the soak's included (as OK
// counts them).
func (r *Report) Failures() []soak.Invariant { return r.Soak.FailuresAnd(r.Invariants) }

func allOK(invs []soak.Invariant) bool {
	for _, inv := range invs {
		if !inv.OK {
			return false
		}
	}
	return len(invs) > 0
}

// finish waits for the last jobs and checks everything.
func (h *harness) finish(ctx context.Context) error {
	r := &h.report
	acc := h.load.snapshot()
	h.load.mu.Lock()
	r.Submitted, r.NotAccepted = h.load.submitted, h.load.notAcc
	r.Refused = h.load.refused
	h.load.mu.Unlock()
	r.AcceptedBy, r.ByPhase, r.ByKind = map[string]int{}, map[string]int{}, map[string]int{}
	for _, j := range acc {
		r.AcceptedBy[j.ingest]++
		r.ByPhase[j.phase]++
		r.ByKind[j.kind]++
	}
	h.killMu.Lock()
	r.Kills = h.kills
	h.killMu.Unlock()
	r.BalancerRelayed, r.BalancerFailed = h.lb.relayed.Load(), h.lb.failed.Load()
	h.logf("load over: %d submitted, %d accepted (%v), %d never accepted; draining", r.Submitted, len(acc), r.AcceptedBy, r.NotAccepted)
	if err := h.verify(ctx); err != nil {
		return err
	}
	oc, err := h.readOutcomes(ctx)
	if err != nil {
		return err
	}
	r.DeadLetters, r.DeadLetterExamples = oc.dlq, oc.examples
	r.UnexplainedDeadLetters = map[string]int{}
	var replay []string
	replayJobs := map[string]bool{}
	for _, d := range oc.letters {
		if d.knownOldDefect() {
			replay = append(replay, strconv.FormatUint(d.seq, 10))
			replayJobs[d.job] = true
			continue
		}
		r.UnexplainedDeadLetters[d.stage+"/"+d.reason]++
		if len(r.UnexplainedExamples) < 5 {
			r.UnexplainedExamples = append(r.UnexplainedExamples, fmt.Sprintf("job %s (%s/%s): %s", d.job, d.stage, d.reason, d.error))
		}
	}
	if len(replay) > 0 {
		// As an operator would after the upgrade: the new release's
		// kycctl replays what the old release's defect failed.
		h.logf("replaying %d dead letters of the old release's known defect with the new kycctl", len(replay))
		r.Replayed = len(replayJobs)
		if _, err := h.kycctl(ctx, h.o.New, append([]string{"dlq", "replay"}, replay...)...); err != nil {
			return err
		}
		if err := h.verify(ctx); err != nil {
			return err
		}
		if oc, err = h.readOutcomes(ctx); err != nil {
			return err
		}
		for job := range replayJobs {
			if oc.decided[job] && len(oc.dead[job]) == 0 {
				r.ReplayedDecided++
			}
		}
		// A replayed job that is not decided: what its dead letters say
		// now (a new letter's error, or the replayed one still there).
		for _, d := range oc.letters {
			if replayJobs[d.job] && len(r.ReplayFailures) < 5 {
				r.ReplayFailures = append(r.ReplayFailures, fmt.Sprintf("job %s: dead letter %d (%s/%s): %s", d.job, d.seq, d.stage, d.reason, tail(d.error, 200)))
			}
		}
	}
	r.Soak.Submitted, r.Soak.NotAccepted, r.Soak.LoadDuration = r.Submitted, r.NotAccepted, r.LoadDuration
	for _, n := range r.Kills {
		r.Soak.Kills += n
	}
	if r.Records, err = h.checkRecords(ctx, acc, oc); err != nil {
		return err
	}
	h.logf("erasing up to %d decided jobs of each phase", h.o.Erasures)
	if r.Erasure, err = h.eraseSample(ctx, acc, oc, h.o.Erasures); err != nil {
		return err
	}
	if r.Decode, err = h.decodeAll(ctx); err != nil {
		return err
	}
	r.Invariants = r.invariants()
	return nil
}

func (r *Report) invariants() []soak.Invariant {
	read, failed := 0, 0
	var examples []string
	for _, name := range sortedKeys(r.Decode) {
		d := r.Decode[name]
		read += d.Read
		failed += d.Failed
		examples = append(examples, d.Examples...)
	}
	decode := fmt.Sprintf("%d of %d refused", failed, read)
	if len(examples) > 0 {
		decode += ": " + strings.Join(examples, "; ")
	}
	refused := 0
	for _, n := range r.Refused {
		refused += n
	}
	dl, unexplained := 0, 0
	for _, n := range r.DeadLetters {
		dl += n
	}
	for _, n := range r.UnexplainedDeadLetters {
		unexplained += n
	}
	es := r.Erasure
	if es == nil {
		es = &ErasureStats{}
	}
	rs := r.Records
	if rs == nil {
		rs = &RecordStats{}
	}
	return []soak.Invariant{
		{Name: "valid submissions refused (4xx) by either release", Value: fmt.Sprintf("%d %s", refused, formatCounts(r.Refused)), Want: "0", OK: refused == 0},
		{Name: "every stream message and job record decodes with the new release's decoders", Value: decode, Want: "0 refused", OK: failed == 0 && read > 0},
		{Name: "job records agree with the streams (DECIDED ⇔ decision event, FAILED ⇔ dead letter)",
			Value: fmt.Sprintf("%d of %d disagree %s", rs.Disagree, rs.Checked, strings.Join(rs.Examples, "; ")), Want: "0", OK: rs.Disagree == 0 && rs.Checked > 0},
		{Name: "dead letters other than the old release's known defect (no fault injected, every job valid)",
			Value: fmt.Sprintf("%d of %d (%s)", unexplained, dl, formatCounts(r.DeadLetters)), Want: "0", OK: unexplained == 0},
		{Name: "the old release's dead letters (images without Content-Length) replayed by the new kycctl and decided",
			Value: strings.TrimSpace(fmt.Sprintf("%d of %d %s", r.ReplayedDecided, r.Replayed, strings.Join(r.ReplayFailures, "; "))), Want: "all", OK: r.ReplayedDecided == r.Replayed},
		{Name: "a new process started before `kycctl provision` waits, then starts",
			Value: fmt.Sprintf("not ready for %s (ready before provisioning: %v), ready %s after", r.EarlyStartWaited, r.EarlyStartReadyBeforeProvision, r.EarlyStartReadyAfter),
			Want:  "waits", OK: r.EarlyStartWaitedForTopology},
		{Name: "erasures of jobs from every phase complete (new release)", Value: fmt.Sprintf("%d of %d (%s) %s", es.Completed, es.Requested, formatCounts(es.ByPhase), strings.Join(es.Errors, "; ")),
			Want: "all", OK: es.Requested > 0 && es.Completed == es.Requested},
		{Name: "erasing a job on an existing account leaves the account's other executions",
			Value: fmt.Sprintf("%d owner execution(s) lost of %d such erasures; Jumio DELETE calls: %d account, %d execution", es.OwnersLost, es.OnExistingAccount, es.AccountDeletes, es.ExecutionDeletes),
			Want:  "0 lost", OK: es.OwnersLost == 0 && es.OnExistingAccount > 0},
		{Name: "messages left about erased jobs that ran on the new release only", Value: strconv.Itoa(es.Leftover[PhaseNew]), Want: "0", OK: es.Leftover[PhaseNew] == 0},
	}
}

// Markdown renders the report: the soak's invariants, the upgrade's, and
// the run's figures.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| invariant | value | required | |\n| --- | --- | --- | --- |\n")
	for _, inv := range append(append([]soak.Invariant(nil), r.Soak.Invariants...), r.Invariants...) {
		mark := "PASS"
		if !inv.OK {
			mark = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", inv.Name, inv.Value, inv.Want, mark)
	}
	fmt.Fprintf(&b, "\n| run | |\n| --- | --- |\n")
	rs := r.Records
	if rs == nil {
		rs = &RecordStats{}
	}
	es := r.Erasure
	if es == nil {
		es = &ErasureStats{}
	}
	rows := [][2]string{
		{"releases", fmt.Sprintf("%s → %s", r.Old, r.New)},
		{"NATS", fmt.Sprintf("%d node(s)", r.Nodes)},
		{"seed", strconv.FormatUint(r.Seed, 10)},
		{"load / drain", fmt.Sprintf("%s / %s", r.LoadDuration, r.Soak.DrainDuration.Round(time.Second))},
		{"jobs submitted / accepted / never accepted", fmt.Sprintf("%d / %d / %d", r.Submitted, r.Soak.Accepted, r.NotAccepted)},
		{"accepted by ingest release", formatCounts(r.AcceptedBy)},
		{"accepted by phase", formatCounts(r.ByPhase)},
		{"accepted by kind", formatCounts(r.ByKind)},
		{"decided / dead-lettered / lost", fmt.Sprintf("%d / %d / %d", r.Soak.Decided, r.Soak.DeadLettered, r.Soak.Lost)},
		{"decisions by type", formatCounts(r.Soak.DecisionsByType)},
		{"replacements (old process SIGTERM / SIGKILL)", fmt.Sprintf("%d / %d", r.ReplacedGracefully, r.ReplacedByKill)},
		{"SIGKILLs of running processes, by release", formatCounts(r.Kills)},
		{"mixed fleet", r.MixedFleet},
		{"new kycctl provision with the old release running", r.ProvisionTook.String()},
		{"balancer: requests relayed / failed (backend gone)", fmt.Sprintf("%d / %d", r.BalancerRelayed, r.BalancerFailed)},
		{"record statuses at the end", formatCounts(rs.ByStatus)},
		{"existing-account jobs / records without existingAccount", fmt.Sprintf("%d / %s", rs.Existing, formatCounts(rs.Unflagged))},
		{"finished jobs without a current index entry, by phase", formatCounts(rs.Unindexed)},
		{"erasures: slowest / messages left about erased jobs, by phase", fmt.Sprintf("%s / %s", es.Slowest, formatCounts(es.Leftover))},
		{"ambiguous account creations detected", strconv.Itoa(r.Soak.AmbiguousCreates)},
		{"callbacks sent / Jumio calls", fmt.Sprintf("%d / %d", r.Soak.CallbacksSent, r.Soak.JumioCalls)},
	}
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], row[1])
	}
	if len(r.UnexplainedExamples) > 0 {
		fmt.Fprintf(&b, "\nunexplained dead letters, e.g.:\n")
		for _, e := range r.UnexplainedExamples {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	for _, k := range sortedKeys(r.DeadLetterExamples) {
		fmt.Fprintf(&b, "\ndead letters %s, e.g.:\n", k)
		for _, e := range r.DeadLetterExamples[k] {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
