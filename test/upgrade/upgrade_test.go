//go:build upgrade

package upgrade_test

import (
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/internal/soak"
	"github.com/kycpipe/kycpipe/internal/upgrade"
)

var (
	flagOld      = flag.String("upgrade.old", upgrade.PreviousRelease, "commit of the release to upgrade from")
	flagNodes    = flag.Int("upgrade.nodes", 3, "NATS servers (3: a cluster with R3 streams)")
	flagRate     = flag.Float64("upgrade.rate", 6, "jobs submitted per second")
	flagOldPhase = flag.Duration("upgrade.old-phase", 20*time.Second, "the old release alone")
	flagMixed    = flag.Duration("upgrade.mixed", 60*time.Second, "half the fleet old, half new")
	flagNew      = flag.Duration("upgrade.new-phase", 20*time.Second, "the new release alone")
	flagKill     = flag.Duration("upgrade.kill-every", 8*time.Second, "mean time between SIGKILLs during and after the roll")
	flagSeed     = flag.Uint64("upgrade.seed", 0, "random seed (0: from the clock)")
	flagReport   = flag.String("upgrade.report", "", "also write the run's Markdown report to this file")
	flagWorkDir  = flag.String("upgrade.work-dir", "", "keep the run's NATS stores and process logs in this directory (default: a temporary one, removed)")
)

var (
	buildOnce      sync.Once
	buildDir       string
	oldRel, curRel upgrade.Release
	buildErr       error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// releases builds the old release (from git) and the current tree once per
// test binary.
func releases(t *testing.T) (upgrade.Release, upgrade.Release) {
	t.Helper()
	buildOnce.Do(func() {
		root, err := procs.ModuleRoot(".")
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "kycpipe-upgrade-build-"); buildErr != nil {
			return
		}
		start := time.Now()
		// The old release's build is kept between runs (a commit never
		// changes); the current tree is built afresh each time.
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		if oldRel, buildErr = upgrade.BuildRelease(root, *flagOld, filepath.Join(cache, "kycpipe-upgrade", *flagOld), upgrade.ReleaseCommands...); buildErr != nil {
			return
		}
		curRel, buildErr = upgrade.BuildCurrent(root, filepath.Join(buildDir, "new"), append(upgrade.ReleaseCommands, "notifier")...)
		t.Logf("built %s and the current tree in %s", *flagOld, time.Since(start).Round(time.Second))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return oldRel, curRel
}

// TestRollingUpgrade runs the previous release, upgrades it process by
// process to the current tree while jobs flow and processes are killed,
// and checks that every accepted job was decided exactly once (or
// dead-lettered for a reason), nothing was lost, everything decodes with
// the new release, and erasures of jobs from every phase are complete.
func TestRollingUpgrade(t *testing.T) {
	old, cur := releases(t)
	start := time.Now()
	work := *flagWorkDir
	if work == "" {
		work = t.TempDir()
	}
	r, err := upgrade.Run(t.Context(), upgrade.Options{
		Old: old, New: cur, WorkDir: work, Nodes: *flagNodes, Rate: *flagRate,
		OldPhase: *flagOldPhase, MixedPhase: *flagMixed, NewPhase: *flagNew, KillEvery: *flagKill,
		Seed: *flagSeed, Progress: testWriter{t},
	})
	if r != nil {
		md := r.Markdown()
		t.Logf("run took %s\n%s", time.Since(start).Round(time.Second), md)
		if *flagReport != "" {
			if werr := os.WriteFile(*flagReport, []byte(md), 0o644); werr != nil {
				t.Error(werr)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("rolling-upgrade invariants failed (seed %d):%s", r.Seed, soak.FormatFailures(r.Failures()))
	}
	if r.ReplacedByKill == 0 || r.ReplacedGracefully == 0 || r.AcceptedBy[old.Name] == 0 || r.AcceptedBy[cur.Name] == 0 {
		t.Errorf("the run did not mix enough: %d replacements by SIGKILL, %d graceful, accepted by %v",
			r.ReplacedByKill, r.ReplacedGracefully, r.AcceptedBy)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

var (
	flagGoldenVersion = flag.String("golden.version", "current", "corpus to capture: current (the working tree) or the old release's commit")
	flagGoldenUpdate  = flag.Bool("golden.update", false, "write the capture to testdata/golden/<version> instead of comparing it")
)

// TestCaptureGolden runs one release alone through jobs that make every
// kind of message it writes, and compares the variants captured with its
// corpus in testdata/golden/<version> (a variant the release still writes
// must be in the corpus, and the other way round). With -golden.update it
// rewrites the corpus instead (make golden).
func TestCaptureGolden(t *testing.T) {
	old, cur := releases(t)
	rel := cur
	if *flagGoldenVersion != "current" {
		if *flagGoldenVersion != old.Name {
			t.Fatalf("-golden.version %s: build it with -upgrade.old %s", *flagGoldenVersion, *flagGoldenVersion)
		}
		rel = old
	}
	root, err := procs.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	corpus := filepath.Join(root, "testdata", "golden", *flagGoldenVersion)
	out := t.TempDir()
	if *flagGoldenUpdate {
		out = corpus
	}
	m, err := upgrade.Capture(t.Context(), upgrade.CaptureOptions{Release: rel, Version: *flagGoldenVersion, OutDir: out,
		WorkDir: t.TempDir(), Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range m.Files {
		got[f.Variant] = true
	}
	t.Logf("captured %d messages of %d variants", len(m.Files), len(got))
	if *flagGoldenUpdate {
		return
	}
	want, err := upgrade.ReadManifest(corpus)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range want.Files {
		have[f.Variant] = true
		if !got[f.Variant] {
			t.Errorf("the corpus has %s, which %s no longer writes", f.Variant, rel.Name)
		}
	}
	for v := range got {
		if !have[v] {
			t.Errorf("%s writes %s, which its corpus lacks: make golden", rel.Name, v)
		}
	}
}
