package soak

import (
	"context"
	"sort"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// killLoop SIGKILLs a random worker, retriever or notifier now and then
// and starts a new one in its slot a moment later.
func (h *harness) killLoop(ctx context.Context) {
	for ctxutil.Sleep(ctx, h.jitter(h.o.KillEvery)) {
		var slots []string
		h.procMu.Lock()
		for slot, p := range h.procs {
			if slot != "ingest" && slot != "receiver" && p.Running() {
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
		ctxutil.Sleep(context.WithoutCancel(ctx), time.Duration(500+h.intn(2500))*time.Millisecond)
		if err := h.startProc(slot); err != nil {
			h.logf("cannot restart %s: %v", slot, err)
		}
	}
}

// natsLoop restarts the NATS server (single node: same store, same port)
// or kills one cluster node and brings it back after a while.
func (h *harness) natsLoop(ctx context.Context) {
	for ctxutil.Sleep(ctx, h.o.NATSRestartEvery) {
		i := 0
		down := time.Duration(1000+h.intn(2000)) * time.Millisecond
		if h.o.Cluster {
			i = h.intn(len(h.nodes))
			down = time.Duration(8000+h.intn(8000)) * time.Millisecond
		}
		h.logf("stopping NATS %s for %s", h.nodes[i].name, down.Round(time.Millisecond))
		h.stopNode(i)
		h.natsRe.Add(1)
		ctxutil.Sleep(context.WithoutCancel(ctx), down)
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
	for ctxutil.Sleep(ctx, h.jitter(8*time.Second)) {
		route := routes[h.intn(len(routes))]
		if h.intn(3) == 0 {
			d := time.Duration(500+h.intn(2500)) * time.Millisecond
			h.sim.SetLatency(route, d)
			h.spikes.Add(1)
			ctxutil.Sleep(ctx, h.jitter(5*time.Second))
			h.sim.SetLatency(route, 0)
			continue
		}
		st := statuses[h.intn(len(statuses))]
		n := 1 + h.intn(5)
		h.sim.FailNextWith(route, n, jumiotest.Fault{Status: st, RetryAfter: time.Duration(h.intn(2)) * time.Second})
		h.faults.Add(int64(n))
	}
}
