package chaosnet

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/internal/soak"
)

// Report is the outcome of a run.
type Report struct {
	Short        bool
	SoakFor      time.Duration // the soak schedule's length (0: the fault list)
	Seed         uint64
	Subnet       string
	LoadDuration time.Duration
	Submitted    int
	NotAccepted  int // submissions never answered 2xx, retries included
	Faults       []FaultResult
	// The soak schedule's chaos: SIGKILLs of pipeline processes, node
	// losses (also in Faults), Jumio faults injected and latency spikes.
	Kills, NodeLosses, JumioFaults, LatencySpikes int
	// Soak holds the soak's invariants, computed by soak.Verify.
	Soak soak.Report
	// Answers summarizes every submission attempt of the run.
	Answers Answers
	// Invariants are this harness's own: the answers' and the cluster's.
	Invariants []soak.Invariant
}

// FaultResult is one injected fault and what the clients saw meanwhile.
type FaultResult struct {
	Name, Detail   string
	Hold           time.Duration
	Start, Healed  time.Time
	HealthyAfter   time.Duration // from healing until every node's /healthz is 200
	Error          string
	Answers        Answers // attempts started while the fault was on
	Decisions      int     // decisions made while the fault was on
	DecisionsAfter int     // decisions made between healing and healthy, plus 10 s
}

// Answers classifies submission attempts.
type Answers struct {
	Attempts    int
	OK          int // 200 or 202
	Unavailable int // 503 with Retry-After
	NoRetry     int // 503 without Retry-After
	Other       int // any other status
	Timeouts    int // no answer within the client's timeout: a hang
	ConnErrors  int // no answer: connection refused or reset
	Worst       time.Duration
	P99         time.Duration
}

func classify(as []attempt) Answers {
	var a Answers
	var durs []time.Duration
	for _, x := range as {
		a.Attempts++
		switch {
		case x.failure == "timeout":
			a.Timeouts++
		case x.failure != "":
			a.ConnErrors++
		case x.status == 200 || x.status == 202:
			a.OK++
		case x.status == 503 && x.retryAfter:
			a.Unavailable++
		case x.status == 503:
			a.NoRetry++
		default:
			a.Other++
		}
		durs = append(durs, x.dur)
	}
	if len(durs) > 0 {
		slices.Sort(durs)
		a.Worst = durs[len(durs)-1]
		a.P99 = durs[min(len(durs)-1, len(durs)*99/100)]
	}
	return a
}

// summarize computes the answers overall and per fault, and the harness's
// invariants.
func (r *Report) summarize(attempts []attempt, decided []time.Time, timeout time.Duration) {
	r.Answers = classify(attempts)
	healed := true
	for i := range r.Faults {
		f := &r.Faults[i]
		if f.Error != "" {
			healed = false
			continue
		}
		var in []attempt
		for _, a := range attempts {
			if !a.start.Before(f.Start) && a.start.Before(f.Healed) {
				in = append(in, a)
			}
		}
		f.Answers = classify(in)
		for _, d := range decided {
			switch {
			case !d.Before(f.Start) && d.Before(f.Healed):
				f.Decisions++
			case !d.Before(f.Healed) && d.Before(f.Healed.Add(f.HealthyAfter+10*time.Second)):
				f.DecisionsAfter++
			}
		}
	}
	a := r.Answers
	r.Invariants = []soak.Invariant{
		{Name: "every answer is 2xx, or 503 with Retry-After", Value: fmt.Sprintf("%d 2xx, %d 503 + Retry-After, %d 503 without, %d other", a.OK, a.Unavailable, a.NoRetry, a.Other),
			Want: "no other", OK: a.NoRetry == 0 && a.Other == 0 && a.Attempts > 0},
		{Name: fmt.Sprintf("no submission hangs past the client's timeout (%s)", timeout), Value: fmt.Sprintf("%d timeouts, %d connection errors; worst answer %s", a.Timeouts, a.ConnErrors, a.Worst.Round(time.Millisecond)),
			Want: "0", OK: a.Timeouts == 0 && a.ConnErrors == 0},
		{Name: "every submission eventually answered 2xx (retried with its Idempotency-Key)", Value: fmt.Sprintf("%d of %d (never: %d)", r.Submitted-r.NotAccepted, r.Submitted, r.NotAccepted),
			Want: "all", OK: r.NotAccepted == 0 && r.Submitted > 0},
		{Name: "every fault injected, healed, and the cluster healthy again", Value: fmt.Sprintf("%d faults", len(r.Faults)), Want: "all", OK: healed && len(r.Faults) > 0},
	}
}

// OK reports whether every invariant held (a second Jumio account is
// accepted when the worker flagged it, as in the soak).
func (r *Report) OK() bool {
	return r.Soak.OKExceptFlaggedDuplicates() && len(r.Invariants) > 0 && len(r.Failures()) == 0
}

// Failures lists the invariants that fail, the soak's included (as OK
// counts them).
func (r *Report) Failures() []soak.Invariant { return r.Soak.FailuresAnd(r.Invariants) }

func (r *Report) mode() string {
	switch {
	case r.SoakFor > 0:
		return fmt.Sprintf("soak of %s (cmd/chaosnet --soak)", r.SoakFor)
	case r.Short:
		return "short (make test-net)"
	}
	return "long (make chaos-net)"
}

// Partitions counts the network partitions injected (every fault that is
// not a node loss).
func (r *Report) Partitions() int {
	n := 0
	for _, f := range r.Faults {
		if !strings.HasPrefix(f.Name, "node loss") && f.Error == "" {
			n++
		}
	}
	return n
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// WorstPartitionLatency is the slowest answer to a submission sent while a
// fault (a partition, or in a soak a node loss) was on.
func (r *Report) WorstPartitionLatency() time.Duration {
	var w time.Duration
	for _, f := range r.Faults {
		w = max(w, f.Answers.Worst)
	}
	return w
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| invariant | value | required | |\n| --- | --- | --- | --- |\n")
	for i, inv := range append(append([]soak.Invariant(nil), r.Soak.Invariants...), r.Invariants...) {
		mark := "PASS"
		switch {
		case !inv.OK && i == 1 && r.Soak.UndetectedMultipleExecutions == 0:
			// As in the soak: a second account is a measurement, accepted
			// when the worker flagged every one (docs/RELIABILITY.md).
			mark = "flagged: accepted"
		case !inv.OK:
			mark = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", inv.Name, inv.Value, inv.Want, mark)
	}
	b.WriteString("\n| fault | what | held | answers meanwhile: 2xx / 503+RA / other / hangs | worst answer (p99) | decisions meanwhile / in the 10 s after | healthy after healing |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, f := range r.Faults {
		if f.Error != "" {
			fmt.Fprintf(&b, "| %s | **%s** | | | | | |\n", f.Name, f.Error)
			continue
		}
		a := f.Answers
		fmt.Fprintf(&b, "| %s | %s | %s | %d / %d / %d / %d | %s (%s) | %d / %d | %s |\n", f.Name, f.Detail, f.Hold,
			a.OK, a.Unavailable, a.Other+a.NoRetry, a.Timeouts+a.ConnErrors, a.Worst.Round(time.Millisecond), a.P99.Round(time.Millisecond),
			f.Decisions, f.DecisionsAfter, f.HealthyAfter.Round(100*time.Millisecond))
	}
	s := r.Soak
	fmt.Fprintf(&b, "\n| run | |\n| --- | --- |\n")
	rows := [][2]string{
		{"mode", r.mode() + ", " + s.Mode},
		{"seed / subnet", fmt.Sprintf("%d / %s", r.Seed, r.Subnet)},
		{"load phase / drain", fmt.Sprintf("%s / %s", r.LoadDuration.Round(time.Second), s.DrainDuration.Round(time.Second))},
		{"jobs submitted / accepted / never accepted", fmt.Sprintf("%d / %d / %d", r.Submitted, s.Accepted, r.NotAccepted)},
		{"decided / dead-lettered / both / lost", fmt.Sprintf("%d / %d / %d / %d", s.Decided, s.DeadLettered, s.DecidedAndDeadLettered, s.Lost)},
		{"submission attempts: 2xx / 503 + Retry-After / other / hangs", fmt.Sprintf("%d / %d / %d / %d", r.Answers.OK, r.Answers.Unavailable, r.Answers.Other+r.Answers.NoRetry, r.Answers.Timeouts+r.Answers.ConnErrors)},
		{"worst submission answer during a fault (partition or node loss)", r.WorstPartitionLatency().Round(time.Millisecond).String()},
		{"jobs with a second Jumio account (all flagged ambiguous?)", fmt.Sprintf("%d (%d unflagged)", s.JobsWithMultipleExecutions, s.UndetectedMultipleExecutions)},
		{"Jumio calls / callbacks sent / dropped", fmt.Sprintf("%d / %d / %d", s.JumioCalls, s.CallbacksSent, s.CallbacksDropped)},
		{"process kills (SIGKILL) / NATS node losses / partitions", fmt.Sprintf("%d / %d / %d", r.Kills, r.NodeLosses, r.Partitions())},
		{"Jumio faults injected (5xx/429) / latency spikes", fmt.Sprintf("%d / %d", r.JumioFaults, r.LatencySpikes)},
		{"decisions by type", formatCounts(s.DecisionsByType)},
	}
	rows = append(rows, s.ExtraRows()...)
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], row[1])
	}
	return b.String()
}
