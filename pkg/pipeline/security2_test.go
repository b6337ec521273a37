package pipeline_test

// Regression tests of issue 13 ("Security II"), one or more per finding.
// Each names the finding it reproduces; docs/SECURITY.md lists them.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// imageMsgs returns how many messages (chunks and metadata) the image
// store holds.
func imageMsgs(t *testing.T, b *bundle) uint64 {
	t.Helper()
	ctx := context.Background()
	st, err := b.stack.JS.Stream(ctx, "OBJ_"+b.subj.BucketImages())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// bigPNG is a PNG header followed by n random bytes: ingest sniffs the
// type and streams the rest.
func bigPNG(n int) []byte {
	img := jumiotest.PNG(8, 8)
	pad := make([]byte, n)
	_, _ = rand.Read(pad)
	return append(img, pad...)
}

// pacedReader hands out its bytes n at a time, one read per tick: a slow
// but steady client.
type pacedReader struct {
	b    []byte
	n    int
	tick <-chan time.Time
}

func (p *pacedReader) Read(buf []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	<-p.tick
	k := min(p.n, len(buf), len(p.b))
	copy(buf, p.b[:k])
	p.b = p.b[k:]
	return k, nil
}

// Finding 7: the JetStream deadline (3 × the publish timeout) started
// before the body was read, so a slow but steady upload got 503 with
// Retry-After; and an upload that stalled or was cut short left its chunks
// in the image store for its TTL (the purge used an expired or canceled
// context). Here the publish timeout is 300 ms, so the old deadline was
// 900 ms; the upload takes about 2 s, and each read waits 60 ms.
func TestFinding7SlowUploads(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Workers, o.Retrievers = 0, 0
		o.Ingest.PublishTimeout = 300 * time.Millisecond
	})
	request := []byte(`{"customerInternalReference":"order-slow","channel":"API",` + pipelinetest.APIImageFields(10011) + `}`)
	ct, body := multipartOf(map[string][]byte{"request": request, "FRONT": bigPNG(1 << 20)}, "request", "FRONT")
	tick := time.NewTicker(60 * time.Millisecond)
	defer tick.Stop()
	r := b.do(t, http.MethodPost, "/v1/verifications", ct, &pacedReader{b: body, n: 32 << 10, tick: tick.C}, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("a slow, steady upload: %d %s, want 202", r.status, r.body)
	}

	// A client that stalls mid-image, and one that goes away: their chunks
	// are purged.
	ct, body = multipartOf(map[string][]byte{"request": []byte(`{"customerInternalReference":"order-cut","channel":"API",` + pipelinetest.APIImageFields(10011) + `}`),
		"FRONT": bigPNG(1 << 20)}, "request", "FRONT")
	baseline := imageMsgs(t, b)
	for _, abort := range []bool{false, true} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(b.stack.IngestURL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		head := fmt.Sprintf("POST /v1/verifications HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			b.stack.APIKey, ct, len(body))
		if _, err := conn.Write(append([]byte(head), body[:len(body)/2]...)); err != nil {
			t.Fatal(err)
		}
		pipelinetest.Eventually(t, waitLong, func() bool { return imageMsgs(t, b) > baseline }, "no chunk stored (abort=%v)", abort)
		if abort {
			conn.Close()
		}
		pipelinetest.Eventually(t, 10*time.Second, func() bool { return imageMsgs(t, b) == baseline },
			"the chunks of an upload that stalled or was cut short stay in the image store (abort=%v)", abort)
		conn.Close()
	}
}

// Finding 8: a valid body under 1 MiB whose free-form capabilities were
// full of '<' grew six-fold when encoded (HTML escaping) and the jobs stream
// refused it: 503 with Retry-After, retried forever. Capabilities are
// bounded, messages are not HTML-escaped, and a message too large for the
// stream is 413.
func TestFinding8OversizedMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Workers, o.Retrievers = 0, 0
		o.Ingest.MaxBodyBytes = 4 << 20 // larger than a job message may be
	})
	job := func(ref string, caps map[string]any, creds int) []byte {
		j := emailJob(ref)
		wd := map[string]any{"key": 10066}
		if caps != nil {
			wd["capabilities"] = caps
		}
		if creds > 0 {
			cs := make([]map[string]any, creds)
			for i := range cs {
				cs[i] = map[string]any{"category": "DATA", "id": fmt.Sprintf("%064d", i)}
			}
			wd["credentials"] = cs
		}
		j["workflowDefinition"] = wd
		// Sent as a client would: '<' as is, not escaped.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(j)
		return buf.Bytes()
	}
	post := func(body []byte) response {
		return b.do(t, http.MethodPost, "/v1/verifications", "application/json", bytes.NewReader(body), nil)
	}
	// Capabilities far beyond anything Jumio takes: 422, not 503.
	huge := job("order-lt-1", map[string]any{"watchlistScreening": strings.Repeat("<", 200_000)}, 0)
	if r := post(huge); r.status != http.StatusUnprocessableEntity || !bytes.Contains(r.body, []byte("workflowDefinition.capabilities")) {
		t.Errorf("200 KB of capabilities: %d %s, want 422 naming workflowDefinition.capabilities", r.status, r.body)
	}
	// Within the bound: stored, and stored as sent (no \u003c).
	body := job("order-lt-2", map[string]any{"watchlistScreening": strings.Repeat("<", 12_000)}, 0)
	r := post(body)
	if r.status != http.StatusAccepted {
		t.Fatalf("12 KB of capabilities: %d %s", r.status, r.body)
	}
	var out struct{ JobID string }
	r.json(t, &out)
	ctx := context.Background()
	st, err := b.stack.JS.Stream(ctx, b.subj.StreamJobs())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, b.subj.JobsSubmit())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(msg.Data, []byte(`\u003c`)) || len(msg.Data) > len(body)+1024 {
		t.Errorf("the job message is %d bytes for a %d-byte body (HTML-escaped: %v)", len(msg.Data), len(body), bytes.Contains(msg.Data, []byte(`\u003c`)))
	}
	// A job whose message is larger than the jobs stream accepts: 413.
	if r := post(job("order-lt-3", nil, 13_500)); r.status != http.StatusRequestEntityTooLarge || r.header.Get("Retry-After") != "" {
		t.Errorf("a 1.2 MB job: %d (Retry-After %q) %s, want 413", r.status, r.header.Get("Retry-After"), r.body)
	}
}

// Finding 9: the Idempotency-Key was ignored when the body carried a jobId:
// one key with three bodies naming three jobs got three 202s. A key names
// one job; another job under the same key is 409.
func TestFinding9IdempotencyKeyNamesOneJob(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) { o.Workers, o.Retrievers = 0, 0 })
	key := map[string]string{"Idempotency-Key": "finding-9-key"}
	withID := func(id string) map[string]any {
		j := emailJob("order-" + id)
		j["jobId"] = id
		return j
	}
	b.submit(t, withID("f9-a"), http.StatusAccepted, key)
	b.submit(t, withID("f9-b"), http.StatusConflict, key)
	b.submit(t, withID("f9-c"), http.StatusConflict, key)
	b.submit(t, withID("f9-a"), http.StatusOK, key) // the first request again: a repeat
	if r := b.do(t, http.MethodGet, "/v1/verifications/f9-b", "", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("job f9-b was stored (%d)", r.status)
	}
	// A key first used without a jobId names its derived job.
	key2 := map[string]string{"Idempotency-Key": "finding-9-key-2"}
	first := b.submit(t, emailJob("order-f9-d"), http.StatusAccepted, key2)
	b.submit(t, withID("f9-e"), http.StatusConflict, key2)
	if again := b.submit(t, emailJob("order-f9-d"), http.StatusOK, key2); again != first {
		t.Errorf("repeat answered job %s, want %s", again, first)
	}
}
