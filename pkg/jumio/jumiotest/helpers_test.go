package jumiotest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

const testUA = "kycpipe-test/1.0"

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

type tenv struct {
	t    *testing.T
	s    *Server
	hc   *http.Client
	base string // overrides s.URL for relative paths
}

// setup starts a server with opts (logging to t) and closes it at cleanup.
func setup(t *testing.T, opts Options) *tenv {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	s := NewServer(opts)
	t.Cleanup(s.Close)
	return &tenv{t: t, s: s, hc: s.Client()}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem decodes Jumio's error shape and checks it matches the status.
func (r response) problem(t *testing.T) problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, want application/json (body %s)", ct, r.body)
	}
	var p problem
	r.decode(t, &p)
	if p.Status != r.status || p.Title != http.StatusText(r.status) {
		t.Fatalf("error body %s does not match status %d", r.body, r.status)
	}
	return p
}

type reqOpt func(*http.Request)

func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func basic(id, secret string) reqOpt { return func(r *http.Request) { r.SetBasicAuth(id, secret) } }

// do sends a request to path (relative to the server, or an absolute URL)
// with a User-Agent unless one is given.
func (e *tenv) do(method, path string, body io.Reader, opts ...reqOpt) response {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		base := e.s.URL
		if e.base != "" {
			base = e.base
		}
		u = base + path
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("User-Agent", testUA)
	for _, o := range opts {
		o(req)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func (e *tenv) tokenFor(id, secret string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/oauth2/token", strings.NewReader("grant_type=client_credentials"),
		basic(id, secret), header("Content-Type", "application/x-www-form-urlencoded"))
}

// token returns an access token of the default client.
func (e *tenv) token() string {
	e.t.Helper()
	c := e.s.Credentials()
	r := e.tokenFor(c.ClientID, c.ClientSecret)
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tr tokenResponse
	r.decode(e.t, &tr)
	return tr.AccessToken
}

func (e *tenv) postAccount(tok string, req any) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/api/v1/accounts", jsonBody(e.t, req), bearer(tok), header("Content-Type", "application/json"))
}

// createAccount creates an account and fails the test unless it works.
func (e *tenv) createAccount(tok string, req *jumio.AccountRequest) jumio.AccountResponse {
	e.t.Helper()
	r := e.postAccount(tok, req)
	if r.status != http.StatusOK {
		e.t.Fatalf("create account: %d %s", r.status, r.body)
	}
	var ar jumio.AccountResponse
	r.decode(e.t, &ar)
	return ar
}

// accountReq is a request Jumio accepts for every channel: for workflows
// with an ID credential it carries end-user consent and the document's
// country and type, which API uploads need (see bareAccountReq).
func accountReq(ref string, key jumio.WorkflowKey) *jumio.AccountRequest {
	req := bareAccountReq(ref, key)
	switch key {
	case jumio.WorkflowIDIV, jumio.WorkflowIDIVScreening, jumio.WorkflowIDIVSupporting, jumio.WorkflowIDSelfie:
		req.UserConsent = testConsent()
		req.WorkflowDefinition.Credentials = []jumio.CredentialDefinition{idCountryAndType("USA", "DRIVING_LICENSE")}
	}
	return req
}

// bareAccountReq has only what the account call itself requires.
func bareAccountReq(ref string, key jumio.WorkflowKey) *jumio.AccountRequest {
	req := &jumio.AccountRequest{CustomerInternalReference: ref, WorkflowDefinition: jumio.WorkflowDefinition{Key: key}}
	if key == jumio.WorkflowWatchlistScreening {
		req.UserReference = "user-" + ref
	}
	return req
}

func testConsent() *jumio.UserConsent {
	return &jumio.UserConsent{UserIP: "192.0.2.1", UserLocation: &jumio.UserLocation{Country: "USA", State: "IL"},
		Consent: &jumio.Consent{Obtained: "yes", ObtainedAt: "2026-03-14T09:00:00.000Z"}}
}

func idCountryAndType(country, typ string) jumio.CredentialDefinition {
	return jumio.CredentialDefinition{Category: jumio.CategoryID, Country: &jumio.PredefinedValue{Values: []string{country}},
		Type: &jumio.PredefinedValue{Values: []string{typ}}}
}

func credOf(t *testing.T, ar jumio.AccountResponse, category string) jumio.CredentialStart {
	t.Helper()
	for _, c := range ar.WorkflowExecution.Credentials {
		if c.Category == category {
			return c
		}
	}
	t.Fatalf("no %s credential in %+v", category, ar.WorkflowExecution.Credentials)
	return jumio.CredentialStart{}
}

func multipartFile(t *testing.T, field string, data []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile(field, "image")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// upload sends an image part with the credential's token.
func (e *tenv) upload(c jumio.CredentialStart, classifier string, data []byte, opts ...reqOpt) response {
	e.t.Helper()
	u, ok := c.API.PartURL(classifier)
	if !ok {
		e.t.Fatalf("credential %s has no %s part", c.Category, classifier)
	}
	body, ct := multipartFile(e.t, "file", data)
	return e.do(http.MethodPost, u, body, append([]reqOpt{bearer(c.API.Token), header("Content-Type", ct)}, opts...)...)
}

func (e *tenv) uploadPrepared(c jumio.CredentialStart, pd any) response {
	e.t.Helper()
	u, ok := c.API.PartURL(jumio.PartPreparedData)
	if !ok {
		e.t.Fatalf("credential %s has no prepared_data part", c.Category)
	}
	return e.do(http.MethodPost, u, jsonBody(e.t, pd), bearer(c.API.Token), header("Content-Type", "application/json"))
}

func (e *tenv) finalize(c jumio.CredentialStart) response {
	e.t.Helper()
	return e.do(http.MethodPut, c.API.WorkflowExecution, nil, bearer(c.API.Token))
}

// mustOK fails unless r is a 200.
func mustOK(t *testing.T, r response, what string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, r.status, r.body)
	}
}

// Test images, encoded once.
var (
	frontPNG = sync.OnceValue(func() []byte { return PNG(640, 400) })
	backJPEG = sync.OnceValue(func() []byte { return JPEG(640, 400) })
	faceJPEG = sync.OnceValue(func() []byte { return JPEG(480, 640) })
)

// completeAPI uploads every part of an ID workflow and finalizes it.
func (e *tenv) completeAPI(ar jumio.AccountResponse) {
	e.t.Helper()
	id := credOf(e.t, ar, jumio.CategoryID)
	mustOK(e.t, e.upload(id, jumio.PartFront, frontPNG()), "upload front")
	mustOK(e.t, e.upload(id, jumio.PartBack, backJPEG()), "upload back")
	mustOK(e.t, e.upload(credOf(e.t, ar, jumio.CategorySelfie), jumio.PartFace, faceJPEG()), "upload face")
	mustOK(e.t, e.finalize(id), "finalize")
}

func execPath(ar jumio.AccountResponse) string {
	return "/api/v1/accounts/" + ar.Account.ID + "/workflow-executions/" + ar.WorkflowExecution.ID
}

func (e *tenv) status(tok string, ar jumio.AccountResponse) string {
	e.t.Helper()
	r := e.do(http.MethodGet, execPath(ar)+"/status", nil, bearer(tok))
	mustOK(e.t, r, "status")
	var st jumio.StatusResponse
	r.decode(e.t, &st)
	return st.WorkflowExecution.Status
}

func (e *tenv) details(tok string, ar jumio.AccountResponse) *jumio.WorkflowDetails {
	e.t.Helper()
	r := e.do(http.MethodGet, execPath(ar), nil, bearer(tok))
	mustOK(e.t, r, "details")
	d, err := jumio.DecodeWorkflowDetails(bytes.NewReader(r.body))
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// receiver is a callback endpoint.
type receiver struct {
	srv *httptest.Server
	ch  chan received
	mu  sync.Mutex
	// answers are the statuses to answer, in order; then 200.
	answers []int
}

type received struct {
	raw    []byte
	cb     *jumio.Callback
	header http.Header
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	t.Helper()
	rc := &receiver{ch: make(chan received, 100), answers: answers}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		cb, err := jumio.ParseCallback(bytes.NewReader(b))
		if err != nil {
			t.Errorf("callback does not parse: %v (%s)", err, b)
		}
		rc.mu.Lock()
		status := http.StatusOK
		if len(rc.answers) > 0 {
			status, rc.answers = rc.answers[0], rc.answers[1:]
		}
		rc.mu.Unlock()
		rc.ch <- received{raw: b, cb: cb, header: r.Header.Clone()}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-rc.ch:
		return r
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a callback")
		return received{}
	}
}

// statuses receives n callbacks and returns their statuses.
func (rc *receiver) statuses(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, rc.next(t).cb.WorkflowExecution.Status)
	}
	return out
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func query(u string) url.Values {
	p, err := url.Parse(u)
	if err != nil {
		return nil
	}
	return p.Query()
}
