package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// TestPeersReport renders the peer comparison from figures and writes it
// into a BENCHMARKS.md that already has the make bench section, keeping
// everything else; the ratios are River's figure over kycpipe's.
func TestPeersReport(t *testing.T) {
	lat := func(ms ...int) Latencies {
		var l Latencies
		for _, m := range ms {
			l = append(l, time.Duration(m)*time.Millisecond)
		}
		l.sort()
		return l
	}
	r := &PeerResults{Started: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), LowRate: 70, Options: PeerOptions{Options: Options{Concurrency: 256}, PoolSize: 16},
		Kycpipe: PeerRun{Name: "kycpipe", System: []string{"ingest", "worker", "retriever", "nats"}, Broker: "nats", Jobs: 1000, Elapsed: 2 * time.Second,
			CPU:  map[string]time.Duration{"ingest": 300 * time.Millisecond, "worker": 600 * time.Millisecond, "retriever": 600 * time.Millisecond, "nats": 500 * time.Millisecond, "jumiosim": 400 * time.Millisecond},
			Peak: map[string]int64{"ingest": 10 << 20, "worker": 10 << 20, "retriever": 10 << 20, "nats": 20 << 20},
			Lat:  lat(10, 20, 30), Low: LowLoadResult{Rate: 70, Jobs: 700, Lat: lat(5, 6)}, Jumio: map[string]int{"create_account": 1000, "details": 1000}},
		River: PeerRun{Name: "River", System: []string{"riverpeer", "postgres"}, Broker: "postgres", Jobs: 1000, Elapsed: 4 * time.Second,
			CPU:  map[string]time.Duration{"riverpeer": 1000 * time.Millisecond, "postgres": 3000 * time.Millisecond, "jumiosim": 400 * time.Millisecond},
			Peak: map[string]int64{"riverpeer": 30 << 20, "postgres": 100 << 20},
			Lat:  lat(40, 50, 60), Low: LowLoadResult{Rate: 70, Jobs: 700, Lat: lat(50, 60)}, Jumio: map[string]int{"create_account": 1000, "details": 1000},
			PGRoles: map[string]time.Duration{"backend": 2500 * time.Millisecond, "walwriter": 500 * time.Millisecond}, PGPerJob: map[string]float64{"commits": 4.5}},
	}
	rows := r.Rows()
	if rows[0].Kycpipe != "500" || rows[0].River != "250" || rows[0].Ratio != "0.50×" || !rows[0].KycpipeAhead {
		t.Errorf("jobs/s row: %+v", rows[0])
	}
	if rows[1].Kycpipe != "2.00 ms" || rows[1].River != "4.00 ms" || rows[1].Ratio != "2.00×" || !rows[1].KycpipeAhead {
		t.Errorf("CPU row: %+v", rows[1])
	}
	md := r.PeersMarkdown("make bench-peers")
	for _, want := range []string{"| jobs/s, first submission to last decision | 500 | 250 | 0.50× |", "| River | postgres | 3.00 | 100.0 MiB |",
		"| backend | 2.50 |", "| commits | 4.50 |", "| Jumio requests per job (simulator) | 2.00 | 2.00 | |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	path := filepath.Join(t.TempDir(), "B.md")
	if err := os.WriteFile(path, []byte("# Benchmarks\n\n"+beginMarker+"\nbench\n"+endMarker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"first\n", "second\n"} {
		if err := WritePeersReport(path, section); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	if s := string(got); strings.Count(s, "## Peers") != 1 || !strings.Contains(s, "second") || strings.Contains(s, "first") || !strings.Contains(s, "bench\n"+endMarker) {
		t.Errorf("report file:\n%s", s)
	}
}

// TestReadTree counts the CPU of a process's children, live and exited.
func TestReadTree(t *testing.T) {
	// A parent whose first child burns CPU and exits (reaped: cutime), and
	// whose second child stays.
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; sleep 30 & wait`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var ts TreeStat
	pipelinetest.Eventually(t, 20*time.Second, func() bool {
		var err error
		ts, err = ReadTree(cmd.Process.Pid)
		return err == nil && ts.Procs == 2 && ts.ByRole["exited"] > 0
	}, "the busy child reaped and the sleeping one running")
	if ts.CPU < ts.ByRole["exited"] || ts.PSS <= 0 {
		t.Errorf("tree: %+v", ts)
	}
}

// TestModuleVersion reads a requirement from a go.mod.
func TestModuleVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "go.mod")
	if err := os.WriteFile(path, []byte("module x\n\nrequire (\n\tgithub.com/riverqueue/river v0.51.2\n\tgithub.com/jackc/pgx/v5 v5.13.0\n)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := moduleVersion(path, "github.com/riverqueue/river"); v != "v0.51.2" {
		t.Errorf("river: %q", v)
	}
	if v := moduleVersion(path, "github.com/riverqueue/river/rivertype"); v != "unknown" {
		t.Errorf("absent module: %q", v)
	}
}

// TestDecisionWatchFeed: decisions fed by the PostgreSQL watcher are timed
// from their submission, counted once, and complete the watch.
func TestDecisionWatchFeed(t *testing.T) {
	w := newDecisionWatch(2)
	sent := w.markSent("r")
	t0 := time.Now()
	sent(1, nil, t0)
	sent(2, nil, t0)
	w.decide("r-1", t0.Add(5*time.Millisecond))
	w.decide("r-1", t0.Add(9*time.Millisecond))
	w.decide("r-2", t0.Add(7*time.Millisecond))
	select {
	case <-w.done:
	default:
		t.Fatal("watch not done after both decisions")
	}
	w.lat.sort()
	if len(w.lat) != 2 || w.lat[0] != 5*time.Millisecond || w.lat[1] != 7*time.Millisecond {
		t.Errorf("latencies %v", w.lat)
	}
}
