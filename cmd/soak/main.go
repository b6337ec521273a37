// Command soak runs kycpipe's chaos/soak harness (`make soak`): ingest,
// several workers, retrievers and notifiers, the Jumio simulator with
// faults on and the example webhook receiver failing a tenth of the
// deliveries, thousands of jobs of which some are erased, random SIGKILLs
// of workers, retrievers and notifiers, NATS restarts or cluster node
// losses. It prints an invariants table and exits non-zero if any
// invariant fails.
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
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

func main() {
	var o soak.Options
	var mode, report, binDir string
	var race bool
	flag.StringVar(&mode, "mode", "single", "single (one NATS server, restarted), cluster (3 nodes, R3; one node killed and restarted), or ratelimit (no chaos: measure account initiations against Jumio's default limits over --duration)")
	flag.DurationVar(&o.Duration, "duration", 10*time.Minute, "how long jobs are submitted")
	flag.IntVar(&o.Jobs, "jobs", 5000, "jobs submitted over --duration")
	flag.IntVar(&o.Workers, "workers", 3, "worker processes")
	flag.IntVar(&o.Retrievers, "retrievers", 2, "retriever processes")
	flag.IntVar(&o.Notifiers, "notifiers", 2, "notifier processes, delivering to the example webhook receiver (which fails 10% of the attempts); negative: none")
	flag.Float64Var(&o.EraseRate, "erase-rate", 0.05, "share of the accepted jobs erased (DELETE) at a random moment; negative: none")
	flag.DurationVar(&o.KillEvery, "kill-every", 20*time.Second, "mean time between SIGKILLs of a worker or retriever")
	flag.DurationVar(&o.NATSRestartEvery, "nats-restart-every", 3*time.Minute, "time between NATS restarts (single) or node losses (cluster)")
	flag.DurationVar(&o.DrainTimeout, "drain-timeout", 5*time.Minute, "how long to wait for the last jobs")
	flag.BoolVar(&o.NoFaults, "no-faults", false, "no Jumio fault injection")
	flag.Uint64Var(&o.Seed, "seed", 0, "random seed (0: from the clock)")
	flag.StringVar(&o.WorkDir, "work-dir", "", "NATS stores and process logs (default: a new temporary directory, kept)")
	flag.StringVar(&binDir, "bin-dir", "", "prebuilt ingest/worker/retriever/notifier/webhook-receiver (default: build them)")
	flag.BoolVar(&race, "race", false, "build the binaries with the race detector")
	flag.StringVar(&report, "report", "", "append the report (markdown) to this file")
	flag.Parse()
	o.Cluster = mode == "cluster"
	if mode != "single" && mode != "cluster" && mode != "ratelimit" {
		fmt.Fprintln(os.Stderr, "soak: --mode must be single, cluster or ratelimit")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if mode == "ratelimit" {
		if err := runRateLimit(ctx, o, binDir, race, report); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, o, binDir, race, report); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// prepare fills the work and binary directories, building the binaries.
func prepare(o *soak.Options, binDir string, race bool) error {
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
		fmt.Println("building ingest, worker, retriever, notifier, webhook-receiver ...")
		if err := soak.Build(root, o.BinDir, race); err != nil {
			return err
		}
	}
	o.Progress = os.Stdout
	return nil
}

// runRateLimit measures account initiations against Jumio's default
// limits (1/s, burst 5; retrieval 15/s) with the workers' default limiter.
func runRateLimit(ctx context.Context, o soak.Options, binDir string, race bool, report string) error {
	if err := prepare(&o, binDir, race); err != nil {
		return err
	}
	if o.Duration == 10*time.Minute {
		o.Duration = 2 * time.Minute
	}
	// The workers' rate flags keep their defaults (Jumio's documented limits).
	o.ProcessEnv = []string{"KYCPIPE_RATE_ACCOUNT=1", "KYCPIPE_RATE_ACCOUNT_BURST=3", "KYCPIPE_RATE_RETRIEVAL=15", "KYCPIPE_RATE_RETRIEVAL_BURST=10", "KYCPIPE_RATE_TOKEN=10"}
	limits := jumiotest.RateLimits{AccountPerSecond: 1, AccountBurst: 5, RetrievalPerSecond: 15, RetrievalBurst: 15, TokenPerSecond: 10, TokenBurst: 10}
	started := time.Now()
	r, err := soak.MeasureAccountRate(ctx, o, limits, o.Duration)
	if err != nil {
		return err
	}
	share429 := 0.0
	if r.AccountCalls > 0 {
		share429 = 100 * float64(r.Account429) / float64(r.AccountCalls)
	}
	md := fmt.Sprintf("### Shared rate limit, %s\n\nCommand: `%s`  \nMachine: %d CPUs (%s/%s), Go %s\n\n"+
		"| measure | value | target | |\n| --- | --- | --- | --- |\n"+
		"| account initiations accepted by Jumio in %s (%d worker processes, backlog %d) | %d of %.0f allowed (burst %d + %.0f/s × %.0fs) = %.1f%% | ≥ 90%% | %s |\n"+
		"| 429s among account calls | %d of %d = %.2f%% | ≤ 1%% | %s |\n"+
		"| 429s on retrieval calls | %d | | |\n",
		started.UTC().Format("2006-01-02 15:04 MST"), commandLine(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		r.Window, r.Workers, r.Backlog, r.AccountsCreated, r.Allowed, limits.AccountBurst, limits.AccountPerSecond, r.Window.Seconds(), 100*r.Share, passFail(r.Share >= 0.9),
		r.Account429, r.AccountCalls, share429, passFail(share429 <= 1), r.Retrieval429)
	fmt.Println()
	fmt.Println(md)
	if err := appendReport(report, md); err != nil {
		return err
	}
	if r.Share < 0.9 || share429 > 1 {
		return fmt.Errorf("rate-limit targets missed")
	}
	return nil
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**FAIL**"
}

func appendReport(path, md string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(md)
	return err
}

func run(ctx context.Context, o soak.Options, binDir string, race bool, report string) error {
	if err := prepare(&o, binDir, race); err != nil {
		return err
	}
	started := time.Now()
	r, err := soak.Run(ctx, o)
	if err != nil {
		return err
	}
	md := fmt.Sprintf("### Soak run, %s, %s\n\nCommand: `%s`  \nMachine: %d CPUs (%s/%s), Go %s; logs in `%s`\n\n%s\n",
		r.Mode, started.UTC().Format("2006-01-02 15:04 MST"), commandLine(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), o.WorkDir, r.Markdown())
	fmt.Println()
	fmt.Println(md)
	if err := appendReport(report, md); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.WorkDir, "invariant-details.txt"), []byte(r.Details()), 0o644); err != nil {
		return err
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
