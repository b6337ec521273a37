package upgrade

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kycpipe/kycpipe/internal/golden"

	"github.com/nats-io/nats.go"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The golden corpus: every kind of message and record a release writes,
// captured from that release's own binaries at work, so that every later
// release can prove it still reads them (testdata/golden, read by the
// golden tests of pkg/messages and pkg/pipeline).
//
// A capture runs one release alone (one NATS server, one ingest, worker,
// retriever and, when the release has one, notifier) through scripted jobs
// that produce each kind of message, and listens meanwhile with a plain
// NATS subscription to everything published on the pipeline's subjects and
// its key-value buckets: exactly the bytes and headers the release wrote.

// CorpusManifest describes a version's corpus (manifest.json); the format
// is package golden's, which the golden tests read.
type CorpusManifest = golden.Manifest

// CorpusEntry is one captured message or record (golden.Entry).
type CorpusEntry = golden.Entry

// Corpus kinds.
const (
	KindRequest       = "request"
	KindCallback      = "callback"
	KindRetrievalTask = "retrieval_task"
	KindEvent         = "event"
	KindDecision      = "decision"
	KindDeadLetter    = "dead_letter"
	KindErasureTask   = "erasure_task"
	KindAudit         = "audit"
	KindIndexEntry    = "index_entry"
	KindWebhookJob    = "webhook_job"
	KindWebhookLog    = "webhook_log"
	KindJobRecord     = "job_record"
	KindExecIndex     = "exec_index"
	KindErasedMark    = "erased_mark"
	KindRateLimit     = "rate_limit_state"
	KindEndpoint      = "webhook_endpoint"
	KindAttempts      = "webhook_attempts"
)

// keyFields are the JSON paths whose values the manifest keeps, by kind.
var keyFields = map[string][]string{
	KindRequest: {"schema", "jobId", "customerInternalReference", "userReference", "accountId", "channel", "region",
		"workflowDefinition.key", "parts.0.classifier", "parts.0.object", "preparedData.email"},
	KindCallback:      {"schema", "region", "jobId", "callback.workflowExecution.id", "callback.workflowExecution.status", "callback.account.id"},
	KindRetrievalTask: {"schema", "jobId", "region", "accountId", "workflowExecutionId", "deadline"},
	KindEvent:         {"schema", "kind", "jobId", "region", "accountId", "workflowExecutionId", "customerInternalReference", "web.href", "sdk.token", "error.code", "at"},
	KindDecision: {"schema", "jobId", "region", "accountId", "workflowExecutionId", "customerInternalReference", "status",
		"decision.type", "decision.label", "decision.riskScore", "alerts.0.capability", "decidedAt"},
	KindErasureTask: {"schema", "jobId", "source", "actor", "requestedAt"},
	KindAudit:       {"schema", "action", "jobId", "actor", "source", "jumio", "removed.messages"},
	KindIndexEntry:  {"jobId", "status", "region", "decision", "channel", "workflowExecutionId"},
	KindWebhookJob:  {"schema", "endpointId", "jobId", "webhookId", "eventId", "type", "stream", "sequence"},
	KindWebhookLog:  {"endpointId", "jobId", "webhookId", "eventType", "attempt", "outcome", "statusCode", "stream", "sequence"},
	KindJobRecord: {"jobId", "status", "region", "channel", "customerInternalReference", "requestHash", "accountId",
		"workflowExecutionId", "finalized", "announced", "pollSequence", "attempts", "decision.type", "lastError.code",
		"existingAccount", "ownAccount", "erasure.jumio", "messages.0.kind", "images.0"},
	KindRateLimit: {"tat", "pausedUntil", "factor", "penalties"},
	KindEndpoint:  {"id", "url", "status", "eventTypes.0"},
	KindAttempts:  {"failed", "next"},
}

// captured is a message as published.
type captured struct {
	subject string
	header  nats.Header
	data    []byte
}

// tap records every message published on the pipeline's subjects and its
// buckets' subjects.
type tap struct {
	mu   sync.Mutex
	msgs []captured
	subs []*nats.Subscription
}

func startTap(nc *nats.Conn, subj messages.Subjects) (*tap, error) {
	t := &tap{}
	subjects := []string{subj.Prefix() + ".>"}
	for _, b := range []string{subj.BucketJobs(), subj.BucketLimits(), subj.BucketWebhookEndpoints(), subj.BucketWebhookAttempts()} {
		subjects = append(subjects, "$KV."+b+".>")
	}
	for _, s := range subjects {
		sub, err := nc.Subscribe(s, func(m *nats.Msg) {
			t.mu.Lock()
			t.msgs = append(t.msgs, captured{subject: m.Subject, header: m.Header, data: append([]byte(nil), m.Data...)})
			t.mu.Unlock()
		})
		if err != nil {
			return nil, err
		}
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return nil, err
		}
		t.subs = append(t.subs, sub)
	}
	return t, nc.Flush()
}

func (t *tap) stop() []captured {
	for _, s := range t.subs {
		_ = s.Unsubscribe()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]captured(nil), t.msgs...)
}

// headerHarness marks what the capture harness publishes itself, which is
// not the release's and stays out of its corpus.
const headerHarness = "Kyc-Golden-Harness"

// classify names a captured message's kind and variant, or "" to skip it.
func classify(subj messages.Subjects, c captured) (kind, variant string) {
	p := subj.Prefix() + "."
	// The harness's own messages are not the release's; a dead letter of
	// one is (a release may copy the original's headers into it).
	harness := c.header.Get(headerHarness) != "" && !strings.HasPrefix(c.subject, p+"dlq.")
	if harness || c.header.Get("KV-Operation") != "" || (len(c.data) == 0 && !strings.Contains(c.subject, ".index.refs.")) {
		return "", "" // deletions, purges, empty markers
	}
	if rest, ok := strings.CutPrefix(c.subject, "$KV."); ok {
		bucket, key, _ := strings.Cut(rest, ".")
		first, _, _ := strings.Cut(key, ".")
		switch {
		case bucket == subj.BucketJobs() && first == "job":
			var r struct{ Status string }
			_ = json.Unmarshal(c.data, &r)
			return KindJobRecord, KindJobRecord + "-" + cmpOr(r.Status, "NO_STATUS")
		case bucket == subj.BucketJobs() && first == "exec":
			return KindExecIndex, KindExecIndex
		case bucket == subj.BucketJobs() && first == "erased":
			return KindErasedMark, KindErasedMark
		case bucket == subj.BucketLimits():
			return KindRateLimit, KindRateLimit
		case bucket == subj.BucketWebhookEndpoints():
			return KindEndpoint, KindEndpoint
		case bucket == subj.BucketWebhookAttempts():
			return KindAttempts, KindAttempts
		}
		return "", ""
	}
	rest, ok := strings.CutPrefix(c.subject, p)
	if !ok {
		return "", ""
	}
	tokens := strings.Split(rest, ".")
	switch tokens[0] {
	case "jobs":
		var r struct {
			Channel   string
			AccountID string `json:"accountId"`
			Parts     []struct{ Object string }
		}
		_ = json.Unmarshal(c.data, &r)
		v := KindRequest + "-" + strings.ToLower(cmpOr(r.Channel, "web"))
		switch {
		case r.AccountID != "":
			v += "-existing-account"
		case len(r.Parts) > 0 && r.Parts[0].Object != "":
			v += "-stored-images"
		case len(r.Parts) > 0:
			v += "-inline-images"
		}
		if len(tokens) > 2 {
			v += "-per-job-subject"
		}
		return KindRequest, v
	case "callbacks":
		var r struct {
			Callback struct {
				WorkflowExecution struct{ Status string }
			}
		}
		_ = json.Unmarshal(c.data, &r)
		return KindCallback, KindCallback + "-" + r.Callback.WorkflowExecution.Status
	case "retrieve":
		return KindRetrievalTask, KindRetrievalTask
	case "events":
		return KindEvent, KindEvent + "-" + tokens[len(tokens)-1]
	case "decisions":
		v := KindDecision + "-" + tokens[len(tokens)-1]
		if c.header.Get("Kyc-Alerts") != "" {
			v += "-alerts"
		}
		return KindDecision, v
	case "dlq":
		return KindDeadLetter, KindDeadLetter + "-" + c.header.Get(messages.HeaderStage) + "-" + c.header.Get(messages.HeaderReason)
	case "erasures":
		return KindErasureTask, KindErasureTask
	case "audit":
		return KindAudit, KindAudit + "-" + tokens[len(tokens)-1]
	case "index":
		if len(tokens) > 1 && tokens[1] == "jobs" && len(tokens) > 2 {
			return KindIndexEntry, KindIndexEntry + "-" + tokens[2]
		}
		return "", "" // reference entries have no body
	case "webhooks":
		if len(tokens) > 1 && tokens[1] == "deliver" {
			return KindWebhookJob, KindWebhookJob
		}
		if len(tokens) > 1 && tokens[1] == "log" {
			var l struct{ Outcome string }
			_ = json.Unmarshal(c.data, &l)
			return KindWebhookLog, KindWebhookLog + "-" + l.Outcome
		}
	}
	return "", ""
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fieldsOf reads the kind's key fields from raw JSON (the dead letter's from
// its original payload, by the original subject).
func fieldsOf(subj messages.Subjects, kind string, c captured) map[string]any {
	if kind == KindDeadLetter {
		orig := c.header.Get(messages.HeaderOriginalSubject)
		okind, _ := classify(subj, captured{subject: orig, header: nats.Header{}, data: c.data})
		f := fieldsOf(subj, okind, captured{subject: orig, header: nats.Header{}, data: c.data})
		if f == nil {
			f = map[string]any{}
		}
		f["originalKind"] = okind
		return f
	}
	if kind == KindExecIndex || kind == KindErasedMark {
		return map[string]any{"jobId": string(c.data)}
	}
	var raw any
	if json.Unmarshal(c.data, &raw) != nil {
		return nil
	}
	out := map[string]any{}
	for _, path := range keyFields[kind] {
		if v, ok := lookup(raw, path); ok {
			out[path] = v
		}
	}
	return out
}

// lookup follows a dotted path (object keys, array indexes) in decoded JSON.
func lookup(v any, path string) (any, bool) {
	for _, tok := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			var i int
			if _, err := fmt.Sscan(tok, &i); err != nil || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// CaptureOptions configures a corpus capture.
type CaptureOptions struct {
	Release Release
	// Version names the corpus directory (testdata/golden/<Version>).
	Version string
	OutDir  string // the corpus directory to (re)write
	WorkDir string // NATS store and logs
	// PerVariant is how many messages of each variant are kept (default 2).
	PerVariant int
	Progress   io.Writer
}

// Capture runs one release alone through jobs that produce every kind of
// message it writes, and writes what it published to o.OutDir: one file
// per message (the payload as written) and manifest.json.
func Capture(ctx context.Context, o CaptureOptions) (*CorpusManifest, error) {
	if o.PerVariant == 0 {
		o.PerVariant = 2
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	h := &harness{o: Options{Old: o.Release, New: o.Release, WorkDir: o.WorkDir, Nodes: 1, Progress: o.Progress}.withDefaults(),
		subj: messages.MustSubjects("")}
	defer h.teardown()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	notifier := fileExists(o.Release.Bin("notifier"))
	if notifier {
		// The webhook receiver below is a local http:// server.
		h.env = append(h.env, "KYCPIPE_WEBHOOK_ALLOW_INSECURE=true", "KYCPIPE_WEBHOOK_ALLOW_PRIVATE=true", "KYCPIPE_WEBHOOK_SCHEDULE=1s,1s,1s")
		h.fl.env = h.env
	}
	t, err := startTap(h.nc, h.subj)
	if err != nil {
		return nil, err
	}
	if _, err := h.kycctl(ctx, o.Release, "provision"); err != nil {
		return nil, err
	}
	for _, name := range []string{"ingest-1", "worker-1", "retriever-1"} {
		if err := h.fl.start(ctx, name, o.Release); err != nil {
			return nil, err
		}
	}
	if notifier {
		if err := h.fl.start(ctx, "notifier-1", o.Release); err != nil {
			return nil, err
		}
	}
	sc := &scenario{h: h, client: &http.Client{Timeout: 15 * time.Second}}
	if err := sc.run(ctx, notifier); err != nil {
		return nil, err
	}
	msgs := t.stop()
	return writeCorpus(h.subj, o, msgs)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeCorpus keeps PerVariant messages of each variant and writes them.
func writeCorpus(subj messages.Subjects, o CaptureOptions, msgs []captured) (*CorpusManifest, error) {
	if err := os.RemoveAll(o.OutDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	m := &CorpusManifest{Version: o.Version, CapturedAt: time.Now().UTC().Truncate(time.Second)}
	count := map[string]int{}
	for _, c := range msgs {
		kind, variant := classify(subj, c)
		if kind == "" || count[variant] >= o.PerVariant {
			continue
		}
		count[variant]++
		ext := ".json"
		if kind == KindExecIndex || kind == KindErasedMark {
			ext = ".txt"
		}
		file := fmt.Sprintf("%s.%d%s", variant, count[variant], ext)
		if err := os.WriteFile(filepath.Join(o.OutDir, file), c.data, 0o644); err != nil {
			return nil, err
		}
		e := CorpusEntry{File: file, Kind: kind, Variant: variant, Subject: c.subject, Fields: fieldsOf(subj, kind, c)}
		if len(c.header) > 0 {
			e.Headers = map[string]string{}
			for k := range c.header {
				if k == headerHarness {
					continue
				}
				e.Headers[k] = c.header.Get(k)
			}
		}
		m.Files = append(m.Files, e)
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].File < m.Files[j].File })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return m, os.WriteFile(filepath.Join(o.OutDir, "manifest.json"), append(b, '\n'), 0o644)
}

// scenario drives the jobs of a capture.
type scenario struct {
	h      *harness
	client *http.Client
}

func (sc *scenario) do(ctx context.Context, method, path, contentType string, body []byte, header map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, sc.h.lb.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+sc.h.key)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := sc.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (sc *scenario) submit(ctx context.Context, job map[string]any) (string, error) {
	b, _ := json.Marshal(job)
	return sc.submitRaw(ctx, "application/json", b)
}

func (sc *scenario) submitRaw(ctx context.Context, contentType string, body []byte) (string, error) {
	code, rb, err := sc.do(ctx, http.MethodPost, "/v1/verifications", contentType, body, nil)
	if err != nil {
		return "", err
	}
	if code != http.StatusAccepted {
		return "", fmt.Errorf("submit: %d %s", code, rb)
	}
	var out struct{ JobID string }
	return out.JobID, json.Unmarshal(rb, &out)
}

// view is what GET /v1/verifications/{id} says.
type view struct {
	Status    string `json:"status"`
	AccountID string `json:"accountId"`
}

func (sc *scenario) wait(ctx context.Context, id string, statuses ...string) (view, error) {
	deadline := time.Now().Add(time.Minute)
	var v view
	for time.Now().Before(deadline) {
		code, b, err := sc.do(ctx, http.MethodGet, "/v1/verifications/"+id, "", nil, nil)
		if err == nil && code == http.StatusOK && json.Unmarshal(b, &v) == nil {
			for _, s := range statuses {
				if v.Status == s {
					return v, nil
				}
			}
		}
		if !ctxutil.Sleep(ctx, 200*time.Millisecond) {
			return v, ctx.Err()
		}
	}
	return v, fmt.Errorf("job %s: status %q, want %v", id, v.Status, statuses)
}

func emailJob(ref string) map[string]any {
	return map[string]any{"customerInternalReference": ref, "userReference": "user-" + ref, "workflowDefinition": map[string]any{"key": 10066},
		"channel": "API", "preparedData": map[string]any{"email": "jane.doe@example.com"}}
}

func idJob(ref, channel string) map[string]any {
	return map[string]any{"customerInternalReference": ref, "channel": channel,
		"workflowDefinition": map[string]any{"key": 10011, "credentials": []any{map[string]any{"category": "ID",
			"country": map[string]any{"values": []string{"USA"}}, "type": map[string]any{"values": []string{"DRIVING_LICENSE"}}}}},
		"userConsent": map[string]any{"userIp": "203.0.113.7", "userLocation": map[string]any{"country": "USA"},
			"consent": map[string]any{"obtained": "yes", "obtainedAt": "2026-11-01T10:00:00Z"}}}
}

// run submits the jobs that make each kind of message, and with
// newFeatures those of the features the previous release lacks (webhooks,
// stored images, erasure).
func (sc *scenario) run(ctx context.Context, newFeatures bool) error {
	h := sc.h
	var received atomic.Int64
	if newFeatures {
		// A webhook receiver that refuses its first delivery (a failed
		// attempt and its retry are recorded too).
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if received.Add(1) == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		defer recv.Close()
		b, _ := json.Marshal(map[string]any{"url": recv.URL + "/kyc", "eventTypes": []string{"verification.*"}, "description": "golden corpus"})
		if code, rb, err := sc.do(ctx, http.MethodPost, "/v1/webhook-endpoints", "application/json", b, nil); err != nil || code != http.StatusCreated {
			return fmt.Errorf("register a webhook endpoint: %d %s %v", code, rb, err)
		}
	}
	var decided []string
	jobs := []map[string]any{emailJob("golden-api"), emailJob("golden-api-reject"), emailJob("golden-api-warn")}
	alert := emailJob("golden-watchlist-alert")
	alert["workflowDefinition"] = map[string]any{"key": 10010}
	alert["preparedData"] = map[string]any{"firstName": "Ann", "lastName": "Lee", "dateOfBirth": "1990-01-02"}
	web := map[string]any{"customerInternalReference": "golden-web", "userReference": "user-golden-web",
		"workflowDefinition": map[string]any{"key": 10164}, "channel": "WEB", "web": map[string]any{"locale": "en"}}
	sdk := idJob("golden-sdk", "SDK")
	inline := idJob("golden-inline-images", "API")
	inline["parts"] = []map[string]any{{"classifier": "FRONT", "contentType": "image/png", "data": smallPNG}, {"classifier": "FACE", "data": smallPNG}}
	jobs = append(jobs, alert, web, sdk, inline)
	for _, job := range jobs {
		id, err := sc.submit(ctx, job)
		if err != nil {
			return fmt.Errorf("%s: %w", job["customerInternalReference"], err)
		}
		decided = append(decided, id)
	}
	var first view
	for i, id := range decided {
		want := []string{"DECIDED"}
		if i == len(decided)-1 && !newFeatures {
			// The previous release streams images without Content-Length,
			// which Jumio refuses: its dead letter is part of its corpus.
			want = append(want, "FAILED")
		}
		v, err := sc.wait(ctx, id, want...)
		if err != nil {
			return err
		}
		if i == 0 {
			first = v
		}
	}
	h.logf("capture: %d jobs decided", len(decided))
	// A new execution on the first job's account.
	existing := emailJob("golden-existing-account")
	existing["accountId"] = first.AccountID
	id, err := sc.submit(ctx, existing)
	if err != nil {
		return err
	}
	if _, err := sc.wait(ctx, id, "DECIDED"); err != nil {
		return err
	}
	// Jumio refuses an account creation: a dead letter and a failed event.
	h.sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusBadRequest)
	if id, err = sc.submit(ctx, emailJob("golden-jumio-refuses")); err != nil {
		return err
	}
	if _, err := sc.wait(ctx, id, "FAILED"); err != nil {
		return err
	}
	// A job published straight to NATS that no release accepts (unknown
	// field): a poison dead letter.
	poison := nats.NewMsg(h.subj.JobsSubmit())
	poison.Header.Set(messages.HeaderMsgID, "golden-poison")
	poison.Header.Set(headerHarness, "1") // not the release's: not in its corpus
	poison.Data = []byte(`{"customerInternalReference":"golden-poison","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"a@example.com"},"notAField":1}`)
	if _, err := h.js.PublishMsg(ctx, poison); err != nil {
		return err
	}
	if _, err := sc.wait(ctx, "golden-poison", "FAILED"); err != nil {
		return err
	}
	// A callback for an execution no job knows (the previous release
	// dead-letters it in the retriever; the current one drops it at the
	// door).
	cb := []byte(`{"callbackSentAt":"2026-11-30T10:00:00.000Z","workflowExecution":{"id":"8f1e0c7a-5b7d-4a63-9d53-2f6a4c1e9b10","href":"https://retrieval.amer-1.jumio.ai/api/v1/accounts/0b4fd0b9-8f0e-4f8e-9a8d-2f1b1c3d4e5f/workflow-executions/8f1e0c7a-5b7d-4a63-9d53-2f6a4c1e9b10","definitionKey":"10066","status":"PROCESSED"},"account":{"id":"0b4fd0b9-8f0e-4f8e-9a8d-2f1b1c3d4e5f","href":"https://account.amer-1.jumio.ai/api/v1/accounts/0b4fd0b9-8f0e-4f8e-9a8d-2f1b1c3d4e5f"}}`)
	if code, rb, err := sc.do(ctx, http.MethodPost, "/v1/callbacks/jumio", "application/json", cb, nil); err != nil || code != http.StatusOK {
		return fmt.Errorf("unknown callback: %d %s %v", code, rb, err)
	}
	if newFeatures {
		// Images through multipart: stored in the object store, referenced
		// by name in the job.
		body, ct := multipartJob(idJob("golden-stored-images", "API"))
		if id, err = sc.submitRaw(ctx, ct, body); err != nil {
			return err
		}
		if _, err := sc.wait(ctx, id, "DECIDED"); err != nil {
			return err
		}
		// An erasure: the task, the audit record, the erased event, the
		// tombstone and the execution's erased mark.
		if code, rb, err := sc.do(ctx, http.MethodDelete, "/v1/verifications/"+decided[1], "", nil, nil); err != nil || code != http.StatusAccepted {
			return fmt.Errorf("erase: %d %s %v", code, rb, err)
		}
		if _, err := sc.wait(ctx, decided[1], "ERASED"); err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for received.Load() < 3 && time.Now().Before(deadline) {
			ctxutil.Sleep(ctx, 200*time.Millisecond)
		}
		if received.Load() < 3 {
			return errors.New("the webhook receiver got fewer than 3 deliveries")
		}
	}
	// Let the last asynchronous writes (index entries, unknown-callback
	// dead letter) land.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !newFeatures && sc.deadLetters(ctx) >= 4 {
			break
		}
		ctxutil.Sleep(ctx, 500*time.Millisecond)
	}
	return nil
}

// deadLetters counts the dead letters stored.
func (sc *scenario) deadLetters(ctx context.Context) uint64 {
	st, err := sc.h.js.Stream(ctx, sc.h.subj.StreamDLQ())
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

func multipartJob(req map[string]any) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormField("request")
	_ = json.NewEncoder(w).Encode(req)
	for _, name := range []string{"FRONT", "FACE"} {
		w, _ := mw.CreateFormFile(name, strings.ToLower(name)+".png")
		_, _ = w.Write(smallPNG)
	}
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// ReadManifest reads a corpus directory's manifest.json.
func ReadManifest(dir string) (*CorpusManifest, error) {
	m, err := golden.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	return &m, nil
}
