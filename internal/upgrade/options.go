package upgrade

import (
	"cmp"
	"io"
	"time"
)

// Options configures a rolling-upgrade run.
type Options struct {
	// Old and New are the two releases' builds (BuildRelease,
	// BuildCurrent), each with ReleaseCommands.
	Old, New Release
	// WorkDir holds the NATS stores and every process's log (required).
	WorkDir string
	// Nodes is the size of the NATS cluster: 3 (default; R3 streams) or 1.
	Nodes int
	// Replicas of each service: two ingests behind the balancer, two
	// workers, two retrievers by default. A rolling deploy replaces them
	// one by one.
	Ingests, Workers, Retrievers int
	// Rate is the jobs submitted per second throughout (default 6).
	Rate float64
	// OldPhase is how long the old release runs alone before the upgrade
	// starts (default 20s); Step the pause between two replacements
	// (default 6s); MixedPhase how long the fleet stays half old, half new
	// (default 60s); NewPhase how long the new release runs alone before the
	// load stops (default 20s).
	OldPhase, Step, MixedPhase, NewPhase time.Duration
	// KillEvery is the mean time between SIGKILLs of a random process
	// (restarted with the same release, as an orchestrator restarts a
	// crashed container) from the first replacement on (default 8s).
	KillEvery time.Duration
	// DrainTimeout bounds the wait for the last jobs (default 3m).
	DrainTimeout time.Duration
	// Erasures is how many finished jobs of each phase are erased at the
	// end, on the new release only (default 4).
	Erasures int
	Seed     uint64
	Progress io.Writer // progress lines (default: discarded)
}

func (o Options) withDefaults() Options {
	o.Nodes = cmp.Or(o.Nodes, 3)
	o.Ingests = cmp.Or(o.Ingests, 2)
	o.Workers = cmp.Or(o.Workers, 2)
	o.Retrievers = cmp.Or(o.Retrievers, 2)
	o.Rate = cmp.Or(o.Rate, 6)
	o.OldPhase = cmp.Or(o.OldPhase, 20*time.Second)
	o.Step = cmp.Or(o.Step, 6*time.Second)
	o.MixedPhase = cmp.Or(o.MixedPhase, 60*time.Second)
	o.NewPhase = cmp.Or(o.NewPhase, 20*time.Second)
	o.KillEvery = cmp.Or(o.KillEvery, 8*time.Second)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, 3*time.Minute)
	o.Erasures = cmp.Or(o.Erasures, 4)
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}
