package soak

import (
	"cmp"
	"io"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// Options configures a run.
type Options struct {
	BinDir           string        // ingest, worker, retriever, notifier, webhook-receiver binaries (required; see Build)
	WorkDir          string        // NATS stores and process logs (required)
	Cluster          bool          // a 3-node JetStream cluster with R3 streams instead of one server
	Duration         time.Duration // how long jobs are submitted (default 10m)
	Jobs             int           // jobs submitted over Duration (default 5000)
	Workers          int           // default 3
	Retrievers       int           // default 2
	Notifiers        int           // default 2; negative: no notifier and no webhook receiver
	KillEvery        time.Duration // mean time between SIGKILLs of a worker or retriever (default 20s)
	NATSRestartEvery time.Duration // time between NATS restarts / node losses (default 3m)
	DrainTimeout     time.Duration // how long to wait for the last jobs after the load (default 5m)
	NoFaults         bool          // turn off Jumio fault injection
	// EraseRate is the share of accepted jobs erased at a random moment
	// (default 0.05; negative: none).
	EraseRate float64
	// SimRateLimits makes the simulator enforce Jumio's per-tenant limits;
	// ProcessEnv is added to every process's environment (after the
	// harness's own settings, so it wins).
	SimRateLimits *jumiotest.RateLimits
	ProcessEnv    []string
	Seed          uint64
	Progress      io.Writer // progress lines (default: discarded)
}

func (o Options) withDefaults() Options {
	o.Duration = cmp.Or(o.Duration, 10*time.Minute)
	o.Jobs = cmp.Or(o.Jobs, 5000)
	o.Workers = cmp.Or(o.Workers, 3)
	o.Retrievers = cmp.Or(o.Retrievers, 2)
	o.Notifiers = cmp.Or(o.Notifiers, 2)
	o.EraseRate = cmp.Or(o.EraseRate, 0.05)
	o.KillEvery = cmp.Or(o.KillEvery, 20*time.Second)
	o.NATSRestartEvery = cmp.Or(o.NATSRestartEvery, 3*time.Minute)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, 5*time.Minute)
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}
