package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kycpipe/kycpipe/internal/console"
	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// API keys of the test stacks: NAME:SCOPES:KEY.
const (
	opsKey      = "ops-key-0123456789abcdef"       // every scope
	viewerKey   = "viewer-key-0123456789abcdef"    // read
	supportKey  = "support-key-0123456789abcdef"   // read + erase
	submitOnly  = "submitter-key-0123456789abcdef" // submit: no console
	xssUserRef  = `<script>alert("xss")</script><img src=x onerror=alert(1)>`
	piiMarker   = "Zebulon-Quartermaine"
	testTimeout = pipelinetest.DefaultTimeout
)

var testKeys = []string{"ops:submit+read+erase+admin+metrics:" + opsKey, "viewer:read:" + viewerKey,
	"support:read+erase:" + supportKey, "submitter:submit:" + submitOnly}

// fixture is a running pipeline with the console mounted on ingest.
type fixture struct {
	stack *localstack.Stack
	base  string // ingest URL
	logs  *observer.ObservedLogs
	subj  messages.Subjects
}

type fixtureOpts struct {
	console   console.Config
	workers   int
	noConsole bool
	webhooks  bool // a notifier and the example receiver, registered for every event
}

var testSchedule = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 700 * time.Millisecond, time.Second}

func startFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, pipelinetest.Logger(t).Core()))
	lo := localstack.Options{DataDir: t.TempDir(), Logger: log, APIKeys: testKeys, Workers: o.workers, Retrievers: o.workers,
		Retriever: pipeline.RetrieverConfig{Schedule: testSchedule}}
	lo.Worker.Backoff = pipeline.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}
	if o.webhooks {
		hooks := pipeline.WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}
		lo.Notifiers, lo.WebhookReceiver, lo.Ingest.Webhooks, lo.Notifier.Webhooks = 1, true, hooks, hooks
	}
	if !o.noConsole {
		cc := o.console
		lo.Console = &cc
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := localstack.Start(ctx, lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &fixture{stack: s, base: s.IngestURL, logs: logs, subj: s.Topology.Subjects}
}

// browser is a client with a cookie jar that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
	// forwardedFor, when set, is sent as X-Forwarded-For.
	forwardedFor string
}

func (f *fixture) browser(t *testing.T) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: f.base, hc: &http.Client{Jar: jar, Timeout: testTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
	loc    string
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", b.forwardedFor)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw), loc: resp.Header.Get("Location")}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do(http.MethodGet, path, nil, nil) }

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.do(http.MethodPost, path, form, nil)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of a page's forms.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page (status %d)", p.status)
	}
	return m[1]
}

// signInAttempt posts key through the sign-in form.
func (b *browser) signInAttempt(key, next string) page {
	b.t.Helper()
	form := b.get("/console/signin?next=" + url.QueryEscape(next))
	if form.status != http.StatusOK {
		b.t.Fatalf("sign-in form: %d", form.status)
	}
	return b.post("/console/signin", url.Values{"csrf": {form.csrf(b.t)}, "key": {key}, "next": {next}})
}

// signIn signs in and fails the test if it does not work.
func (b *browser) signIn(key string) {
	b.t.Helper()
	if p := b.signInAttempt(key, "/console/"); p.status != http.StatusSeeOther || p.loc != "/console/" {
		b.t.Fatalf("sign in: %d %q\n%s", p.status, p.loc, p.body)
	}
}

// action posts a form of the page at from (taking its CSRF token).
func (b *browser) action(from, path string, form url.Values) page {
	b.t.Helper()
	p := b.get(from)
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", p.csrf(b.t))
	return b.post(path, form)
}

func contains(t *testing.T, p page, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(p.body, w) {
			t.Errorf("page (status %d) lacks %q", p.status, w)
		}
	}
}

func lacks(t *testing.T, p page, bad ...string) {
	t.Helper()
	for _, w := range bad {
		if strings.Contains(p.body, w) {
			t.Errorf("page (status %d) contains %q", p.status, w)
		}
	}
}

// submit sends a job through the API with the ops key and returns its ID.
func (f *fixture) submit(t *testing.T, body map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, f.base+"/v1/verifications", strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+opsKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ JobID string }
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("submit: %d %s", resp.StatusCode, raw)
	}
	return out.JobID
}

func emailJob(ref, userRef, email string) map[string]any {
	return map[string]any{"customerInternalReference": ref, "userReference": userRef, "workflowDefinition": map[string]any{"key": 10066},
		"channel": "API", "preparedData": map[string]any{"email": email}}
}

// record reads a job's record.
func (f *fixture) record(t *testing.T, id string) *pipeline.JobRecord {
	t.Helper()
	idx, err := pipeline.NewJobIndex(context.Background(), f.stack.JS, f.stack.Topology)
	if err != nil {
		t.Fatal(err)
	}
	// As the console reads it: a job no worker has picked up yet has no
	// record, and its pending message stands for it.
	rec, err := pipeline.LookupJob(context.Background(), f.stack.JS, idx.Store(), f.subj, id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// waitStatus waits until the job reaches status.
func (f *fixture) waitStatus(t *testing.T, id, status string) *pipeline.JobRecord {
	t.Helper()
	var rec *pipeline.JobRecord
	pipelinetest.Eventually(t, testTimeout, func() bool {
		rec = f.record(t, id)
		return rec.Status == status
	}, "job %s %s (is %v)", id, status, func() string {
		if rec == nil {
			return "unknown"
		}
		return rec.Status
	}())
	return rec
}

// createRecord stores a job record directly (as an upstream publisher's job
// would leave it before a worker runs), index entries included.
func (f *fixture) createRecord(t *testing.T, rec *pipeline.JobRecord) {
	t.Helper()
	idx, err := pipeline.NewJobIndex(context.Background(), f.stack.JS, f.stack.Topology)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := idx.Store().Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// clock is a settable clock for session and rate-limit expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// regexpFind returns the first group of expr in s.
func regexpFind(t *testing.T, s, expr string) string {
	t.Helper()
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %s", expr)
	}
	return m[1]
}
