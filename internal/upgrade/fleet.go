package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/internal/procs"
)

// A slot is one replica of a service (ingest-1, worker-2, …), the way an
// orchestrator sees a deployment: it runs one process at a time, of one
// release, and a rolling deploy replaces its process by one of the new
// release.
type slot struct {
	name    string // ingest-1, worker-2, retriever-1
	kind    string // ingest, worker, retriever
	rel     Release
	proc    *procs.Proc
	opsURL  string // where /readyz answers (ingest: its API address)
	started int    // incarnations so far, for log file names
}

// fleet runs the service processes of a run.
type fleet struct {
	workDir string
	env     []string // every process's environment
	lb      *balancer
	logf    func(format string, args ...any)

	mu    sync.Mutex
	slots map[string]*slot
}

func newFleet(workDir string, env []string, lb *balancer, logf func(string, ...any)) *fleet {
	return &fleet{workDir: workDir, env: env, lb: lb, logf: logf, slots: map[string]*slot{}}
}

// names returns the slot names of a kind ("" for all), sorted.
func (f *fleet) names(kind string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n, s := range f.slots {
		if kind == "" || s.kind == kind {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (f *fleet) get(name string) *slot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slots[name]
}

// versions counts the running processes by release name.
func (f *fleet) versions() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, s := range f.slots {
		if s.proc != nil && s.proc.Running() {
			out[s.rel.Name]++
		}
	}
	return out
}

// launch starts a process of rel for slot name (creating the slot) and
// returns it without waiting for readiness. The slot's previous process,
// if still running, keeps running: the caller stops it (a surge).
func (f *fleet) launch(name string, rel Release, extraEnv ...string) (*slot, *procs.Proc, error) {
	kind, _, _ := strings.Cut(name, "-")
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := append(append([]string{}, f.env...), extraEnv...)
	if kind == "ingest" {
		env = append(env, "KYCPIPE_HTTP_ADDR="+addr)
	} else {
		env = append(env, "KYCPIPE_METRICS_ADDR="+addr)
	}
	f.mu.Lock()
	s := f.slots[name]
	if s == nil {
		s = &slot{name: name, kind: kind}
		f.slots[name] = s
	}
	s.started++
	n := s.started
	f.mu.Unlock()
	log := filepath.Join(f.workDir, fmt.Sprintf("%s.%d.%s.log", name, n, rel.Name))
	p, err := procs.Start(name, rel.Bin(kind), env, log)
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	s.rel, s.proc, s.opsURL = rel, p, "http://"+addr
	f.mu.Unlock()
	return s, p, nil
}

// start launches a process of rel in slot name and waits until it is
// ready; an ingest is then added to the load balancer.
func (f *fleet) start(ctx context.Context, name string, rel Release) error {
	s, p, err := f.launch(name, rel)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, p, s.opsURL, 2*time.Minute); err != nil {
		return fmt.Errorf("%s (%s): %w", name, rel.Name, err)
	}
	if s.kind == "ingest" {
		return f.lb.add(name, rel.Name, s.opsURL)
	}
	return nil
}

// stop ends the slot's process: gracefully (SIGTERM, bounded) or with
// SIGKILL. An ingest leaves the load balancer first, as behind a real one
// (a killed ingest leaves it at the same instant: requests in flight fail
// and clients retry).
func (f *fleet) stop(name string, kill bool) {
	s := f.get(name)
	if s == nil || s.proc == nil {
		return
	}
	if s.kind == "ingest" {
		f.lb.remove(name)
	}
	if kill {
		s.proc.Kill()
		return
	}
	s.proc.Stop(20 * time.Second)
}

// replace is one step of a rolling deploy: a process of rel starts for
// the slot (surge), and once it is ready the old one is stopped (gracefully
// or by SIGKILL).
func (f *fleet) replace(ctx context.Context, name string, rel Release, kill bool) error {
	old := f.get(name)
	var oldProc *procs.Proc
	if old != nil {
		oldProc = old.proc
	}
	s, p, err := f.launch(name, rel)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, p, s.opsURL, 2*time.Minute); err != nil {
		return fmt.Errorf("%s (%s): %w", name, rel.Name, err)
	}
	if s.kind == "ingest" {
		f.lb.remove(name)
		if err := f.lb.add(name, rel.Name, s.opsURL); err != nil {
			return err
		}
	}
	if oldProc != nil {
		if kill {
			oldProc.Kill()
		} else {
			oldProc.Stop(20 * time.Second)
		}
	}
	return nil
}

// restart replaces the slot's process by one of the same release after a
// SIGKILL, as an orchestrator restarts a crashed container: an old
// process comes back old.
func (f *fleet) restart(ctx context.Context, name string) error {
	s := f.get(name)
	if s == nil {
		return fmt.Errorf("no slot %s", name)
	}
	f.stop(name, true)
	return f.start(ctx, name, s.rel)
}

func (f *fleet) stopAll() {
	for _, n := range f.names("") {
		f.stop(n, false)
	}
}

// waitReady polls url/readyz until it answers 200, the process exits or
// timeout passes.
func waitReady(ctx context.Context, p *procs.Proc, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.Running() {
			return fmt.Errorf("exited before becoming ready:\n%s", tail(p.Output(), 2000))
		}
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !ctxutil.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	return errors.New("not ready in time:\n" + tail(p.Output(), 2000))
}

// ready reports whether url/readyz answers 200 now.
func ready(url string) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
