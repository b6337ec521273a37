// Command bench is kycpipe's benchmark harness (make bench). In one run on
// one machine it measures raw JetStream baselines, a minimal reference
// ingest, kycpipe's ingest, the pipeline end to end with every stage a
// separate process, a latency-bound run, a burst under Jumio's rate limits,
// the token economy and webhook deliveries; it prints a table of the
// targets and writes docs/BENCHMARKS.md and a PNG chart.
//
//	go run ./cmd/bench                # the full run, ~12 minutes
//	go run ./cmd/bench --quick        # every step in seconds (a smoke test)
//
// "bench refserver --nats URL --addr ADDR" runs the reference server; the
// harness starts it as a child process. "bench peers" is make bench-peers:
// the same saga on River (peers/river) against kycpipe, as ratios.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kycpipe/kycpipe/internal/bench"
	"github.com/kycpipe/kycpipe/internal/procs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "refserver" {
		fs := flag.NewFlagSet("refserver", flag.ContinueOnError)
		natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS URL")
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return bench.ServeReference(ctx, *natsURL, *addr)
	}
	if len(args) > 0 && args[0] == "peers" {
		return runPeers(ctx, args[1:])
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "run every step briefly (a smoke test; figures are meaningless)")
	out := fs.String("out", "docs/BENCHMARKS.md", "Markdown report to write (its measurements section); empty: none")
	chart := fs.String("chart", "docs/benchmarks.png", "PNG chart to write; empty: none")
	workDir := fs.String("work-dir", "", "directory for binaries, NATS data and logs (default: a new temp dir)")
	var o bench.Options
	fs.DurationVar(&o.LoadDuration, "load-duration", 0, "each closed-loop HTTP load (default 10s)")
	fs.IntVar(&o.E2EJobs, "e2e-jobs", 0, "jobs of the end-to-end run (default 20000)")
	fs.IntVar(&o.BurstJobs, "burst-jobs", 0, "submissions of the burst (default 50000)")
	fs.DurationVar(&o.DrainWindow, "drain-window", 0, "how long the drain under rate limits is watched (default 60s)")
	fs.IntVar(&o.BoundC, "bound-concurrency", 0, "worker concurrency of the latency-bound run (default 64)")
	fs.StringVar(&o.ProfileDir, "profile-dir", "", "write CPU profiles of the stages of the ingest and end-to-end runs here, and of the console and nats-server for each console page (after the console's measurement)")
	fs.IntVar(&o.ErasureStored, "erasure-stored", 0, "jobs stored in the large erasure run (default 1000000)")
	fs.IntVar(&o.ErasureCount, "erasure-count", 0, "jobs erased in each erasure run (default 1000)")
	fs.StringVar(&o.Baseline, "baseline", bench.DefaultBaseline, `commit to compare the ingest and end-to-end steps with, built from git ("none": no comparison)`)
	fs.StringVar(&o.CacheDir, "cache-dir", "", "where baseline builds are kept (default: the user's cache directory)")
	fs.IntVar(&o.Pairs, "pairs", 0, "end-to-end pairs of the comparison, current and baseline in ABBA order (default 2)")
	fs.IntVar(&o.ConsoleJobs, "console-jobs", 0, "jobs seeded for the console step (default 1,000,000)")
	natsEnv := fs.String("nats-env", "", "comma-separated KEY=VALUE environment of every nats-server the steps start, e.g. GOMEMLIMIT=4GiB,GOGC=400 (default: this process's own)")
	fs.IntVar(&o.ClusterJobs, "cluster-jobs", 0, "jobs of the end-to-end run on a three-node cluster (default half of -e2e-jobs)")
	only := fs.String("only", "", "comma-separated steps to run: ingest, e2e, cluster, bound, burst, webhooks, erasure, console (default all; the report needs all)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *natsEnv != "" {
		for _, kv := range strings.Split(*natsEnv, ",") {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				return fmt.Errorf("-nats-env: %q is not KEY=VALUE", kv)
			}
			o.NATSEnv = append(o.NATSEnv, kv)
		}
	}
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	if *quick {
		o = bench.Quick(o)
	}
	var err error
	if o.ModuleDir, err = procs.ModuleRoot("."); err != nil {
		return err
	}
	if o.Self, err = os.Executable(); err != nil {
		return err
	}
	if *workDir == "" {
		if *workDir, err = os.MkdirTemp("", "kycpipe-bench-"); err != nil {
			return err
		}
	}
	o.WorkDir = *workDir
	o.Logf = func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	o.Logf("work dir %s (logs of every process)", o.WorkDir)
	res, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	if len(o.Only) > 0 {
		// A partial run: print what it measured; the report needs every step.
		fmt.Println(res.Markdown("go run ./cmd/bench "+strings.Join(args, " "), ""))
		return nil
	}
	fmt.Println(res.Table())
	command := "make bench"
	if extra := strings.Join(args, " "); extra != "" {
		command = "go run ./cmd/bench " + extra
	}
	chartRel := ""
	if *chart != "" {
		f, err := os.Create(*chart)
		if err != nil {
			return err
		}
		if err := res.WriteChart(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		chartRel = *chart
		if *out != "" {
			if rel, err := filepath.Rel(filepath.Dir(*out), *chart); err == nil {
				chartRel = rel
			}
		}
	}
	if *out != "" {
		if err := bench.WriteReport(*out, res.Markdown(command, chartRel)); err != nil {
			return err
		}
		o.Logf("wrote %s", *out)
	}
	return nil
}
