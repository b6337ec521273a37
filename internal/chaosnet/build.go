package chaosnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/internal/soak"
)

// Build compiles what a run needs into dir: ingest, worker, retriever,
// notifier and jumiosim from the module rooted at moduleDir, the example
// webhook receiver, and nats-server from the module's own nats-server
// dependency (the version go.mod pins).
func Build(moduleDir, dir string) error {
	if err := procs.Build(moduleDir, dir, false, "ingest", "worker", "retriever", "notifier", "jumiosim"); err != nil {
		return err
	}
	if err := soak.BuildReceiver(moduleDir, dir, false); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2")
	cmd.Dir = moduleDir
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build nats-server: %w\n%s", err, out)
	}
	return nil
}
