package bench

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// TestLoadGeneratorSmoke drives the reference server with the load
// generator and renders a report and chart from what it measured. It checks
// that requests are counted and answered, never how fast.
func TestLoadGeneratorSmoke(t *testing.T) {
	ns, nc, _ := pipelinetest.RunJetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ServeReference(ctx, ns.ClientURL(), addr) }()
	pipelinetest.Eventually(t, 10*time.Second, func() bool { return httpOK("http://" + addr + "/healthz") }, "reference server up")

	b := &runner{o: Options{}.withDefaults(), r: &Results{Reference: map[int]LoadResult{}, Ingest: map[int]LoadResult{}}}
	var sent int
	tgt := b.target(addr, "smoke", func(n int64, body []byte, _ time.Time) {
		sent++
		if req, err := messages.DecodeRequest(body); err != nil {
			t.Errorf("job body %d does not decode: %v", n, err)
		} else if err := req.Validate(); err != nil {
			t.Errorf("job body %d is not a valid request: %v", n, err)
		}
	})
	closed := ClosedLoop(ctx, tgt, 1, time.Minute, 50)
	if closed.Status[202] != 50 || closed.Errors != 0 || sent != 50 || len(closed.Lat) != 50 {
		t.Fatalf("closed loop: %+v (sent %d)", closed.Status, sent)
	}
	tgt.Sent = nil
	open := OpenLoop(ctx, tgt, 4, 100, 300*time.Millisecond)
	if open.Status[202] != 30 || open.Offered != 100 {
		t.Fatalf("open loop: %+v offered %v", open.Status, open.Offered)
	}
	pub, err := RawPublish(ctx, nc, 4, 1024, 200*time.Millisecond)
	if err != nil || pub.Messages == 0 {
		t.Fatalf("raw publish: %+v, %v", pub, err)
	}
	cons, err := RawConsume(ctx, nc)
	if err != nil || cons.Messages != pub.Messages {
		t.Fatalf("raw consume: %d of %d, %v", cons.Messages, pub.Messages, err)
	}
	st, err := ReadProc(os.Getpid())
	if err != nil || st.CPU <= 0 || st.PeakRSS <= 0 {
		t.Fatalf("/proc: %+v, %v", st, err)
	}

	// A report from these figures.
	r := b.r
	r.RawPublish, r.RawConsume = pub, cons
	r.Reference[64], r.Ingest[64] = closed, closed
	r.Reference[256], r.Ingest[256] = closed, closed
	r.Sweep = []SweepPoint{{Fraction: 0.5, Ingest: open, Reference: open}, {Fraction: 1, Ingest: open, Reference: open}}
	r.E2E = E2EResult{Jobs: 10, Elapsed: time.Second, CPU: map[string]time.Duration{"worker": time.Millisecond}, Peak: map[string]int64{"worker": 1 << 20}, Tokens: map[string]float64{"worker": 1, "retriever": 1}}
	r.Bound = BoundResult{C: 8, CallLatency: 20 * time.Millisecond, Calls: 3, Rate: 120}
	md := r.Markdown("make bench", "benchmarks.png")
	for _, want := range []string{"### Targets", "ingest vs reference at 64 connections", "| reference | 64 |", "Little's law", "![throughput"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	var img bytes.Buffer
	if err := r.WriteChart(&img); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&img); err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
	// The generated section replaces the previous one and keeps the rest.
	path := filepath.Join(t.TempDir(), "B.md")
	if err := os.WriteFile(path, []byte("# Benchmarks\n\nanalysis\n\n"+beginMarker+"\nold\n"+endMarker+"\n\nmore notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(path, "new\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if s := string(got); !strings.Contains(s, "analysis") || !strings.Contains(s, "more notes") || strings.Contains(s, "old") || !strings.Contains(s, "new") {
		t.Errorf("report file:\n%s", s)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("reference server: %v", err)
	}
}

// Every step of `make bench` runs, briefly, as docs/BENCHMARKS.md tells a
// user to smoke-test it (`go run ./cmd/bench --quick`), against real
// processes: nats-server (one, and a three-node cluster), the simulator and
// every stage. Its figures are meaningless and nothing here asserts a time;
// a step that a change broke fails here, not in the next benchmark run.
// (The comparison with the baseline commit, a second build of an older
// tree, is left out: -baseline none.)
func TestQuickBenchSmoke(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "report.md")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/bench", "--quick", "--out", report, "--chart", "", "-baseline", "none", "-work-dir", filepath.Join(dir, "work"))
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./cmd/bench --quick: %v\n%s", err, tail(string(out), 4000))
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### Targets", "### 1. Raw JetStream baselines", "### 2–3. Reference server vs ingest", "### 4. End to end",
		"### 4b. End to end on a 3-node JetStream cluster", "| nats-3 |", "### 5. Latency-bound run", "### 6. Burst", "### 7. Token economy",
		"### 8. Webhooks", "### 9. Erasure", "### 10. Console"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the report lacks %q:\n%s", want, b)
		}
	}
}
