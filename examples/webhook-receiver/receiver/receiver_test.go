package receiver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

var now = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// decidedData is a DecisionEvent with personal fields the receiver must
// never log.
const decidedData = `{"schema":"kycpipe.decision.v1","jobId":"job_42","region":"amer-1","accountId":"acc-1",` +
	`"workflowExecutionId":"wfe-1","customerInternalReference":"jane.doe@example.com","userReference":"Jane Doe 1990-01-31",` +
	`"status":"PROCESSED","decision":{"type":"PASSED"},"decidedAt":"2026-12-06T09:59:58Z"}`

type bundle struct {
	rc     *Receiver
	secret webhooks.Secret
	logs   *observer.ObservedLogs
	srv    *httptest.Server
}

func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	b := &bundle{secret: webhooks.NewSecret()}
	core, logs := observer.New(zapcore.DebugLevel)
	b.logs = logs
	if cfg.Secrets == nil {
		cfg.Secrets = []webhooks.Secret{b.secret}
	}
	cfg.Logger = zap.New(core)
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	rc, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.rc = rc
	b.srv = httptest.NewServer(rc.Handler())
	t.Cleanup(b.srv.Close)
	return b
}

func payloadBody(t *testing.T, typ webhooks.EventType, data string) []byte {
	t.Helper()
	body, err := webhooks.EncodePayload(typ, now.Add(-2*time.Second), []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// post sends body with the given headers and returns the status.
func (b *bundle) post(t *testing.T, h http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+"/hooks/kyc", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("error %d with Content-Type %q, want application/problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode
}

// signed returns the headers kycpipe would send.
func (b *bundle) signed(t *testing.T, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	h := http.Header{}
	if err := webhooks.SetHeaders(h, []webhooks.Secret{b.secret}, id, ts, body); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestValidDeliveryAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	body := payloadBody(t, webhooks.EventDecided, decidedData)
	if got := b.post(t, b.signed(t, "msg_1", now, body), body); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	delivered := b.logs.FilterMessage("webhook delivered").All()
	if len(delivered) != 1 {
		t.Fatalf("%d 'webhook delivered' logs, want 1", len(delivered))
	}
	fields := delivered[0].ContextMap()
	want := map[string]any{"type": "verification.decided", "webhook_id": "msg_1", "job_id": "job_42"}
	if len(fields) != len(want) {
		t.Fatalf("logged fields %v, want exactly %v", fields, want)
	}
	for k, v := range want {
		if fields[k] != v {
			t.Fatalf("logged fields %v, want %v", fields, want)
		}
	}
	for _, e := range b.logs.All() {
		fields, _ := json.Marshal(e.ContextMap())
		line := e.Message + " " + string(fields)
		for _, pii := range []string{"jane", "Jane", "1990", "acc-1"} {
			if strings.Contains(line, pii) {
				t.Fatalf("log %q contains personal or account data", line)
			}
		}
	}
	if s := b.rc.Stats(); s.Delivered != 1 || s.Rejected != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBadDeliveriesRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	body := payloadBody(t, webhooks.EventDecided, decidedData)
	tests := []struct {
		name string
		h    func() http.Header
		body []byte
	}{
		{"tampered body", func() http.Header { return b.signed(t, "msg_1", now, body) }, bytes.Replace(body, []byte("PASSED"), []byte("FAILED"), 1)},
		{"wrong secret", func() http.Header {
			h := http.Header{}
			_ = webhooks.SetHeaders(h, []webhooks.Secret{webhooks.NewSecret()}, "msg_1", now, body)
			return h
		}, body},
		{"tampered id", func() http.Header { h := b.signed(t, "msg_1", now, body); h.Set("webhook-id", "msg_2"); return h }, body},
		{"replayed 10 minutes later", func() http.Header { return b.signed(t, "msg_1", now.Add(-10*time.Minute), body) }, body},
		{"no signature", func() http.Header { h := b.signed(t, "msg_1", now, body); h.Del("webhook-signature"); return h }, body},
		{"no headers", func() http.Header { return http.Header{} }, body},
	}
	for _, tt := range tests {
		if got := b.post(t, tt.h(), tt.body); got != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tt.name, got)
		}
	}
	if s := b.rc.Stats(); s.Rejected != int64(len(tests)) || s.Delivered != 0 {
		t.Fatalf("stats %+v, want %d rejected, none delivered", s, len(tests))
	}
	if n := b.logs.FilterMessage("webhook delivered").Len(); n != 0 {
		t.Fatalf("%d deliveries logged", n)
	}
	// A valid delivery with the same id is still processed: refusals record nothing.
	if got := b.post(t, b.signed(t, "msg_1", now, body), body); got != http.StatusNoContent {
		t.Fatalf("valid delivery after refusals: %d", got)
	}
}

// Redeliveries of one webhook-id, even concurrent ones, are all
// acknowledged and processed once.
func TestDuplicateAcknowledgedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	body := payloadBody(t, webhooks.EventLaunched, `{"schema":"kycpipe.event.v1","kind":"launched","jobId":"job_7","at":"2026-12-06T09:59:58Z"}`)
	const n = 10
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			// Each retry has its own timestamp and signature, the same id.
			ts := now.Add(-time.Duration(i) * time.Second)
			statuses[i] = b.post(t, b.signed(t, "msg_dup", ts, body), body)
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusNoContent {
			t.Fatalf("delivery %d: status %d, want 204", i, s)
		}
	}
	if got := b.logs.FilterMessage("webhook delivered").Len(); got != 1 {
		t.Fatalf("%d deliveries processed, want 1", got)
	}
	if s := b.rc.Stats(); s.Delivered != 1 || s.Duplicates != n-1 {
		t.Fatalf("stats %+v, want 1 delivered, %d duplicates", s, n-1)
	}
	// Another id is new.
	if got := b.post(t, b.signed(t, "msg_other", now, body), body); got != http.StatusNoContent || b.rc.Stats().Delivered != 2 {
		t.Fatalf("new id: %d, stats %+v", got, b.rc.Stats())
	}
}

// scripted returns the given numbers in turn.
func scripted(t *testing.T, xs ...float64) func() float64 {
	var mu sync.Mutex
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		if len(xs) == 0 {
			t.Error("random source exhausted")
			return 1
		}
		x := xs[0]
		xs = xs[1:]
		return x
	}
}

func TestFailureRate(t *testing.T) {
	t.Parallel()
	t.Run("scripted", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{FailureRate: 0.1, Rand: scripted(t, 0.05, 0.5, 0.0999, 0.1, 0.99)})
		body := payloadBody(t, webhooks.EventDecided, decidedData)
		// msg_a fails, then its retry succeeds; msg_b fails; msg_b's retry
		// (0.1 is not below the rate) succeeds; msg_c succeeds.
		for i, step := range []struct {
			id   string
			want int
		}{{"msg_a", 500}, {"msg_a", 204}, {"msg_b", 500}, {"msg_b", 204}, {"msg_c", 204}} {
			if got := b.post(t, b.signed(t, step.id, now, body), body); got != step.want {
				t.Fatalf("attempt %d (%s): status %d, want %d", i+1, step.id, got, step.want)
			}
		}
		if s := b.rc.Stats(); s.InjectedFailures != 2 || s.Delivered != 3 || s.Duplicates != 0 {
			t.Fatalf("stats %+v, want 2 injected failures, 3 delivered", s)
		}
	})
	t.Run("rate 0 never draws", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Rand: func() float64 { t.Error("random source used with rate 0"); return 0 }})
		body := payloadBody(t, webhooks.EventDecided, decidedData)
		if got := b.post(t, b.signed(t, "msg_1", now, body), body); got != http.StatusNoContent {
			t.Fatalf("status %d", got)
		}
	})
	t.Run("seeded 10%", func(t *testing.T) {
		t.Parallel()
		r := rand.New(rand.NewPCG(1, 2))
		b := setup(t, Config{FailureRate: 0.1, Rand: r.Float64})
		body := payloadBody(t, webhooks.EventDecided, decidedData)
		const n = 500
		failed := 0
		for i := range n {
			if b.post(t, b.signed(t, "msg_"+strconv.Itoa(i), now, body), body) == http.StatusInternalServerError {
				failed++
			}
		}
		// Binomial(500, 0.1): mean 50, standard deviation about 6.7.
		if failed < 25 || failed > 75 {
			t.Fatalf("%d of %d failed, want about 10%%", failed, n)
		}
		if s := b.rc.Stats(); s.InjectedFailures != int64(failed) || s.Delivered != int64(n-failed) {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("bad rates", func(t *testing.T) {
		t.Parallel()
		for _, rate := range []float64{-0.1, 1.1} {
			if _, err := NewReceiver(Config{Secrets: []webhooks.Secret{webhooks.NewSecret()}, FailureRate: rate}); err == nil {
				t.Errorf("rate %v accepted", rate)
			}
		}
	})
}

// A hang holds the request until the sender gives up (here the client's
// timeout), the retry of the same webhook-id is processed, and the journal
// says what each attempt got, with the event's hash and no body.
func TestHangRateAndJournal(t *testing.T) {
	t.Parallel()
	var journal syncBuffer
	b := setup(t, Config{FailureRate: 0.1, HangRate: 0.1, Rand: scripted(t, 0.15, 0.5, 0.05, 0.9, 0.9), Journal: &journal})
	body := payloadBody(t, webhooks.EventDecided, decidedData)
	client := &http.Client{Timeout: 200 * time.Millisecond}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL+"/all", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = b.signed(t, "msg_h", now, body)
	start := time.Now()
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a hung delivery was answered %d", resp.StatusCode)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the hang outlived the sender's timeout: %s", d)
	}
	for i, step := range []struct {
		id   string
		want int
	}{{"msg_h", 204}, {"msg_f", 500}, {"msg_f", 204}, {"msg_f", 204}} {
		if got := b.post(t, b.signed(t, step.id, now, body), body); got != step.want {
			t.Fatalf("attempt %d (%s): status %d, want %d", i+1, step.id, got, step.want)
		}
	}
	if s := b.rc.Stats(); s.InjectedHangs != 1 || s.InjectedFailures != 1 || s.Delivered != 2 || s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
	var p struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(p.Data)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(journal.String()), "\n") {
		var e JournalEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		if e.Type != "verification.decided" || e.JobID != "job_42" || e.EventSHA256 != hex.EncodeToString(sum[:]) || e.At.IsZero() {
			t.Errorf("journal entry %+v", e)
		}
		got = append(got, e.Path+" "+e.WebhookID+" "+e.Outcome)
		for _, pii := range []string{"jane", "Jane", "1990"} {
			if strings.Contains(line, pii) {
				t.Errorf("journal line %q holds personal data", line)
			}
		}
	}
	want := []string{"/all msg_h hung", "/hooks/kyc msg_h delivered", "/hooks/kyc msg_f failed", "/hooks/kyc msg_f delivered", "/hooks/kyc msg_f duplicate"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("journal = %q, want %q", got, want)
	}
	for _, bad := range []Config{{HangRate: -0.1}, {HangRate: 0.6, FailureRate: 0.5}, {HangFor: -time.Second}} {
		bad.Secrets = []webhooks.Secret{webhooks.NewSecret()}
		if _, err := NewReceiver(bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", http.StatusNoContent},
		{http.MethodGet, "/stats", http.StatusOK},
		{http.MethodGet, "/", http.StatusMethodNotAllowed},
		{http.MethodPut, "/hooks", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/stats", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, b.srv.URL+tc.path, nil)
		resp, err := b.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	big := bytes.Repeat([]byte("x"), MaxBody+1)
	if got := b.post(t, http.Header{}, big); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", got)
	}
}

func TestIDSetEvictsOldest(t *testing.T) {
	t.Parallel()
	s := newIDSet(2)
	for _, id := range []string{"a", "b", "c"} {
		if !s.Add(id) {
			t.Fatalf("%s not new", id)
		}
	}
	if s.Add("c") || s.Add("b") {
		t.Fatal("recent ids forgotten")
	}
	if !s.Add("a") {
		t.Fatal("the oldest id was not evicted")
	}
	if s.Add("a") || !s.Add("b") {
		t.Fatal("after re-adding a, b should be the evicted one")
	}
}
