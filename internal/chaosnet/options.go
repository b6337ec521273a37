package chaosnet

import (
	"cmp"
	"io"
	"time"
)

// Options configures a run.
type Options struct {
	// BinDir holds nats-server, jumiosim, ingest, worker and retriever
	// (required; see Build).
	BinDir string
	// WorkDir receives the node stores, the configurations and every
	// process's log (required).
	WorkDir string
	// Short runs every fault class once with 3 s partitions (the version
	// `make test-net` runs, under a minute); otherwise each fault lasts
	// 20–60 s with steady load between them (`make chaos-net`, ~10 min).
	Short bool
	// Soak, when positive, runs the soak schedule for that long instead of
	// the fault list: steady load, SIGKILLs of workers, retrievers and
	// notifiers every ~KillEvery (restarted 0.5–3 s later), and every
	// ClusterEvery one cluster event, alternately a node loss (SIGKILL of a
	// nats-server, restarted on its store 8–16 s later) and a partition
	// (the long run's faults in turn), with Jumio faults on (5xx/429
	// bursts, latency spikes).
	Soak time.Duration
	// KillEvery is the mean time between SIGKILLs in a soak (default 25s).
	KillEvery time.Duration
	// ClusterEvery is the time between cluster events in a soak (default 3m).
	ClusterEvery time.Duration
	// Rate is the submission rate in jobs per second (default 10; short 8;
	// soak 6).
	Rate float64
	// Workers and Retrievers are the numbers of processes (default 2 each).
	Workers, Retrievers int
	// Notifiers is the number of notifier processes, delivering to the
	// example webhook receiver, which fails 10% of the attempts (default 2;
	// negative: no notifier, no receiver).
	Notifiers int
	// EraseRate is the share of the accepted jobs erased at a random moment
	// (default 0.05; negative: none).
	EraseRate float64
	// ClientTimeout is the submitting client's HTTP timeout (default 30s):
	// an answer later than that is a hang. Ingest bounds a submission at
	// three JetStream calls of its publish timeout (5 s each), 15 s.
	ClientTimeout time.Duration
	// ClockSkew offsets the monotonic and boot-time clocks of node n3 (a
	// time namespace; default 240h, negative: none).
	ClockSkew time.Duration
	// DrainTimeout bounds the wait for the last jobs (default 3m).
	DrainTimeout time.Duration
	// Seed for the job mix and fault choices (default: the clock).
	Seed uint64
	// Progress receives progress lines (default: discarded).
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	switch {
	case o.Soak > 0:
		o.Rate = cmp.Or(o.Rate, 6)
	default:
		o.Rate = cmp.Or(o.Rate, map[bool]float64{true: 8, false: 10}[o.Short])
	}
	o.KillEvery = cmp.Or(o.KillEvery, 25*time.Second)
	o.ClusterEvery = cmp.Or(o.ClusterEvery, 3*time.Minute)
	o.Workers = cmp.Or(o.Workers, 2)
	o.Retrievers = cmp.Or(o.Retrievers, 2)
	o.Notifiers = cmp.Or(o.Notifiers, 2)
	o.EraseRate = cmp.Or(o.EraseRate, 0.05)
	o.ClientTimeout = cmp.Or(o.ClientTimeout, 30*time.Second)
	o.ClockSkew = cmp.Or(o.ClockSkew, 240*time.Hour)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, 3*time.Minute)
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}
