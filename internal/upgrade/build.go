package upgrade

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kycpipe/kycpipe/internal/procs"
)

// PreviousRelease is the commit of the release deployed before this
// development cycle: main when the previous cycle ended (2026-11-30, the
// code of the soaks docs/RELIABILITY.md records). It is used rather than
// e97c6fb, the literal parent of the reliability issue's first commit,
// because e97c6fb is main in mid-cycle (32 commits later, the cycle's first
// merges in), never deployed: upgrading from 9aa777e covers those changes
// too (docs/RELIABILITY.md, "Rolling upgrade").
const PreviousRelease = "9aa777e"

// ReleaseCommands are the binaries a run needs of each version: the three
// stages and the operator CLI (which provisions).
var ReleaseCommands = []string{"ingest", "worker", "retriever", "kycctl"}

// Release is one version's build: its source tree and its binaries.
type Release struct {
	Name   string // "9aa777e", or "current" for the working tree
	Src    string // the module root the binaries were built from
	BinDir string
}

// Bin is the path of one of the release's binaries.
func (r Release) Bin(name string) string { return filepath.Join(r.BinDir, name) }

// BuildRelease extracts the tree of ref (a commit of the repository at
// moduleDir) into dir/src with git archive, and builds names (the cmd/
// directories, e.g. "worker") into dir/bin. The tree is the commit's own,
// so the binaries are exactly what that commit ships, built with the same
// module path and its own go.mod. A commit never changes: when dir already
// holds a complete build of it (dir/bin/.commit names it), BuildRelease
// reuses it.
func BuildRelease(moduleDir, ref, dir string, names ...string) (Release, error) {
	src, bin := filepath.Join(dir, "src"), filepath.Join(dir, "bin")
	commit, err := procs.ResolveCommit(moduleDir, ref)
	if err != nil {
		return Release{}, fmt.Errorf("upgrade: unknown commit %s: %w", ref, err)
	}
	rel := Release{Name: ref, Src: src, BinDir: bin}
	if built(bin, commit, names) {
		return rel, nil
	}
	if err := os.RemoveAll(src); err != nil {
		return Release{}, err
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		return Release{}, err
	}
	if err := procs.ExtractCommit(context.Background(), moduleDir, commit, src); err != nil {
		return Release{}, fmt.Errorf("upgrade: extract %s: %w", ref, err)
	}
	if err := procs.Build(src, bin, false, names...); err != nil {
		return Release{}, fmt.Errorf("upgrade: build %s: %w", ref, err)
	}
	if err := os.WriteFile(filepath.Join(bin, ".commit"), []byte(commit+"\n"+strings.Join(names, " ")+"\n"), 0o644); err != nil {
		return Release{}, err
	}
	return rel, nil
}

// built reports whether bin holds names built from commit.
func built(bin, commit string, names []string) bool {
	stamp, err := os.ReadFile(filepath.Join(bin, ".commit"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(stamp), "\n")
	if len(lines) < 2 || lines[0] != commit {
		return false
	}
	have := strings.Fields(lines[1])
	for _, n := range names {
		if !slices.Contains(have, n) {
			return false
		}
		if _, err := os.Stat(filepath.Join(bin, n)); err != nil {
			return false
		}
	}
	return true
}

// BuildCurrent builds names from the working tree at moduleDir into dir.
func BuildCurrent(moduleDir, dir string, names ...string) (Release, error) {
	if err := procs.Build(moduleDir, dir, false, names...); err != nil {
		return Release{}, fmt.Errorf("upgrade: build the current tree: %w", err)
	}
	return Release{Name: "current", Src: moduleDir, BinDir: dir}, nil
}
