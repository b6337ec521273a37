// Command chaosnet runs kycpipe's network-partition harness
// (internal/chaosnet) as root: a 3-node NATS cluster and the pipeline's
// processes in Linux network namespaces, partitions injected while jobs are
// submitted. It prints the invariants and the faults, and exits non-zero if
// an invariant fails.
//
//	sudo go run ./cmd/chaosnet            # the long run (make chaos-net), ~10 min
//	sudo go run ./cmd/chaosnet --short    # every fault once, 3 s each
//	sudo go run ./cmd/chaosnet --soak 60m # the soak on the cluster: kills, node losses, partitions (make soak-net)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/kycpipe/kycpipe/internal/chaosnet"
	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/internal/soak"
)

func main() {
	var o chaosnet.Options
	var report, binDir string
	flag.BoolVar(&o.Short, "short", false, "every fault class once, 3 s each (make test-net's version)")
	flag.DurationVar(&o.Soak, "soak", 0, "run the soak schedule for this long instead of the fault list: SIGKILLs, node losses and partitions in turn, Jumio faults")
	flag.DurationVar(&o.KillEvery, "kill-every", 25*time.Second, "soak: mean time between SIGKILLs of a worker, retriever or notifier")
	flag.DurationVar(&o.ClusterEvery, "cluster-every", 3*time.Minute, "soak: time between cluster events (a node loss and a partition in turn)")
	flag.Float64Var(&o.Rate, "rate", 0, "jobs submitted per second (default 10, short 8, soak 6)")
	flag.IntVar(&o.Workers, "workers", 2, "worker processes")
	flag.IntVar(&o.Retrievers, "retrievers", 2, "retriever processes")
	flag.IntVar(&o.Notifiers, "notifiers", 2, "notifier processes, delivering to the example webhook receiver (which fails 10% of the attempts); negative: none")
	flag.Float64Var(&o.EraseRate, "erase-rate", 0.05, "share of the accepted jobs erased (DELETE) at a random moment; negative: none")
	flag.DurationVar(&o.ClientTimeout, "client-timeout", 30*time.Second, "the submitting client's HTTP timeout (ingest answers within 15 s)")
	flag.DurationVar(&o.ClockSkew, "clock-skew", 240*time.Hour, "monotonic/boot-time clock offset of node n3 (negative: none)")
	flag.DurationVar(&o.DrainTimeout, "drain-timeout", 3*time.Minute, "how long to wait for the last jobs")
	flag.Uint64Var(&o.Seed, "seed", 0, "random seed (0: from the clock)")
	flag.StringVar(&o.WorkDir, "work-dir", "", "node stores and process logs (default: a new temporary directory, kept)")
	flag.StringVar(&binDir, "bin-dir", "", "prebuilt nats-server, jumiosim, ingest, worker, retriever (default: build them)")
	flag.StringVar(&report, "report", "", "append the report (markdown) to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, binDir, report); err != nil {
		fmt.Fprintln(os.Stderr, "chaosnet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o chaosnet.Options, binDir, report string) error {
	if err := chaosnet.CheckTools(); err != nil {
		return err
	}
	var err error
	if o.WorkDir == "" {
		if o.WorkDir, err = os.MkdirTemp("", "kycpipe-chaosnet-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return err
	}
	o.BinDir = binDir
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.WorkDir, "bin")
		root, err := procs.ModuleRoot(".")
		if err != nil {
			return err
		}
		fmt.Println("building nats-server, jumiosim, ingest, worker, retriever, notifier, webhook-receiver ...")
		if err := chaosnet.Build(root, o.BinDir); err != nil {
			return err
		}
	}
	progress, err := os.Create(filepath.Join(o.WorkDir, "chaosnet.log"))
	if err != nil {
		return err
	}
	defer progress.Close()
	o.Progress = io.MultiWriter(os.Stdout, progress)
	args := os.Args[1:]
	started := time.Now().UTC()
	r, err := chaosnet.Run(ctx, o)
	if err != nil {
		return err
	}
	kind := map[bool]string{true: "short", false: "long"}[o.Short]
	if o.Soak > 0 {
		kind = "soak " + o.Soak.String()
	}
	md := fmt.Sprintf("### chaosnet %s, %s\n\nCommand: `go run ./cmd/chaosnet %s`  \nMachine: %s, %d CPUs (%s/%s), Go %s; logs in `%s`\n\n%s",
		kind, started.Format("2006-01-02 15:04 UTC"), joinArgs(args), soak.Hostname(),
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), o.WorkDir, r.Markdown())
	fmt.Println()
	fmt.Println(md)
	if err := os.WriteFile(filepath.Join(o.WorkDir, "report.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.WorkDir, "invariant-details.txt"), []byte(r.Soak.Details()), 0o644); err != nil {
		return err
	}
	if report != "" {
		f, err := os.OpenFile(report, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, _ = f.WriteString(md + "\n")
		f.Close()
	}
	if !r.OK() {
		return fmt.Errorf("invariants failed (logs in %s)", o.WorkDir)
	}
	return nil
}

func joinArgs(args []string) string {
	out := ""
	for i, a := range args {
		if i > 0 {
			out += " "
		}
		out += a
	}
	return out
}
