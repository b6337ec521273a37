package docs_test

// The real ingest handlers against the document: every route and every
// documented status that can be triggered in process is exercised, and each
// real answer is checked (status documented for the route, Content-Type as
// documented, documented headers present and valid, body valid against the
// response schema with no undocumented property). At the end every
// documented (operation, status) must have been seen.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/docs"
	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// startStack runs the pipeline in process; workers and retrievers are
// added by the tests that need them.
func startStack(t *testing.T, mutate func(*localstack.Options)) *localstack.Stack {
	t.Helper()
	o := localstack.Options{
		DataDir:   t.TempDir(),
		Logger:    pipelinetest.Logger(t),
		Retriever: pipeline.RetrieverConfig{Schedule: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}},
		Worker:    pipeline.WorkerConfig{Backoff: pipeline.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}},
	}
	o.Retriever.Backoff = pipeline.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}
	if mutate != nil {
		mutate(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	s, err := localstack.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// answer is a real HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request. header values replace the defaults; "" deletes.
func call(t *testing.T, method, url, contentType string, body []byte, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// conformance checks answers against the document and records coverage.
type conformance struct {
	strict *validator
	mu     sync.Mutex
	seen   map[string]bool // "post /v1/verifications 202"
}

// check validates a real answer of the operation (method, path template).
func (c *conformance) check(t *testing.T, what, method, template string, a answer) {
	t.Helper()
	opTokens := []string{"paths", template, method}
	responses, ok := at(specDoc, append(slices.Clone(opTokens), "responses")...)
	if !ok {
		t.Errorf("%s: %s %s is not documented", what, method, template)
		return
	}
	code := strconv.Itoa(a.status)
	r, ok := responses.(map[string]any)[code]
	if !ok {
		t.Errorf("%s: %s %s answered %d, which is not documented: %s", what, method, template, a.status, a.body)
		return
	}
	c.mu.Lock()
	c.seen[method+" "+template+" "+code] = true
	c.mu.Unlock()
	tokens, resp := deref(append(slices.Clone(opTokens), "responses", code), r)
	c.checkHeaders(t, what, tokens, resp, a)
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(a.body) != 0 {
			t.Errorf("%s: %d has a body but documents none", what, a.status)
		}
		return
	}
	mt, _, err := mime.ParseMediaType(a.header.Get("Content-Type"))
	if err != nil {
		t.Errorf("%s: Content-Type %q: %v", what, a.header.Get("Content-Type"), err)
		return
	}
	if _, ok := content[mt]; !ok {
		t.Errorf("%s: Content-Type %s is not documented for %d (documented: %v)", what, mt, a.status, sortedKeys(content))
		return
	}
	loc := specLoc(append(slices.Clone(tokens), "content", mt, "schema")...)
	var err2 error
	if strings.HasSuffix(mt, "json") {
		err2 = c.strict.validateJSON(loc, a.body)
	} else {
		err2 = c.strict.validate(loc, string(a.body))
	}
	if err2 != nil {
		t.Errorf("%s: %s %s %d: the body does not match the documented schema: %s\n%v", what, method, template, a.status, a.body, err2)
	}
}

func (c *conformance) checkHeaders(t *testing.T, what string, tokens []string, resp map[string]any, a answer) {
	t.Helper()
	headers, _ := resp["headers"].(map[string]any)
	for _, name := range sortedKeys(headers) {
		ht, h := deref(append(slices.Clone(tokens), "headers", name), headers[name])
		vals := a.header.Values(name)
		if len(vals) == 0 {
			if h["required"] == true {
				t.Errorf("%s: %d lacks the documented header %s", what, a.status, name)
			}
			continue
		}
		if err := c.strict.validate(specLoc(append(ht, "schema")...), vals[0]); err != nil {
			t.Errorf("%s: header %s: %q does not match its schema: %v", what, name, vals[0], err)
		}
	}
}

// checkComponent validates an answer of no documented operation (unknown
// route, wrong method) against a component schema.
func (c *conformance) checkComponent(t *testing.T, what, schema string, a answer) {
	t.Helper()
	if mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type")); mt != "application/problem+json" {
		t.Errorf("%s: Content-Type %q", what, a.header.Get("Content-Type"))
	}
	if err := c.strict.validateJSON(specLoc("components", "schemas", schema), a.body); err != nil {
		t.Errorf("%s: %s does not match %s: %v", what, a.body, schema, err)
	}
}

// requestExamples returns the documented examples of a request body.
func requestExamples(t *testing.T, mediaType string) map[string]any {
	t.Helper()
	exs, ok := at(specDoc, "paths", "/v1/verifications", "post", "requestBody", "content", mediaType, "examples")
	if !ok {
		t.Fatalf("no %s examples", mediaType)
	}
	out := map[string]any{}
	for name, e := range exs.(map[string]any) {
		_, m := deref(nil, e)
		out[name] = m["value"]
	}
	return out
}

// multipartSubmission builds a multipart body: the request part, then files
// in order.
func multipartSubmission(t *testing.T, request any, files ...any) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if request != nil {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", `form-data; name="request"`)
		h.Set("Content-Type", "application/json")
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.NewEncoder(w).Encode(request); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i+1 < len(files); i += 2 {
		name := files[i].(string)
		w, err := mw.CreateFormFile(name, strings.ToLower(name)+".img")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(files[i+1].([]byte))
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

// extraIngest serves another ingest on the stack's JetStream, with its own
// callback configuration. broken: its NATS connection is closed once it is
// built, so everything that needs JetStream fails.
func extraIngest(t *testing.T, s *localstack.Stack, cb pipeline.CallbackConfig, broken bool, extraKeys ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	nc, err := nats.Connect(s.NATSURL, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pipeline.NewAPIKeys(append([]string{s.APIKey}, extraKeys...))
	if err != nil {
		t.Fatal(err)
	}
	in, err := pipeline.NewIngest(ctx, nc, js, pipeline.IngestConfig{Topology: s.Topology, APIKeys: keys, Callbacks: cb,
		PublishTimeout: 2 * time.Second, Logger: pipelinetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if broken {
		nc.Close()
	}
	srv := httptest.NewServer(in.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func callbackJSON(accountID, execID, status string) []byte {
	b, _ := json.Marshal(map[string]any{
		"callbackSentAt":     time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"userReference":      "customer-8812",
		"workflowExecution":  map[string]any{"id": execID, "href": "https://retrieval.emea-1.jumio.ai/api/v1/workflow-executions/" + execID, "definitionKey": "10066", "status": status},
		"account":            map[string]any{"id": accountID, "href": "https://retrieval.emea-1.jumio.ai/api/v1/accounts/" + accountID},
		"someFieldJumioAdds": "tolerated",
	})
	return b
}

func TestHandlersMatchOpenAPI(t *testing.T) {
	t.Parallel()
	_, strictV := validators(t)
	c := &conformance{strict: strictV, seen: map[string]bool{}}
	s := startStack(t, nil)
	base := s.IngestURL
	auth := map[string]string{"Authorization": "Bearer " + s.APIKey}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{"Authorization": "Bearer " + s.APIKey}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	const (
		submitPath = "/v1/verifications"
		jobPath    = "/v1/verifications/{jobId}"
		cbPath     = "/v1/callbacks/jumio"
		cbSecret   = "/v1/callbacks/jumio/{secret}"
	)
	post := func(what string, ct string, body []byte, h map[string]string, want int) answer {
		t.Helper()
		a := call(t, http.MethodPost, base+submitPath, ct, body, h)
		if a.status != want {
			t.Errorf("%s: %d %s, want %d", what, a.status, a.body, want)
		}
		c.check(t, what, "post", submitPath, a)
		return a
	}

	// Operations.
	c.check(t, "healthz", "get", "/healthz", call(t, http.MethodGet, base+"/healthz", "", nil, nil))
	c.check(t, "readyz", "get", "/readyz", call(t, http.MethodGet, base+"/readyz", "", nil, nil))
	a := call(t, http.MethodGet, base+"/openapi.yaml", "", nil, auth)
	c.check(t, "openapi.yaml", "get", "/openapi.yaml", a)
	if !bytes.Equal(a.body, docs.OpenAPI) {
		t.Error("GET /openapi.yaml does not serve docs/openapi.yaml")
	}
	c.check(t, "openapi.yaml without key", "get", "/openapi.yaml", call(t, http.MethodGet, base+"/openapi.yaml", "", nil, nil))

	// Every documented JSON request example is accepted as it is.
	var firstJob string
	for _, name := range sortedKeys(requestExamples(t, "application/json")) {
		body, _ := json.Marshal(requestExamples(t, "application/json")[name])
		a := post("example "+name, "application/json", body, auth, http.StatusAccepted)
		var out pipeline.JobView
		_ = json.Unmarshal(a.body, &out)
		if a.header.Get("Location") != "/v1/verifications/"+out.JobID {
			t.Errorf("example %s: Location %q for job %s", name, a.header.Get("Location"), out.JobID)
		}
		if firstJob == "" {
			firstJob = out.JobID
		}
	}

	// Idempotency: a repeat is 200, the same key with another request 409,
	// and so is a jobId reused for another request.
	email, _ := json.Marshal(requestExamples(t, "application/json")["emailRisk"])
	idem := with(map[string]string{"Idempotency-Key": "docs-test-7f3a9c"})
	post("first with a key", "application/json", email, idem, http.StatusAccepted)
	if a := post("repeat", "application/json", email, idem, http.StatusOK); a.header.Get("Location") != "" {
		t.Errorf("repeat: Location %q", a.header.Get("Location"))
	}
	other := bytes.Replace(email, []byte("order-2026-0001"), []byte("order-2026-0099"), 1)
	post("key reused", "application/json", other, idem, http.StatusConflict)
	// A copy: the examples are the parsed spec's own maps, which later
	// tests (and -count) read again.
	var pd map[string]any
	b, _ := json.Marshal(requestExamples(t, "application/json")["preparedDataRisk"])
	if err := json.Unmarshal(b, &pd); err != nil {
		t.Fatal(err)
	}
	pd["customerInternalReference"] = "order-2026-0098"
	body, _ := json.Marshal(pd)
	post("jobId reused", "application/json", body, auth, http.StatusConflict)

	// Multipart: images as files.
	mp := requestExamples(t, "multipart/form-data")["apiImages"].(map[string]any)
	ct, mbody := multipartSubmission(t, mp["request"], "FRONT", jumiotest.PNG(640, 400), "BACK", jumiotest.PNG(640, 400), "FACE", jumiotest.JPEG(480, 640))
	post("multipart", ct, mbody, auth, http.StatusAccepted)
	ct, mbody = multipartSubmission(t, mp["request"], "FRONT", []byte("GIF89a not an accepted image"))
	post("multipart GIF", ct, mbody, auth, http.StatusUnsupportedMediaType)
	ct, mbody = multipartSubmission(t, nil, "FRONT", jumiotest.PNG(640, 400))
	post("multipart without request", ct, mbody, auth, http.StatusBadRequest)

	// Refusals.
	post("malformed", "application/json", []byte(`{"customerInternalReference":`), auth, http.StatusBadRequest)
	post("unknown field", "application/json", []byte(`{"customerInternalReference":"x","workflowDefinition":{"key":1},"favouriteColour":"red"}`), auth, http.StatusBadRequest)
	post("bad Idempotency-Key", "application/json", email, with(map[string]string{"Idempotency-Key": "has space"}), http.StatusBadRequest)
	post("no key", "application/json", email, nil, http.StatusUnauthorized)
	post("wrong key", "application/json", email, map[string]string{"Authorization": "Bearer not-the-key-0123456789"}, http.StatusUnauthorized)
	big := append(bytes.Repeat([]byte(" "), 1<<20), email...)
	post("too large", "application/json", big, auth, http.StatusRequestEntityTooLarge)
	post("text", "text/plain", email, auth, http.StatusUnsupportedMediaType)
	post("rules", "application/json", []byte(`{"customerInternalReference":"order<1>","workflowDefinition":{"key":10066},"tokenLifetime":"90d"}`), auth, http.StatusUnprocessableEntity)

	// Job status.
	get := func(what, id string, h map[string]string, want int) answer {
		t.Helper()
		a := call(t, http.MethodGet, base+"/v1/verifications/"+id, "", nil, h)
		if a.status != want {
			t.Errorf("%s: %d %s, want %d", what, a.status, a.body, want)
		}
		c.check(t, what, "get", jobPath, a)
		return a
	}
	get("status", firstJob, auth, http.StatusOK)
	get("unknown job", "job_00000000000000000000000000", auth, http.StatusNotFound)
	get("not a job ID", "-nope-", auth, http.StatusNotFound)
	get("status without key", firstJob, nil, http.StatusUnauthorized)

	// Scopes: a key without the scope a route needs is refused with 403.
	const readerKey, submitterKey = "reader-key-0123456789", "submitter-key-0123456789"
	scoped := extraIngest(t, s, pipeline.CallbackConfig{}, false, "reader:read:"+readerKey, "submitter:submit:"+submitterKey)
	a = call(t, http.MethodPost, scoped+submitPath, "application/json", email, map[string]string{"Authorization": "Bearer " + readerKey})
	c.check(t, "submit without the submit scope", "post", submitPath, a)
	a = call(t, http.MethodGet, scoped+"/v1/verifications/"+firstJob, "", nil, map[string]string{"Authorization": "Bearer " + submitterKey})
	c.check(t, "status without the read scope", "get", jobPath, a)
	a = call(t, http.MethodDelete, scoped+"/v1/verifications/"+firstJob, "", nil, map[string]string{"Authorization": "Bearer " + readerKey})
	c.check(t, "erase without the erase scope", "delete", jobPath, a)

	// Erasure: 202 while it runs, 200 with the tombstone once done.
	del := func(what, id string, h map[string]string, want int) answer {
		t.Helper()
		a := call(t, http.MethodDelete, base+"/v1/verifications/"+id, "", nil, h)
		if a.status != want {
			t.Errorf("%s: %d %s, want %d", what, a.status, a.body, want)
		}
		c.check(t, what, "delete", jobPath, a)
		return a
	}
	del("erase without key", firstJob, nil, http.StatusUnauthorized)
	del("erase an unknown job", "job_00000000000000000000000000", auth, http.StatusNotFound)
	del("erase", firstJob, auth, http.StatusAccepted)
	if _, err := s.AddWorker(context.Background(), nil); err != nil { // workers carry erasures out
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		var v pipeline.JobView
		_ = json.Unmarshal(call(t, http.MethodGet, base+"/v1/verifications/"+firstJob, "", nil, auth).body, &v)
		return v.Status == pipeline.StatusErased
	}, "the erased job's tombstone")
	get("erased job", firstJob, auth, http.StatusOK)
	del("erase again", firstJob, auth, http.StatusOK)

	// Metrics, once there is something to count.
	c.check(t, "metrics", "get", "/metrics", call(t, http.MethodGet, base+"/metrics", "", nil, auth))
	c.check(t, "metrics without key", "get", "/metrics", call(t, http.MethodGet, base+"/metrics", "", nil, nil))

	// Callbacks on the main ingest (no secret, no allowlist).
	acc, exe := "f22a7518-ad22-444b-839f-b5656f2aaa04", "6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1"
	cb := func(what, url, template string, body []byte, h map[string]string, want int) {
		t.Helper()
		a := call(t, http.MethodPost, url, "application/json", body, h)
		if a.status != want {
			t.Errorf("%s: %d %s, want %d", what, a.status, a.body, want)
		}
		c.check(t, what, "post", template, a)
	}
	cb("callback", base+cbPath+"?region=emea-1", cbPath, callbackJSON(acc, exe, "PROCESSED"), nil, http.StatusOK)
	cb("malformed callback", base+cbPath, cbPath, []byte(`{"not":"a callback"}`), nil, http.StatusBadRequest)
	cb("huge callback", base+cbPath, cbPath, bytes.Repeat([]byte(" "), 64<<10+1), nil, http.StatusRequestEntityTooLarge)
	cb("secret route without a secret", base+cbPath+"/guess", cbSecret, callbackJSON(acc, exe, "PROCESSED"), nil, http.StatusNotFound)

	// An ingest with an allowlist behind a trusted proxy and a tiny rate.
	allow := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	fromJumio := map[string]string{"X-Forwarded-For": "192.0.2.10"}
	guarded := extraIngest(t, s, pipeline.CallbackConfig{Allowlist: allow, TrustedProxies: proxies, RatePerSecond: 0.001, Burst: 1}, false)
	cb("outside the allowlist", guarded+cbPath, cbPath, callbackJSON(acc, exe, "PROCESSED"), nil, http.StatusForbidden)
	cb("allowlisted", guarded+cbPath, cbPath, callbackJSON(acc, exe, "PROCESSED"), fromJumio, http.StatusOK)
	cb("over the rate", guarded+cbPath, cbPath, callbackJSON(acc, exe, "PROCESSED"), fromJumio, http.StatusTooManyRequests)

	// The same with a callback secret.
	const secret = "cb-secret-5d1c7e9a"
	secured := extraIngest(t, s, pipeline.CallbackConfig{Secret: secret, Allowlist: allow, TrustedProxies: proxies, RatePerSecond: 0.001, Burst: 3}, false)
	cb("bare route with a secret", secured+cbPath, cbPath, callbackJSON(acc, exe, "PROCESSED"), fromJumio, http.StatusNotFound)
	cb("wrong secret", secured+cbPath+"/guess", cbSecret, callbackJSON(acc, exe, "PROCESSED"), fromJumio, http.StatusNotFound)
	cb("secret, outside the allowlist", secured+cbPath+"/"+secret, cbSecret, callbackJSON(acc, exe, "PROCESSED"), nil, http.StatusForbidden)
	cb("secret, malformed", secured+cbPath+"/"+secret, cbSecret, []byte(`[]`), fromJumio, http.StatusBadRequest)
	cb("secret, huge", secured+cbPath+"/"+secret, cbSecret, bytes.Repeat([]byte(" "), 64<<10+1), fromJumio, http.StatusRequestEntityTooLarge)
	cb("secret", secured+cbPath+"/"+secret, cbSecret, callbackJSON(acc, exe, "TOKEN_EXPIRED"), fromJumio, http.StatusOK)
	cb("secret, over the rate", secured+cbPath+"/"+secret, cbSecret, callbackJSON(acc, exe, "PROCESSED"), fromJumio, http.StatusTooManyRequests)

	// Ingests whose JetStream is gone: 503 with Retry-After.
	broken := extraIngest(t, s, pipeline.CallbackConfig{}, true)
	a = call(t, http.MethodPost, broken+submitPath, "application/json", email, auth)
	c.check(t, "submit, JetStream gone", "post", submitPath, a)
	a = call(t, http.MethodGet, broken+"/v1/verifications/"+firstJob, "", nil, auth)
	c.check(t, "status, JetStream gone", "get", jobPath, a)
	a = call(t, http.MethodDelete, broken+"/v1/verifications/"+firstJob, "", nil, auth)
	c.check(t, "erase, JetStream gone", "delete", jobPath, a)
	cb("callback, JetStream gone", broken+cbPath, cbPath, callbackJSON(acc, exe, "PROCESSED"), nil, http.StatusServiceUnavailable)
	a = call(t, http.MethodGet, broken+"/readyz", "", nil, nil)
	c.check(t, "readyz, JetStream gone", "get", "/readyz", a)
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("readyz, JetStream gone: %d", a.status)
	}
	a = call(t, http.MethodGet, broken+"/healthz", "", nil, nil)
	c.check(t, "healthz, NATS closed", "get", "/healthz", a)
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("healthz, NATS closed: %d", a.status)
	}
	brokenSecured := extraIngest(t, s, pipeline.CallbackConfig{Secret: secret}, true)
	cb("secret callback, JetStream gone", brokenSecured+cbPath+"/"+secret, cbSecret, callbackJSON(acc, exe, "PROCESSED"), nil, http.StatusServiceUnavailable)

	// Answers of no operation are problems too.
	c.checkComponent(t, "unknown route", "NotFoundProblem", call(t, http.MethodGet, base+"/v2/nothing", "", nil, auth))
	a = call(t, http.MethodDelete, base+submitPath, "", nil, auth)
	c.checkComponent(t, "wrong method", "MethodNotAllowedProblem", a)
	if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") == "" {
		t.Errorf("wrong method: %d, Allow %q", a.status, a.header.Get("Allow"))
	}

	// The webhook endpoint routes (webhooks_test.go).
	checkWebhookRoutes(t, c, s)

	// Coverage: every documented status of every operation was seen, except
	// 500 (a handler panic).
	paths, _ := specDoc["paths"].(map[string]any)
	for _, path := range sortedKeys(paths) {
		item := paths[path].(map[string]any)
		for _, m := range methods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			for status := range op["responses"].(map[string]any) {
				key := fmt.Sprintf("%s %s %s", m, path, status)
				if status != "500" && !c.seen[key] {
					t.Errorf("documented but never observed: %s", key)
				}
			}
		}
	}
}
