package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// pipelineStages are the processes whose CPU time counts as the pipeline's.
var pipelineStages = []string{"ingest", "worker", "retriever"}

// unthrottled lifts kycpipe's own limits that would otherwise cap a
// benchmark: the shared Jumio rate limits (the simulator enforces none in
// these runs) and the per-instance callback rate limit.
var unthrottled = []string{
	"KYCPIPE_RATE_ACCOUNT=0", "KYCPIPE_RATE_RETRIEVAL=0", "KYCPIPE_RATE_TOKEN=0",
	"KYCPIPE_CALLBACK_RATE=1000000",
}

// E2EResult is the end-to-end run at zero simulator latency.
type E2EResult struct {
	Name          string // the run's name: e2e (current) or e2e-base (the baseline)
	Jobs          int
	Concurrency   int
	SubmitElapsed time.Duration // first submission to last 202
	Elapsed       time.Duration // first submission to last decision
	Submit        LoadResult
	Lat           Latencies // submission to decision event, per job
	CPU           map[string]time.Duration
	Peak          map[string]int64
	Tokens        map[string]float64 // token requests by stage, whole run (this one and the low-load one)
	TokenJobs     int                // jobs those token requests served
	SimTokens     int
	// JumioRequests counts the simulator's requests during the run (HTTP
	// exchanges with "Jumio"; callbacks are the simulator's own requests).
	JumioRequests int
	// LoadBefore and LoadAfter are the machine's load averages (1, 5, 15
	// minutes) around the run: the other work sharing the cores.
	LoadBefore, LoadAfter string
}

// Rate is jobs per second from the first submission to the last decision.
func (e E2EResult) Rate() float64 { return float64(e.Jobs) / e.Elapsed.Seconds() }

// CPUPerJob sums the CPU time of the given processes per job.
func (e E2EResult) CPUPerJob(names ...string) time.Duration {
	var sum time.Duration
	for _, n := range names {
		sum += e.CPU[n]
	}
	return sum / time.Duration(max(e.Jobs, 1))
}

// natsProcs names the run's nats-server processes: "nats", or the nodes
// of a cluster ("nats-1" …), in order.
func (e E2EResult) natsProcs() []string {
	var out []string
	for n := range e.CPU {
		if n == "nats" || strings.HasPrefix(n, "nats-") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// LowLoadResult is the latency at 10% of the end-to-end throughput.
type LowLoadResult struct {
	Rate float64
	Jobs int
	Lat  Latencies
}

func (b *runner) e2e(ctx context.Context) error {
	// The current pipeline first, with the 10%-load run and the token
	// economy; then, with a baseline, the pairs in ABBA order (current,
	// baseline, baseline, current, ...) so that a drift of the shared
	// machine's speed hits both alike.
	e, low, err := b.e2eRun(ctx, "e2e", "", true)
	if err != nil {
		return err
	}
	b.r.E2E, b.r.LowLoad = e, low
	if b.base == nil {
		return nil
	}
	cmp := &Comparison{Baseline: *b.base}
	for i := 0; i < b.o.Pairs; i++ {
		var p Pair
		order := []bool{false, true} // baseline first in odd pairs
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, current := range order {
			if current && i == 0 {
				p.New = e
				continue
			}
			dir, name := b.base.BinDir, "e2e-base"
			if current {
				dir, name = "", "e2e"
			}
			r, _, err := b.e2eRun(ctx, name, dir, false)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if current {
				p.New = r
			} else {
				p.Base = r
			}
		}
		b.o.Logf("pair %d: jobs/s %.0f vs %.0f (%.2f×), pipeline CPU/job %s vs %s ms (%.2f×)", i+1, p.New.Rate(), p.Base.Rate(),
			frac(p.New.Rate(), p.Base.Rate()), ms(p.New.CPUPerJob(pipelineStages...)), ms(p.Base.CPUPerJob(pipelineStages...)), p.cpuRatio(pipelineStages...))
		cmp.Pairs = append(cmp.Pairs, p)
	}
	b.r.Compare = cmp
	return nil
}

// e2eRun runs the end-to-end measurement on a new stack: the current
// binaries, or those in stageDir (a baseline's stages and simulator).
// With low, it also measures the 10%-load latency and the token economy.
func (b *runner) e2eRun(ctx context.Context, name, stageDir string, low bool) (E2EResult, LowLoadResult, error) {
	s, err := b.stack(ctx, name)
	if err != nil {
		return E2EResult{}, LowLoadResult{}, err
	}
	defer s.Close()
	return b.e2eOn(ctx, s, name, stageDir, low, nil, b.o.E2EJobs)
}

// e2eOn is e2eRun on a given stack for the given number of jobs, the
// stages started with extra settings.
func (b *runner) e2eOn(ctx context.Context, s *Stack, name, stageDir string, low bool, extra []string, jobs int) (E2EResult, LowLoadResult, error) {
	var lowRes LowLoadResult
	if stageDir != "" {
		s.StageBinDir = stageDir
	}
	if err := s.StartSim(ctx); err != nil {
		return E2EResult{}, lowRes, err
	}
	c := strconv.Itoa(b.o.Concurrency)
	env := append([]string{"KYCPIPE_WORKER_CONCURRENCY=" + c, "KYCPIPE_RETRIEVER_CONCURRENCY=" + c}, unthrottled...)
	env = append(env, extra...)
	if err := s.StartStages(ctx, env, "ingest", "worker", "retriever"); err != nil {
		return E2EResult{}, lowRes, err
	}
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		return E2EResult{}, lowRes, err
	}
	defer nc.Close()
	subj := messages.MustSubjects("kyc")
	e := E2EResult{Name: name, Jobs: jobs, Concurrency: b.o.Concurrency, CPU: map[string]time.Duration{}, Peak: map[string]int64{}, Tokens: map[string]float64{}}
	e.LoadBefore = loadAvg()

	w, err := watchDecisions(nc, subj, e.Jobs)
	if err != nil {
		return e, lowRes, err
	}
	simBefore, _ := s.SimStats()
	before := s.Stats()
	run := name
	e.Submit = ClosedLoop(ctx, b.target(s.IngestAddr, run, w.markSent(run)), 64, 10*time.Minute, int64(e.Jobs))
	e.SubmitElapsed = e.Submit.Elapsed
	if ok := e.Submit.OK(); ok != e.Jobs {
		return e, lowRes, fmt.Errorf("%d of %d submissions accepted (%v, %d errors)", ok, e.Jobs, e.Submit.Status, e.Submit.Errors)
	}
	if err := w.wait(ctx, 10*time.Minute); err != nil {
		return e, lowRes, err
	}
	w.stop()
	after := s.Stats()
	if simAfter, err := s.SimStats(); err == nil {
		for route, n := range simAfter.Requests {
			e.JumioRequests += n - simBefore.Requests[route]
		}
	}
	e.LoadAfter = loadAvg()
	w.mu.Lock()
	var last time.Time
	for _, t := range w.decided {
		if t.After(last) {
			last = t
		}
	}
	e.Elapsed = last.Sub(w.first)
	e.Lat = w.lat
	w.mu.Unlock()
	e.Lat.sort()
	for name, st := range after {
		e.CPU[name] = st.CPU - before[name].CPU
		e.Peak[name] = st.PeakRSS
	}
	b.o.Logf("%s: %d jobs in %s = %.0f jobs/s; pipeline CPU %s ms/job (+ nats %s, sim %s); p50 %s ms; load %s → %s",
		name, e.Jobs, e.Elapsed.Round(time.Millisecond), e.Rate(), ms(e.CPUPerJob(pipelineStages...)), ms(e.CPUPerJob(e.natsProcs()...)), ms(e.CPUPerJob("jumiosim")), ms(e.Lat.P(0.5)), e.LoadBefore, e.LoadAfter)
	if !low {
		return e, lowRes, nil
	}

	// 10% of that load, open loop: the latency a lightly loaded pipeline adds.
	lowRes = LowLoadResult{Rate: e.Rate() / 10}
	lowRes.Jobs = int(lowRes.Rate * b.o.LowLoadFor.Seconds())
	w, err = watchDecisions(nc, subj, lowRes.Jobs)
	if err != nil {
		return e, lowRes, err
	}
	run = "low"
	res := OpenLoop(ctx, b.target(s.IngestAddr, run, w.markSent(run)), 16, lowRes.Rate, b.o.LowLoadFor)
	if ok := res.OK(); ok != lowRes.Jobs {
		return e, lowRes, fmt.Errorf("low load: %d of %d submissions accepted (%v)", ok, lowRes.Jobs, res.Status)
	}
	if err := w.wait(ctx, 5*time.Minute); err != nil {
		return e, lowRes, fmt.Errorf("low load: %w", err)
	}
	w.stop()
	w.mu.Lock()
	lowRes.Lat = w.lat
	w.mu.Unlock()
	lowRes.Lat.sort()
	b.o.Logf("at %.0f jobs/s (10%%): submit to decision p50 %s ms, p99 %s ms", lowRes.Rate, ms(lowRes.Lat.P(0.5)), ms(lowRes.Lat.P(0.99)))

	// Token economy over both runs.
	e.TokenJobs = e.Jobs + lowRes.Jobs
	for _, st := range []string{"worker", "retriever"} {
		v, err := s.Metric(st, "kycpipe_jumio_calls_total", `class="token"`)
		if err != nil {
			return e, lowRes, err
		}
		e.Tokens[st] = v
	}
	if ss, err := s.SimStats(); err == nil {
		e.SimTokens = ss.TokenRequests
	}
	for name, st := range s.Stats() {
		e.Peak[name] = st.PeakRSS
	}
	return e, lowRes, nil
}

// BoundResult is the latency-bound run.
type BoundResult struct {
	C           int
	CallLatency time.Duration
	Calls       int     // Jumio calls of the worker per job
	Rate        float64 // finalized jobs per second in the steady state
	Jobs        int
}

// Bound is Little's law: C jobs in flight, each taking Calls × latency.
func (r BoundResult) Bound() float64 {
	return float64(r.C) / (float64(r.Calls) * r.CallLatency.Seconds())
}

func (b *runner) bound(ctx context.Context) error {
	s, err := b.stack(ctx, "bound")
	if err != nil {
		return err
	}
	defer s.Close()
	lat := b.o.CallLatency.String()
	routes := "token,create_account,update_account,upload_prepared_data,upload_part,finalize,status,details"
	var spec string
	for i, r := range splitComma(routes) {
		if i > 0 {
			spec += ","
		}
		spec += r + "=" + lat
	}
	if err := s.StartSim(ctx, "-latency", spec); err != nil {
		return err
	}
	c := strconv.Itoa(b.o.BoundC)
	// Account calls may all be in flight at once here (the default of 2
	// bounds what a crash can orphan, and would be the bound instead).
	env := append([]string{"KYCPIPE_WORKER_CONCURRENCY=" + c, "KYCPIPE_ACCOUNT_CONCURRENCY=" + c,
		"KYCPIPE_RETRIEVER_CONCURRENCY=512"}, unthrottled...)
	if err := s.StartStages(ctx, env, "ingest", "worker", "retriever"); err != nil {
		return err
	}
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	r := BoundResult{C: b.o.BoundC, CallLatency: b.o.CallLatency, Calls: 3, Jobs: b.o.BoundJobs}
	w, err := watchDecisions(nc, messages.MustSubjects("kyc"), r.Jobs)
	if err != nil {
		return err
	}
	defer w.stop()
	res := ClosedLoop(ctx, b.target(s.IngestAddr, "bound", nil), 64, 10*time.Minute, int64(r.Jobs))
	if ok := res.OK(); ok != r.Jobs {
		return fmt.Errorf("%d of %d submissions accepted (%v)", ok, r.Jobs, res.Status)
	}
	if err := waitFor(ctx, 15*time.Minute, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.finalized) >= r.Jobs
	}); err != nil {
		return fmt.Errorf("finalized events: %w", err)
	}
	w.mu.Lock()
	f := append([]time.Time(nil), w.finalized...)
	w.mu.Unlock()
	// The steady state: from the 10th to the 90th percentile of finalizes.
	lo, hi := len(f)/10, len(f)*9/10
	r.Rate = float64(hi-lo) / f[hi].Sub(f[lo]).Seconds()
	b.o.Logf("latency-bound: C=%d, %s per call: %.1f jobs/s of a %.1f bound (%.0f%%)", r.C, lat, r.Rate, r.Bound(), 100*r.Rate/r.Bound())
	b.r.Bound = r
	return nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// BurstResult is the burst under Jumio's default rate limits.
type BurstResult struct {
	Submit          LoadResult
	Accepted        int
	Window          time.Duration
	AccountRate     float64 // Jumio's account-initiation limit per second
	AccountBurst    int
	Accounts        int // account initiations Jumio allowed in the window
	AccountCalls    int // account calls made (allowed + 429)
	Account429      int
	Calls, Calls429 int
	Queued          int // job messages still in the work queue at the end
	Finalized       int
	DeadLetters     int
}

// Allowed is how many account initiations the limit allows in the window.
func (r BurstResult) Allowed() float64 {
	return r.AccountRate*r.Window.Seconds() + float64(r.AccountBurst)
}

func (b *runner) burst(ctx context.Context) error {
	s, err := b.stack(ctx, "burst")
	if err != nil {
		return err
	}
	defer s.Close()
	r := BurstResult{AccountRate: 1, AccountBurst: 5, Window: b.o.DrainWindow}
	// Jumio's default tenant limits in the simulator; kycpipe at its
	// defaults (shared limits that match them).
	if err := s.StartSim(ctx, "-rate-limits"); err != nil {
		return err
	}
	if err := s.StartStages(ctx, []string{"KYCPIPE_CALLBACK_RATE=1000000"}, "ingest", "worker", "retriever"); err != nil {
		return err
	}
	start := time.Now()
	r.Submit = ClosedLoop(ctx, b.target(s.IngestAddr, "burst", nil), 64, 10*time.Minute, int64(b.o.BurstJobs))
	r.Accepted = r.Submit.OK()
	b.o.Logf("burst: %d of %d accepted at %.0f req/s (p99 %s ms)", r.Accepted, b.o.BurstJobs, r.Submit.Throughput(), ms(r.Submit.Lat.P(0.99)))
	if rest := time.Until(start.Add(r.Window)); rest > 0 {
		_ = waitFor(ctx, rest+time.Second, func() bool { return time.Since(start) >= r.Window })
	}
	st, err := s.SimStats()
	if err != nil {
		return err
	}
	r.Window = time.Since(start)
	r.Accounts = st.ExecutionsCreated // creates and updates: both are initiations
	r.Account429 = st.RateLimitedByRoute["create_account"] + st.RateLimitedByRoute["update_account"]
	r.AccountCalls = st.Requests["create_account"] + st.Requests["update_account"]
	for _, n := range st.Requests {
		r.Calls += n
	}
	r.Calls429 = st.RateLimited
	r.Finalized = st.Finalizes
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subj := messages.MustSubjects("kyc")
	for name, dst := range map[string]*int{subj.StreamJobs(): &r.Queued, subj.StreamDLQ(): &r.DeadLetters} {
		str, err := js.Stream(ctx, name)
		if err != nil {
			return err
		}
		info, err := str.Info(ctx)
		if err != nil {
			return err
		}
		*dst = int(info.State.Msgs)
	}
	b.o.Logf("burst drain: %d account initiations in %s of %.0f allowed (%.0f%%), 429s %d of %d account calls; queued %d, finalized %d, dead letters %d",
		r.Accounts, r.Window.Round(time.Second), r.Allowed(), 100*float64(r.Accounts)/r.Allowed(), r.Account429, r.AccountCalls, r.Queued, r.Finalized, r.DeadLetters)
	b.r.Burst = r
	return nil
}
