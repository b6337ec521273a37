//go:build chaosnet

package chaosnet_test

import (
	"os"
	"testing"

	"github.com/kycpipe/kycpipe/internal/chaosnet"
	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/internal/soak"
)

// TestShortChaosNet is the short version of `make chaos-net` that `make
// test-net` runs (as root): every fault class once, 3 s each, with the
// soak's invariants and the client's at the end.
func TestShortChaosNet(t *testing.T) {
	if err := chaosnet.CheckTools(); err != nil {
		t.Fatalf("make test-net needs root, iproute2 and iptables: %v", err)
	}
	root, err := procs.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := chaosnet.Build(root, bin); err != nil {
		t.Fatal(err)
	}
	// The logs outlive a failed run.
	work, err := os.MkdirTemp("", "kycpipe-test-net-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs kept in %s", work)
			return
		}
		_ = os.RemoveAll(work)
	})
	r, err := chaosnet.Run(t.Context(), chaosnet.Options{BinDir: bin, WorkDir: work, Short: true, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r.Markdown())
	if !r.OK() {
		t.Fatal("invariants failed:" + soak.FormatFailures(r.Failures()))
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
