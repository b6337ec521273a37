package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOpsListener(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	reg := NewRegistry()
	ops, err := StartOps("127.0.0.1:0", reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ops.Close(context.Background()) })
	base := "http://" + ops.Addr()
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("/readyz before the service is built = %d %s", code, body)
	}
	ops.SetReady(func(context.Context) error {
		if broken.Load() {
			return errors.New("NATS disconnected")
		}
		return nil
	})
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Errorf("/readyz = %d %s", code, body)
	}
	broken.Store(true)
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "NATS disconnected") {
		t.Errorf("/readyz when not ready = %d %s", code, body)
	}
	broken.Store(false)
	ops.Drain()
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz when draining = %d %s", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz while draining = %d (liveness must not fail)", code)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d", code)
	}
	// A process whose NATS connection closed for good fails liveness, so
	// an orchestrator restarts it even before it exits.
	ops.Fail(ErrConnectionClosed)
	if code, body := get(t, base+"/healthz"); code != 503 || !strings.Contains(body, "NATS connection closed") {
		t.Errorf("/healthz after the connection closed = %d %s", code, body)
	}
}
