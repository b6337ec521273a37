package procs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The module's own HEAD is extracted whole: its go.mod and this package's
// source are where git archive put them.
func TestExtractCommitOfHEAD(t *testing.T) {
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	commit, err := ResolveCommit(root, "HEAD")
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	dst := t.TempDir()
	if err := ExtractCommit(context.Background(), root, commit, dst); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", filepath.Join("internal", "procs", "procs.go")} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("%s not extracted: %v", f, err)
		}
	}
	if _, err := ResolveCommit(root, "no-such-revision-anywhere"); err == nil {
		t.Error("an unknown revision resolved")
	}
}
