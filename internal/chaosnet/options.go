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
	// Rate is the submission rate in jobs per second (default 10; short 8).
	Rate float64
	// Workers and Retrievers are the numbers of processes (default 2 each).
	Workers, Retrievers int
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
	o.Rate = cmp.Or(o.Rate, map[bool]float64{true: 8, false: 10}[o.Short])
	o.Workers = cmp.Or(o.Workers, 2)
	o.Retrievers = cmp.Or(o.Retrievers, 2)
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
