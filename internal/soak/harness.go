package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

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
	apiKey    string // scopes submit and read
	eraseKey  string // erase and read
	adminKey  string // admin (webhook endpoints)
	env       []string
	eraser    *Eraser
	receiver  struct {
		addr, journal, secrets string
	}

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

	// The end of a run (verify.go): accepted erasures (job ID →
	// reference) and the webhooks to check (nil: none).
	erased map[string]string
	hooks  *Webhooks
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
		RecordCalls:      true, // the erasure check reads it
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
	h.apiKey, h.eraseKey, h.adminKey = "soak-api-key-0123456789", "soak-erase-key-0123456789", "soak-admin-key-0123456789"
	creds := h.sim.Credentials()
	replicas := "1"
	if h.o.Cluster {
		replicas = "3"
	}
	h.env = []string{
		"KYCPIPE_NATS_URL=" + h.natsURLs(),
		"KYCPIPE_STREAM_REPLICAS=" + replicas,
		fmt.Sprintf("KYCPIPE_HTTP_ADDR=127.0.0.1:%d", ingestPort),
		"KYCPIPE_API_KEYS=loader:submit+read:" + h.apiKey + ",eraser:erase+read:" + h.eraseKey + ",admin:admin:" + h.adminKey,
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
	h.env = append(append(h.env, WebhookEnv...), h.o.ProcessEnv...)
	h.procs = map[string]*procs.Proc{}
	if err := h.startProc("ingest"); err != nil {
		return err
	}
	if err := h.waitReady(ctx); err != nil {
		return err
	}
	if h.o.Notifiers > 0 {
		if err := h.startWebhooks(ctx); err != nil {
			return err
		}
	}
	if h.o.EraseRate > 0 {
		h.eraser = NewEraser(h.ingestURL, h.eraseKey, h.o.EraseRate, h.o.Seed, h.logf)
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

// startWebhooks registers the soak's endpoints, starts the example
// receiver and the notifiers.
func (h *harness) startWebhooks(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	h.receiver.addr = fmt.Sprintf("127.0.0.1:%d", port)
	h.receiver.journal = filepath.Join(h.o.WorkDir, "webhook-journal.jsonl")
	eps, err := RegisterWebhooks(ctx, h.ingestURL, h.adminKey, "http://"+h.receiver.addr)
	if err != nil {
		return err
	}
	h.hooks = &Webhooks{Endpoints: eps, Journal: h.receiver.journal}
	h.receiver.secrets = ReceiverSecrets(eps)
	if err := h.startProc("receiver"); err != nil {
		return err
	}
	for i := 1; i <= h.o.Notifiers; i++ {
		if err := h.startProc(fmt.Sprintf("notifier-%d", i)); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) startProc(slot string) error {
	bin := strings.SplitN(slot, "-", 2)[0]
	var p *procs.Proc
	var err error
	if slot == "receiver" {
		p, err = procs.StartArgs(slot, filepath.Join(h.o.BinDir, "webhook-receiver"), ReceiverArgs(h.receiver.addr, h.receiver.journal),
			[]string{"WEBHOOK_SECRET=" + h.receiver.secrets}, filepath.Join(h.o.WorkDir, slot+".log"))
		if err != nil {
			return err
		}
		h.procMu.Lock()
		h.procs[slot] = p
		h.procMu.Unlock()
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	env := append(append([]string{}, h.env...), fmt.Sprintf("KYCPIPE_METRICS_ADDR=127.0.0.1:%d", port))
	p, err = procs.Start(slot, filepath.Join(h.o.BinDir, bin), env, filepath.Join(h.o.WorkDir, slot+".log"))
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
		if !ctxutil.Sleep(ctx, 200*time.Millisecond) {
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
	h.logf("soak: %s, %d jobs over %s, %d workers, %d retrievers, %d notifiers, %.0f%% erased, kill every ~%s, NATS restart every %s, seed %d",
		h.report.Mode, h.o.Jobs, h.o.Duration, h.o.Workers, h.o.Retrievers, max(h.o.Notifiers, 0), 100*max(h.o.EraseRate, 0), h.o.KillEvery, h.o.NATSRestartEvery, h.o.Seed)
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
	h.load(ctx, loadCtx)
	h.report.LoadDuration = time.Since(start)
	stopLoad()
	wg.Wait()
	h.eraser.Wait()
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
	p := Pipeline{JS: h.js, Subjects: h.subj, Accepted: h.accepted,
		SimStats: func(context.Context) (jumiotest.Stats, error) { return h.sim.Stats(), nil },
		CallLog:  func(context.Context) (jumiotest.CallLog, error) { return h.sim.CallLog(), nil },
		Erasures: h.eraser.Erasures(), Webhooks: h.hooks}
	r := &h.report
	if err := h.verify(ctx, p, r); err != nil {
		return nil, err
	}
	r.NotAccepted = h.notAcc
	r.Kills, r.NATSRestarts = int(h.kills.Load()), int(h.natsRe.Load())
	r.FaultsInjected, r.LatencySpikes = int(h.faults.Load()), int(h.spikes.Load())
	return r, nil
}
