// Package procs builds and runs kycpipe's binaries as child processes, for
// the end-to-end tests and the chaos/soak harness.
package procs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Build compiles the named commands (e.g. "ingest", "worker") of the module
// rooted at moduleDir into dir, with the race detector when race is set.
func Build(moduleDir, dir string, race bool, names ...string) error {
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if race {
		args = append(args, "-race")
	}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", names, err, out)
	}
	return nil
}

// ModuleRoot finds the directory holding go.mod, from dir upwards.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// Proc is a running child process whose combined output is kept (and
// optionally written to a file).
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Done chan struct{} // closed when the process has exited and its output is read

	mu  sync.Mutex
	out bytes.Buffer
	log io.Writer
}

// Start runs bin with env added to the current environment. When logFile is
// not empty, the output is also appended to it.
func Start(name, bin string, env []string, logFile string) (*Proc, error) {
	return StartArgs(name, bin, nil, env, logFile)
}

// StartArgs is Start with command-line arguments.
func StartArgs(name, bin string, args, env []string, logFile string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	p := &Proc{Name: name, Cmd: cmd, Done: make(chan struct{})}
	var f *os.File
	if logFile != "" {
		if f, err = os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, err
		}
		p.log = f
	}
	if err := cmd.Start(); err != nil {
		if f != nil {
			f.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text() + "\n"
			p.mu.Lock()
			if p.out.Len() < 32<<20 {
				p.out.WriteString(line)
			}
			if p.log != nil {
				_, _ = io.WriteString(p.log, line)
			}
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		if f != nil {
			f.Close()
		}
		close(p.Done)
	}()
	return p, nil
}

// Output returns what the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.Done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.Done
}

// Stop sends SIGTERM and waits up to timeout for a graceful exit, then
// kills. It reports whether the exit was graceful.
func (p *Proc) Stop(timeout time.Duration) bool {
	if !p.Running() {
		return true
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
		return true
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

// KilledBySignal reports whether the process ended by SIGKILL.
func (p *Proc) KilledBySignal() bool {
	if p.Running() || p.Cmd.ProcessState == nil {
		return false
	}
	ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}
