package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/internal/procs"
)

// This file measures kycpipe against an earlier commit of itself, built
// from git, in the same run: issue 19's targets are ratios to commit
// 9aa777e ("new features have to pay for themselves"). The commit's tree is
// extracted with git archive into a cache directory and its commands are
// built there (same module path, its own go.mod); the harness then starts
// its stages exactly as it starts the current ones, against the same
// nats-server binary, each pipeline with its own simulator (the commit's).

// DefaultBaseline is the commit make bench compares against.
const DefaultBaseline = "9aa777e"

// baselineCommands are the commands a baseline pipeline needs.
var baselineCommands = []string{"ingest", "worker", "retriever", "jumiosim"}

// Baseline is a built earlier commit.
type Baseline struct {
	Rev    string // as asked (e.g. 9aa777e)
	Commit string // the full hash
	BinDir string // its ingest, worker, retriever and jumiosim
}

// BuildBaseline builds the commands of rev (a commit of the repository at
// moduleDir) into cacheDir/<commit>/bin, reusing an earlier build of the
// same commit. Builds use -trimpath, as the harness's own builds do, so
// packages the commit shares with the working tree come from the build
// cache.
func BuildBaseline(ctx context.Context, moduleDir, rev, cacheDir string, logf func(string, ...any)) (Baseline, error) {
	commit, err := procs.ResolveCommit(moduleDir, rev)
	if err != nil {
		return Baseline{}, err
	}
	b := Baseline{Rev: rev, Commit: commit, BinDir: filepath.Join(cacheDir, commit, "bin")}
	stamp := filepath.Join(b.BinDir, ".built")
	if _, err := os.Stat(stamp); err == nil {
		logf("baseline %s: reusing %s", rev, b.BinDir)
		return b, nil
	}
	src := filepath.Join(cacheDir, commit, "src")
	_ = os.RemoveAll(src)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return b, err
	}
	logf("baseline %s: extracting %s into %s", rev, commit[:12], src)
	if err := procs.ExtractCommit(ctx, moduleDir, commit, src); err != nil {
		return b, err
	}
	logf("baseline %s: building %s", rev, strings.Join(baselineCommands, ", "))
	if err := goBuild(ctx, src, b.BinDir, baselineCommands...); err != nil {
		return b, err
	}
	return b, os.WriteFile(stamp, []byte(commit+"\n"), 0o644)
}

// goBuild builds ./cmd/<name> of the module at dir into binDir, with
// -trimpath and the local toolchain.
func goBuild(ctx context.Context, dir, binDir string, names ...string) error {
	args := []string{"build", "-trimpath", "-o", binDir + string(os.PathSeparator)}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: go build %v in %s: %w\n%s", names, dir, err, out)
	}
	return nil
}

// DefaultCacheDir is where baselines are built: the user's cache directory.
func DefaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "kycpipe-bench")
}

// Pair is the current pipeline and the baseline, run back to back.
type Pair struct {
	New, Base E2EResult
}

// frac returns a/b, or 0 when b is 0.
func frac(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Ratio of a per-job CPU figure (current / baseline) for processes names.
func (p Pair) cpuRatio(names ...string) float64 {
	return frac(float64(p.New.CPUPerJob(names...)), float64(p.Base.CPUPerJob(names...)))
}

// Comparison is every pair of the end-to-end comparison.
type Comparison struct {
	Baseline Baseline
	Pairs    []Pair
}

// median returns the median of f over the pairs.
func (c Comparison) median(f func(Pair) float64) float64 {
	var v []float64
	for _, p := range c.Pairs {
		v = append(v, f(p))
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// RateRatio is the median over the pairs of jobs/s, current / baseline.
func (c Comparison) RateRatio() float64 {
	return c.median(func(p Pair) float64 { return frac(p.New.Rate(), p.Base.Rate()) })
}

// CPURatio is the median over the pairs of CPU per job of processes
// names, current / baseline.
func (c Comparison) CPURatio(names ...string) float64 {
	return c.median(func(p Pair) float64 { return p.cpuRatio(names...) })
}

// loadAvg reads the 1-minute load average (the machine's other load).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// LoadNote is the machine's load average when a step ran.
type LoadNote struct {
	Step   string
	At     time.Time
	Before string
	After  string
}

// baseRev names the baseline ("the baseline" when there is none).
func (c *Comparison) baseRev() string {
	if c == nil {
		return "the baseline"
	}
	return c.Baseline.Rev
}

// compareMarkdown renders the end-to-end comparison with the baseline.
func (r *Results) compareMarkdown() string {
	c := r.Compare
	if c == nil || len(c.Pairs) == 0 {
		return ""
	}
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format, a...) }
	short := c.Baseline.Commit
	if len(short) > 12 {
		short = short[:12]
	}
	p("\n#### Against %s (`%s`, built from git), same run\n\n", c.Baseline.Rev, short)
	p("Each pair runs the current pipeline and the baseline (its ingest, worker, retriever and simulator, on the same nats-server build) one after the other on fresh stacks, in ABBA order across pairs, with the same %d jobs, load and concurrency. Ratios are current / baseline within a pair; the targets use their median.\n\n", r.Options.E2EJobs)
	p("| pair | system | jobs/s | pipeline CPU ms/job | ingest | worker | retriever | nats-server | simulator | Jumio requests/job | load avg before → after |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	row := func(i int, name string, e E2EResult) {
		p("| %d | %s | %.0f | %s | %s | %s | %s | %s | %s | %.2f | %s → %s |\n", i, name, e.Rate(), ms(e.CPUPerJob(pipelineStages...)),
			ms(e.CPUPerJob("ingest")), ms(e.CPUPerJob("worker")), ms(e.CPUPerJob("retriever")), ms(e.CPUPerJob("nats")), ms(e.CPUPerJob("jumiosim")),
			float64(e.JumioRequests)/float64(max(e.Jobs, 1)), e.LoadBefore, e.LoadAfter)
	}
	for i, pr := range c.Pairs {
		row(i+1, "current", pr.New)
		row(i+1, c.Baseline.Rev, pr.Base)
		p("| %d | **ratio** | **%.2f×** | **%.2f×** | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | | |\n", i+1, frac(pr.New.Rate(), pr.Base.Rate()), pr.cpuRatio(pipelineStages...),
			pr.cpuRatio("ingest"), pr.cpuRatio("worker"), pr.cpuRatio("retriever"), pr.cpuRatio("nats"), pr.cpuRatio("jumiosim"))
	}
	p("\nMedian over the pairs: jobs/s **%.2f×**, pipeline CPU per job **%.2f×**, nats-server CPU per job **%.2f×**, simulator CPU per job **%.2f×**.\n",
		c.RateRatio(), c.CPURatio(pipelineStages...), c.CPURatio("nats"), c.CPURatio("jumiosim"))
	return sb.String()
}
