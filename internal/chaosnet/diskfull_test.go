//go:build chaosnet

package chaosnet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// The disk under JetStream fills up (docs/OPERATIONS.md, "When storage is
// full"). The servers are configured as in production, with a
// max_file_store far larger than the disk, so the disk runs out first:
// nats-server cannot write ("no space left on device"). The client must
// get 2xx or 503 + Retry-After, never a hang; once space is freed and the
// server restarted, every accepted job is decided exactly once and every
// refused one goes through on retry.

const (
	diskSize     = 48 << 20
	leaveFree    = 64 << 10
	overCommit   = 1 << 40 // max_file_store: 1 TiB on a 48 MiB disk
	clientWait   = 30 * time.Second
	submitBudget = 60
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends (after everything registered later has stopped).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the full-disk tests mount tmpfs: run them as root (make test-disk)")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill allocates a file that leaves about leave bytes free on dir's file
// system, and returns its path.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if free > leave {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, free-leave); err != nil {
			t.Fatalf("fallocate %d bytes: %v", free-leave, err)
		}
	}
	return path
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// client submits jobs the way a well-behaved upstream does and records
// what it saw.
type client struct {
	t        *testing.T
	stack    *localstack.Stack
	http     *http.Client
	accepted map[string]string // reference → job ID
	refused  []string          // references answered 503
	worst    time.Duration
}

func newClient(t *testing.T, s *localstack.Stack) *client {
	return &client{t: t, stack: s, http: &http.Client{Timeout: clientWait}, accepted: map[string]string{}}
}

// submit sends the job with reference ref once; it fails the test on
// anything but 2xx or 503 with Retry-After, including no answer within the
// client's timeout.
func (c *client) submit(ref string) int {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10066},
		"channel": "API", "preparedData": map[string]any{"email": "jane.doe@example.com"}})
	req, _ := http.NewRequest(http.MethodPost, c.stack.IngestURL+"/v1/verifications", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.stack.APIKey)
	req.Header.Set("Idempotency-Key", ref)
	start := time.Now()
	resp, err := c.http.Do(req)
	c.worst = max(c.worst, time.Since(start))
	if err != nil {
		c.t.Fatalf("submission %s: no answer within %s: %v", ref, clientWait, err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		var out struct{ JobID string }
		if err := json.Unmarshal(rb, &out); err != nil || out.JobID != messages.IdempotentJobID(ref) {
			c.t.Fatalf("submission %s: %s", ref, rb)
		}
		c.accepted[ref] = out.JobID
	case resp.StatusCode == http.StatusServiceUnavailable:
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			c.t.Fatalf("submission %s: 503 without Retry-After: %v", ref, resp.Header)
		}
		c.refused = append(c.refused, ref)
	default:
		c.t.Fatalf("submission %s: %d %s", ref, resp.StatusCode, rb)
	}
	return resp.StatusCode
}

// retryRefused resubmits every refused job until it is accepted.
func (c *client) retryRefused() {
	c.t.Helper()
	for _, ref := range c.refused {
		pipelinetest.Eventually(c.t, 2*time.Minute, func() bool { return c.submit(ref) != http.StatusServiceUnavailable },
			"%s still refused after the disk was freed", ref)
	}
	c.refused = nil
}

// decidedOnce checks that every accepted job was decided, with one Jumio
// account, and nothing was dead-lettered.
func (c *client) decidedOnce(decisions *pipelinetest.Recorder[*messages.DecisionEvent], dlq *pipelinetest.Recorder[[]byte]) {
	c.t.Helper()
	for ref, id := range c.accepted {
		decisions.WaitN(c.t, 1, 2*time.Minute, pipelinetest.ForJob[*messages.DecisionEvent](id), "decision for "+ref)
		if n := c.stack.Sim.Stats().AccountsByReference[ref]; n != 1 {
			c.t.Errorf("%s: %d Jumio accounts", ref, n)
		}
	}
	for ref, id := range c.accepted {
		if n := len(decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](id))); n != 1 {
			c.t.Errorf("%s: %d decisions", ref, n)
		}
	}
	if n := len(dlq.All()); n != 0 {
		c.t.Errorf("%d dead letters", n)
	}
}

func quietLogger(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
}

// One server, its disk full: the streams that hit "no space left on
// device" stop storing (nats-server keeps the write error until it
// restarts), ingest answers 503 + Retry-After; after freeing space and
// restarting the server, everything resumes.
func TestDiskFullSingleNode(t *testing.T) {
	disk := mountTmpfs(t, diskSize)
	port := freePort(t)
	start := func() *server.Server {
		ns, err := natsembed.Run(natsembed.Options{StoreDir: filepath.Join(disk, "store"), Port: port, MaxStore: overCommit, Logger: quietLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	ns := start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	ctx := context.Background()
	s, err := localstack.Start(ctx, localstack.Options{NATSURL: ns.ClientURL(), Workers: 1, Retrievers: 1, Logger: quietLogger(t),
		Retriever: pipeline.RetrieverConfig{Schedule: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	subj := s.Topology.Subjects
	decisions, dlq := pipelinetest.Decisions(t, s.JS, subj), pipelinetest.DeadLetters(t, s.JS, subj)
	c := newClient(t, s)
	for i := range 10 {
		c.submit(fmt.Sprintf("disk1-before-%02d", i))
	}

	filler := fill(t, disk, leaveFree)
	for i := 0; len(c.refused) < 2; i++ {
		if i >= submitBudget {
			t.Fatalf("%d submissions accepted on a full disk", i)
		}
		c.submit(fmt.Sprintf("disk1-full-%02d", i))
	}
	t.Logf("disk full: %d accepted in all, %d refused; worst answer %s", len(c.accepted), len(c.refused), c.worst.Round(time.Millisecond))

	// Free the space; the streams that failed a write only store again after
	// a restart of the server (same store, same port: clients reconnect).
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	ns = start()
	c.retryRefused()
	for i := range 5 {
		if c.submit(fmt.Sprintf("disk1-after-%02d", i)) != http.StatusAccepted {
			t.Fatalf("refused after the restart")
		}
	}
	c.decidedOnce(decisions, dlq)
	t.Logf("%d jobs decided once each; worst answer %s", len(c.accepted), c.worst.Round(time.Millisecond))
}

// One node of three runs out of disk: nats-server disables JetStream on it,
// the R3 streams go on with the other two, submissions are still accepted;
// once its disk is freed and it restarts, the node rejoins and catches up.
func TestDiskFullClusterNode(t *testing.T) {
	var disks []string
	var ports, cports []int
	for range 3 {
		disks = append(disks, mountTmpfs(t, diskSize))
		ports, cports = append(ports, freePort(t)), append(cports, freePort(t))
	}
	var routes, urls []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", cports[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	nodes := make([]*server.Server, 3)
	start := func(i int) {
		ns, err := natsembed.Run(natsembed.Options{StoreDir: filepath.Join(disks[i], "store"), Port: ports[i], ServerName: fmt.Sprintf("n%d", i+1),
			MaxStore: overCommit, ClusterName: "diskfull", ClusterPort: cports[i], Routes: routes, Logger: quietLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = ns
	}
	for i := range 3 {
		start(i)
	}
	defer func() {
		for _, ns := range nodes {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}()
	ctx := context.Background()
	_, js := pipelinetest.Connect(t, strings.Join(urls, ","))
	pipelinetest.Eventually(t, time.Minute, func() bool { _, err := js.AccountInfo(ctx); return err == nil }, "no meta leader")
	s, err := localstack.Start(ctx, localstack.Options{NATSURL: strings.Join(urls, ","), Topology: pipeline.Topology{Replicas: 3},
		Workers: 1, Retrievers: 1, Logger: quietLogger(t),
		Retriever: pipeline.RetrieverConfig{Schedule: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	subj := s.Topology.Subjects
	decisions, dlq := pipelinetest.Decisions(t, s.JS, subj), pipelinetest.DeadLetters(t, s.JS, subj)
	c := newClient(t, s)
	for i := range 10 {
		c.submit(fmt.Sprintf("disk3-before-%02d", i))
	}

	// n3's disk fills up; the pipeline keeps writing to every replica.
	filler := fill(t, disks[2], leaveFree)
	for i := 0; nodes[2].JetStreamEnabled(); i++ {
		if i >= 10*submitBudget {
			t.Fatalf("JetStream still enabled on the full node after %d submissions", i)
		}
		c.submit(fmt.Sprintf("disk3-full-%03d", i))
	}
	t.Logf("n3 out of space: JetStream disabled on it; %d accepted, %d refused so far", len(c.accepted), len(c.refused))
	before := len(c.accepted)
	for i := range 20 {
		c.submit(fmt.Sprintf("disk3-two-%02d", i))
	}
	if len(c.accepted)-before == 0 {
		t.Errorf("no submission accepted while two nodes of three could store")
	}

	// Free n3's disk and restart it: it rejoins and catches up.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	nodes[2].Shutdown()
	nodes[2].WaitForShutdown()
	start(2)
	pipelinetest.Eventually(t, 2*time.Minute, func() bool { return nodes[2].JetStreamEnabled() && current(ctx, s, subj) }, "n3 did not catch up")
	c.retryRefused()
	c.decidedOnce(decisions, dlq)
	t.Logf("%d jobs decided once each; worst answer %s", len(c.accepted), c.worst.Round(time.Millisecond))
}

// current reports whether every replica of the jobs and decisions streams
// is current.
func current(ctx context.Context, s *localstack.Stack, subj messages.Subjects) bool {
	for _, name := range []string{subj.StreamJobs(), subj.StreamDecisions()} {
		st, err := s.JS.Stream(ctx, name)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
	}
	return true
}
