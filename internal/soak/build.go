package soak

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/kycpipe/kycpipe/internal/procs"
)

// Build compiles what a soak runs into dir: ingest, worker, retriever and
// notifier, and the example webhook receiver (webhook-receiver), with the
// race detector when race is set.
func Build(moduleDir, dir string, race bool) error {
	if err := procs.Build(moduleDir, dir, race, "ingest", "worker", "retriever", "notifier"); err != nil {
		return err
	}
	return BuildReceiver(moduleDir, dir, race)
}

// BuildReceiver compiles examples/webhook-receiver into dir/webhook-receiver.
func BuildReceiver(moduleDir, dir string, race bool) error {
	args := []string{"build", "-o", filepath.Join(dir, "webhook-receiver")}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./examples/webhook-receiver")...)
	cmd.Dir = moduleDir
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build webhook-receiver: %w\n%s", err, out)
	}
	return nil
}
