// Package soak is kycpipe's chaos and soak harness: it runs ingest, several
// worker and retriever processes and the Jumio simulator with faults on,
// submits jobs, and meanwhile SIGKILLs and restarts workers and retrievers,
// restarts the NATS server (or, in cluster mode, kills and restarts one node
// of a 3-node JetStream cluster). At the end it checks the pipeline's
// promises: nothing lost, one Jumio execution per job, one decision per
// execution, at most one finalize per execution.
package soak

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Options configures a run.
type Options struct {
	BinDir           string        // ingest, worker, retriever binaries (required)
	WorkDir          string        // NATS stores and process logs (required)
	Cluster          bool          // a 3-node JetStream cluster with R3 streams instead of one server
	Duration         time.Duration // how long jobs are submitted (default 10m)
	Jobs             int           // jobs submitted over Duration (default 5000)
	Workers          int           // default 3
	Retrievers       int           // default 2
	KillEvery        time.Duration // mean time between SIGKILLs of a worker or retriever (default 20s)
	NATSRestartEvery time.Duration // time between NATS restarts / node losses (default 3m)
	DrainTimeout     time.Duration // how long to wait for the last jobs after the load (default 5m)
	NoFaults         bool          // turn off Jumio fault injection
	// SimRateLimits makes the simulator enforce Jumio's per-tenant limits;
	// ProcessEnv is added to every process's environment (after the
	// harness's own settings, so it wins).
	SimRateLimits *jumiotest.RateLimits
	ProcessEnv    []string
	Seed          uint64
	Progress      io.Writer // progress lines (default: discarded)
}

func (o Options) withDefaults() Options {
	if o.Duration == 0 {
		o.Duration = 10 * time.Minute
	}
	if o.Jobs == 0 {
		o.Jobs = 5000
	}
	if o.Workers == 0 {
		o.Workers = 3
	}
	if o.Retrievers == 0 {
		o.Retrievers = 2
	}
	if o.KillEvery == 0 {
		o.KillEvery = 20 * time.Second
	}
	if o.NATSRestartEvery == 0 {
		o.NATSRestartEvery = 3 * time.Minute
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 5 * time.Minute
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Invariant is one checked promise.
type Invariant struct {
	Name  string
	Value string
	Want  string
	OK    bool
}

// Report is the outcome of a run.
type Report struct {
	Mode                                  string
	Seed                                  uint64
	LoadDuration, DrainDuration           time.Duration
	Submitted, Accepted, NotAccepted      int
	Decided, DeadLettered, Lost           int
	DecidedAndDeadLettered                int
	DecisionsByType                       map[string]int
	Kills, NATSRestarts                   int
	GracefulRestarts                      int
	FaultsInjected, LatencySpikes         int
	JumioCalls, Jumio429, Jumio429Account int
	AccountCalls                          int
	CallbacksSent, CallbacksDropped       int
	TokenRequests, TokensIssued           int
	AmbiguousCreates                      int
	MaxExecutionsPerJob                   int
	JobsWithMultipleExecutions            int
	UndetectedMultipleExecutions          int // of those, jobs the worker did not flag ambiguous
	MaxDecisionsPerExecution              int
	ExecutionsWithMultipleDecisions       int
	MaxFinalizesPerExecution              int
	Invariants                            []Invariant
}

// OK reports whether every invariant holds.
func (r *Report) OK() bool {
	for _, inv := range r.Invariants {
		if !inv.OK {
			return false
		}
	}
	return len(r.Invariants) > 0
}

// OKExceptFlaggedDuplicates is OK, except that jobs with a second Jumio
// account are accepted when the worker flagged every one of them ambiguous:
// a worker killed while Jumio creates an account cannot know it (Jumio's
// account API has no idempotency key), so that invariant is a measurement.
// A duplicate the worker did not flag still fails.
func (r *Report) OKExceptFlaggedDuplicates() bool {
	for i, inv := range r.Invariants {
		if !inv.OK && !(i == 1 && r.UndetectedMultipleExecutions == 0) {
			return false
		}
	}
	return len(r.Invariants) > 0
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| invariant | value | required | |\n| --- | --- | --- | --- |\n")
	for _, inv := range r.Invariants {
		mark := "PASS"
		if !inv.OK {
			mark = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", inv.Name, inv.Value, inv.Want, mark)
	}
	fmt.Fprintf(&b, "\n| run | |\n| --- | --- |\n")
	rows := [][2]string{
		{"mode", r.Mode}, {"seed", strconv.FormatUint(r.Seed, 10)},
		{"load phase / drain", fmt.Sprintf("%s / %s", r.LoadDuration.Round(time.Second), r.DrainDuration.Round(time.Second))},
		{"jobs submitted / accepted / never accepted", fmt.Sprintf("%d / %d / %d", r.Submitted, r.Accepted, r.NotAccepted)},
		{"decided / dead-lettered / both / lost", fmt.Sprintf("%d / %d / %d / %d", r.Decided, r.DeadLettered, r.DecidedAndDeadLettered, r.Lost)},
		{"decisions by type", formatCounts(r.DecisionsByType)},
		{"process kills (SIGKILL) / graceful restarts", fmt.Sprintf("%d / %d", r.Kills, r.GracefulRestarts)},
		{"NATS restarts / node losses", strconv.Itoa(r.NATSRestarts)},
		{"Jumio faults injected (5xx/429 bursts) / latency spikes", fmt.Sprintf("%d / %d", r.FaultsInjected, r.LatencySpikes)},
		{"Jumio calls / 429 answers (account calls: 429 / total)", fmt.Sprintf("%d / %d (%d / %d)", r.JumioCalls, r.Jumio429, r.Jumio429Account, r.AccountCalls)},
		{"callbacks sent / dropped", fmt.Sprintf("%d / %d", r.CallbacksSent, r.CallbacksDropped)},
		{"token requests / tokens issued", fmt.Sprintf("%d / %d", r.TokenRequests, r.TokensIssued)},
		{"ambiguous account creations detected", strconv.Itoa(r.AmbiguousCreates)},
	}
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], row[1])
	}
	return b.String()
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// Run performs one soak run.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	if o.BinDir == "" || o.WorkDir == "" {
		return nil, errors.New("soak: BinDir and WorkDir are required")
	}
	h := &harness{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), subj: messages.MustSubjects("")}
	defer h.shutdown()
	h.report.Mode = map[bool]string{true: "cluster (3 nodes, R3)", false: "single node"}[o.Cluster]
	h.report.Seed = o.Seed
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	return h.run(ctx)
}

type harness struct {
	o    Options
	rng  *rand.Rand
	rngM sync.Mutex
	subj messages.Subjects

	nodes     []*natsNode
	sim       *jumiotest.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	ingestURL string
	apiKey    string
	env       []string

	procMu sync.Mutex
	procs  map[string]*procs.Proc // by slot name (worker-1, retriever-2, ingest)

	report Report
	kills  atomic.Int64
	faults atomic.Int64
	spikes atomic.Int64
	natsRe atomic.Int64

	acceptedMu sync.Mutex
	accepted   map[string]string // job ID -> reference
	refs       map[string]string // reference -> job ID
	notAcc     int
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.o.Progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (h *harness) intn(n int) int {
	h.rngM.Lock()
	defer h.rngM.Unlock()
	return h.rng.IntN(n)
}

func (h *harness) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(h.intn(int(d)+1))
}

type natsNode struct {
	name, dir         string
	port, clusterPort int
	srv               *server.Server
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (h *harness) setup(ctx context.Context) error {
	n := 1
	if h.o.Cluster {
		n = 3
	}
	for i := 0; i < n; i++ {
		p, err := freePort()
		if err != nil {
			return err
		}
		cp, err := freePort()
		if err != nil {
			return err
		}
		h.nodes = append(h.nodes, &natsNode{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(h.o.WorkDir, fmt.Sprintf("nats-n%d", i+1)), port: p, clusterPort: cp})
	}
	for i := range h.nodes {
		if err := h.startNode(i); err != nil {
			return err
		}
	}
	var err error
	h.nc, err = nats.Connect(h.natsURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	if h.js, err = jetstream.New(h.nc); err != nil {
		return err
	}
	if err := h.waitJetStream(ctx, time.Minute); err != nil {
		return err
	}

	simOpts := jumiotest.Options{
		TokenTTL:         90 * time.Second, // tokens expire several times during a run
		TokenReuseMin:    20 * time.Second,
		ProcessingDelay:  50 * time.Millisecond,
		RetrievableDelay: 200 * time.Millisecond, // callbacks arrive before the details are retrievable
		AutoCompleteWeb:  1500 * time.Millisecond,
		Seed:             int64(h.o.Seed),
	}
	if !h.o.NoFaults {
		simOpts.Callbacks = jumiotest.CallbackOptions{DropRate: 0.1, Duplicates: 1, Reorder: true, Intermediate: true, Delay: 20 * time.Millisecond}
	}
	simOpts.RateLimits = h.o.SimRateLimits
	if h.sim, err = jumiotest.StartServer(simOpts); err != nil {
		return err
	}
	ingestPort, err := freePort()
	if err != nil {
		return err
	}
	h.ingestURL = fmt.Sprintf("http://127.0.0.1:%d", ingestPort)
	h.apiKey = "soak-api-key-0123456789"
	creds := h.sim.Credentials()
	replicas := "1"
	if h.o.Cluster {
		replicas = "3"
	}
	h.env = []string{
		"KYCPIPE_NATS_URL=" + h.natsURLs(),
		"KYCPIPE_STREAM_REPLICAS=" + replicas,
		fmt.Sprintf("KYCPIPE_HTTP_ADDR=127.0.0.1:%d", ingestPort),
		"KYCPIPE_API_KEYS=" + h.apiKey,
		"KYCPIPE_CALLBACK_URL=" + h.ingestURL + "/v1/callbacks/jumio",
		"JUMIO_BASE_URL=" + h.sim.URL,
		"JUMIO_CLIENT_ID=" + creds.ClientID,
		"JUMIO_CLIENT_SECRET=" + creds.ClientSecret,
		"JUMIO_USER_AGENT=kycpipe-soak/1.0",
		"KYCPIPE_ACK_WAIT=10s",
		"KYCPIPE_POLL_SCHEDULE=1s,2s,4s,8s,15s,30s",
		"KYCPIPE_RETRY_BACKOFF=200ms",
		"KYCPIPE_RETRY_BACKOFF_MAX=5s",
		"KYCPIPE_RETRY_BUDGET=40",
		"KYCPIPE_SHUTDOWN_TIMEOUT=5s",
		"KYCPIPE_RATE_ACCOUNT=400", "KYCPIPE_RATE_ACCOUNT_BURST=50",
		"KYCPIPE_RATE_RETRIEVAL=400", "KYCPIPE_RATE_RETRIEVAL_BURST=50",
		"KYCPIPE_RATE_TOKEN=50",
		"KYCPIPE_LOG_LEVEL=info",
	}
	h.env = append(h.env, h.o.ProcessEnv...)
	h.procs = map[string]*procs.Proc{}
	if err := h.startProc("ingest"); err != nil {
		return err
	}
	if err := h.waitReady(ctx); err != nil {
		return err
	}
	for i := 1; i <= h.o.Workers; i++ {
		if err := h.startProc(fmt.Sprintf("worker-%d", i)); err != nil {
			return err
		}
	}
	for i := 1; i <= h.o.Retrievers; i++ {
		if err := h.startProc(fmt.Sprintf("retriever-%d", i)); err != nil {
			return err
		}
	}
	h.accepted, h.refs = map[string]string{}, map[string]string{}
	return nil
}

func (h *harness) natsURLs() string {
	var urls []string
	for _, n := range h.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.port))
	}
	return strings.Join(urls, ",")
}

func (h *harness) startNode(i int) error {
	n := h.nodes[i]
	o := natsembed.Options{StoreDir: n.dir, Port: n.port, ServerName: n.name}
	if h.o.Cluster {
		o.ClusterName, o.ClusterPort = "kycpipe-soak", n.clusterPort
		for j, other := range h.nodes {
			if j != i {
				o.Routes = append(o.Routes, fmt.Sprintf("nats://127.0.0.1:%d", other.clusterPort))
			}
		}
	}
	srv, err := natsembed.Run(o)
	if err != nil {
		return fmt.Errorf("soak: start NATS %s: %w", n.name, err)
	}
	n.srv = srv
	return nil
}

func (h *harness) stopNode(i int) {
	if s := h.nodes[i].srv; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		h.nodes[i].srv = nil
	}
}

// waitJetStream waits until JetStream answers (a meta leader exists).
func (h *harness) waitJetStream(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := h.js.AccountInfo(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: JetStream not available: %w", err)
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (h *harness) startProc(slot string) error {
	bin := strings.SplitN(slot, "-", 2)[0]
	port, err := freePort()
	if err != nil {
		return err
	}
	env := append(append([]string{}, h.env...), fmt.Sprintf("KYCPIPE_METRICS_ADDR=127.0.0.1:%d", port))
	p, err := procs.Start(slot, filepath.Join(h.o.BinDir, bin), env, filepath.Join(h.o.WorkDir, slot+".log"))
	if err != nil {
		return err
	}
	h.procMu.Lock()
	h.procs[slot] = p
	h.procMu.Unlock()
	return nil
}

func (h *harness) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(h.ingestURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	return errors.New("soak: ingest did not become ready")
}

func (h *harness) shutdown() {
	h.procMu.Lock()
	for _, p := range h.procs {
		p.Stop(10 * time.Second)
	}
	h.procMu.Unlock()
	if h.nc != nil {
		h.nc.Close()
	}
	if h.sim != nil {
		h.sim.Close()
	}
	for i := range h.nodes {
		h.stopNode(i)
	}
}

func (h *harness) run(ctx context.Context) (*Report, error) {
	h.logf("soak: %s, %d jobs over %s, %d workers, %d retrievers, kill every ~%s, NATS restart every %s, seed %d",
		h.report.Mode, h.o.Jobs, h.o.Duration, h.o.Workers, h.o.Retrievers, h.o.KillEvery, h.o.NATSRestartEvery, h.o.Seed)
	loadCtx, stopLoad := context.WithTimeout(ctx, h.o.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	chaos := []func(context.Context){h.killLoop, h.natsLoop}
	if !h.o.NoFaults {
		chaos = append(chaos, h.faultLoop)
	}
	for _, f := range chaos {
		wg.Add(1)
		go func() { defer wg.Done(); f(loadCtx) }()
	}
	start := time.Now()
	h.load(loadCtx)
	h.report.LoadDuration = time.Since(start)
	stopLoad()
	wg.Wait()
	h.logf("load phase over: %d accepted, %d never accepted; restoring every process and node", len(h.accepted), h.notAcc)

	// Bring everything back, then let the pipeline finish the last jobs.
	for i, n := range h.nodes {
		if n.srv == nil {
			if err := h.startNode(i); err != nil {
				return nil, err
			}
		}
	}
	h.sim.SetLatency(jumiotest.RouteCreateAccount, 0)
	for _, r := range jumiotest.Routes() {
		h.sim.SetLatency(r, 0)
	}
	h.procMu.Lock()
	for slot, p := range h.procs {
		if !p.Running() {
			h.procMu.Unlock()
			_ = h.startProc(slot)
			h.procMu.Lock()
		}
	}
	h.procMu.Unlock()
	drainStart := time.Now()
	res, err := h.drain(ctx)
	h.report.DrainDuration = time.Since(drainStart)
	if err != nil {
		return nil, err
	}
	return h.check(ctx, res)
}

// job kinds of the load: API prepared data, web, API with images.
func (h *harness) jobBody(n int) (string, []byte) {
	ref := fmt.Sprintf("soak-%06d", n)
	switch r := h.intn(100); {
	case r < 5:
		ref += "-warn"
	case r < 8:
		ref += "-reject"
	}
	var job map[string]any
	switch k := h.intn(100); {
	case k < 70:
		job = map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10066},
			"channel": "API", "preparedData": map[string]any{"email": "user" + strconv.Itoa(n) + "@example.com"}}
	case k < 90:
		job = map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10164}, "channel": "WEB"}
	default:
		job = map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10011}, "channel": "API",
			"parts": []map[string]any{
				{"classifier": "FRONT", "data": base64.StdEncoding.EncodeToString(smallPNG)},
				{"classifier": "FACE", "data": base64.StdEncoding.EncodeToString(smallPNG)},
			}}
	}
	b, _ := json.Marshal(job)
	return ref, b
}

var smallPNG = jumiotest.PNG(400, 320)

// load submits the jobs at an even pace; each submission is retried with
// the same Idempotency-Key until ingest accepts it (ingest answers 503
// while NATS restarts).
func (h *harness) load(ctx context.Context) {
	interval := h.o.Duration / time.Duration(h.o.Jobs)
	work := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 15 * time.Second}
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				h.submit(ctx, client, n)
			}
		}()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// Job n goes out at n*interval, so the last one leaves before the load
	// phase ends and all Jobs are submitted.
	for n := 0; n < h.o.Jobs; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				n = h.o.Jobs
				continue
			case <-tick.C:
			}
		}
		select {
		case work <- n:
		case <-ctx.Done():
		}
		h.report.Submitted++
		if n%500 == 499 {
			h.acceptedMu.Lock()
			a := len(h.accepted)
			h.acceptedMu.Unlock()
			h.logf("submitted %d, accepted %d, kills %d, NATS restarts %d", n+1, a, h.kills.Load(), h.natsRe.Load())
		}
	}
	close(work)
	wg.Wait()
}

func (h *harness) submit(ctx context.Context, client *http.Client, n int) {
	ref, body := h.jobBody(n)
	// Submissions outlive the load phase by up to a minute, like a client
	// that keeps retrying.
	deadline := time.Now().Add(2 * time.Minute)
	backoff := 100 * time.Millisecond
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodPost, h.ingestURL+"/v1/verifications", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+h.apiKey)
		req.Header.Set("Idempotency-Key", ref)
		resp, err := client.Do(req)
		if err == nil {
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 202 || resp.StatusCode == 200 {
				var out struct{ JobID string }
				_ = json.Unmarshal(rb, &out)
				h.acceptedMu.Lock()
				h.accepted[out.JobID] = ref
				h.refs[ref] = out.JobID
				h.acceptedMu.Unlock()
				return
			}
			if resp.StatusCode < 500 {
				h.logf("submission %s refused with %d: %s", ref, resp.StatusCode, rb)
				break
			}
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 3*time.Second)
	}
	h.acceptedMu.Lock()
	h.notAcc++
	h.acceptedMu.Unlock()
}

// killLoop SIGKILLs a random worker or retriever now and then and starts a
// new one in its slot a moment later.
func (h *harness) killLoop(ctx context.Context) {
	for sleep(ctx, h.jitter(h.o.KillEvery)) {
		var slots []string
		h.procMu.Lock()
		for slot, p := range h.procs {
			if slot != "ingest" && p.Running() {
				slots = append(slots, slot)
			}
		}
		h.procMu.Unlock()
		if len(slots) == 0 {
			continue
		}
		sort.Strings(slots)
		slot := slots[h.intn(len(slots))]
		h.procMu.Lock()
		p := h.procs[slot]
		h.procMu.Unlock()
		p.Kill()
		h.kills.Add(1)
		h.logf("SIGKILL %s", slot)
		sleep(context.WithoutCancel(ctx), time.Duration(500+h.intn(2500))*time.Millisecond)
		if err := h.startProc(slot); err != nil {
			h.logf("cannot restart %s: %v", slot, err)
		}
	}
}

// natsLoop restarts the NATS server (single node: same store, same port)
// or kills one cluster node and brings it back after a while.
func (h *harness) natsLoop(ctx context.Context) {
	for sleep(ctx, h.o.NATSRestartEvery) {
		i := 0
		down := time.Duration(1000+h.intn(2000)) * time.Millisecond
		if h.o.Cluster {
			i = h.intn(len(h.nodes))
			down = time.Duration(8000+h.intn(8000)) * time.Millisecond
		}
		h.logf("stopping NATS %s for %s", h.nodes[i].name, down.Round(time.Millisecond))
		h.stopNode(i)
		h.natsRe.Add(1)
		sleep(context.WithoutCancel(ctx), down)
		if err := h.startNode(i); err != nil {
			h.logf("cannot restart NATS %s: %v", h.nodes[i].name, err)
			continue
		}
		h.logf("NATS %s back", h.nodes[i].name)
	}
}

// faultLoop injects Jumio failures: bursts of 5xx and 429 on one route,
// and latency spikes.
func (h *harness) faultLoop(ctx context.Context) {
	routes := []jumiotest.Route{jumiotest.RouteCreateAccount, jumiotest.RouteUploadPreparedData, jumiotest.RouteUploadPart,
		jumiotest.RouteFinalize, jumiotest.RouteStatus, jumiotest.RouteDetails, jumiotest.RouteToken}
	statuses := []int{500, 502, 503, 429}
	for sleep(ctx, h.jitter(8*time.Second)) {
		route := routes[h.intn(len(routes))]
		if h.intn(3) == 0 {
			d := time.Duration(500+h.intn(2500)) * time.Millisecond
			h.sim.SetLatency(route, d)
			h.spikes.Add(1)
			sleep(ctx, h.jitter(5*time.Second))
			h.sim.SetLatency(route, 0)
			continue
		}
		st := statuses[h.intn(len(statuses))]
		n := 1 + h.intn(5)
		h.sim.FailNextWith(route, n, jumiotest.Fault{Status: st, RetryAfter: time.Duration(h.intn(2)) * time.Second})
		h.faults.Add(int64(n))
	}
}

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
		if !sleep(ctx, 3*time.Second) {
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

// Hostname of the run, for the report.
func Hostname() string {
	h, _ := os.Hostname()
	return h
}

// RateReport is the outcome of MeasureAccountRate.
type RateReport struct {
	Window          time.Duration
	Workers         int
	AccountsCreated int     // during the window
	Allowed         float64 // burst + rate × window
	Share           float64 // AccountsCreated / Allowed
	AccountCalls    int     // account requests during the window
	Account429      int     // 429s among them
	Retrieval429    int
	Backlog         int // jobs queued before the window
}

// MeasureAccountRate runs o.Workers workers (no chaos, no faults) against a
// simulator enforcing limits, with a backlog of jobs, and measures the
// account initiations Jumio accepted over window after the first one.
func MeasureAccountRate(ctx context.Context, o Options, limits jumiotest.RateLimits, window time.Duration) (*RateReport, error) {
	o.NoFaults = true
	o.SimRateLimits = &limits
	o = o.withDefaults()
	h := &harness{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed)), subj: messages.MustSubjects("")}
	defer h.shutdown()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	backlog := int(limits.AccountPerSecond*window.Seconds()*1.5) + 2*limits.AccountBurst + 20
	client := &http.Client{Timeout: 15 * time.Second}
	var wg sync.WaitGroup
	next := make(chan int)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range next {
				h.submit(ctx, client, n)
			}
		}()
	}
	for n := 0; n < backlog; n++ {
		next <- n
	}
	close(next)
	wg.Wait()
	h.logf("queued %d jobs; waiting for the first account", backlog)
	for h.sim.Stats().AccountsCreated == 0 {
		if !sleep(ctx, 50*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	before := h.sim.Stats()
	sleep(ctx, window)
	after := h.sim.Stats()
	count := func(st jumiotest.Stats, route jumiotest.Route, code string) int {
		if code == "" {
			return st.Requests[string(route)]
		}
		return st.Responses[string(route)][code]
	}
	r := &RateReport{
		Window: window, Workers: o.Workers, Backlog: backlog,
		AccountsCreated: after.AccountsCreated - before.AccountsCreated,
		Allowed:         float64(limits.AccountBurst) + limits.AccountPerSecond*window.Seconds(),
		AccountCalls:    count(after, jumiotest.RouteCreateAccount, "") - count(before, jumiotest.RouteCreateAccount, ""),
		Account429:      count(after, jumiotest.RouteCreateAccount, "429") - count(before, jumiotest.RouteCreateAccount, "429"),
	}
	for _, route := range []jumiotest.Route{jumiotest.RouteStatus, jumiotest.RouteDetails} {
		r.Retrieval429 += count(after, route, "429") - count(before, route, "429")
	}
	r.Share = float64(r.AccountsCreated) / r.Allowed
	return r, nil
}
