//go:build chaosnet

package chaosnet_test

import (
	"testing"

	"github.com/kycpipe/kycpipe/internal/chaosnet"
	"github.com/kycpipe/kycpipe/internal/procs"
)

// TestShortChaosNet is the short version of `make chaos-net` that `make
// test-net` runs (as root): every fault class once, 4 s each, with the
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
	work := t.TempDir()
	r, err := chaosnet.Run(t.Context(), chaosnet.Options{BinDir: bin, WorkDir: work, Short: true, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r.Markdown())
	if !r.OK() {
		t.Fatalf("invariants failed (process logs in %s are removed with the test; rerun with go run ./cmd/chaosnet --short to keep them)", work)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
