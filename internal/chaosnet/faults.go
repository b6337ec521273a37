package chaosnet

import (
	"context"
	"fmt"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// fault is one network fault: inject applies it (and says to what), the
// harness holds it, then heals every host and calls undo (for what is not
// a packet filter).
type fault struct {
	name   string
	hold   time.Duration
	inject func(ctx context.Context, h *harness) (detail string, undo func(context.Context), err error)
}

// longFaults is `make chaos-net`'s schedule: every class, healed after 5
// to 60 s.
func longFaults() []fault {
	return []fault{
		nodeIsolated(30 * time.Second),
		leaderIsolated(45 * time.Second),
		oneWay(40 * time.Second),
		workerIsolated(25 * time.Second),
		ingestNodeIsolated(60 * time.Second),
		flap(5 * time.Second), flap(5 * time.Second), flap(5 * time.Second),
	}
}

// shortFaults is `make test-net`'s: every class once, 3 s each (shorter
// than the raft election timeout, 4–9 s: the groups the cut node leads
// stall until the heal, rather than elect).
func shortFaults() []fault {
	return []fault{
		nodeIsolated(3 * time.Second),
		leaderIsolated(3 * time.Second),
		oneWay(3 * time.Second),
		workerIsolated(3 * time.Second),
		ingestNodeIsolated(3 * time.Second),
	}
}

func (h *harness) others(n *node) []*Host {
	var out []*Host
	for _, o := range h.nodes {
		if o != n {
			out = append(out, o.host)
		}
	}
	return out
}

// nodeIsolated cuts a node that leads neither the meta group nor the jobs
// stream (when there is one) off from the other two; clients still reach it.
func nodeIsolated(hold time.Duration) fault {
	return fault{name: "one node isolated from the other two", hold: hold,
		inject: func(ctx context.Context, h *harness) (string, func(context.Context), error) {
			meta, jobs, err := h.leaders(ctx)
			if err != nil {
				return "", nil, err
			}
			target := h.nodes[0]
			for _, n := range h.nodes {
				if n.host.Name != meta && n.host.Name != jobs {
					target = n
					break
				}
			}
			if err := target.host.Cut(ctx, h.others(target)...); err != nil {
				return "", nil, err
			}
			return fmt.Sprintf("%s cut off from the other nodes (meta leader %s, %s leader %s)", target.host.Name, meta, h.subj.StreamJobs(), jobs), nil, nil
		}}
}

// leaderIsolated moves the jobs stream's leadership to the meta leader, then
// cuts that node off from the other two.
func leaderIsolated(hold time.Duration) fault {
	return fault{name: "stream and meta leader isolated", hold: hold,
		inject: func(ctx context.Context, h *harness) (string, func(context.Context), error) {
			meta, jobs, err := h.leaders(ctx)
			if err != nil {
				return "", nil, err
			}
			for deadline := time.Now().Add(15 * time.Second); jobs != meta && time.Now().Before(deadline); {
				_ = h.moveJobsLeader(ctx, meta)
				ctxutil.Sleep(ctx, time.Second)
				if m, j, err := h.leadersNow(ctx); err == nil {
					meta, jobs = m, j
				}
			}
			target := h.nodeNamed(meta)
			if err := target.host.Cut(ctx, h.others(target)...); err != nil {
				return "", nil, err
			}
			return fmt.Sprintf("%s (meta leader, %s leader %s) cut off from the other nodes", meta, h.subj.StreamJobs(), jobs), nil, nil
		}}
}

// oneWay makes a follower deaf to the leader: the leader's packets to it
// are dropped, its own still arrive (it calls elections the others hear).
func oneWay(hold time.Duration) fault {
	return fault{name: "one-way partition", hold: hold,
		inject: func(ctx context.Context, h *harness) (string, func(context.Context), error) {
			meta, jobs, err := h.leaders(ctx)
			if err != nil {
				return "", nil, err
			}
			leader := h.nodeNamed(jobs)
			var follower *node
			for _, n := range h.nodes {
				if n != leader {
					follower = n
					break
				}
			}
			if err := follower.host.Deafen(ctx, leader.host); err != nil {
				return "", nil, err
			}
			return fmt.Sprintf("%s no longer hears %s (%s leader; meta leader %s); %s still hears %s", follower.host.Name, jobs, h.subj.StreamJobs(), meta, jobs, follower.host.Name), nil, nil
		}}
}

// workerIsolated slows Jumio down (2 s per call) so that a worker is in the
// middle of its calls, then cuts that worker off from every NATS node.
func workerIsolated(hold time.Duration) fault {
	routes := []jumiotest.Route{jumiotest.RouteCreateAccount, jumiotest.RouteUploadPreparedData, jumiotest.RouteFinalize}
	return fault{name: "worker isolated from NATS during its Jumio calls", hold: hold,
		inject: func(ctx context.Context, h *harness) (string, func(context.Context), error) {
			if err := h.simLatency(ctx, 2*time.Second, routes...); err != nil {
				return "", nil, err
			}
			undo := func(ctx context.Context) { _ = h.simLatency(ctx, 0, routes...) }
			ctxutil.Sleep(ctx, time.Second) // calls are now in flight
			w := h.workers[0]
			var nodes []*Host
			for _, n := range h.nodes {
				nodes = append(nodes, n.host)
			}
			if err := w.Cut(ctx, nodes...); err != nil {
				return "", undo, err
			}
			return fmt.Sprintf("%s cut off from every NATS node (still reaches Jumio), Jumio answering in 2 s", w.Name), undo, nil
		}}
}

// ingestNodeIsolated cuts the node the ingest is connected to off from the
// other nodes while submissions continue.
func ingestNodeIsolated(hold time.Duration) fault {
	return fault{name: "the ingest's node isolated while submissions continue", hold: hold,
		inject: func(ctx context.Context, h *harness) (string, func(context.Context), error) {
			n, err := h.ingestNode(ctx)
			if err != nil {
				return "", nil, err
			}
			meta, jobs, _ := h.leaders(ctx)
			if err := n.host.Cut(ctx, h.others(n)...); err != nil {
				return "", nil, err
			}
			return fmt.Sprintf("%s (the ingest's node; meta leader %s, %s leader %s) cut off from the other nodes", n.host.Name, meta, h.subj.StreamJobs(), jobs), nil, nil
		}}
}

// flap cuts a random node off for a few seconds.
func flap(hold time.Duration) fault {
	return fault{name: fmt.Sprintf("short partition (%s)", hold), hold: hold,
		inject: func(ctx context.Context, h *harness) (string, func(context.Context), error) {
			n := h.nodes[h.intn(len(h.nodes))]
			if err := n.host.Cut(ctx, h.others(n)...); err != nil {
				return "", nil, err
			}
			return n.host.Name + " cut off from the other nodes", nil, nil
		}}
}

// inject applies f, holds it, heals, and measures how long the cluster
// takes to be healthy again.
func (h *harness) inject(ctx context.Context, f fault) FaultResult {
	fr := FaultResult{Name: f.name, Hold: f.hold}
	detail, undo, err := f.inject(ctx, h)
	if err != nil {
		fr.Error = err.Error()
		_ = h.lab.HealAll(ctx)
		if undo != nil {
			undo(ctx)
		}
		h.logf("fault %q could not be injected: %v", f.name, err)
		return fr
	}
	fr.Detail, fr.Start = detail, time.Now()
	h.logf("fault: %s: %s, for %s", f.name, detail, f.hold)
	ctxutil.Sleep(ctx, f.hold)
	if err := h.lab.HealAll(ctx); err != nil {
		fr.Error = err.Error()
	}
	if undo != nil {
		undo(ctx)
	}
	fr.Healed = time.Now()
	d, err := h.waitHealthy(ctx, 2*time.Minute)
	if err != nil {
		fr.Error = err.Error()
	}
	fr.HealthyAfter = d
	h.logf("healed; cluster healthy again after %s", d.Round(100*time.Millisecond))
	return fr
}
