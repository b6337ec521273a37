package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/internal/bench"
	"github.com/kycpipe/kycpipe/internal/procs"
)

// runPeers is "bench peers" (make bench-peers): kycpipe's end-to-end run and
// the same saga on River side by side, reported as ratios.
func runPeers(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench peers", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "run every step briefly (a smoke test; figures are meaningless)")
	out := fs.String("out", "docs/BENCHMARKS.md", "Markdown report whose Peers section to write; empty: none")
	workDir := fs.String("work-dir", "", "directory for binaries and logs (default: a new temp dir)")
	var o bench.PeerOptions
	fs.IntVar(&o.E2EJobs, "e2e-jobs", 0, "jobs per system (default 20000, as make bench)")
	fs.IntVar(&o.Concurrency, "concurrency", 0, "worker and retriever concurrency; River's MaxWorkers per queue (default 256)")
	fs.DurationVar(&o.LowLoadFor, "low-load-for", 0, "duration of the 10%-load runs (default 10s)")
	fs.IntVar(&o.PoolSize, "pool-size", 0, "the River peer's pgx pool size for River and its workers (default 16)")
	fs.IntVar(&o.IngestPoolSize, "ingest-pool-size", 0, "the River peer's pgx pool size for its HTTP routes (default 8)")
	fs.DurationVar(&o.FetchCooldown, "fetch-cooldown", 0, "River's FetchCooldown (default 10ms)")
	fs.BoolVar(&o.SkipTests, "skip-tests", false, "do not run the peer module's tests first")
	fs.BoolVar(&o.AsyncCommit, "async-commit", true, "also run River with synchronous_commit=off")
	fs.StringVar(&o.ProfileDir, "profile-dir", "", "write CPU profiles of kycpipe's stages and the River peer, and pg_stat_statements, here")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *quick {
		o.E2EJobs, o.LowLoadFor = 300, time.Second
	}
	var err error
	if o.ModuleDir, err = procs.ModuleRoot("."); err != nil {
		return err
	}
	if *workDir == "" {
		if *workDir, err = os.MkdirTemp("", "kycpipe-bench-peers-"); err != nil {
			return err
		}
	}
	o.WorkDir = *workDir
	o.Logf = func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	}
	o.Logf("work dir %s (logs of every process)", o.WorkDir)
	res, err := bench.RunPeers(ctx, o)
	if err != nil {
		return err
	}
	fmt.Print(res.PeersTable())
	command := "make bench-peers"
	if extra := strings.Join(args, " "); extra != "" {
		command = "go run ./cmd/bench peers " + extra
	}
	if *out != "" {
		if err := bench.WritePeersReport(*out, res.PeersMarkdown(command)); err != nil {
			return err
		}
		o.Logf("wrote %s", *out)
	}
	return nil
}
