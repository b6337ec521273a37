package upgrade

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/internal/soak"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Phases of a run, as jobs are tagged with them.
const (
	PhaseOld     = "old"     // the old release alone
	PhaseRolling = "rolling" // the first replacements
	PhaseMixed   = "mixed"   // half the fleet old, half new, with kills
	PhaseNew     = "new"     // the new release alone
)

// Run performs one rolling-upgrade run: the old release provisions and
// runs alone with jobs flowing; the new kycctl provisions; each process is
// replaced by one of the new release, one at a time (alternating SIGTERM
// and SIGKILL), while random processes are SIGKILLed and restarted with
// their own release; the fleet then runs new binaries only. Finally it
// waits for every accepted job, checks the soak's invariants and the
// upgrade's own (everything decodes with the new release's decoders, the
// job records agree with the streams, erasures of jobs from every phase are
// complete and delete no other job's data).
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	if o.WorkDir == "" || o.Old.BinDir == "" || o.New.BinDir == "" {
		return nil, errors.New("upgrade: WorkDir, Old and New are required")
	}
	h := &harness{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), subj: messages.MustSubjects("")}
	h.report.Seed, h.report.Old, h.report.New, h.report.Nodes = o.Seed, o.Old.Name, o.New.Name, o.Nodes
	defer h.teardown()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	if err := h.run(ctx); err != nil {
		return &h.report, err
	}
	return &h.report, nil
}

type harness struct {
	o    Options
	rngM sync.Mutex
	rng  *rand.Rand
	subj messages.Subjects

	cl    *cluster
	nc    *nats.Conn
	js    jetstream.JetStream
	sim   *jumiotest.Server
	lb    *balancer
	fl    *fleet
	load  *loader
	env   []string
	key   string
	start time.Time

	rollMu sync.Mutex // one replacement or kill at a time
	kills  map[string]int
	killMu sync.Mutex
	graces atomic.Int64

	report Report
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.o.Progress, "%s  "+format+"\n", append([]any{time.Since(h.start).Round(time.Second)}, args...)...)
}

func (h *harness) intn(n int) int {
	h.rngM.Lock()
	defer h.rngM.Unlock()
	return h.rng.IntN(n)
}

func (h *harness) setup(ctx context.Context) error {
	h.start = time.Now()
	h.kills = map[string]int{}
	var err error
	if h.cl, err = startCluster(h.o.WorkDir, h.o.Nodes); err != nil {
		return err
	}
	if h.nc, err = nats.Connect(h.cl.urls(), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond)); err != nil {
		return err
	}
	if h.js, err = jetstream.New(h.nc); err != nil {
		return err
	}
	if err := waitJetStream(ctx, h.js, time.Minute); err != nil {
		return err
	}
	if h.sim, err = jumiotest.StartServer(jumiotest.Options{
		TokenTTL: 90 * time.Second, TokenReuseMin: 20 * time.Second,
		ProcessingDelay: 50 * time.Millisecond, RetrievableDelay: 200 * time.Millisecond,
		AutoCompleteWeb: 1500 * time.Millisecond, Seed: int64(h.o.Seed),
		// Callbacks as Jumio sends them: some twice, some out of order.
		Callbacks: jumiotest.CallbackOptions{Duplicates: 1, Reorder: true, Intermediate: true, Delay: 20 * time.Millisecond},
	}); err != nil {
		return err
	}
	if h.lb, err = startBalancer(); err != nil {
		return err
	}
	h.key = "upgrade-api-key-0123456789"
	creds := h.sim.Credentials()
	replicas := "1"
	if h.o.Nodes > 1 {
		replicas = "3"
	}
	h.env = []string{
		"KYCPIPE_NATS_URL=" + h.cl.urls(),
		"KYCPIPE_STREAM_REPLICAS=" + replicas,
		// Production's setting: resources are provisioned by kycctl.
		"KYCPIPE_PROVISION=false",
		"KYCPIPE_API_KEYS=" + h.key,
		"KYCPIPE_CALLBACK_URL=" + h.lb.URL + "/v1/callbacks/jumio",
		"JUMIO_BASE_URL=" + h.sim.URL,
		"JUMIO_CLIENT_ID=" + creds.ClientID,
		"JUMIO_CLIENT_SECRET=" + creds.ClientSecret,
		"JUMIO_USER_AGENT=kycpipe-upgrade-test/1.0",
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
	h.fl = newFleet(h.o.WorkDir, h.env, h.lb, h.logf)
	h.load = newLoader(h.lb.URL, h.key, h.o.Seed, h.logf)
	return nil
}

// kycctl runs a release's kycctl with the run's settings.
func (h *harness) kycctl(ctx context.Context, rel Release, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, rel.Bin("kycctl"), args...)
	cmd.Env = append(os.Environ(), h.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kycctl %v (%s): %w\n%s", args, rel.Name, err, out)
	}
	return string(out), nil
}

func (h *harness) slotNames(kind string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, kind+"-"+strconv.Itoa(i))
	}
	return out
}

func (h *harness) run(ctx context.Context) error {
	o := h.o
	h.logf("upgrade run: %s → %s, %d NATS node(s), %d ingests, %d workers, %d retrievers, %.1f jobs/s, seed %d",
		o.Old.Name, o.New.Name, o.Nodes, o.Ingests, o.Workers, o.Retrievers, o.Rate, o.Seed)

	// The old release as deployed: provisioned by its kycctl, its
	// services started with --provision=false.
	if _, err := h.kycctl(ctx, o.Old, "provision"); err != nil {
		return err
	}
	var all []string
	for _, kind := range []struct {
		name string
		n    int
	}{{"ingest", o.Ingests}, {"worker", o.Workers}, {"retriever", o.Retrievers}} {
		all = append(all, h.slotNames(kind.name, kind.n)...)
	}
	for _, name := range all {
		if err := h.fl.start(ctx, name, o.Old); err != nil {
			return err
		}
	}
	h.logf("old release running: %v", h.fl.versions())

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go h.watchDecisions(watchCtx)

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan int, 1)
	h.load.setPhase(PhaseOld)
	loadStart := time.Now()
	go func() { loadDone <- h.load.run(ctx, loadCtx, o.Rate, 0) }()

	if !ctxutil.Sleep(ctx, o.OldPhase) {
		return ctx.Err()
	}

	// The upgrade. First a new worker comes up before the new topology
	// exists: it must wait, not fail and not touch anything.
	h.load.setPhase(PhaseRolling)
	order := h.rollOrder()
	first := order[0]
	h.logf("starting %s of %s before provisioning the new topology", first, o.New.Name)
	surgeStart := time.Now()
	prev := h.fl.get(first).proc
	s, p, err := h.fl.launch(first, o.New)
	if err != nil {
		return err
	}
	for time.Since(surgeStart) < 8*time.Second {
		if ready(s.opsURL) || !p.Running() {
			h.report.EarlyStartReadyBeforeProvision = true
			break
		}
		if !ctxutil.Sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
	h.report.EarlyStartWaited = time.Since(surgeStart).Round(100 * time.Millisecond)
	provStart := time.Now()
	if _, err := h.kycctl(ctx, o.New, "provision"); err != nil {
		return err
	}
	h.report.ProvisionTook = time.Since(provStart).Round(10 * time.Millisecond)
	h.logf("new topology provisioned by %s's kycctl in %s, with the old release running", o.New.Name, h.report.ProvisionTook)
	if err := waitReady(ctx, p, s.opsURL, 2*time.Minute); err != nil {
		return fmt.Errorf("%s (%s) after provisioning: %w", first, o.New.Name, err)
	}
	h.report.EarlyStartReadyAfter = time.Since(provStart).Round(100 * time.Millisecond)
	h.report.EarlyStartWaitedForTopology = !h.report.EarlyStartReadyBeforeProvision && p.Running()
	h.logf("%s (%s) ready %s after provisioning; stopping its old process (SIGTERM)", first, o.New.Name, h.report.EarlyStartReadyAfter)
	prev.Stop(20 * time.Second)
	h.report.ReplacedGracefully++

	killCtx, stopKills := context.WithCancel(ctx)
	defer stopKills()
	killsDone := make(chan struct{})
	go func() { defer close(killsDone); h.killLoop(killCtx) }()

	half := (len(order) + 1) / 2
	for i, name := range order[1:half] {
		if err := h.replace(ctx, name, i%2 == 0); err != nil {
			return err
		}
	}
	h.load.setPhase(PhaseMixed)
	h.logf("mixed fleet %v for %s", h.fl.versions(), o.MixedPhase)
	h.report.MixedFleet = fmt.Sprint(h.fl.versions())
	if !ctxutil.Sleep(ctx, o.MixedPhase) {
		return ctx.Err()
	}
	h.load.setPhase(PhaseRolling)
	for i, name := range order[half:] {
		if err := h.replace(ctx, name, i%2 == 1); err != nil {
			return err
		}
	}
	h.load.setPhase(PhaseNew)
	h.logf("new release only: %v", h.fl.versions())
	if !ctxutil.Sleep(ctx, o.NewPhase) {
		return ctx.Err()
	}
	stopKills()
	<-killsDone
	stopLoad()
	<-loadDone
	h.report.LoadDuration = time.Since(loadStart).Round(time.Second)
	// Every slot runs (a kill's restart may still be under way).
	for _, name := range h.fl.names("") {
		if sl := h.fl.get(name); sl.proc == nil || !sl.proc.Running() {
			if err := h.fl.start(ctx, name, o.New); err != nil {
				return err
			}
		}
	}
	if v := h.fl.versions(); v[o.Old.Name] > 0 {
		return fmt.Errorf("upgrade: old processes still running after the roll: %v", v)
	}
	return h.finish(ctx)
}

// rollOrder is the order in which slots are replaced: kinds interleaved
// (worker, retriever, ingest, …) so that the mixed phase has old and new
// processes of every kind.
func (h *harness) rollOrder() []string {
	var order []string
	n := max(h.o.Ingests, h.o.Workers, h.o.Retrievers)
	for i := 1; i <= n; i++ {
		if i <= h.o.Workers {
			order = append(order, "worker-"+strconv.Itoa(i))
		}
		if i <= h.o.Retrievers {
			order = append(order, "retriever-"+strconv.Itoa(i))
		}
		if i <= h.o.Ingests {
			order = append(order, "ingest-"+strconv.Itoa(i))
		}
	}
	return order
}

// replace is one step of the roll, then a pause.
func (h *harness) replace(ctx context.Context, name string, kill bool) error {
	h.rollMu.Lock()
	how := "SIGTERM"
	if kill {
		how = "SIGKILL"
	}
	err := h.fl.replace(ctx, name, h.o.New, kill)
	if kill {
		h.report.ReplacedByKill++
	} else {
		h.report.ReplacedGracefully++
	}
	h.rollMu.Unlock()
	if err != nil {
		return err
	}
	h.logf("replaced %s by %s (old process: %s); fleet %v", name, h.o.New.Name, how, h.fl.versions())
	if !ctxutil.Sleep(ctx, h.o.Step) {
		return ctx.Err()
	}
	return nil
}

// killLoop SIGKILLs a random process now and then and restarts its slot
// with the same release.
func (h *harness) killLoop(ctx context.Context) {
	for ctxutil.Sleep(ctx, h.o.KillEvery/2+time.Duration(h.intn(int(h.o.KillEvery)+1))) {
		names := h.fl.names("")
		name := names[h.intn(len(names))]
		h.rollMu.Lock()
		s := h.fl.get(name)
		rel := s.rel.Name
		err := h.fl.restart(context.WithoutCancel(ctx), name)
		h.rollMu.Unlock()
		h.killMu.Lock()
		h.kills[rel]++
		h.killMu.Unlock()
		if err != nil {
			h.logf("SIGKILL %s (%s): restart failed: %v", name, rel, err)
			continue
		}
		h.logf("SIGKILL %s (%s), restarted with the same release", name, rel)
	}
}

// watchDecisions offers the accounts of decided jobs to later
// existing-account jobs.
func (h *harness) watchDecisions(ctx context.Context) {
	for ctx.Err() == nil {
		cons, err := h.js.OrderedConsumer(ctx, h.subj.StreamDecisions(), jetstream.OrderedConsumerConfig{})
		if err != nil {
			ctxutil.Sleep(ctx, time.Second)
			continue
		}
		it, err := cons.Messages()
		if err != nil {
			ctxutil.Sleep(ctx, time.Second)
			continue
		}
		go func() { <-ctx.Done(); it.Stop() }()
		seen := map[string]bool{}
		for {
			m, err := it.Next()
			if err != nil {
				break
			}
			d, err := messages.DecodeDecision(m.Data())
			if err != nil || seen[d.AccountID] {
				continue
			}
			snap := h.load.job(d.JobID)
			if snap != nil && snap.kind != "existing" {
				seen[d.AccountID] = true
				h.load.addAccount(d.AccountID, d.JobID)
			}
		}
		return
	}
}

func (h *harness) teardown() {
	if h.fl != nil {
		h.fl.stopAll()
	}
	if h.lb != nil {
		h.lb.close()
	}
	if h.nc != nil {
		h.nc.Close()
	}
	if h.sim != nil {
		h.sim.Close()
	}
	if h.cl != nil {
		h.cl.close()
	}
}

// simStats reads the simulator's counters.
func (h *harness) simStats(context.Context) (jumiotest.Stats, error) { return h.sim.Stats(), nil }

// verify drains and applies the soak's invariants.
func (h *harness) verify(ctx context.Context) error {
	accepted := map[string]string{}
	for id, j := range h.load.snapshot() {
		accepted[id] = j.ref
	}
	// Verify adds to the report's counters: start from a clean one.
	h.report.Soak = soak.Report{}
	h.report.Soak.Mode = fmt.Sprintf("rolling upgrade %s → %s, %d NATS node(s)", h.o.Old.Name, h.o.New.Name, h.o.Nodes)
	return soak.Verify(ctx, soak.Pipeline{JS: h.js, Subjects: h.subj, Accepted: accepted, SimStats: h.simStats,
		DrainTimeout: h.o.DrainTimeout, Progress: h.o.Progress}, &h.report.Soak)
}
