package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// The gate's bookkeeping, on a clock the test moves: which messages are
// held, when the runner stops pulling, how long holds last, when a web.href
// canary may go, and what readiness says.
func TestFaultGate(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	g := newFaultGate("worker", nil, 30*time.Second, zap.NewNop(), func() time.Time { return now }, nil)
	us := &ConfigFault{Region: jumio.RegionAMER, Kind: FaultCredentials, Status: 400, Fix: "JUMIO_CLIENT_ID_AMER_1 / JUMIO_CLIENT_SECRET_AMER_1"}
	g.report(us)
	if _, held := g.pausedFor(jumio.RegionAMER, false); !held {
		t.Fatal("amer-1 not paused")
	}
	if _, held := g.pausedFor(jumio.RegionEMEA, true); held {
		t.Fatal("emea-1 paused by amer-1's fault")
	}
	if !g.blocked([]jumio.Region{jumio.RegionAMER}) || g.blocked([]jumio.Region{jumio.RegionAMER, jumio.RegionEMEA}) {
		t.Fatal("the runner must stop only when every region it serves is paused")
	}
	err := g.err()
	if !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "JUMIO_CLIENT_SECRET_AMER_1") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("readiness: %v", err)
	}
	// Holds last until about the next probe, growing with the pause, never
	// beyond maxHoldDelay (plus its jitter of at most a half).
	if d := g.holdDelay(jumio.RegionAMER); d < 30*time.Second || d > 45*time.Second {
		t.Errorf("first hold %v", d)
	}
	now = now.Add(4 * time.Hour)
	if d := g.holdDelay(jumio.RegionAMER); d < maxHoldDelay || d > maxHoldDelay*3/2 {
		t.Errorf("hold after 4h %v", d)
	}

	// web.href: only WEB jobs that need a link are held; one canary with an
	// account per probe period, one without per ten.
	web := &ConfigFault{Region: jumio.RegionEMEA, Kind: FaultWebHref, Fix: "the portal's web domain"}
	g.report(web)
	if _, held := g.pausedFor(jumio.RegionEMEA, false); held {
		t.Fatal("an API job held for web.href")
	}
	if _, held := g.pausedFor(jumio.RegionEMEA, true); !held {
		t.Fatal("a WEB job not held")
	}
	if g.admitCanary(jumio.RegionEMEA, true) {
		t.Fatal("a canary before one probe period")
	}
	now = now.Add(31 * time.Second)
	if !g.admitCanary(jumio.RegionEMEA, true) || g.admitCanary(jumio.RegionEMEA, true) {
		t.Fatal("exactly one canary per period")
	}
	now = now.Add(31 * time.Second)
	if g.admitCanary(jumio.RegionEMEA, false) {
		t.Fatal("a canary without an account before ten periods")
	}
	now = now.Add(5 * time.Minute)
	if !g.admitCanary(jumio.RegionEMEA, false) {
		t.Fatal("no canary without an account after ten periods")
	}
	g.webHrefBack(jumio.RegionEMEA)
	if _, held := g.pausedFor(jumio.RegionEMEA, true); held {
		t.Fatal("still paused after web.href came back")
	}
	g.resume(faultKey{jumio.RegionAMER, scopeAll}, "test")
	if g.err() != nil || g.blocked([]jumio.Region{jumio.RegionAMER}) {
		t.Fatalf("after resuming: %v", g.err())
	}
}
