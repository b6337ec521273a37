package chaosnet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// The soak schedule (Options.Soak): the soak's chaos on the namespaced
// cluster, with partitions besides. Three loops run for the whole load
// phase: SIGKILLs of workers, retrievers and notifiers; one cluster event
// every ClusterEvery, alternately a node loss and a partition (so that a
// partition never meets a lost node: each event is healed, and the cluster
// healthy again, before the next); and Jumio faults.

// runSoak runs the soak schedule for d.
func (h *harness) runSoak(ctx context.Context, d time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){h.killLoop, h.clusterLoop, h.jumioFaultLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(sctx) }()
	}
	wg.Wait()
}

func (h *harness) intn(n int) int {
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	return h.rng.IntN(n)
}

func (h *harness) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(h.intn(int(d)+1))
}

// killLoop SIGKILLs a random worker, retriever or notifier every
// ~KillEvery and starts it again 0.5–3 s later, in its namespace.
func (h *harness) killLoop(ctx context.Context) {
	for ctxutil.Sleep(ctx, h.jitter(h.o.KillEvery)) {
		h.procMu.Lock()
		var names []string
		for name, s := range h.slots {
			if s.bin != "ingest" && s.proc.Running() {
				names = append(names, name)
			}
		}
		h.procMu.Unlock()
		if len(names) == 0 {
			continue
		}
		sort.Strings(names)
		name := names[h.intn(len(names))]
		h.procMu.Lock()
		s := h.slots[name]
		h.procMu.Unlock()
		s.proc.Kill()
		h.kills.Add(1)
		h.logf("SIGKILL %s (%s)", name, s.bin)
		ctxutil.Sleep(context.WithoutCancel(ctx), time.Duration(500+h.intn(2500))*time.Millisecond)
		if err := h.startProc(s.name, s.host, s.bin); err != nil {
			h.logf("cannot restart %s: %v", name, err)
		}
	}
}

// clusterLoop injects one cluster event every ClusterEvery: a node loss,
// then a partition (the long run's faults in turn), and so on.
func (h *harness) clusterLoop(ctx context.Context) {
	partitions := longFaults()
	for i := 0; ctxutil.Sleep(ctx, h.o.ClusterEvery); i++ {
		// An event is always healed, even when the load phase ends during
		// it: the run goes on with a whole cluster.
		ectx := context.WithoutCancel(ctx)
		if i%2 == 0 {
			h.report.Faults = append(h.report.Faults, h.nodeLoss(ectx))
			continue
		}
		f := partitions[(i/2)%len(partitions)]
		h.report.Faults = append(h.report.Faults, h.inject(ectx, f))
	}
}

// nodeLoss SIGKILLs a random nats-server, restarts it on its store 8–16 s
// later and waits until the cluster is healthy again.
func (h *harness) nodeLoss(ctx context.Context) FaultResult {
	n := h.nodes[h.intn(len(h.nodes))]
	down := time.Duration(8000+h.intn(8000)) * time.Millisecond
	meta, jobs, _ := h.leadersNow(ctx)
	fr := FaultResult{Name: "node loss (SIGKILL, restarted on its store)", Hold: down.Round(100 * time.Millisecond),
		Detail: fmt.Sprintf("%s killed (meta leader %s, %s leader %s), down %s", n.host.Name, meta, h.subj.StreamJobs(), jobs, down.Round(100*time.Millisecond))}
	fr.Start = time.Now()
	n.proc.Kill()
	h.nodeLosses.Add(1)
	h.logf("node loss: %s", fr.Detail)
	ctxutil.Sleep(ctx, down)
	if err := n.start(); err != nil {
		fr.Error = err.Error()
		h.logf("cannot restart NATS %s: %v", n.host.Name, err)
		return fr
	}
	fr.Healed = time.Now()
	d, err := h.waitHealthy(ctx, 3*time.Minute)
	if err != nil {
		fr.Error = err.Error()
	}
	fr.HealthyAfter = d
	h.logf("%s back; cluster healthy again after %s", n.host.Name, d.Round(100*time.Millisecond))
	return fr
}

// jumioFaultLoop injects Jumio failures every ~8 s, as the soak does:
// bursts of 1–5 answers 500, 502, 503 or 429 (with or without
// Retry-After) on a route, or a latency spike of 0.5–3 s for ~5 s on a
// retrieval route or the token route (the worker-isolation fault owns the
// account, upload and finalize latencies).
func (h *harness) jumioFaultLoop(ctx context.Context) {
	routes := []jumiotest.Route{jumiotest.RouteCreateAccount, jumiotest.RouteUploadPreparedData, jumiotest.RouteFinalize,
		jumiotest.RouteStatus, jumiotest.RouteDetails, jumiotest.RouteToken}
	slow := []jumiotest.Route{jumiotest.RouteStatus, jumiotest.RouteDetails, jumiotest.RouteToken}
	statuses := []int{500, 502, 503, 429}
	for ctxutil.Sleep(ctx, h.jitter(8*time.Second)) {
		if h.intn(3) == 0 {
			route := slow[h.intn(len(slow))]
			d := time.Duration(500+h.intn(2500)) * time.Millisecond
			if err := h.simLatency(ctx, d, route); err != nil {
				continue
			}
			h.spikes.Add(1)
			ctxutil.Sleep(ctx, h.jitter(5*time.Second))
			_ = h.simLatency(context.WithoutCancel(ctx), 0, route)
			continue
		}
		route := routes[h.intn(len(routes))]
		n := 1 + h.intn(5)
		req := map[string]any{"route": route, "count": n, "status": statuses[h.intn(len(statuses))]}
		if h.intn(2) == 0 {
			req["retryAfter"] = "1s"
		}
		if err := h.simControl(ctx, "/_sim/faults", req); err == nil {
			h.jumioFaults.Add(int64(n))
		}
	}
}

// restoreAll restarts every node and process that is not running (after
// the load phase: the loops restart what they stop, unless the phase ended
// in between).
func (h *harness) restoreAll(ctx context.Context) error {
	var restarted []string
	for _, n := range h.nodes {
		if n.proc == nil || !n.proc.Running() {
			if err := n.start(); err != nil {
				return err
			}
			restarted = append(restarted, n.host.Name)
		}
	}
	h.procMu.Lock()
	var dead []*slot
	for _, s := range h.slots {
		if !s.proc.Running() {
			dead = append(dead, s)
		}
	}
	h.procMu.Unlock()
	for _, s := range dead {
		if err := h.startProc(s.name, s.host, s.bin); err != nil {
			return err
		}
		restarted = append(restarted, s.name)
	}
	if len(restarted) > 0 {
		h.logf("restarted after the load phase: %s", strings.Join(restarted, ", "))
	}
	return nil
}
