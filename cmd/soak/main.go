// Command soak runs kycpipe's chaos/soak harness (`make soak`): ingest,
// several workers and retrievers and the Jumio simulator with faults on,
// thousands of jobs, random SIGKILLs of workers and retrievers, NATS restarts
// or cluster node losses. It prints an invariants table and exits non-zero
// if any invariant fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/internal/soak"
)

func main() {
	var o soak.Options
	var mode, report, binDir string
	var race bool
	flag.StringVar(&mode, "mode", "single", "single (one NATS server, restarted) or cluster (3 nodes, R3; one node killed and restarted)")
	flag.DurationVar(&o.Duration, "duration", 10*time.Minute, "how long jobs are submitted")
	flag.IntVar(&o.Jobs, "jobs", 5000, "jobs submitted over --duration")
	flag.IntVar(&o.Workers, "workers", 3, "worker processes")
	flag.IntVar(&o.Retrievers, "retrievers", 2, "retriever processes")
	flag.DurationVar(&o.KillEvery, "kill-every", 20*time.Second, "mean time between SIGKILLs of a worker or retriever")
	flag.DurationVar(&o.NATSRestartEvery, "nats-restart-every", 3*time.Minute, "time between NATS restarts (single) or node losses (cluster)")
	flag.DurationVar(&o.DrainTimeout, "drain-timeout", 5*time.Minute, "how long to wait for the last jobs")
	flag.BoolVar(&o.NoFaults, "no-faults", false, "no Jumio fault injection")
	flag.Uint64Var(&o.Seed, "seed", 0, "random seed (0: from the clock)")
	flag.StringVar(&o.WorkDir, "work-dir", "", "NATS stores and process logs (default: a new temporary directory, kept)")
	flag.StringVar(&binDir, "bin-dir", "", "prebuilt ingest/worker/retriever (default: build them)")
	flag.BoolVar(&race, "race", false, "build the binaries with the race detector")
	flag.StringVar(&report, "report", "", "append the report (markdown) to this file")
	flag.Parse()
	o.Cluster = mode == "cluster"
	if mode != "single" && mode != "cluster" {
		fmt.Fprintln(os.Stderr, "soak: --mode must be single or cluster")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, binDir, race, report); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o soak.Options, binDir string, race bool, report string) error {
	var err error
	if o.WorkDir == "" {
		if o.WorkDir, err = os.MkdirTemp("", "kycpipe-soak-"); err != nil {
			return err
		}
	}
	o.BinDir = binDir
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.WorkDir, "bin")
		root, err := procs.ModuleRoot(".")
		if err != nil {
			return err
		}
		fmt.Println("building ingest, worker, retriever ...")
		if err := procs.Build(root, o.BinDir, race, "ingest", "worker", "retriever"); err != nil {
			return err
		}
	}
	o.Progress = os.Stdout
	started := time.Now()
	r, err := soak.Run(ctx, o)
	if err != nil {
		return err
	}
	md := fmt.Sprintf("### Soak run, %s, %s\n\nCommand: `%s`  \nMachine: %d CPUs (%s/%s), Go %s; logs in `%s`\n\n%s\n",
		r.Mode, started.UTC().Format("2006-01-02 15:04 MST"), commandLine(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), o.WorkDir, r.Markdown())
	fmt.Println()
	fmt.Println(md)
	if report != "" {
		f, err := os.OpenFile(report, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteString(md); err != nil {
			return err
		}
	}
	if !r.OK() {
		return fmt.Errorf("invariants failed (see the table)")
	}
	fmt.Println("all invariants hold")
	return nil
}

func commandLine() string {
	s := "go run ./cmd/soak"
	for _, a := range os.Args[1:] {
		s += " " + a
	}
	return s
}
