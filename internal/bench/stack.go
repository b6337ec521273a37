package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// BuildBinaries compiles the pipeline's commands, the simulator and the
// nats-server of the module's pinned version into binDir.
func BuildBinaries(moduleDir, binDir string) error {
	if err := goBuild(context.Background(), moduleDir, binDir, "ingest", "worker", "retriever", "notifier", "jumiosim"); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "nats-server"), "github.com/nats-io/nats-server/v2")
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build nats-server: %w\n%s", err, out)
	}
	return nil
}

// NATSVersion asks the built nats-server for its version.
func NATSVersion(binDir string) string {
	out, err := exec.Command(filepath.Join(binDir, "nats-server"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// Stack is one set of processes: a nats-server, optionally the Jumio
// simulator, and the pipeline's stages, each a child process so that its
// CPU time and memory can be read from /proc.
type Stack struct {
	binDir, dir string
	// StageBinDir, when set, holds the stages' and the simulator's
	// binaries (a baseline's); nats-server always comes from binDir.
	StageBinDir string
	APIKey      string
	NATSURL     string
	SimURL      string
	IngestAddr  string
	procs       map[string]*procs.Proc
	ops         map[string]string // stage -> operations listener address
	// ProfileDir, when set, makes each stage write a CPU profile there
	// (<stage>.pprof) until it stops.
	ProfileDir string
}

const benchAPIKey = "bench-api-key-0123456789abcdef"

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// emptyStack is a stack of no process yet, its directory created.
func emptyStack(binDir, dir string) (*Stack, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Stack{binDir: binDir, dir: dir, APIKey: benchAPIKey, procs: map[string]*procs.Proc{}, ops: map[string]string{}}, nil
}

// NewStack starts a nats-server with JetStream in a new directory under dir
// (natsEnv is added to its environment, natsArgs to its command line).
func NewStack(ctx context.Context, binDir, dir string, natsEnv []string, natsArgs ...string) (*Stack, error) {
	s, err := emptyStack(binDir, dir)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	p, err := procs.StartArgs("nats", filepath.Join(binDir, "nats-server"),
		append([]string{"-js", "-sd", filepath.Join(dir, "jetstream"), "-a", host, "-p", port, "-n", "kycpipe-bench"}, natsArgs...), natsEnv, filepath.Join(dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	s.procs["nats"] = p
	s.NATSURL = "nats://" + addr
	if err := waitFor(ctx, 20*time.Second, func() bool {
		nc, err := nats.Connect(s.NATSURL)
		if err != nil {
			return false
		}
		nc.Close()
		return true
	}); err != nil {
		s.Close()
		return nil, fmt.Errorf("bench: nats-server did not start: %w\n%s", err, p.Output())
	}
	return s, nil
}

// NewClusterStack starts a JetStream cluster of n nats-server processes
// (named nats-1 … nats-n) on loopback, each with its own store under dir,
// and waits for its meta leader. The stack's NATSURL lists every node.
func NewClusterStack(ctx context.Context, binDir, dir string, natsEnv []string, n int) (*Stack, error) {
	s, err := emptyStack(binDir, dir)
	if err != nil {
		return nil, err
	}
	clients, routes := make([]string, n), make([]string, n)
	for i := range n {
		c, err := freeAddr()
		if err != nil {
			return nil, err
		}
		r, err := freeAddr()
		if err != nil {
			return nil, err
		}
		clients[i], routes[i] = c, r
	}
	var urls []string
	for i := range n {
		host, port, _ := net.SplitHostPort(clients[i])
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, "nats://"+r)
			}
		}
		name := fmt.Sprintf("nats-%d", i+1)
		p, err := procs.StartArgs(name, filepath.Join(binDir, "nats-server"),
			[]string{"-js", "-sd", filepath.Join(dir, name), "-a", host, "-p", port, "-n", "kycpipe-bench-" + name,
				"--cluster_name", "kycpipe-bench", "--cluster", "nats://" + routes[i], "--routes", strings.Join(peers, ",")},
			natsEnv, filepath.Join(dir, name+".log"))
		if err != nil {
			s.Close()
			return nil, err
		}
		s.procs[name] = p
		urls = append(urls, "nats://"+clients[i])
	}
	s.NATSURL = strings.Join(urls, ",")
	if err := waitFor(ctx, 60*time.Second, func() bool {
		nc, err := nats.Connect(s.NATSURL)
		if err != nil {
			return false
		}
		defer nc.Close()
		// The meta leader answers account info once it is elected.
		m, err := nc.Request("$JS.API.INFO", nil, 2*time.Second)
		return err == nil && !strings.Contains(string(m.Data), `"error"`)
	}); err != nil {
		s.Close()
		return nil, fmt.Errorf("bench: the nats cluster did not form: %w\n%s", err, tail(s.procs["nats-1"].Output(), 2000))
	}
	return s, nil
}

// StartSim starts cmd/jumiosim with the given extra arguments.
func (s *Stack) StartSim(ctx context.Context, args ...string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	args = append([]string{"-addr", addr, "-log-format", "json"}, args...)
	if s.ProfileDir != "" && s.StageBinDir == "" {
		args = append(args, "-cpu-profile", filepath.Join(s.ProfileDir, "jumiosim.pprof"))
	}
	p, err := procs.StartArgs("jumiosim", filepath.Join(s.stageBin(), "jumiosim"), args, nil, filepath.Join(s.dir, "jumiosim.log"))
	if err != nil {
		return err
	}
	s.procs["jumiosim"] = p
	s.SimURL = "http://" + addr
	return waitFor(ctx, 20*time.Second, func() bool { return httpOK(s.SimURL + "/_sim/stats") })
}

func (s *Stack) stageBin() string {
	if s.StageBinDir != "" {
		return s.StageBinDir
	}
	return s.binDir
}

// Env is the configuration every stage gets; extra settings override it.
func (s *Stack) env(extra []string) []string {
	env := []string{
		"KYCPIPE_NATS_URL=" + s.NATSURL,
		"KYCPIPE_HTTP_ADDR=" + s.IngestAddr,
		"KYCPIPE_API_KEYS=" + s.APIKey,
		"KYCPIPE_CALLBACK_URL=http://" + s.IngestAddr + "/v1/callbacks/jumio",
		"JUMIO_BASE_URL=" + s.SimURL,
		"JUMIO_CLIENT_ID=" + jumiotest.DefaultClientID,
		"JUMIO_CLIENT_SECRET=" + jumiotest.DefaultClientSecret,
		"JUMIO_USER_AGENT=kycpipe-bench/1.0",
		"KYCPIPE_LOG_FORMAT=json",
	}
	return append(env, extra...)
}

// StartStages starts the named stages ("ingest", "worker", "retriever") and
// waits until each is ready.
func (s *Stack) StartStages(ctx context.Context, extra []string, stages ...string) error {
	if s.IngestAddr == "" {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		s.IngestAddr = addr
	}
	for _, st := range stages {
		ops, err := freeAddr()
		if err != nil {
			return err
		}
		env := append(s.env(extra), "KYCPIPE_METRICS_ADDR="+ops)
		if s.ProfileDir != "" {
			env = append(env, "KYCPIPE_CPU_PROFILE="+filepath.Join(s.ProfileDir, st+".pprof"))
		}
		p, err := procs.Start(st, filepath.Join(s.stageBin(), st), env, filepath.Join(s.dir, st+".log"))
		if err != nil {
			return err
		}
		s.procs[st], s.ops[st] = p, ops
		ready := "http://" + ops + "/readyz"
		if st == "ingest" {
			ready = "http://" + s.IngestAddr + "/readyz"
			s.ops[st] = s.IngestAddr
		}
		if err := waitFor(ctx, 30*time.Second, func() bool { return httpOK(ready) || !p.Running() }); err != nil || !p.Running() {
			return fmt.Errorf("bench: %s did not become ready: %v\n%s", st, err, tail(p.Output(), 2000))
		}
	}
	return nil
}

// BaselinePrefix is the subject prefix of a baseline ingest run beside the
// current one on the same nats-server: its own streams and bucket, so that
// neither pipeline's provisioning changes the other's.
const BaselinePrefix = "kycbase"

// StartBaselineIngest starts a baseline's ingest (process "ingest-base")
// with its own HTTP address and subject prefix, and returns the address.
func (s *Stack) StartBaselineIngest(ctx context.Context, baseBinDir string) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	env := append(s.env([]string{"KYCPIPE_HTTP_ADDR=" + addr, "KYCPIPE_SUBJECT_PREFIX=" + BaselinePrefix}), "KYCPIPE_METRICS_ADDR=127.0.0.1:0")
	p, err := procs.Start("ingest-base", filepath.Join(baseBinDir, "ingest"), env, filepath.Join(s.dir, "ingest-base.log"))
	if err != nil {
		return "", err
	}
	s.procs["ingest-base"] = p
	if err := waitFor(ctx, 30*time.Second, func() bool { return httpOK("http://"+addr+"/readyz") || !p.Running() }); err != nil || !p.Running() {
		return "", fmt.Errorf("bench: baseline ingest did not become ready: %v\n%s", err, tail(p.Output(), 2000))
	}
	return addr, nil
}

// StartProcess starts another child process (the reference server).
func (s *Stack) StartProcess(ctx context.Context, name, bin string, args []string, ready string) error {
	p, err := procs.StartArgs(name, bin, args, nil, filepath.Join(s.dir, name+".log"))
	if err != nil {
		return err
	}
	s.procs[name] = p
	if err := waitFor(ctx, 30*time.Second, func() bool { return httpOK(ready) || !p.Running() }); err != nil || !p.Running() {
		return fmt.Errorf("bench: %s did not start: %v\n%s", name, err, tail(p.Output(), 2000))
	}
	return nil
}

// Stat reads /proc for one of the stack's processes.
func (s *Stack) Stat(name string) (ProcStat, error) {
	p, ok := s.procs[name]
	if !ok || !p.Running() {
		return ProcStat{}, fmt.Errorf("bench: %s is not running", name)
	}
	return ReadProc(p.Cmd.Process.Pid)
}

// Stats reads /proc for every running process of the stack.
func (s *Stack) Stats() map[string]ProcStat {
	out := map[string]ProcStat{}
	for name := range s.procs {
		if st, err := s.Stat(name); err == nil {
			out[name] = st
		}
	}
	return out
}

// Metric sums the samples of a Prometheus counter on a stage's /metrics
// whose labels contain every one of match (e.g. `class="token"`).
func (s *Stack) Metric(stage, name string, match ...string) (float64, error) {
	resp, err := httpGet("http://"+s.ops[stage]+"/metrics", s.APIKey)
	if err != nil {
		return 0, err
	}
	var sum float64
	for line := range strings.SplitSeq(resp, "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(line, m)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, nil
}

// SimStats reads the simulator's counters.
func (s *Stack) SimStats() (jumiotest.Stats, error) {
	var st jumiotest.Stats
	body, err := httpGet(s.SimURL+"/_sim/stats", "")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(body), &st)
}

// Close stops the stages gracefully, then the simulator and NATS (every
// node of a cluster).
func (s *Stack) Close() {
	for _, name := range []string{"ingest", "ingest-base", "worker", "retriever", "notifier", "reference", "jumiosim", "nats"} {
		if p, ok := s.procs[name]; ok {
			p.Stop(15 * time.Second)
		}
	}
	for name, p := range s.procs {
		if strings.HasPrefix(name, "nats-") {
			p.Stop(15 * time.Second)
		}
	}
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

var httpc = &http.Client{Timeout: 10 * time.Second}

func httpOK(url string) bool {
	resp, err := httpc.Get(url)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func httpGet(url, key string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
