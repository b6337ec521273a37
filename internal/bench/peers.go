package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// This file is the peer run (make bench-peers): kycpipe's end-to-end
// pipeline and the same saga on River (peers/river), one after the other in
// one run, against the same simulator, with the same jobs, load and
// concurrency, measured the same way.

// PeerOptions size the peer run. The embedded Options give the job count
// (E2EJobs), the concurrency, the low-load duration, the directories and
// the profile directory.
type PeerOptions struct {
	Options
	PoolSize       int           // the River peer's pgx pool of River and its workers (default 16)
	IngestPoolSize int           // the River peer's pgx pool of its HTTP routes (default 8)
	FetchCooldown  time.Duration // River's FetchCooldown (default River's 100ms)
	SkipTests      bool          // skip the peer module's tests (they run against the run's PostgreSQL)
	// AsyncCommit adds a second River run with synchronous_commit=off
	// (commits acknowledged before their WAL is flushed, as JetStream
	// acknowledges before it syncs to disk by default): how much of the
	// difference is the fsync per commit.
	AsyncCommit bool
}

func (o PeerOptions) withDefaults() PeerOptions {
	o.Options = o.Options.withDefaults()
	o.PoolSize = cmp.Or(o.PoolSize, 16)
	o.IngestPoolSize = cmp.Or(o.IngestPoolSize, 8)
	o.FetchCooldown = cmp.Or(o.FetchCooldown, 10*time.Millisecond)
	return o
}

// PeerRun is one system's end-to-end run.
type PeerRun struct {
	Name    string
	System  []string // processes whose CPU counts as the system's
	Broker  string   // the system's durable store (nats, postgres)
	Jobs    int
	Elapsed time.Duration // first submission to last decision
	Submit  LoadResult
	Lat     Latencies
	CPU     map[string]time.Duration
	Peak    map[string]int64 // peak memory by process (VmHWM; PostgreSQL: peak total PSS)
	Jumio   map[string]int   // simulator requests by route during the run
	Low     LowLoadResult
	// PostgreSQL only: CPU by process role, and per job commits, WAL
	// records, WAL bytes and WAL syncs (from pg_stat_database, pg_stat_wal).
	PGRoles   map[string]time.Duration
	PGPerJob  map[string]float64
	TopSQL    string // pg_stat_statements, with --profile-dir
	simBefore jumiotest.Stats
}

// Rate is jobs per second from the first submission to the last decision.
func (r PeerRun) Rate() float64 { return float64(r.Jobs) / r.Elapsed.Seconds() }

// CPUPerJob sums the given processes' CPU per job (the system's when none
// are given).
func (r PeerRun) CPUPerJob(names ...string) time.Duration {
	if len(names) == 0 {
		names = r.System
	}
	var sum time.Duration
	for _, n := range names {
		sum += r.CPU[n]
	}
	return sum / time.Duration(max(r.Jobs, 1))
}

// PeakTotal sums the system's peak memory.
func (r PeerRun) PeakTotal() int64 {
	var sum int64
	for _, n := range r.System {
		sum += r.Peak[n]
	}
	return sum
}

// JumioPerJob is the simulator's requests per job (every route).
func (r PeerRun) JumioPerJob() float64 {
	n := 0
	for _, v := range r.Jumio {
		n += v
	}
	return float64(n) / float64(max(r.Jobs, 1))
}

// PeerResults is the peer run.
type PeerResults struct {
	Started      time.Time
	Machine      string
	GoVersion    string
	NATSVersion  string
	PGVersion    string
	RiverVersion string
	BodyBytes    int
	Options      PeerOptions
	LowRate      float64 // the offered load of both low-load runs
	Tests        string  // the peer module's test summary
	Kycpipe      PeerRun
	River        PeerRun
	RiverAsync   *PeerRun // with synchronous_commit=off, when asked for
}

// RunPeers runs the peer comparison.
func RunPeers(ctx context.Context, o PeerOptions) (*PeerResults, error) {
	o = o.withDefaults()
	binDir := filepath.Join(o.WorkDir, "bin")
	o.Logf("building binaries into %s", binDir)
	if err := BuildBinaries(o.ModuleDir, binDir); err != nil {
		return nil, err
	}
	peerDir := filepath.Join(o.ModuleDir, "peers", "river")
	cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "riverpeer"), "./cmd/riverpeer")
	cmd.Dir = peerDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: go build riverpeer: %w\n%s", err, out)
	}
	if err := EnsurePostgres(o.Logf); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	r := &PeerResults{Started: time.Now().UTC(), GoVersion: runtime.Version(), NATSVersion: NATSVersion(binDir), Options: o,
		Machine:   fmt.Sprintf("%d CPUs (%s/%s), host %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host),
		BodyBytes: len(jobBody("size", 0)), RiverVersion: moduleVersion(filepath.Join(peerDir, "go.mod"), "github.com/riverqueue/river")}
	b := &runner{o: o.Options, binDir: binDir, r: &Results{}}

	// The peer module's tests, against a PostgreSQL of their own.
	if !o.SkipTests {
		o.Logf("== peer module tests (go test ./... in peers/river)")
		summary, err := runPeerTests(ctx, peerDir, filepath.Join(o.WorkDir, "peer-tests.log"))
		if err != nil {
			return r, err
		}
		r.Tests = summary
		o.Logf("%s", summary)
	}

	o.Logf("== kycpipe end to end")
	var err error
	if r.Kycpipe, err = b.peerKycpipe(ctx, o, 0); err != nil {
		return r, fmt.Errorf("bench: kycpipe: %w", err)
	}
	r.LowRate = r.Kycpipe.Rate() / 10
	o.Logf("== River end to end")
	if r.River, err = b.peerRiver(ctx, o, "River", r.LowRate, &r.PGVersion); err != nil {
		return r, fmt.Errorf("bench: river: %w", err)
	}
	if o.AsyncCommit {
		o.Logf("== River end to end, synchronous_commit=off")
		async, err := b.peerRiver(ctx, o, "River (synchronous_commit=off)", r.LowRate, &r.PGVersion, "synchronous_commit=off")
		if err != nil {
			return r, fmt.Errorf("bench: river, synchronous_commit=off: %w", err)
		}
		r.RiverAsync = &async
	}
	return r, nil
}

// runPeerTests starts a PostgreSQL for the peer module's tests and runs
// them (go test -race), returning the summary line.
func runPeerTests(ctx context.Context, peerDir, logFile string) (string, error) {
	pg, err := StartPostgres(ctx)
	if err != nil {
		return "", err
	}
	defer pg.Stop()
	if err := pg.CreateDB("peertests"); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-race", "-count=1", "./...")
	cmd.Dir = peerDir
	cmd.Env = append(os.Environ(), "KYCPIPE_PEERS_DATABASE_URL="+pg.URL("peertests"))
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(logFile, out, 0o644)
	if err != nil {
		return "", fmt.Errorf("bench: peer module tests failed (log %s): %w\n%s", logFile, err, tail(string(out), 3000))
	}
	var oks []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(line, "ok ") {
			oks = append(oks, strings.Join(strings.Fields(line), " "))
		}
	}
	return "peer module tests passed: " + strings.Join(oks, "; "), nil
}

// peerKycpipe is the end-to-end run of `make bench` (stages as separate
// processes, worker and retriever concurrency o.Concurrency, kycpipe's own
// shared rate limits off), followed by the low-load run at lowRate (10% of
// its own rate when 0).
func (b *runner) peerKycpipe(ctx context.Context, o PeerOptions, lowRate float64) (PeerRun, error) {
	run := PeerRun{Name: "kycpipe", System: []string{"ingest", "worker", "retriever", "nats"}, Broker: "nats",
		Jobs: o.E2EJobs, CPU: map[string]time.Duration{}, Peak: map[string]int64{}}
	s, err := b.stack(ctx, "peers-kycpipe")
	if err != nil {
		return run, err
	}
	defer s.Close()
	if o.ProfileDir != "" {
		s.ProfileDir = filepath.Join(o.ProfileDir, "kycpipe")
		if err := os.MkdirAll(s.ProfileDir, 0o755); err != nil {
			return run, err
		}
	}
	if err := s.StartSim(ctx); err != nil {
		return run, err
	}
	c := strconv.Itoa(o.Concurrency)
	env := append([]string{"KYCPIPE_WORKER_CONCURRENCY=" + c, "KYCPIPE_RETRIEVER_CONCURRENCY=" + c}, unthrottled...)
	if err := s.StartStages(ctx, env, "ingest", "worker", "retriever"); err != nil {
		return run, err
	}
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		return run, err
	}
	defer nc.Close()
	subj := messages.MustSubjects("kyc")
	w, err := watchDecisions(nc, subj, run.Jobs)
	if err != nil {
		return run, err
	}
	if run.simBefore, err = s.SimStats(); err != nil {
		return run, err
	}
	before := s.Stats()
	if err := b.submitAndWait(ctx, &run, s.IngestAddr, "kycpipe", w); err != nil {
		return run, err
	}
	w.stop()
	after := s.Stats()
	for name, st := range after {
		run.CPU[name] = st.CPU - before[name].CPU
	}
	if err := run.simDelta(s.SimStats); err != nil {
		return run, err
	}
	o.Logf("kycpipe: %d jobs in %s = %.0f jobs/s; system CPU %s ms/job (nats %s); p50 %s ms", run.Jobs, run.Elapsed.Round(time.Millisecond),
		run.Rate(), ms(run.CPUPerJob()), ms(run.CPUPerJob("nats")), ms(run.Lat.P(0.5)))

	if lowRate == 0 {
		lowRate = run.Rate() / 10
	}
	run.Low = LowLoadResult{Rate: lowRate, Jobs: int(lowRate * o.LowLoadFor.Seconds())}
	if w, err = watchDecisions(nc, subj, run.Low.Jobs); err != nil {
		return run, err
	}
	if err := b.lowLoad(ctx, &run, s.IngestAddr, "kycpipe-low", w); err != nil {
		return run, err
	}
	w.stop()
	for name, st := range s.Stats() {
		run.Peak[name] = st.PeakRSS
	}
	return run, nil
}

// peerRiver is the same run against the River peer: a fresh simulator, a
// fresh PostgreSQL (initdb) and the peer process.
func (b *runner) peerRiver(ctx context.Context, o PeerOptions, name string, lowRate float64, pgVersion *string, settings ...string) (PeerRun, error) {
	run := PeerRun{Name: name, System: []string{"riverpeer", "postgres"}, Broker: "postgres",
		Jobs: o.E2EJobs, CPU: map[string]time.Duration{}, Peak: map[string]int64{}}
	b.n++
	dir := filepath.Join(o.WorkDir, fmt.Sprintf("%d-peers-river", b.n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return run, err
	}
	extra := settings
	if o.ProfileDir != "" {
		extra = append(extra, "shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all")
	}
	pg, err := StartPostgres(ctx, extra...)
	if err != nil {
		return run, err
	}
	defer func() {
		if log, err := os.ReadFile(filepath.Join(pg.Dir, "postgres.log")); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "postgres.log"), log, 0o644)
		}
		pg.Stop()
	}()
	*pgVersion = pg.Version()
	const db = "peer"
	if err := pg.CreateDB(db); err != nil {
		return run, err
	}
	peerBin := filepath.Join(b.binDir, "riverpeer")
	if out, err := exec.CommandContext(ctx, peerBin, "migrate", "-database-url", pg.URL(db)).CombinedOutput(); err != nil {
		return run, fmt.Errorf("riverpeer migrate: %w\n%s", err, out)
	}
	if o.ProfileDir != "" {
		if _, err := pg.Query(db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
			return run, err
		}
	}

	// The simulator, as in kycpipe's stack.
	simAddr, err := freeAddr()
	if err != nil {
		return run, err
	}
	sim, err := procs.StartArgs("jumiosim", filepath.Join(b.binDir, "jumiosim"), []string{"-addr", simAddr, "-log-format", "json"}, nil, filepath.Join(dir, "jumiosim.log"))
	if err != nil {
		return run, err
	}
	defer sim.Stop(15 * time.Second)
	simURL := "http://" + simAddr
	if err := waitFor(ctx, 20*time.Second, func() bool { return httpOK(simURL + "/_sim/stats") }); err != nil {
		return run, fmt.Errorf("simulator: %w", err)
	}
	simStats := func() (jumiotest.Stats, error) {
		var st jumiotest.Stats
		body, err := httpGet(simURL+"/_sim/stats", "")
		if err != nil {
			return st, err
		}
		return st, json.Unmarshal([]byte(body), &st)
	}

	addr, err := freeAddr()
	if err != nil {
		return run, err
	}
	c := strconv.Itoa(o.Concurrency)
	args := []string{"serve", "-database-url", pg.URL(db), "-addr", addr, "-api-keys", benchAPIKey,
		"-verify-workers", c, "-retrieve-workers", c, "-pool-size", strconv.Itoa(o.PoolSize), "-ingest-pool-size", strconv.Itoa(o.IngestPoolSize), "-fetch-cooldown", o.FetchCooldown.String()}
	if o.ProfileDir != "" {
		pdir := filepath.Join(o.ProfileDir, profileName(name))
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			return run, err
		}
		args = append(args, "-cpu-profile", filepath.Join(pdir, "riverpeer.pprof"))
	}
	env := []string{"JUMIO_BASE_URL=" + simURL, "JUMIO_CLIENT_ID=" + jumiotest.DefaultClientID,
		"JUMIO_CLIENT_SECRET=" + jumiotest.DefaultClientSecret, "JUMIO_USER_AGENT=kycpipe-bench/1.0"}
	peer, err := procs.StartArgs("riverpeer", peerBin, args, env, filepath.Join(dir, "riverpeer.log"))
	if err != nil {
		return run, err
	}
	defer peer.Stop(30 * time.Second)
	if err := waitFor(ctx, 30*time.Second, func() bool { return httpOK("http://"+addr+"/healthz") || !peer.Running() }); err != nil || !peer.Running() {
		return run, fmt.Errorf("riverpeer did not start: %v\n%s", err, tail(peer.Output(), 2000))
	}

	// Decisions: the watcher LISTENs on the outbox's NOTIFY channel and
	// prints each job ID as it is committed.
	watcher, err := startPGWatcher(ctx, peerBin, pg.URL(db), filepath.Join(dir, "watcher.log"))
	if err != nil {
		return run, err
	}
	defer watcher.stop()

	stats := func() (map[string]ProcStat, TreeStat, error) {
		ps, err := ReadProc(peer.Cmd.Process.Pid)
		if err != nil {
			return nil, TreeStat{}, err
		}
		tree, err := ReadTree(pg.Pid())
		return map[string]ProcStat{"riverpeer": ps}, tree, err
	}
	var peakPSS int64
	var peakMu sync.Mutex
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			if ts, err := ReadTree(pg.Pid()); err == nil {
				peakMu.Lock()
				peakPSS = max(peakPSS, ts.PSS)
				peakMu.Unlock()
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer func() { stopSampling(); <-sampled }()

	pgCounters := func() (map[string]float64, error) {
		out, err := pg.Query(db, "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()), wal_records, wal_bytes, wal_sync, wal_write FROM pg_stat_wal")
		if err != nil {
			return nil, err
		}
		f := strings.Split(out, "|")
		if len(f) != 5 {
			return nil, fmt.Errorf("pg_stat_wal: %q", out)
		}
		m := map[string]float64{}
		for i, k := range []string{"commits", "WAL records", "WAL bytes", "WAL syncs", "WAL writes"} {
			m[k], _ = strconv.ParseFloat(f[i], 64)
		}
		return m, nil
	}

	w := newDecisionWatch(run.Jobs)
	watcher.follow(w)
	if run.simBefore, err = simStats(); err != nil {
		return run, err
	}
	countersBefore, err := pgCounters()
	if err != nil {
		return run, err
	}
	procBefore, treeBefore, err := stats()
	if err != nil {
		return run, err
	}
	simBefore, err := ReadProc(sim.Cmd.Process.Pid)
	if err != nil {
		return run, err
	}
	if err := b.submitAndWait(ctx, &run, addr, "river", w); err != nil {
		return run, err
	}
	procAfter, treeAfter, err := stats()
	if err != nil {
		return run, err
	}
	countersAfter, err := pgCounters()
	if err != nil {
		return run, err
	}
	run.CPU["riverpeer"] = procAfter["riverpeer"].CPU - procBefore["riverpeer"].CPU
	run.CPU["postgres"] = treeAfter.CPU - treeBefore.CPU
	run.PGRoles = map[string]time.Duration{}
	for role, d := range treeAfter.ByRole {
		run.PGRoles[role] = d - treeBefore.ByRole[role]
	}
	run.PGPerJob = map[string]float64{}
	for k, v := range countersAfter {
		run.PGPerJob[k] = (v - countersBefore[k]) / float64(run.Jobs)
	}
	if simAfter, err := ReadProc(sim.Cmd.Process.Pid); err == nil {
		run.CPU["jumiosim"] = simAfter.CPU - simBefore.CPU
	}
	if err := run.simDelta(simStats); err != nil {
		return run, err
	}
	o.Logf("%s: %d jobs in %s = %.0f jobs/s; system CPU %s ms/job (postgres %s); p50 %s ms; %.1f commits/job", run.Name, run.Jobs, run.Elapsed.Round(time.Millisecond),
		run.Rate(), ms(run.CPUPerJob()), ms(run.CPUPerJob("postgres")), ms(run.Lat.P(0.5)), run.PGPerJob["commits"])

	run.Low = LowLoadResult{Rate: lowRate, Jobs: int(lowRate * o.LowLoadFor.Seconds())}
	w = newDecisionWatch(run.Low.Jobs)
	watcher.follow(w)
	if err := b.lowLoad(ctx, &run, addr, "river-low", w); err != nil {
		return run, err
	}
	if ps, err := ReadProc(peer.Cmd.Process.Pid); err == nil {
		run.Peak["riverpeer"] = ps.PeakRSS
	}
	peakMu.Lock()
	run.Peak["postgres"] = peakPSS
	peakMu.Unlock()
	if o.ProfileDir != "" {
		top, err := pg.Query(db, `SELECT calls, round(total_exec_time::numeric, 1), round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1), left(regexp_replace(query, '\s+', ' ', 'g'), 160)
			FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`)
		if err == nil {
			run.TopSQL = top
			_ = os.WriteFile(filepath.Join(o.ProfileDir, profileName(name), "pg_stat_statements.txt"), []byte(top+"\n"), 0o644)
		}
	}
	return run, nil
}

// simDelta records the simulator's requests by route since simBefore.
func (r *PeerRun) simDelta(stats func() (jumiotest.Stats, error)) error {
	st, err := stats()
	if err != nil {
		return err
	}
	r.Jumio = map[string]int{}
	for route, n := range st.Requests {
		if d := n - r.simBefore.Requests[route]; d > 0 {
			r.Jumio[route] = d
		}
	}
	return nil
}

// submitAndWait submits run.Jobs jobs by 64 connections as fast as the
// system takes them, and waits for every decision.
func (b *runner) submitAndWait(ctx context.Context, run *PeerRun, addr, name string, w *decisionWatch) error {
	run.Submit = ClosedLoop(ctx, b.target(addr, name, w.markSent(name)), 64, 10*time.Minute, int64(run.Jobs))
	if ok := run.Submit.OK(); ok != run.Jobs {
		return fmt.Errorf("%d of %d submissions accepted (%v, %d errors)", ok, run.Jobs, run.Submit.Status, run.Submit.Errors)
	}
	if err := w.wait(ctx, 10*time.Minute); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	for _, t := range w.decided {
		if t.After(last) {
			last = t
		}
	}
	run.Elapsed = last.Sub(w.first)
	run.Lat = w.lat
	run.Lat.sort()
	return nil
}

// lowLoad offers run.Low.Rate jobs per second, open loop, for the
// configured time, and records the latencies.
func (b *runner) lowLoad(ctx context.Context, run *PeerRun, addr, name string, w *decisionWatch) error {
	if run.Low.Jobs < 1 {
		return nil
	}
	res := OpenLoop(ctx, b.target(addr, name, w.markSent(name)), 16, run.Low.Rate, b.o.LowLoadFor)
	if ok := res.OK(); ok != run.Low.Jobs {
		return fmt.Errorf("low load: %d of %d submissions accepted (%v)", ok, run.Low.Jobs, res.Status)
	}
	if err := w.wait(ctx, 5*time.Minute); err != nil {
		return fmt.Errorf("low load: %w", err)
	}
	w.mu.Lock()
	run.Low.Lat = w.lat
	w.mu.Unlock()
	run.Low.Lat.sort()
	b.o.Logf("%s at %.0f jobs/s: submit to decision p50 %s ms, p99 %s ms", run.Name, run.Low.Rate, ms(run.Low.Lat.P(0.5)), ms(run.Low.Lat.P(0.99)))
	return nil
}

// newDecisionWatch is a decisionWatch fed by something other than NATS
// (the PostgreSQL watcher).
func newDecisionWatch(want int) *decisionWatch {
	return &decisionWatch{sent: map[string]time.Time{}, decided: map[string]time.Time{}, done: make(chan struct{}), want: want}
}

// decide records the decision of job id at time at.
func (w *decisionWatch) decide(id string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.decided[id]; dup {
		return
	}
	w.decided[id] = at
	if t, ok := w.sent[id]; ok {
		w.lat = append(w.lat, at.Sub(t))
	}
	if len(w.decided) == w.want {
		close(w.done)
	}
}

// pgWatcher runs `riverpeer watch` and hands each decided job ID, with the
// time its line arrived, to the current decisionWatch.
type pgWatcher struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	w    *decisionWatch
	done chan struct{}
}

func startPGWatcher(ctx context.Context, bin, url, logFile string) (*pgWatcher, error) {
	cmd := exec.Command(bin, "watch", "-database-url", url)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	pw := &pgWatcher{cmd: cmd, done: make(chan struct{})}
	listening := make(chan struct{})
	go func() {
		defer close(pw.done)
		defer lf.Close()
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			now := time.Now()
			if first {
				first = false
				close(listening)
				continue
			}
			pw.mu.Lock()
			w := pw.w
			pw.mu.Unlock()
			if w != nil {
				w.decide(sc.Text(), now)
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case <-listening:
		return pw, nil
	case <-pw.done:
		return nil, fmt.Errorf("riverpeer watch exited (log %s)", logFile)
	case <-time.After(30 * time.Second):
		pw.stop()
		return nil, fmt.Errorf("riverpeer watch did not start listening (log %s)", logFile)
	case <-ctx.Done():
		pw.stop()
		return nil, ctx.Err()
	}
}

func (pw *pgWatcher) follow(w *decisionWatch) {
	pw.mu.Lock()
	pw.w = w
	pw.mu.Unlock()
}

func (pw *pgWatcher) stop() {
	_ = pw.cmd.Process.Kill()
	<-pw.done
}

// profileName is a run's directory name under the profile directory.
func profileName(run string) string {
	if run == "River" {
		return "river"
	}
	return "river-async"
}

// moduleVersion reads the required version of module mod from a go.mod.
func moduleVersion(gomod, mod string) string {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == mod {
			return f[1]
		}
	}
	return "unknown"
}

// ratio formats a/b as "0.00×".
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
