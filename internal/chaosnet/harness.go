package chaosnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
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
	"github.com/kycpipe/kycpipe/internal/soak"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Run performs one run: it builds the lab, starts the cluster, the
// simulator and the pipeline's processes in their namespaces, submits jobs
// while it injects the faults one after the other, heals, drains and checks
// the invariants. It always tears the lab down.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	if o.BinDir == "" || o.WorkDir == "" {
		return nil, errors.New("chaosnet: BinDir and WorkDir are required")
	}
	if err := CheckTools(); err != nil {
		return nil, err
	}
	h := &harness{o: o, rng: mrand.New(mrand.NewPCG(o.Seed, o.Seed^0x2545f4914f6cdd1d)), subj: messages.MustSubjects("")}
	h.report.Short, h.report.Seed, h.report.SoakFor = o.Short, o.Seed, o.Soak
	defer h.teardown()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	return h.run(ctx)
}

type harness struct {
	o     Options
	rngMu sync.Mutex
	rng   *mrand.Rand
	subj  messages.Subjects

	lab       *Lab
	nodes     []*node
	sim       *Host
	simProc   *procs.Proc
	ingest    *Host
	workers   []*Host
	retrs     []*Host
	notifiers []*Host
	hook      *Host // the example webhook receiver
	procMu    sync.Mutex
	procs     []*procs.Proc
	slots     map[string]*slot // the pipeline's processes by name (w1, nt2, …)

	nc       *nats.Conn
	js       jetstream.JetStream
	apiKey   string // scopes submit and read
	eraseKey string // erase and read
	adminKey string // admin
	load     *loader
	eraser   *soak.Eraser
	hooks    *soak.Webhooks
	report   Report

	// the soak schedule's counters (soak.go)
	kills, nodeLosses, jumioFaults, spikes atomic.Int64
}

// slot is one of the pipeline's processes: where and what it runs, and
// its current process (replaced when it is killed and restarted).
type slot struct {
	name, bin string
	host      *Host
	proc      *procs.Proc
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.o.Progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (h *harness) ingestURL() string { return "http://" + h.ingest.IP + ":8080" }
func (h *harness) simURL() string    { return "http://" + h.sim.IP + ":8090" }

func (h *harness) natsURLs() string {
	var urls []string
	for _, n := range h.nodes {
		urls = append(urls, n.url())
	}
	return strings.Join(urls, ",")
}

func (h *harness) setup(ctx context.Context) error {
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	prefix := fmt.Sprintf("10.213.%d", 16+int(idb[0])%224)
	lab, err := NewLab(ctx, id, prefix)
	if err != nil {
		return err
	}
	h.lab = lab
	h.report.Subnet = prefix + ".0/24"
	add := func(name string, last int) (*Host, error) { return lab.AddHost(ctx, name, last) }
	for i := 1; i <= 3; i++ {
		host, err := add(fmt.Sprintf("n%d", i), 10+i)
		if err != nil {
			return err
		}
		h.nodes = append(h.nodes, &node{host: host, bin: filepath.Join(h.o.BinDir, "nats-server")})
	}
	if h.o.ClockSkew > 0 {
		h.nodes[2].skew = h.o.ClockSkew
	}
	if h.sim, err = add("sim", 20); err != nil {
		return err
	}
	if h.ingest, err = add("ingest", 30); err != nil {
		return err
	}
	for i := 1; i <= h.o.Workers; i++ {
		host, err := add(fmt.Sprintf("w%d", i), 40+i)
		if err != nil {
			return err
		}
		h.workers = append(h.workers, host)
	}
	for i := 1; i <= h.o.Retrievers; i++ {
		host, err := add(fmt.Sprintf("r%d", i), 60+i)
		if err != nil {
			return err
		}
		h.retrs = append(h.retrs, host)
	}
	for i := 1; i <= h.o.Notifiers; i++ {
		host, err := add(fmt.Sprintf("nt%d", i), 80+i)
		if err != nil {
			return err
		}
		h.notifiers = append(h.notifiers, host)
	}
	if h.o.Notifiers > 0 {
		if h.hook, err = add("hook", 25); err != nil {
			return err
		}
	}
	h.logf("lab %s: %s, namespaces kc%s-*", id, h.report.Subnet, id)

	for _, n := range h.nodes {
		if err := n.writeConfig(h.o.WorkDir, h.nodes); err != nil {
			return err
		}
		if err := n.start(); err != nil {
			return err
		}
	}
	for _, n := range h.nodes {
		if err := waitHTTP(ctx, n.monitor("/varz"), time.Minute); err != nil {
			return fmt.Errorf("chaosnet: NATS %s did not start (see %s): %w", n.host.Name, n.log, err)
		}
	}
	if h.nc, err = nats.Connect(h.natsURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond), nats.Name("chaosnet-harness")); err != nil {
		return err
	}
	if h.js, err = jetstream.New(h.nc); err != nil {
		return err
	}
	if _, err := h.waitHealthy(ctx, 90*time.Second); err != nil {
		return fmt.Errorf("chaosnet: cluster not healthy after start: %w", err)
	}

	sim, err := procs.StartArgs("sim", "ip", h.sim.Command(filepath.Join(h.o.BinDir, "jumiosim"),
		"-addr", h.sim.IP+":8090", "-log-format", "json", "-seed", fmt.Sprint(h.o.Seed%1e9),
		"-callback-drop-rate", "0.1", "-callback-duplicates", "1", "-callback-delay", "20ms",
		"-processing-delay", "50ms", "-retrievable-delay", "200ms", "-auto-complete-web", "1500ms"),
		nil, filepath.Join(h.o.WorkDir, "jumiosim.log"))
	if err != nil {
		return err
	}
	h.simProc = sim
	h.addProc(sim)
	if err := waitHTTP(ctx, h.simURL()+"/_sim/stats", time.Minute); err != nil {
		return fmt.Errorf("chaosnet: simulator: %w", err)
	}
	// The erasure check reads when each Jumio call arrived.
	if err := h.simControl(ctx, "/_sim/call-log", map[string]any{"enabled": true}); err != nil {
		return err
	}

	h.apiKey = "chaosnet-api-key-" + id + "-0123456789"
	h.eraseKey = "chaosnet-erase-key-" + id + "-0123456789"
	h.adminKey = "chaosnet-admin-key-" + id + "-0123456789"
	h.slots = map[string]*slot{}
	if err := h.startProc("ingest", h.ingest, "ingest"); err != nil {
		return err
	}
	if err := waitHTTP(ctx, h.ingestURL()+"/readyz", 2*time.Minute); err != nil {
		return fmt.Errorf("chaosnet: ingest not ready: %w", err)
	}
	if h.o.Notifiers > 0 {
		if err := h.startWebhooks(ctx); err != nil {
			return err
		}
	}
	if h.o.EraseRate > 0 {
		h.eraser = soak.NewEraser(h.ingestURL(), h.eraseKey, h.o.EraseRate, h.o.Seed, h.logf)
	}
	for _, w := range h.workers {
		if err := h.startProc(w.Name, w, "worker"); err != nil {
			return err
		}
	}
	for _, r := range h.retrs {
		if err := h.startProc(r.Name, r, "retriever"); err != nil {
			return err
		}
	}
	return nil
}

// startWebhooks registers the soak's two endpoints at the receiver's
// address, starts the example receiver in its namespace and the notifiers
// in theirs.
func (h *harness) startWebhooks(ctx context.Context) error {
	addr := h.hook.IP + ":8090"
	eps, err := soak.RegisterWebhooks(ctx, h.ingestURL(), h.adminKey, "http://"+addr)
	if err != nil {
		return err
	}
	h.hooks = &soak.Webhooks{Endpoints: eps, Journal: filepath.Join(h.o.WorkDir, "webhook-journal.jsonl")}
	p, err := procs.StartArgs("receiver", "ip", h.hook.Command(filepath.Join(h.o.BinDir, "webhook-receiver"), soak.ReceiverArgs(addr, h.hooks.Journal)...),
		[]string{"WEBHOOK_SECRET=" + soak.ReceiverSecrets(eps)}, filepath.Join(h.o.WorkDir, "receiver.log"))
	if err != nil {
		return err
	}
	h.addProc(p)
	if err := waitHTTP(ctx, "http://"+addr+"/healthz", time.Minute); err != nil {
		return fmt.Errorf("chaosnet: webhook receiver: %w", err)
	}
	for _, n := range h.notifiers {
		if err := h.startProc(n.Name, n, "notifier"); err != nil {
			return err
		}
	}
	return nil
}

func (h *harness) addProc(p *procs.Proc) {
	h.procMu.Lock()
	h.procs = append(h.procs, p)
	h.procMu.Unlock()
}

// startProc runs a kycpipe binary in host's namespace, configured as the
// soak configures it (short ack wait and poll schedule, generous rates).
func (h *harness) startProc(name string, host *Host, bin string) error {
	env := []string{
		"KYCPIPE_NATS_URL=" + h.natsURLs(),
		"KYCPIPE_STREAM_REPLICAS=3",
		"KYCPIPE_HTTP_ADDR=" + host.IP + ":8080",
		"KYCPIPE_METRICS_ADDR=" + host.IP + ":9090",
		"KYCPIPE_API_KEYS=loader:submit+read:" + h.apiKey + ",eraser:erase+read:" + h.eraseKey + ",admin:admin:" + h.adminKey,
		"KYCPIPE_CALLBACK_URL=" + h.ingestURL() + "/v1/callbacks/jumio",
		"JUMIO_BASE_URL=" + h.simURL(),
		"JUMIO_CLIENT_ID=" + jumiotest.DefaultClientID,
		"JUMIO_CLIENT_SECRET=" + jumiotest.DefaultClientSecret,
		"JUMIO_USER_AGENT=kycpipe-chaosnet/1.0",
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
		"KYCPIPE_LOG_FORMAT=json",
	}
	env = append(env, soak.WebhookEnv...)
	p, err := procs.StartArgs(name, "ip", host.Command(filepath.Join(h.o.BinDir, bin)), env, filepath.Join(h.o.WorkDir, name+".log"))
	if err != nil {
		return err
	}
	h.addProc(p)
	h.procMu.Lock()
	h.slots[name] = &slot{name: name, bin: bin, host: host, proc: p}
	h.procMu.Unlock()
	return nil
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		code, err := getJSON(ctx, url, nil)
		if err == nil && code/100 == 2 {
			return nil
		}
		last = cmpErr(err, code)
		if !ctxutil.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s: %w", url, last)
}

func cmpErr(err error, code int) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("status %d", code)
}

// waitHealthy waits until every node's /healthz answers 200 and returns how
// long that took.
func (h *harness) waitHealthy(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		ok := true
		for _, n := range h.nodes {
			if !n.healthy(ctx) {
				ok = false
				break
			}
		}
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("chaosnet: cluster not healthy within %s", timeout)
		}
		if !ctxutil.Sleep(ctx, 250*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
}

func (h *harness) nodeNamed(name string) *node {
	for _, n := range h.nodes {
		if n.host.Name == name {
			return n
		}
	}
	return nil
}

// leaders returns the meta leader and the jobs stream's leader, waiting up
// to 30 s for both to be elected.
func (h *harness) leaders(ctx context.Context) (meta, jobs string, err error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if meta, jobs, err = h.leadersNow(ctx); err == nil || time.Now().After(deadline) {
			return meta, jobs, err
		}
		if !ctxutil.Sleep(ctx, 250*time.Millisecond) {
			return "", "", ctx.Err()
		}
	}
}

func (h *harness) leadersNow(ctx context.Context) (meta, jobs string, err error) {
	for _, n := range h.nodes {
		if meta, err = n.metaLeader(ctx); err == nil {
			break
		}
	}
	if err != nil {
		return "", "", err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := h.js.Stream(cctx, h.subj.StreamJobs())
	if err != nil {
		return "", "", err
	}
	info, err := st.Info(cctx)
	if err != nil {
		return "", "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", "", errors.New("chaosnet: the jobs stream has no leader")
	}
	return meta, info.Cluster.Leader, nil
}

// moveJobsLeader asks the jobs stream's leader to step down in favour of
// the named server.
func (h *harness) moveJobsLeader(ctx context.Context, to string) error {
	body := []byte(`{"placement":{"preferred":"` + to + `"}}`)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := h.nc.RequestWithContext(cctx, "$JS.API.STREAM.LEADER.STEPDOWN."+h.subj.StreamJobs(), body)
	return err
}

// ingestNode is the node the ingest process is connected to.
func (h *harness) ingestNode(ctx context.Context) (*node, error) {
	for _, n := range h.nodes {
		if ok, err := n.hasClient(ctx, "kycpipe-ingest"); err == nil && ok {
			return n, nil
		}
	}
	return nil, errors.New("chaosnet: no node has the ingest's connection")
}

// simLatency sets the simulator's added latency on routes.
func (h *harness) simLatency(ctx context.Context, d time.Duration, routes ...jumiotest.Route) error {
	for _, r := range routes {
		body, _ := json.Marshal(map[string]string{"route": string(r), "latency": d.String()})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.simURL()+"/_sim/latency", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := monitorClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("chaosnet: simulator latency %s: %d", r, resp.StatusCode)
		}
	}
	return nil
}

// simControl POSTs a control request to the simulator.
func (h *harness) simControl(ctx context.Context, path string, v any) error {
	body, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.simURL()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := monitorClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chaosnet: simulator %s: %d", path, resp.StatusCode)
	}
	return nil
}

// simCallLog reads the simulator's call log.
func (h *harness) simCallLog(ctx context.Context) (jumiotest.CallLog, error) {
	var log jumiotest.CallLog
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.simURL()+"/_sim/call-log", nil)
	if err != nil {
		return log, err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return log, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return log, fmt.Errorf("chaosnet: simulator call log: %d", resp.StatusCode)
	}
	return log, json.NewDecoder(resp.Body).Decode(&log)
}

func (h *harness) simStats(ctx context.Context) (jumiotest.Stats, error) {
	var st jumiotest.Stats
	code, err := getJSON(ctx, h.simURL()+"/_sim/stats", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d", code)
	}
	return st, err
}

func (h *harness) run(ctx context.Context) (*Report, error) {
	faults := longFaults()
	lead, settle := 15*time.Second, 15*time.Second
	mode := "long"
	switch {
	case h.o.Soak > 0:
		faults, mode = nil, "soak"
	case h.o.Short:
		faults, lead, settle, mode = shortFaults(), time.Second, 0, "short"
	}
	h.logf("chaosnet: %s, %d faults, %.0f jobs/s, %d workers, %d retrievers, %d notifiers, %.0f%% erased, seed %d",
		mode, len(faults), h.o.Rate, h.o.Workers, h.o.Retrievers, max(h.o.Notifiers, 0), 100*max(h.o.EraseRate, 0), h.o.Seed)
	h.load = newLoader(h.ingestURL(), h.apiKey, h.o.Rate, h.o.ClientTimeout, h.o.Seed)
	h.load.onAccept = func(jobID, ref string) { h.eraser.Consider(ctx, jobID, ref) }
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	start := time.Now()
	go func() { defer close(loadDone); h.load.run(ctx, loadCtx) }()

	if h.o.Soak > 0 {
		h.runSoak(ctx, h.o.Soak)
	} else {
		// Steady load first, then each fault, healed, then steady load again.
		ctxutil.Sleep(ctx, lead)
		for _, f := range faults {
			if ctx.Err() != nil {
				break
			}
			fr := h.inject(ctx, f)
			h.report.Faults = append(h.report.Faults, fr)
			ctxutil.Sleep(ctx, settle)
		}
		ctxutil.Sleep(ctx, lead)
	}
	stopLoad()
	<-loadDone
	h.report.LoadDuration = time.Since(start)
	h.eraser.Wait()
	if err := h.lab.HealAll(ctx); err != nil {
		return nil, err
	}
	if err := h.restoreAll(ctx); err != nil {
		return nil, err
	}
	if _, err := h.waitHealthy(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	attempts, accepted, submitted, notAcc := h.load.snapshot()
	h.report.Submitted, h.report.NotAccepted = submitted, notAcc
	h.logf("load over: %d submitted, %d accepted, %d never accepted; draining", submitted, len(accepted), notAcc)
	h.report.Soak.Mode = "cluster (3 nodes, R3) in network namespaces"
	p := soak.Pipeline{JS: h.js, Subjects: h.subj, Accepted: accepted, SimStats: h.simStats,
		Erasures: h.eraser.Erasures(), CallLog: h.simCallLog, Webhooks: h.hooks,
		DrainTimeout: h.o.DrainTimeout, Progress: h.o.Progress}
	if err := soak.Verify(ctx, p, &h.report.Soak); err != nil {
		return nil, err
	}
	h.report.Soak.Submitted, h.report.Soak.NotAccepted, h.report.Soak.LoadDuration = submitted, notAcc, h.report.LoadDuration
	h.report.Kills, h.report.NodeLosses = int(h.kills.Load()), int(h.nodeLosses.Load())
	h.report.JumioFaults, h.report.LatencySpikes = int(h.jumioFaults.Load()), int(h.spikes.Load())
	decided, err := decisionTimes(ctx, h.js, h.subj)
	if err != nil {
		return nil, err
	}
	h.report.summarize(attempts, decided, h.o.ClientTimeout)
	return &h.report, nil
}

func (h *harness) teardown() {
	h.procMu.Lock()
	for _, p := range h.procs {
		p.Stop(10 * time.Second)
	}
	h.procMu.Unlock()
	for _, n := range h.nodes {
		n.stop()
	}
	if h.nc != nil {
		h.nc.Close()
	}
	if h.lab != nil {
		h.lab.Close()
	}
}

// decisionTimes reads when each decision was made.
func decisionTimes(ctx context.Context, js jetstream.JetStream, subj messages.Subjects) ([]time.Time, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := js.Stream(cctx, subj.StreamDecisions())
	if err != nil {
		return nil, err
	}
	info, err := st.Info(cctx)
	if err != nil || info.State.Msgs == 0 {
		return nil, err
	}
	cons, err := js.OrderedConsumer(cctx, subj.StreamDecisions(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if d, err := messages.DecodeDecision(m.Data()); err == nil {
				out = append(out, d.DecidedAt)
			} else {
				out = append(out, time.Time{})
			}
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}
