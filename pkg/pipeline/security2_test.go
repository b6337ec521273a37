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
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
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
	ct, body := multipartOf(map[string][]byte{"request": request, "FRONT": jumiotest.PNG(640, 480)}, "request", "FRONT")
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
	ct, body = multipartOf(map[string][]byte{"request": good, "FRONT": jumiotest.PNG(640, 480)}, "request", "FRONT")
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
	img := jumiotest.PNG(640, 480)
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
	msg, err := st.GetLastMsgForSubject(ctx, b.subj.JobSubmit(out.JobID))
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

// Finding 2: every stream and bucket had no byte limit but the job queue;
// 1,198 forged callbacks added 154 MB to KYC_DLQ in 10 s. Each now has a
// byte limit derived from the job queue's (KYCPIPE_JOBS_MAX_BYTES).
func TestFinding2EveryStreamHasAByteLimit(t *testing.T) {
	t.Parallel()
	_, _, js := pipelinetest.RunJetStream(t)
	ctx := context.Background()
	topo := pipeline.Topology{JobsMaxBytes: 256 << 20}.WithDefaults()
	if err := pipeline.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	s := topo.Subjects
	want := map[string]int64{
		s.StreamJobs(): 256 << 20, s.StreamCallbacks(): 32 << 20, s.StreamRetrieve(): 64 << 20, s.StreamEvents(): 256 << 20,
		s.StreamDecisions(): 512 << 20, s.StreamDLQ(): 128 << 20, s.StreamAdvisories(): 16 << 20,
		"KV_" + s.BucketJobs(): 1 << 30, "KV_" + s.BucketLimits(): 4 << 20, "OBJ_" + s.BucketImages(): 512 << 20,
		s.StreamErasures(): 4 << 20, s.StreamAudit(): 64 << 20, s.StreamIndex(): 256 << 20,
		s.StreamWebhooks(): 128 << 20, s.StreamWebhookLog(): 512 << 20,
		"KV_" + s.BucketWebhookEndpoints(): 64 << 20, "KV_" + s.BucketWebhookAttempts(): 16 << 20,
	}
	seen := 0
	for name := range js.StreamNames(ctx).Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		seen++
		// Finding 5: no key-value bucket accepts a roll-up (one
		// Nats-Rollup: all would empty it). The object store needs them.
		if strings.HasPrefix(name, "KV_") && cfg.AllowRollup {
			t.Errorf("%s allows roll-ups", name)
		}
		if cfg.MaxBytes <= 0 {
			t.Errorf("%s has no byte limit", name)
		} else if w, ok := want[name]; ok && cfg.MaxBytes != w {
			t.Errorf("%s: MaxBytes %d, want %d", name, cfg.MaxBytes, w)
		}
	}
	if seen != len(want) {
		t.Errorf("%d streams, want %d", seen, len(want))
	}
	// Dead letters, decisions and audit records are never discarded to make room.
	for _, name := range []string{s.StreamDLQ(), s.StreamDecisions(), s.StreamAudit()} {
		st, _ := js.Stream(ctx, name)
		if d := st.CachedInfo().Config.Discard; d != jetstream.DiscardNew {
			t.Errorf("%s discards %v when full, want new", name, d)
		}
	}
}

// Finding 2: the callback rate limit was one bucket per ingest instance, so
// a flood from one address refused Jumio's own callbacks. It is per source
// address.
func TestFinding2CallbackRateIsPerSource(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Workers, o.Retrievers = 0, 0
		o.Ingest.Callbacks = pipeline.CallbackConfig{
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			RatePerSecond:  0.001, Burst: 3,
		}
	})
	body := callbackBody("7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e", "PROCESSED")
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	for i := range 5 {
		want := http.StatusOK
		if i >= 3 {
			want = http.StatusTooManyRequests
		}
		if r := b.callback(t, "/v1/callbacks/jumio", body, from("198.51.100.7")); r.status != want {
			t.Errorf("flood callback %d: %d, want %d", i+1, r.status, want)
		}
	}
	if r := b.callback(t, "/v1/callbacks/jumio", body, from("203.0.113.5")); r.status != http.StatusOK {
		t.Errorf("a callback from another address during the flood: %d, want 200", r.status)
	}
	// IPv6 senders are limited per /64: another address of the same /64
	// shares the bucket.
	for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3", "2001:db8:1:2::4"} {
		want := http.StatusOK
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if r := b.callback(t, "/v1/callbacks/jumio", body, from(ip)); r.status != want {
			t.Errorf("IPv6 callback %d: %d, want %d", i+1, r.status, want)
		}
	}
}

// Finding 2, done-when: a flood of 10,000 forged callbacks for unknown
// executions, each of the maximum size and from its own address (so the
// per-source rate limit lets every one through), grows JetStream's storage
// by less than 5 MB, and a genuine callback from another address is still
// answered (and the job decided).
func TestFinding2CallbackFlood(t *testing.T) {
	t.Parallel()
	const flood, workers = 10_000, 4
	b := setup(t, func(o *localstack.Options) {
		o.Ingest.Callbacks = pipeline.CallbackConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	})
	jobID := b.submit(t, webJob("order-flood"), 202, nil)
	launched := b.events.WaitN(t, 1, waitLong, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.JobID == jobID && m.Value.Kind == messages.KindLaunched
	}, "launched")[0].Value
	ctx := context.Background()
	storage := func() uint64 {
		info, err := b.stack.JS.AccountInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.Store
	}
	before := storage()

	// A maximum-size forged callback: hrefs at their 2 KiB bound, full of
	// '<' (six bytes each when HTML-escaped), padded to 8 KiB.
	forged := func(i int) []byte {
		href := "https://retrieval.amer-1.jumio.ai/" + strings.Repeat("<", 2048-34)
		exec := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(map[string]any{"callbackSentAt": "2026-11-22T10:00:00.000Z", "userReference": strings.Repeat("u", 400),
			"workflowExecution": map[string]any{"id": exec, "href": href, "definitionKey": "10164", "status": "PROCESSED"},
			"account":           map[string]any{"id": exec, "href": href}})
		cb := bytes.TrimSuffix(buf.Bytes(), []byte("}\n"))
		pad := 8<<10 - len(cb) - len(`,"pad":""}`)
		return append(cb, []byte(`,"pad":"`+strings.Repeat("<", pad)+`"}`)...)
	}
	if n := len(forged(0)); n != 8<<10 {
		t.Fatalf("forged callback of %d bytes, want %d", n, 8<<10)
	}
	// The flood goes straight to ingest's handler (the same one its HTTP
	// server serves): the network stack would only slow the test down.
	handler := b.stack.Ingest.Handler()
	template := forged(0)
	id0 := []byte(fmt.Sprintf("%08x-0000-4000-8000-%012x", 0, 0))
	execAt, acctAt := bytes.Index(template, id0), bytes.LastIndex(template, id0)
	start := time.Now()
	statuses := make(chan int, flood)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, len(template))
			for i := range next {
				// The template with this callback's own execution ID (and
				// account ID: the same), for speed.
				copy(body, template)
				id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
				copy(body[execAt:], id)
				copy(body[acctAt:], id)
				req := httptest.NewRequest(http.MethodPost, "/v1/callbacks/jumio", bytes.NewReader(body))
				req.RemoteAddr = "127.0.0.1:40000"
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, req)
				statuses <- rec.Code
			}
		}()
	}
	completed := make(chan struct{})
	go func() {
		for i := range flood {
			next <- i
			if i == flood/2 {
				// Mid-flood, the end user finishes: the simulator sends
				// Jumio's callback over HTTP from its own address.
				if err := b.sim.CompleteWeb(launched.WorkflowExecutionID); err != nil {
					t.Error(err)
				}
				close(completed)
			}
		}
		close(next)
	}()
	// And a callback from Jumio's address, past the proxy, is answered. It
	// is sent once the execution has ended, as Jumio does: one sent before
	// would be a premature PROCESSED that takes the message ID of the real
	// one (one callback per execution and status, finding 3), leaving the
	// decision to the execution's poll task.
	<-completed
	genuine := callbackBody(launched.AccountID, launched.WorkflowExecutionID, "PROCESSED")
	if r := b.callback(t, "/v1/callbacks/jumio", genuine, map[string]string{"X-Forwarded-For": "203.0.113.5"}); r.status != http.StatusOK {
		t.Errorf("a genuine callback during the flood: %d %s", r.status, r.body)
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusOK] != flood {
		t.Errorf("flood answers: %v, want %d × 200", counts, flood)
	}
	floodTime := time.Since(start)
	if dec := b.waitDecision(t, jobID); dec.Decision.Type != messages.DecisionPassed {
		t.Errorf("decision %+v", dec.Decision)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		return consumerIdle(t, b, b.subj.StreamCallbacks(), pipeline.ConsumerRetrieverCallback)
	}, "callbacks not handled")
	grown := int64(storage()) - int64(before)
	t.Logf("%d forged callbacks of %d bytes in %s; JetStream storage grew by %d bytes", flood, 8<<10, floodTime.Round(time.Millisecond), grown)
	if grown >= 5_000_000 {
		t.Errorf("JetStream storage grew by %d bytes, want < 5 MB", grown)
	}
}

// counterSum sums a counter family's samples whose labels include match.
func counterSum(t *testing.T, reg *prometheus.Registry, name string, match map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range match {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// Finding 3: a stored callback's message ID included callbackSentAt, so a
// forger changing it defeated deduplication, and each forged callback
// started a full retrieval chain (50 forged callbacks: 153 status calls in
// 15 s from the tenant's shared budget). Callbacks are deduplicated on
// execution and status, and one callback-triggered chain runs per
// execution at a time.
func TestFinding3ForgedCallbacksStartOneChain(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setup(t, func(o *localstack.Options) {
		o.Registry = reg
		// The forged PROCESSED takes the message ID of the real callback
		// (one per execution and status), so the decision comes from the
		// execution's poll task: polled every 500 ms after the schedule
		// here, every 20 minutes by default.
		o.Retriever.PollTailEvery = 500 * time.Millisecond
	})
	jobID := b.submit(t, webJob("order-chain"), 202, nil)
	launched := b.events.WaitN(t, 1, waitLong, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.JobID == jobID && m.Value.Kind == messages.KindLaunched
	}, "launched")[0].Value
	stored := callbacksStored(t, b)
	statuses := []string{"PROCESSED", "SESSION_EXPIRED", "TOKEN_EXPIRED"}
	for i := range 50 {
		body, _ := json.Marshal(map[string]any{
			"callbackSentAt":    time.Date(2026, 11, 22, 10, 0, i, 0, time.UTC).Format("2006-01-02T15:04:05.000Z"),
			"workflowExecution": map[string]any{"id": launched.WorkflowExecutionID, "status": statuses[i%3]},
			"account":           map[string]any{"id": launched.AccountID},
		})
		if r := b.callback(t, "/v1/callbacks/jumio", body, nil); r.status != http.StatusOK {
			t.Fatalf("forged callback %d: %d %s", i, r.status, r.body)
		}
	}
	if n := callbacksStored(t, b) - stored; n != 3 {
		t.Errorf("%d callbacks stored for 50 forged ones (3 statuses), want 3", n)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		return consumerIdle(t, b, b.subj.StreamCallbacks(), pipeline.ConsumerRetrieverCallback)
	}, "forged callbacks not handled")
	// One chain: its attempts on the schedule, and one more.
	attempts := counterSum(t, reg, "kycpipe_retrieval_polls_total", map[string]string{"trigger": "callback"})
	if max := float64(len(testSchedule) + 1); attempts > max {
		t.Errorf("%v callback-triggered retrievals for one execution, want at most %v", attempts, max)
	}
	t.Logf("callback-triggered retrievals: %v; coalesced callbacks: %v", attempts,
		counterSum(t, reg, "kycpipe_callbacks_total", map[string]string{"result": "coalesced"}))
	if got := b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](jobID)); len(got) != 0 {
		t.Fatalf("forged callbacks produced a decision:%s", pipelinetest.Describe(got))
	}
	// The real decision still arrives: Jumio's own PROCESSED callback is a
	// duplicate of the forged one, and the execution's poll task decides.
	if err := b.sim.CompleteWeb(launched.WorkflowExecutionID); err != nil {
		t.Fatal(err)
	}
	if dec := b.waitDecision(t, jobID); dec.Decision.Type != messages.DecisionPassed {
		t.Errorf("decision %+v", dec.Decision)
	}
}

// Finding 6: the callback route believed a ?job= query parameter. A forged
// callback for an unknown execution with ?job=<a failed job> was
// dead-lettered labelled with that job, and replaying the letter moved the
// failed job back to ACCEPTED with no job message queued: stuck for good.
// Client-supplied job IDs are ignored; callback letters carry no job ID a
// replay would resume.
func TestFinding6CallbackJobParameterIgnored(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	b.sim.FailNext(jumiotest.RouteCreateAccount, 1, 400)
	failed := b.submit(t, emailJob("order-f6"), 202, nil)
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, failed).Status == pipeline.StatusFailed }, "job never failed")
	letters := func() []pipeline.DeadLetter {
		list, err := pipeline.ListDeadLetters(ctx, b.stack.JS, b.subj, pipeline.DLQFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return len(letters()) == 1 }, "the failed job's dead letter")

	forged := callbackBody("7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e", "PROCESSED")
	if r := b.callback(t, "/v1/callbacks/jumio?job="+failed, forged, nil); r.status != http.StatusOK {
		t.Fatalf("forged callback: %d %s", r.status, r.body)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		return consumerIdle(t, b, b.subj.StreamCallbacks(), pipeline.ConsumerRetrieverCallback)
	}, "callback not handled")
	// Replaying every letter a callback left never resumes the failed job.
	for _, dl := range letters() {
		if dl.JobID == failed && dl.Stage != messages.StageWorker {
			t.Errorf("a %s dead letter (%s) is labelled with job %s", dl.Stage, dl.Reason, failed)
		}
		if !strings.HasPrefix(dl.OriginalSubject, b.subj.Prefix()+".callbacks.") {
			continue
		}
		if _, err := pipeline.ReplayDeadLetter(ctx, b.stack.JS, b.subj, dl.Sequence, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if st := b.job(t, failed).Status; st != pipeline.StatusFailed {
		t.Errorf("the failed job is %s after the callback (and replaying its letters), want FAILED", st)
	}
}

// Finding 6: a callback for a known execution with ?job=<another job> is
// stored with the job its execution belongs to, and without a Kyc-Job-Id
// header (which a replay of its dead letter would resume).
func TestFinding6StoredCallbackNamesItsOwnJob(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) { o.Retrievers = 0 })
	ctx := context.Background()
	other := b.submit(t, emailJob("order-f6-other"), 202, nil)
	jobID := b.submit(t, webJob("order-f6-web"), 202, nil)
	launched := b.events.WaitN(t, 1, waitLong, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.JobID == jobID && m.Value.Kind == messages.KindLaunched
	}, "launched")[0].Value
	body := callbackBody(launched.AccountID, launched.WorkflowExecutionID, "PROCESSED")
	if r := b.callback(t, "/v1/callbacks/jumio?job="+other, body, nil); r.status != http.StatusOK {
		t.Fatalf("callback: %d %s", r.status, r.body)
	}
	st, err := b.stack.JS.Stream(ctx, b.subj.StreamCallbacks())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The simulator's own callbacks are stored too: look at this execution's.
	found := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		cr, err := messages.DecodeCallback(msg.Data)
		if err != nil || cr.Callback.WorkflowExecution.ID != launched.WorkflowExecutionID {
			continue
		}
		found++
		if cr.JobID != jobID || msg.Header.Get(messages.HeaderJobID) != "" {
			t.Errorf("stored callback names job %q (header %q), want %q and no header", cr.JobID, msg.Header.Get(messages.HeaderJobID), jobID)
		}
	}
	if found == 0 {
		t.Error("the callback was not stored")
	}
}

// Finding 2: an ingest with neither a callback secret nor an allowlist
// accepts callbacks from anyone, silently. Outside make run it warns at
// every start (the choice between a warning and a required flag is
// recorded in docs/SECURITY.md).
func TestFinding2OpenCallbacksWarnAtEveryStart(t *testing.T) {
	t.Parallel()
	_, _, js := pipelinetest.RunJetStream(t)
	ctx := context.Background()
	topo := pipeline.Topology{}.WithDefaults()
	if err := pipeline.Provision(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	const warning = "callbacks are accepted from anyone"
	warnings := func(cc pipeline.CallbackConfig) int {
		log, logs := observed(t)
		if _, err := pipeline.NewIngest(ctx, js.Conn(), js, pipeline.IngestConfig{Topology: topo, InsecureNoAuth: true, Callbacks: cc, Logger: log}); err != nil {
			t.Fatal(err)
		}
		return logs.FilterMessageSnippet(warning).FilterLevelExact(zapcore.WarnLevel).Len()
	}
	for _, tt := range []struct {
		name string
		cc   pipeline.CallbackConfig
		want int
	}{
		{"neither secret nor allowlist", pipeline.CallbackConfig{}, 1},
		{"neither, started again", pipeline.CallbackConfig{}, 1},
		{"a secret path", pipeline.CallbackConfig{Secret: "path-secret-0123"}, 0},
		{"an allowlist", pipeline.CallbackConfig{Allowlist: pipeline.JumioCallbackPrefixes()}, 0},
	} {
		if got := warnings(tt.cc); got != tt.want {
			t.Errorf("%s: %d warnings, want %d", tt.name, got, tt.want)
		}
	}
	// make run's stack (the simulator calls back over loopback) does not warn.
	log, logs := observed(t)
	setup(t, func(o *localstack.Options) { o.Workers, o.Retrievers, o.Logger = 0, 0, log })
	if n := logs.FilterMessageSnippet(warning).Len(); n != 0 {
		t.Errorf("make run's stack warned %d times", n)
	}
}

// Also: make run's HTTP server (internal/localstack) lacked the read
// timeouts and header limit cmd/ingest sets: it now uses the same server.
func TestAlsoMakeRunServerLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) { o.Workers, o.Retrievers = 0, 0 })
	r := b.do(t, http.MethodGet, "/healthz", "", nil, map[string]string{"X-Pad": strings.Repeat("p", 128<<10)})
	if r.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("128 KiB of headers: %d, want 431 (the limit is 64 KiB)", r.status)
	}
}
