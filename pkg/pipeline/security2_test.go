package pipeline_test

// Regression tests of issue 13 ("Security II"), one or more per finding.
// Each names the finding it reproduces; docs/SECURITY.md lists them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// observed returns a logger that records every entry (debug included) in
// logs and also writes to the test's log.
func observed(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(zapcore.NewTee(core, pipelinetest.Logger(t).Core())), logs
}

// logsContain reports whether any entry's message or fields contain s.
func logsContain(logs *observer.ObservedLogs, s string) bool {
	for _, e := range logs.All() {
		if strings.Contains(e.Message, s) {
			return true
		}
		for k, v := range e.ContextMap() {
			if strings.Contains(k, s) || strings.Contains(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "\n", " "), "\t", " "), s) {
				return true
			}
		}
	}
	return false
}

// Finding 1 (high): a multipart submission whose request part names a
// 3,000-character jobId stored its image under that ID before validating
// it; the object-store subject exceeded NATS's max_control_line, the server
// answered with an error and nats.go closed the connection for good.
func TestFinding1ControlLineOverflow(t *testing.T) {
	t.Parallel()
	log, logs := observed(t)
	b := setup(t, func(o *localstack.Options) {
		o.Workers, o.Retrievers = 0, 0
		o.Logger = log
	})
	long := strings.Repeat("a", 3000)
	request := []byte(`{"jobId":"` + long + `","customerInternalReference":"order-cl","channel":"API",` + pipelinetest.APIImageFields(10011) + `}`)
	ct, body := multipartOf(map[string][]byte{"request": request, "FRONT": jumiotest.PNG(64, 48)}, "request", "FRONT")
	r := b.do(t, http.MethodPost, "/v1/verifications", ct, bytes.NewReader(body), nil)
	if r.status != http.StatusUnprocessableEntity || !bytes.Contains(r.body, []byte(`"jobId"`)) {
		t.Errorf("answer %d %s, want 422 naming jobId", r.status, r.body)
	}
	if b.stack.NC.IsClosed() {
		t.Fatal("the hostile request closed ingest's NATS connection")
	}
	// Nothing was stored before the request was refused.
	ctx := context.Background()
	st, err := b.stack.JS.Stream(ctx, "OBJ_"+b.subj.BucketImages())
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("image store holds %d messages after a refused submission (%v)", info.State.Msgs, err)
	}
	// The connection still serves: a good submission is stored.
	good := []byte(`{"customerInternalReference":"order-cl-2","channel":"API",` + pipelinetest.APIImageFields(10011) + `}`)
	ct, body = multipartOf(map[string][]byte{"request": good, "FRONT": jumiotest.PNG(64, 48)}, "request", "FRONT")
	if r := b.do(t, http.MethodPost, "/v1/verifications", ct, bytes.NewReader(body), nil); r.status != http.StatusAccepted {
		t.Errorf("a good submission after the hostile one: %d %s", r.status, r.body)
	}
	if r := b.do(t, http.MethodGet, "/healthz", "", nil, nil); r.status != http.StatusOK {
		t.Errorf("healthz %d", r.status)
	}
	if logsContain(logs, strings.Repeat("a", 100)) {
		t.Error("the oversized jobId was logged")
	}
}

func fmtAny(v any) string { return fmt.Sprint(v) }

// Finding 1: after nats.go closed the connection for good, ingest's own
// /healthz kept answering 200, so no orchestrator restarted it while every
// request got 503. Also (readyz): /readyz, which takes no key, showed
// internal error text; it shows a reason code only.
func TestFinding1HealthFailsWhenNATSClosed(t *testing.T) {
	t.Parallel()
	ns, _, adminJS := pipelinetest.RunJetStream(t)
	ctx := context.Background()
	topo := pipeline.Topology{}.WithDefaults()
	if err := pipeline.Provision(ctx, adminJS, topo); err != nil {
		t.Fatal(err)
	}
	nc, js := pipelinetest.Connect(t, ns.ClientURL())
	in, err := pipeline.NewIngest(ctx, nc, js, pipeline.IngestConfig{Topology: topo, InsecureNoAuth: true, Logger: pipelinetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	probe := func(path string) (int, map[string]string) {
		rec := httptest.NewRecorder()
		in.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	if code, _ := probe("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz before: %d", code)
	}
	nc.Close()
	if code, body := probe("/healthz"); code != http.StatusServiceUnavailable || body["reason"] != "nats_closed" {
		t.Errorf("healthz with the NATS connection closed: %d %v, want 503 nats_closed", code, body)
	}
	code, body := probe("/readyz")
	if code != http.StatusServiceUnavailable || body["reason"] != "nats_closed" {
		t.Errorf("readyz with the NATS connection closed: %d %v, want 503 nats_closed", code, body)
	}
	// A missing stream is a code too, not the JetStream error.
	nc2, js2 := pipelinetest.Connect(t, ns.ClientURL())
	in2, err := pipeline.NewIngest(ctx, nc2, js2, pipeline.IngestConfig{Topology: topo, InsecureNoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := adminJS.DeleteStream(ctx, topo.Subjects.StreamDecisions()); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	in2.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"reason":"topology_unavailable"`) ||
		strings.Contains(rec.Body.String(), topo.Subjects.StreamDecisions()) {
		t.Errorf("readyz with a stream missing: %d %s", rec.Code, rec.Body)
	}
}
