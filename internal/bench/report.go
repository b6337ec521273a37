package bench

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Target is one of the targets with the measured value.
type TargetRow struct {
	Name, Measured, Target string
	Met                    bool
}

// Targets evaluates the targets of the performance issue.
func (r *Results) Targets() []TargetRow {
	row := func(name, measured, target string, met bool) TargetRow {
		return TargetRow{Name: name, Measured: measured, Target: target, Met: met}
	}
	ing, ref := r.Ingest[64], r.Reference[64]
	ratio := ing.Throughput() / ref.Throughput()
	e := r.E2E
	var tokens []string
	tokenOK := true
	for _, st := range []string{"worker", "retriever"} {
		tokens = append(tokens, fmt.Sprintf("%s %.0f", st, e.Tokens[st]))
		tokenOK = tokenOK && e.Tokens[st] == 1
	}
	b := r.Burst
	unthrottled := r.Ingest[64].Throughput()
	burstRatio := b.Submit.Throughput() / unthrottled
	drain := float64(b.Accounts) / b.Allowed()
	share429 := 0.0
	if b.AccountCalls > 0 {
		share429 = float64(b.Account429) / float64(b.AccountCalls)
	}
	refP99 := ref.Lat.P(0.99)
	rows := []TargetRow{
		row("ingest vs reference at 64 connections", fmt.Sprintf("%.2f× (%.0f vs %.0f req/s)", ratio, ing.Throughput(), ref.Throughput()), "≥ 0.85×", ratio >= 0.85),
		row("ingest p99 at 64 connections vs reference p99", fmt.Sprintf("%s ms (reference %s ms, %.2f×)", ms(ing.Lat.P(0.99)), ms(refP99), frac(float64(ing.Lat.P(0.99)), float64(refP99))), "≤ 2×", ing.Lat.P(0.99) <= 2*refP99),
	}
	if c := r.Compare; c != nil && len(c.Pairs) > 0 {
		base := c.Baseline.Rev
		rr, cr, nr, sr := c.RateRatio(), c.CPURatio(pipelineStages...), c.CPURatio("nats"), c.CPURatio("jumiosim")
		p := c.Pairs[0]
		rows = append(rows,
			row("end to end jobs/s vs "+base, fmt.Sprintf("%.2f× (median of %d pairs; first pair %.0f vs %.0f jobs/s)", rr, len(c.Pairs), p.New.Rate(), p.Base.Rate()), "≥ 1.4×", rr >= 1.4),
			row("pipeline CPU per job vs "+base, fmt.Sprintf("%.2f× (first pair %s vs %s ms)", cr, ms(p.New.CPUPerJob(pipelineStages...)), ms(p.Base.CPUPerJob(pipelineStages...))), "≤ 0.65×", cr <= 0.65),
			row("nats-server CPU per job vs "+base, fmt.Sprintf("%.2f× (first pair %s vs %s ms)", nr, ms(p.New.CPUPerJob("nats")), ms(p.Base.CPUPerJob("nats"))), "< 1×", nr < 1),
			row("simulator CPU per job vs "+base, fmt.Sprintf("%.2f× (first pair %s vs %s ms)", sr, ms(p.New.CPUPerJob("jumiosim")), ms(p.Base.CPUPerJob("jumiosim"))), "< 1×", sr < 1),
		)
	} else {
		rows = append(rows, row("end to end against a baseline commit", "not measured (--baseline none)", "ratios ≥ 1.4× / ≤ 0.65×", false))
	}
	rows = append(rows,
		row("submit-to-decision p50 at 10% load", ms(r.LowLoad.Lat.P(0.5))+" ms", "≤ 50 ms", r.LowLoad.Lat.P(0.5) <= 50*time.Millisecond),
		row("latency-bound run vs Little's law", fmt.Sprintf("%.0f%% (%.1f of %.1f jobs/s)", 100*r.Bound.Rate/r.Bound.Bound(), r.Bound.Rate, r.Bound.Bound()), "≥ 90%", r.Bound.Rate >= 0.9*r.Bound.Bound()),
		row("burst: ingest rate vs unthrottled", fmt.Sprintf("%.2f× (%.0f vs %.0f req/s, %d of %d accepted)", burstRatio, b.Submit.Throughput(), unthrottled, b.Accepted, r.Options.BurstJobs), "≥ 0.9×", burstRatio >= 0.9 && b.Accepted == r.Options.BurstJobs),
		row("burst: drain vs allowed Jumio rate", fmt.Sprintf("%.0f%% (%d of %.0f initiations in %s)", 100*drain, b.Accounts, b.Allowed(), b.Window.Round(time.Second)), "≥ 90%", drain >= 0.9),
		row("burst: 429s of account calls", fmt.Sprintf("%.2f%% (%d of %d)", 100*share429, b.Account429, b.AccountCalls), "≤ 1%", share429 <= 0.01),
		row("burst: no job lost", fmt.Sprintf("accepted %d = queued %d + finalized %d (dead letters %d)", b.Accepted, b.Queued, b.Finalized, b.DeadLetters), "all accounted for", b.Queued+b.Finalized >= b.Accepted && b.DeadLetters == 0),
		row("token requests per process and region", strings.Join(tokens, ", ")+fmt.Sprintf(" for %d jobs", e.TokenJobs), "1 per token lifetime", tokenOK),
		row("worker peak RSS at concurrency 256", mib(e.Peak["worker"])+" MiB", "≤ 64 MB", e.Peak["worker"] <= 64e6),
		row("retriever peak RSS at concurrency 256", mib(e.Peak["retriever"])+" MiB", "≤ 64 MB", e.Peak["retriever"] <= 64e6),
		row("ingest peak RSS at full load", mib(max(r.IngestPeak.PeakRSS, e.Peak["ingest"]))+" MiB", "≤ 64 MB", max(r.IngestPeak.PeakRSS, e.Peak["ingest"]) <= 64e6),
	)
	if w := r.Webhooks; w.Deliveries > 0 {
		rows = append(rows, row("webhooks: decision event to delivery p50 at 10% load", ms(w.Low.Lat.P(0.5))+" ms", "≤ 20 ms", w.Low.Lat.P(0.5) <= 20*time.Millisecond))
	}
	return append(rows, r.Console.targets()...)
}

// Table is the plain-text summary printed at the end of a run.
func (r *Results) Table() string {
	var sb strings.Builder
	w := 0
	rows := r.Targets()
	for _, t := range rows {
		w = max(w, len(t.Name))
	}
	for _, t := range rows {
		mark := "MET "
		if !t.Met {
			mark = "MISS"
		}
		fmt.Fprintf(&sb, "%s  %-*s  %s  (target %s)\n", mark, w, t.Name, t.Measured, t.Target)
	}
	return sb.String()
}

// Markdown renders the measurements section of docs/BENCHMARKS.md.
func (r *Results) Markdown(command, chart string) string {
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format, a...) }
	o := r.Options
	p("## Run of %s\n\n", r.Started.Format("2006-01-02 15:04 UTC"))
	p("Command: `%s`  \n", command)
	p("Machine: %s; %s; %s. Every process (load generator, nats-server, simulator, the stages) shares these cores.  \n", r.Machine, r.GoVersion, r.NATSVersion)
	p("Job body: an API-channel prepared-data request of %d bytes (the same body for the reference server and ingest).\n\n", r.BodyBytes)

	p("### Targets\n\n| target | measured | required | |\n| --- | --- | --- | --- |\n")
	for _, t := range r.Targets() {
		mark := "met"
		if !t.Met {
			mark = "**missed**"
		}
		p("| %s | %s | %s | %s |\n", t.Name, t.Measured, t.Target, mark)
	}

	p("\n### 1. Raw JetStream baselines (same nats-server)\n\n| measurement | rate | p50 | p99 |\n| --- | --- | --- | --- |\n")
	p("| synchronous publish of 1 KB, %d publishers on one connection, %s | %.0f msg/s | %s ms | %s ms |\n", r.RawPublish.Publishers, o.LoadDuration, r.RawPublish.Rate(), ms(r.RawPublish.Lat.P(0.5)), ms(r.RawPublish.Lat.P(0.99)))
	p("| consume + ack of the same %d messages (pull consumer) | %.0f msg/s | | |\n", r.RawConsume.Messages, r.RawConsume.Rate())

	p("\n### 2–3. Reference server vs ingest (closed loop, %s per point)\n\n", o.LoadDuration)
	p("| server | connections | requests/s | ratio to reference | p50 | p90 | p99 | statuses |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, c := range []int{64, 256} {
		ref, ing := r.Reference[c], r.Ingest[c]
		p("| reference | %d | %.0f | 1.00 | %s ms | %s ms | %s ms | %s |\n", c, ref.Throughput(), ms(ref.Lat.P(0.5)), ms(ref.Lat.P(0.9)), ms(ref.Lat.P(0.99)), statuses(ref))
		p("| ingest | %d | %.0f | %.2f | %s ms | %s ms | %s ms | %s |\n", c, ing.Throughput(), ing.Throughput()/ref.Throughput(), ms(ing.Lat.P(0.5)), ms(ing.Lat.P(0.9)), ms(ing.Lat.P(0.99)), statuses(ing))
		if bi, ok := r.BaselineIngest[c]; ok {
			p("| ingest at %s | %d | %.0f | %.2f | %s ms | %s ms | %s ms | %s |\n", r.Compare.baseRev(), c, bi.Throughput(), bi.Throughput()/ref.Throughput(), ms(bi.Lat.P(0.5)), ms(bi.Lat.P(0.9)), ms(bi.Lat.P(0.99)), statuses(bi))
		}
	}
	p("\nCPU time per answered request at 64 connections (from /proc; every process shares the 2 cores):\n\n")
	p("| server | server | nats-server | load generator | total |\n| --- | --- | --- | --- | --- |\n")
	for _, row := range []struct {
		name, proc string
		r          LoadResult
	}{{"reference", "reference", r.Reference[64]}, {"ingest", "ingest", r.Ingest[64]}, {"ingest at " + r.Compare.baseRev(), "ingest-base", r.BaselineIngest[64]}} {
		if row.r.Requests == 0 {
			continue
		}
		tot := row.r.CPUPerRequest(row.proc) + row.r.CPUPerRequest("nats") + row.r.CPUPerRequest("loadgen")
		p("| %s | %s µs | %s µs | %s µs | %s µs |\n", row.name, us(row.r.CPUPerRequest(row.proc)), us(row.r.CPUPerRequest("nats")), us(row.r.CPUPerRequest("loadgen")), us(tot))
	}
	p("\nOffered-load sweep (open loop, 256 connections, %s per point; latency counted from the moment a request was due):\n\n", o.SweepDuration)
	p("| offered | reference req/s | reference p50 / p99 | ingest req/s | ingest p50 / p99 |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range r.Sweep {
		p("| %.0f req/s (%.0f%%) | %.0f | %s / %s ms | %.0f | %s / %s ms |\n", s.Ingest.Offered, 100*s.Fraction, s.Reference.Throughput(), ms(s.Reference.Lat.P(0.5)), ms(s.Reference.Lat.P(0.99)),
			s.Ingest.Throughput(), ms(s.Ingest.Lat.P(0.5)), ms(s.Ingest.Lat.P(0.99)))
	}
	if chart != "" {
		p("\n![throughput and latency against offered load](%s)\n", chart)
	}

	e := r.E2E
	p("\n### 4. End to end, simulator at zero latency\n\n")
	p("%d jobs submitted by 64 connections as fast as ingest takes them (%.0f req/s, all %d accepted in %s); worker and retriever concurrency %d, every stage its own process. ",
		e.Jobs, e.Submit.Throughput(), e.Submit.OK(), e.SubmitElapsed.Round(time.Millisecond), e.Concurrency)
	p("Throughput is jobs over the time from the first submission to the last decision event.\n\n")
	p("| | value |\n| --- | --- |\n")
	p("| jobs/s, submission to decision | %.0f |\n", e.Rate())
	p("| submit-to-decision latency under that load: p50 / p90 / p99 | %s / %s / %s ms |\n", ms(e.Lat.P(0.5)), ms(e.Lat.P(0.9)), ms(e.Lat.P(0.99)))
	p("| at 10%% load (%.0f jobs/s open loop, %d jobs): p50 / p90 / p99 | %s / %s / %s ms |\n", r.LowLoad.Rate, r.LowLoad.Jobs, ms(r.LowLoad.Lat.P(0.5)), ms(r.LowLoad.Lat.P(0.9)), ms(r.LowLoad.Lat.P(0.99)))
	p("\n| process | CPU ms per job | peak RSS |\n| --- | --- | --- |\n")
	for _, n := range []string{"ingest", "worker", "retriever", "nats", "jumiosim"} {
		p("| %s | %s | %s MiB |\n", n, ms(e.CPUPerJob(n)), mib(e.Peak[n]))
	}
	p("| **pipeline (ingest + worker + retriever)** | **%s** | |\n", ms(e.CPUPerJob(pipelineStages...)))
	p("| pipeline + nats-server | %s | |\n", ms(e.CPUPerJob(append(slices.Clone(pipelineStages), e.natsProcs()...)...)))
	sb.WriteString(r.compareMarkdown())
	r.clusterMarkdown(p)

	bd := r.Bound
	p("\n### 5. Latency-bound run\n\n")
	p("Simulator latency %s on every call; worker concurrency C = %d (account concurrency raised to C for this run); %d jobs. ", bd.CallLatency, bd.C, bd.Jobs)
	p("The worker makes %d Jumio calls per job (create account, upload prepared data, finalize; the token is cached), so Little's law bounds it at C / (%d × %s) = %.1f jobs/s. ", bd.Calls, bd.Calls, bd.CallLatency, bd.Bound())
	p("Measured: **%.1f jobs/s** finalized in the steady state (10th to 90th percentile of finalize events), **%.0f%%** of the bound.\n", bd.Rate, 100*bd.Rate/bd.Bound())

	b := r.Burst
	p("\n### 6. Burst under Jumio's default rate limits\n\n")
	p("The simulator enforces Jumio's default tenant limits (1 account initiation/s with a burst of %d, 15 retrievals/s, 10 token calls/s); kycpipe runs with its default shared limits. ", b.AccountBurst)
	p("%d submissions by 64 connections:\n\n| | value |\n| --- | --- |\n", o.BurstJobs)
	p("| accepted | %d of %d in %s |\n", b.Accepted, o.BurstJobs, b.Submit.Elapsed.Round(time.Millisecond))
	p("| ingest rate during the burst | %.0f req/s = %.2f× the unthrottled ingest run (%.0f req/s) |\n", b.Submit.Throughput(), b.Submit.Throughput()/r.Ingest[64].Throughput(), r.Ingest[64].Throughput())
	p("| ingest latency during the burst p50 / p99 | %s / %s ms |\n", ms(b.Submit.Lat.P(0.5)), ms(b.Submit.Lat.P(0.99)))
	p("| account initiations in the first %s | %d of %.0f allowed (%.0f%%) |\n", b.Window.Round(time.Second), b.Accounts, b.Allowed(), 100*float64(b.Accounts)/b.Allowed())
	p("| 429s | %d of %d account calls; %d of %d Jumio calls |\n", b.Account429, b.AccountCalls, b.Calls429, b.Calls)
	p("| at the end of the window | %d jobs queued, %d finalized, %d dead letters |\n", b.Queued, b.Finalized, b.DeadLetters)

	p("\n### 7. Token economy\n\n")
	p("Token requests during the end-to-end and 10%%-load runs (%d jobs, one region, the simulator's default token lifetime of 60 minutes): ", e.TokenJobs)
	p("worker %.0f, retriever %.0f (the simulator counted %d); per 10,000 jobs: %.2f per process.\n",
		e.Tokens["worker"], e.Tokens["retriever"], e.SimTokens, (e.Tokens["worker"]+e.Tokens["retriever"])/2*10000/float64(max(e.TokenJobs, 1)))

	if er := r.Erasure; er.Large.Erased > 0 {
		p("\n### 9. Erasure among many stored jobs\n\n")
		p("Each run stores decided jobs as the pipeline leaves them (record, index entry, accepted event, decision), then erases %d of them at random through the worker's eraser (one worker, simulator at zero latency; Jumio answers the account DELETE with 404). Target: at most 5 ms of CPU per erasure, and no full-stream scan (the cost per erasure must not grow with the store).\n\n", er.Large.Erased)
		p("| stored | seeding | erasures/s | worker CPU / erasure | nats-server CPU / erasure | request CPU / erasure | total CPU / erasure |\n| --- | --- | --- | --- | --- | --- | --- |\n")
		for _, run := range []ErasureRun{er.Small, er.Large} {
			total := run.PerErasure(run.WorkerCPU + run.NATSCPU + run.RequestCPU)
			p("| %d | %s | %.0f | %s µs | %s µs | %s µs | %s µs |\n", run.Stored, run.Seed.Round(time.Second), float64(run.Erased)/run.Elapsed.Seconds(),
				us(run.PerErasure(run.WorkerCPU)), us(run.PerErasure(run.NATSCPU)), us(run.PerErasure(run.RequestCPU)), us(total))
		}
		ratio := float64(er.Large.PerErasure(er.Large.WorkerCPU+er.Large.NATSCPU)) / float64(max(er.Small.PerErasure(er.Small.WorkerCPU+er.Small.NATSCPU), 1))
		p("\nCPU per erasure with %d stored / with %d stored: %.2f×.\n", er.Large.Stored, er.Small.Stored, ratio)
	}
	sb.WriteString(r.webhookMarkdown())
	if len(r.Loads) > 0 {
		p("\n### Machine load during the run\n\nLoad averages (1, 5, 15 min) from /proc/loadavg when each step started and ended; the machine's two cores are shared with other work, so compare ratios taken in the same step.\n\n| step | started (UTC) | load at start | load at end |\n| --- | --- | --- | --- |\n")
		for _, l := range r.Loads {
			p("| %s | %s | %s | %s |\n", l.Step, l.At.Format("15:04:05"), l.Before, l.After)
		}
	}
	r.Console.markdown(p)
	return sb.String()
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }

func statuses(r LoadResult) string {
	var codes []int
	for c := range r.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, r.Status[c]))
	}
	if r.Errors > 0 {
		parts = append(parts, fmt.Sprintf("errors×%d", r.Errors))
	}
	return strings.Join(parts, " ")
}

// Markers around the generated part of docs/BENCHMARKS.md; the text outside
// them (analysis, profile notes) is kept when a new run is written.
const (
	beginMarker = "<!-- BEGIN GENERATED: make bench -->"
	endMarker   = "<!-- END GENERATED: make bench -->"
)

// WriteReport replaces the generated section of the Markdown file at path
// (creating the file if needed) with section.
func WriteReport(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	block := beginMarker + "\n" + section + endMarker
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(endMarker):]
	case s == "":
		s = "# Benchmarks\n\n" + block + "\n"
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
