// Package bench is kycpipe's benchmark harness (make bench): raw JetStream
// baselines, a minimal reference ingest, the real ingest, the pipeline end
// to end with every stage a separate process, a latency-bound run, a burst
// under Jumio's rate limits and the token economy, all in one run on the
// same machine, reported side by side.
package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Options size the run. The defaults are the full `make bench`; Quick is a
// smoke run of every step in a few seconds.
type Options struct {
	ModuleDir string
	WorkDir   string
	Self      string // this binary, run as "refserver" for the reference server
	Logf      func(format string, args ...any)

	LoadDuration  time.Duration // each closed-loop HTTP load (default 10s)
	SweepDuration time.Duration // each point of the offered-load sweep (default 4s)
	E2EJobs       int           // jobs of the end-to-end run (default 20000)
	ClusterJobs   int           // jobs of the end-to-end run on a three-node cluster (default E2EJobs/2)
	LowLoadFor    time.Duration // the 10%-load latency run (default 10s)
	BoundC        int           // worker concurrency of the latency-bound run (default 64)
	BoundJobs     int           // jobs of the latency-bound run (default 3000)
	CallLatency   time.Duration // simulator latency per call in that run (default 200ms)
	BurstJobs     int           // submissions of the burst (default 50000)
	DrainWindow   time.Duration // how long the drain under rate limits is watched (default 60s)
	Concurrency   int           // worker and retriever concurrency of the end-to-end run (default 256)
	ProfileDir    string        // stages of the ingest and end-to-end runs write CPU profiles here, and the console step its pages
	Only          []string      // run only these steps (ingest, e2e, cluster, bound, burst, webhooks, erasure, console); empty: all
	ErasureStored int           // jobs stored in the large erasure run (default 1,000,000; the small one stores 1%)
	ErasureCount  int           // jobs erased in each erasure run (default 1000)
	// WebhookDeliveries is the number of decisions of the webhook
	// throughput run (default 5000).
	WebhookDeliveries int
	// Baseline is the commit the ingest and end-to-end steps are compared
	// with, built from git (default DefaultBaseline; "none": no comparison).
	Baseline string
	// CacheDir holds baseline builds (default DefaultCacheDir()).
	CacheDir string
	// Pairs is the number of end-to-end pairs (current and baseline, in
	// ABBA order) of the comparison (default 2).
	Pairs       int
	ConsoleJobs int // jobs seeded for the console step (default 1,000,000)
	// NATSEnv are KEY=VALUE environment variables for every nats-server
	// the steps start (e.g. GOMEMLIMIT, GOGC), beside this process's own.
	NATSEnv []string
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defi := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	def(&o.LoadDuration, 10*time.Second)
	def(&o.SweepDuration, 4*time.Second)
	def(&o.LowLoadFor, 10*time.Second)
	def(&o.CallLatency, 200*time.Millisecond)
	def(&o.DrainWindow, 60*time.Second)
	defi(&o.E2EJobs, 20000)
	defi(&o.ClusterJobs, o.E2EJobs/2)
	defi(&o.BoundC, 64)
	defi(&o.BoundJobs, 3000)
	defi(&o.BurstJobs, 50000)
	defi(&o.Concurrency, 256)
	defi(&o.WebhookDeliveries, 5000)
	defi(&o.Pairs, 2)
	if o.Baseline == "" {
		o.Baseline = DefaultBaseline
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	defi(&o.ConsoleJobs, 1_000_000)
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Quick returns options for a smoke run.
func Quick(o Options) Options {
	o.LoadDuration, o.SweepDuration, o.LowLoadFor, o.DrainWindow = time.Second, 500*time.Millisecond, time.Second, 3*time.Second
	o.E2EJobs, o.BoundJobs, o.BurstJobs, o.BoundC = 300, 60, 500, 8
	o.ClusterJobs = 150
	o.CallLatency = 20 * time.Millisecond
	o.ErasureStored, o.ErasureCount = 2000, 20
	o.WebhookDeliveries = 300
	o.Pairs = 1
	o.ConsoleJobs = 5000
	return o
}

// Results holds every figure of a run.
type Results struct {
	Started     time.Time
	Machine     string
	GoVersion   string
	NATSVersion string
	BodyBytes   int
	Options     Options

	RawPublish RawResult
	RawConsume RawResult
	Reference  map[int]LoadResult // by connections
	Ingest     map[int]LoadResult
	Sweep      []SweepPoint
	IngestPeak ProcStat

	E2E     E2EResult
	LowLoad LowLoadResult
	// Cluster is the end-to-end run on a three-node cluster (step
	// "cluster").
	Cluster E2EResult
	Bound   BoundResult
	Burst   BurstResult
	Erasure ErasureResult

	Webhooks WebhookResult

	// The comparison with the baseline commit (nil without one):
	// BaselineIngest is its ingest in the same alternation as the
	// reference and the current ingest; Compare the end-to-end pairs.
	BaselineIngest map[int]LoadResult
	Compare        *Comparison
	// Loads are the machine's load averages around each step.
	Loads   []LoadNote
	Console ConsoleResult
}

// SweepPoint is one offered load of the sweep, for ingest and the reference.
type SweepPoint struct {
	Fraction          float64
	Ingest, Reference LoadResult
}

// Run runs every step.
func Run(ctx context.Context, o Options) (*Results, error) {
	o = o.withDefaults()
	binDir := filepath.Join(o.WorkDir, "bin")
	o.Logf("building binaries into %s", binDir)
	if err := BuildBinaries(o.ModuleDir, binDir); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	r := &Results{Started: time.Now().UTC(), GoVersion: runtime.Version(), NATSVersion: NATSVersion(binDir), Options: o,
		Machine:   fmt.Sprintf("%d CPUs (%s/%s), host %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, host),
		BodyBytes: len(jobBody("size", 0)), Reference: map[int]LoadResult{}, Ingest: map[int]LoadResult{}}
	b := &runner{o: o, binDir: binDir, r: r}
	if o.Baseline != "none" && (len(o.Only) == 0 || slices.Contains(o.Only, "ingest") || slices.Contains(o.Only, "e2e")) {
		base, err := BuildBaseline(ctx, o.ModuleDir, o.Baseline, o.CacheDir, o.Logf)
		if err != nil {
			return nil, err
		}
		b.base = &base
		r.BaselineIngest = map[int]LoadResult{}
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ingest", b.ingest},
		{"e2e", b.e2e},
		{"cluster", b.cluster},
		{"bound", b.bound},
		{"burst", b.burst},
		{"webhooks", b.webhooks},
		{"erasure", b.erasure},
		{"console", b.console},
	}
	for _, st := range steps {
		if len(o.Only) > 0 && !slices.Contains(o.Only, st.name) {
			continue
		}
		o.Logf("== %s (load average %s)", st.name, loadAvg())
		note := LoadNote{Step: st.name, At: time.Now().UTC(), Before: loadAvg()}
		if err := st.fn(ctx); err != nil {
			return r, fmt.Errorf("bench: %s: %w", st.name, err)
		}
		note.After = loadAvg()
		r.Loads = append(r.Loads, note)
	}
	return r, nil
}

type runner struct {
	o      Options
	binDir string
	r      *Results
	n      int
	base   *Baseline // nil: no comparison
}

func (b *runner) stack(ctx context.Context, name string) (*Stack, error) {
	b.n++
	s, err := NewStack(ctx, b.binDir, filepath.Join(b.o.WorkDir, fmt.Sprintf("%d-%s", b.n, name)), b.o.NATSEnv)
	if err == nil && b.o.ProfileDir != "" && (name == "ingest" || name == "e2e") {
		s.ProfileDir = filepath.Join(b.o.ProfileDir, name)
		err = os.MkdirAll(s.ProfileDir, 0o755)
	}
	return s, err
}

// jobBody is an API-channel prepared-data job of about 1 KB (with a
// 3-digit n): the job of the
// end-to-end run, and the body both HTTP servers decode.
func jobBody(run string, n int64) []byte {
	id := run + "-" + strconv.FormatInt(n, 10)
	return fmt.Appendf(nil, `{"jobId":"%s","customerInternalReference":"bench-%s","userReference":"crm-customer-record-%d",`+
		`"workflowDefinition":{"key":10148},"channel":"API","region":"amer-1","tokenLifetime":"30m",`+
		`"userConsent":{"userIp":"203.0.113.7","userLocation":{"country":"USA","state":"IN"},"consent":{"obtained":"yes","obtainedAt":"2026-11-01T10:00:00Z"}},`+
		`"reportingCriteria":"onboarding-2026-q4-retail-banking-checking-account",`+
		`"preparedData":{"firstName":"Cortez","middleName":"Alexander","lastName":"Crook","suffix":"Jr","personalNumber":"PN-4471-2290","email":"cortez.crook@example.com","phoneNumber":"+18009376310","phoneNumber2":"+18009376311",`+
		`"dateOfBirth":"1990-08-10","socialSecurityNumber":"123-45-6789","sex":"M","nationality":"USA","ipAddress":"176.80.185.187",`+
		`"address":{"line1":"1302 Fayette Drive","line2":"Apartment 4","postalCode":"46816","city":"Fort Wayne","subdivision":"IN","country":"USA"},`+
		`"kyc":{"registrationDate":"2016-06-07","registrationIpAddress":"176.80.185.187"}}}`, id, id, n)
}

func (b *runner) target(addr, run string, sent func(int64, []byte, time.Time)) Target {
	key := b.r.Options.apiKeyHeader()
	return Target{Addr: addr, Path: "/v1/verifications",
		Header: func(int64) string { return key },
		Body:   func(n int64) []byte { return jobBody(run, n) },
		Sent:   sent,
	}
}

func (o Options) apiKeyHeader() string { return "Authorization: Bearer " + benchAPIKey + "\r\n" }

// ingest measures the raw JetStream baselines, the reference server and
// ingest on one nats-server, and sweeps offered load for the chart.
func (b *runner) ingest(ctx context.Context) error {
	s, err := b.stack(ctx, "ingest")
	if err != nil {
		return err
	}
	defer s.Close()
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	if b.r.RawPublish, err = RawPublish(ctx, nc, 64, 1024, b.o.LoadDuration); err != nil {
		return err
	}
	b.o.Logf("raw publish: %.0f msg/s, p99 %s ms", b.r.RawPublish.Rate(), ms(b.r.RawPublish.Lat.P(0.99)))
	if b.r.RawConsume, err = RawConsume(ctx, nc); err != nil {
		return err
	}
	b.o.Logf("raw consume+ack: %.0f msg/s", b.r.RawConsume.Rate())
	js, _ := jetstream.New(nc)
	_ = js.DeleteStream(ctx, rawStream)

	refAddr, err := freeAddr()
	if err != nil {
		return err
	}
	if err := s.StartProcess(ctx, "reference", b.o.Self, []string{"refserver", "--nats", s.NATSURL, "--addr", refAddr}, "http://"+refAddr+"/healthz"); err != nil {
		return err
	}
	// Ingest alone (no worker or retriever), with the defaults of a
	// production deployment: API key, strict validation, idempotency.
	if err := s.StartStages(ctx, nil, "ingest"); err != nil {
		return err
	}
	// The baseline's ingest, on the same nats-server (its own streams are
	// those of the same prefix: both only publish jobs, nobody consumes).
	baseAddr := ""
	if b.base != nil {
		if baseAddr, err = s.StartBaselineIngest(ctx, b.base.BinDir); err != nil {
			return err
		}
	}
	run := 0
	measure := func(name, addr string, conns int) LoadResult {
		run++
		before, self := s.Stats(), selfCPU()
		res := ClosedLoop(ctx, b.target(addr, fmt.Sprintf("%s%d", name, run), nil), conns, b.o.LoadDuration, 0)
		after := s.Stats()
		res.CPU = map[string]time.Duration{"loadgen": selfCPU() - self}
		for n, st := range after {
			res.CPU[n] = st.CPU - before[n].CPU
		}
		b.o.Logf("%s at %d connections: %.0f req/s, p50 %s ms, p99 %s ms, status %v, errors %d", name, conns, res.Throughput(), ms(res.Lat.P(0.5)), ms(res.Lat.P(0.99)), res.Status, res.Errors)
		return res
	}
	for _, conns := range []int{64, 256} {
		// Alternate, so that drift of a shared machine hits all alike.
		b.r.Reference[conns] = measure("ref", refAddr, conns)
		b.r.Ingest[conns] = measure("ingest", s.IngestAddr, conns)
		if baseAddr != "" {
			b.r.BaselineIngest[conns] = measure("ingest-base", baseAddr, conns)
		}
	}
	if st, err := s.Stat("ingest"); err == nil {
		b.r.IngestPeak = st
	}
	// Offered-load sweep: fractions of the reference's closed-loop rate.
	top := b.r.Reference[64].Throughput()
	for _, f := range []float64{0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.2} {
		rate := math.Max(f*top, 10)
		run++
		p := SweepPoint{Fraction: f}
		p.Reference = OpenLoop(ctx, b.target(refAddr, fmt.Sprintf("sref%d", run), nil), 256, rate, b.o.SweepDuration)
		p.Ingest = OpenLoop(ctx, b.target(s.IngestAddr, fmt.Sprintf("sing%d", run), nil), 256, rate, b.o.SweepDuration)
		b.o.Logf("sweep %.0f req/s offered: ingest %.0f (p99 %s ms), reference %.0f (p99 %s ms)", rate,
			p.Ingest.Throughput(), ms(p.Ingest.Lat.P(0.99)), p.Reference.Throughput(), ms(p.Reference.Lat.P(0.99)))
		b.r.Sweep = append(b.r.Sweep, p)
	}
	if st, err := s.Stat("ingest"); err == nil {
		b.r.IngestPeak = st
	}
	return nil
}

func selfCPU() time.Duration {
	st, _ := ReadProc(os.Getpid())
	return st.CPU
}

// decisionWatch follows decision and finalized events on core NATS
// subscriptions and times each job from submission.
type decisionWatch struct {
	mu        sync.Mutex
	sent      map[string]time.Time
	decided   map[string]time.Time
	finalized []time.Time
	lat       Latencies
	first     time.Time
	done      chan struct{}
	want      int
	subs      []*nats.Subscription
}

func watchDecisions(nc *nats.Conn, subj messages.Subjects, want int) (*decisionWatch, error) {
	w := &decisionWatch{sent: map[string]time.Time{}, decided: map[string]time.Time{}, done: make(chan struct{}), want: want}
	ds, err := nc.Subscribe(subj.Decisions(), func(m *nats.Msg) {
		id := m.Header.Get(messages.HeaderJobID)
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, dup := w.decided[id]; dup {
			return
		}
		w.decided[id] = now
		if t, ok := w.sent[id]; ok {
			w.lat = append(w.lat, now.Sub(t))
		}
		if len(w.decided) == w.want {
			close(w.done)
		}
	})
	if err != nil {
		return nil, err
	}
	fs, err := nc.Subscribe(subj.Event("finalized"), func(m *nats.Msg) {
		w.mu.Lock()
		w.finalized = append(w.finalized, time.Now())
		w.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	for _, s := range []*nats.Subscription{ds, fs} {
		_ = s.SetPendingLimits(-1, -1)
	}
	w.subs = []*nats.Subscription{ds, fs}
	return w, nil
}

func (w *decisionWatch) markSent(run string) func(int64, []byte, time.Time) {
	return func(n int64, _ []byte, at time.Time) {
		w.mu.Lock()
		if w.first.IsZero() {
			w.first = at
		}
		w.sent[run+"-"+strconv.FormatInt(n, 10)] = at
		w.mu.Unlock()
	}
}

func (w *decisionWatch) stop() {
	for _, s := range w.subs {
		_ = s.Unsubscribe()
	}
}

func (w *decisionWatch) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		w.mu.Lock()
		defer w.mu.Unlock()
		return fmt.Errorf("%d of %d decisions after %s", len(w.decided), w.want, timeout)
	}
}
