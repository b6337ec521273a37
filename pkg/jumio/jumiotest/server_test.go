package jumiotest

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func TestConcurrentCounters(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	const workers, perWorker = 20, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				req := accountReq(fmt.Sprintf("job-%d", w), jumio.WorkflowEmailVerification)
				r := e.postAccount(tok, req)
				if r.status != 200 {
					t.Errorf("worker %d request %d: %d", w, i, r.status)
					return
				}
				var ar jumio.AccountResponse
				r.decode(t, &ar)
				e.uploadPrepared(ar.WorkflowExecution.Credentials[0], map[string]string{"email": "a@example.com"})
				e.finalize(ar.WorkflowExecution.Credentials[0])
				e.do(http.MethodGet, execPath(ar), nil, bearer(tok))
			}
		})
	}
	wg.Wait()
	st := e.s.Stats()
	n := workers * perWorker
	if st.AccountsCreated != n || st.ExecutionsCreated != n || st.Uploads != n || st.Finalizes != n ||
		st.Requests["details"] != n || st.Responses["details"]["200"] != n || st.TokensIssued != 1 {
		t.Errorf("stats = %+v", st)
	}
	for w := range workers {
		if got := st.AccountsByReference[fmt.Sprintf("job-%d", w)]; got != perWorker {
			t.Errorf("job-%d accounts = %d", w, got)
		}
	}
	// Stats is a copy.
	st.Requests["details"] = -1
	if e.s.Stats().Requests["details"] != n {
		t.Error("Stats returned shared maps")
	}
}

func TestWithJumioClient(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{})
	c, err := jumio.New(e.s.Credentials(), jumio.WithBaseURL(e.s.URL), jumio.WithUserAgent("kycpipe-test/1.0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	req := accountReq("client-1", jumio.WorkflowIDSelfie)
	req.CallbackURL = rc.srv.URL
	acct, err := c.CreateAccount(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var data, id, selfie jumio.CredentialStart
	for _, cr := range acct.WorkflowExecution.Credentials {
		switch cr.Category {
		case jumio.CategoryData:
			data = cr
		case jumio.CategoryID:
			id = cr
		case jumio.CategorySelfie:
			selfie = cr
		}
	}
	u, _ := data.API.PartURL(jumio.PartPreparedData)
	if _, err := c.UploadPreparedData(ctx, u, data.API.Token, &jumio.PreparedData{FirstName: "Ada", LastName: "Lovelace"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		cred jumio.CredentialStart
		cls  string
		img  []byte
	}{{id, jumio.PartFront, frontPNG()}, {id, jumio.PartBack, backJPEG()}, {selfie, jumio.PartFace, faceJPEG()}} {
		u, _ := p.cred.API.PartURL(p.cls)
		if _, err := c.UploadPart(ctx, u, p.cred.API.Token, "img", "image/png", int64(len(p.img)), bytes.NewReader(p.img)); err != nil {
			t.Fatalf("upload %s: %v", p.cls, err)
		}
	}
	if _, err := c.Finalize(ctx, id.API.WorkflowExecution, id.API.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finalize(ctx, id.API.WorkflowExecution, id.API.Token); !errors.Is(err, jumio.ErrForbidden) {
		t.Fatalf("second finalize: %v", err)
	}
	cb := rc.next(t).cb
	st, err := c.WorkflowStatus(ctx, cb.Account.ID, cb.WorkflowExecution.ID)
	if err != nil || st.WorkflowExecution.Status != jumio.StatusProcessed || st.WorkflowExecution.DefinitionKey != "10164" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	d, err := c.WorkflowDetails(ctx, cb.Account.ID, cb.WorkflowExecution.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Decision.Type != jumio.DecisionPassed || len(d.Capabilities.DecodeErrors) != 0 || len(d.Capabilities.Other) != 0 ||
		d.Capabilities.Extraction[0].Data.LastName != "LOVELACE" {
		t.Errorf("details = %+v", d)
	}
	steps, err := c.WorkflowSteps(ctx, cb.Account.ID, cb.WorkflowExecution.ID)
	if err != nil || len(steps.Steps) != 1 {
		t.Errorf("steps = %+v, %v", steps, err)
	}
	if err := c.DeleteWorkflowExecution(ctx, cb.Account.ID, cb.WorkflowExecution.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WorkflowDetails(ctx, cb.Account.ID, cb.WorkflowExecution.ID); !errors.Is(err, jumio.ErrNotFound) {
		t.Errorf("details after deletion: %v", err)
	}
	var apiErr *jumio.APIError
	_, err = c.CreateAccount(ctx, &jumio.AccountRequest{CustomerInternalReference: "x",
		WorkflowDefinition: jumio.WorkflowDefinition{Key: "424242"}})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Detail != "workflowDefinition.key invalid" || apiErr.Title != "Bad Request" {
		t.Errorf("unknown workflow: %v", err)
	}
	if s := e.s.Stats(); s.TokenRequests != 1 {
		t.Errorf("token requests = %d", s.TokenRequests)
	}
}

func TestHandlerMountedElsewhere(t *testing.T) {
	t.Parallel()
	s := NewUnstartedServer(Options{})
	t.Cleanup(s.Close)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	e := &tenv{t: t, s: s, hc: hs.Client(), base: hs.URL}
	ar := e.createAccount(e.token(), accountReq("mounted", jumio.WorkflowIDIV))
	if !strings.HasPrefix(ar.Web.Href, hs.URL+"/web/") || !strings.HasPrefix(ar.WorkflowExecution.Credentials[0].API.WorkflowExecution, hs.URL+"/link/") {
		t.Errorf("URLs not built from the request's host: %+v", ar)
	}
	if st := s.Stats(); st.AccountsCreated != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	s := NewServer(Options{})
	t.Cleanup(s.Close)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") || strings.HasSuffix(s.URL, "/") {
		t.Errorf("URL = %s", s.URL)
	}
	if c := s.Credentials(); c.ClientID != DefaultClientID || c.ClientSecret != DefaultClientSecret {
		t.Errorf("credentials = %v", c)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("second Start did not panic")
			}
		}()
		s.Start()
	}()
	// The port is taken: StartServer reports it.
	_, err := StartServer(Options{Addr: s.Listener.Addr().String()})
	if err == nil {
		t.Error("StartServer on a used port succeeded")
	}
	// An unspecified address gives a loopback URL.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip(err)
	}
	u := NewUnstartedServer(Options{})
	u.Listener = ln
	u.Start()
	t.Cleanup(u.Close)
	if !strings.HasPrefix(u.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %s", u.URL)
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
	}{
		{"client without secret", Options{Clients: []ClientCredentials{{ID: "a"}}}},
		{"duplicate clients", Options{Clients: []ClientCredentials{{ID: "a", Secret: "x"}, {ID: "a", Secret: "y"}}}},
		{"short token TTL", Options{TokenTTL: time.Millisecond}},
		{"negative delay", Options{ProcessingDelay: -time.Second}},
		{"bad default callback URL", Options{DefaultCallbackURL: "ftp://x"}},
		{"drop rate", Options{Callbacks: CallbackOptions{DropRate: 1.5}}},
		{"negative rate", Options{RateLimits: &RateLimits{AccountPerSecond: -1}}},
		{"unknown latency route", Options{Latency: map[Route]time.Duration{"nope": time.Second}}},
		{"workflow without credentials", Options{Workflows: map[jumio.WorkflowKey]WorkflowSpec{"20000": {Name: "empty"}}}},
		{"workflow with bad category", Options{Workflows: map[jumio.WorkflowKey]WorkflowSpec{"20000": {
			Credentials: []CredentialSpec{{Category: "PHOTO", Channels: []string{"API"}, Parts: []string{"FRONT"}}}}}}},
		{"API credential without parts", Options{Workflows: map[jumio.WorkflowKey]WorkflowSpec{"20000": {
			Credentials: []CredentialSpec{{Category: "DOCUMENT", Channels: []string{"API"}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := StartServer(tt.opts)
			if !errors.Is(err, ErrInvalidOptions) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
		})
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "invalid options") {
			t.Errorf("NewServer panic = %v", r)
		}
	}()
	NewServer(Options{TokenTTL: -1})
}

func TestCustomWorkflow(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{Workflows: map[jumio.WorkflowKey]WorkflowSpec{
		"20001": {Name: "Proof of address", Credentials: []CredentialSpec{
			{Category: jumio.CategoryDocument, Channels: []string{"API", "WEB"}, Parts: []string{"FRONT"}},
		}, Capabilities: []string{"usability", "extraction", "documentAuthenticity"}},
	}})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("custom", "20001"))
	doc := credOf(t, ar, jumio.CategoryDocument)
	if ar.Web == nil || ar.SDK != nil || len(doc.API.Parts) != 1 {
		t.Fatalf("account = %+v", ar)
	}
	mustOK(t, e.upload(doc, jumio.PartFront, frontPNG()), "upload")
	mustOK(t, e.finalize(doc), "finalize")
	d := e.details(tok, ar)
	if d.Decision.Type != "PASSED" || len(d.Capabilities.Usability) != 1 || len(d.Capabilities.Extraction) != 1 ||
		d.Capabilities.Other["documentAuthenticity"] == nil {
		t.Errorf("details = %+v", d)
	}
	var steps jumio.Steps
	e.do(http.MethodGet, execPath(ar)+"/steps", nil, bearer(tok)).decode(t, &steps)
	// Only Jumio's documented step names: a custom capability judging images
	// belongs to ID_IV.
	if len(steps.Steps) != 1 || steps.Steps[0].Name != "ID_IV" || len(steps.Steps[0].CapabilityIDs) != 3 {
		t.Errorf("steps = %+v", steps)
	}
}

func TestImages(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		data   []byte
		format string
	}{{"png", PNG(301, 20), "png"}, {"jpeg", JPEG(20, 301), "jpeg"}} {
		cfg, format, err := image.DecodeConfig(bytes.NewReader(tt.data))
		if err != nil || format != tt.format || max(cfg.Width, cfg.Height) != 301 {
			t.Errorf("%s: %v %s %+v", tt.name, err, format, cfg)
		}
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	c := NewClock(t0)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { c.Advance(time.Second); _ = c.Now() })
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("Now = %v", got)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Error("Set")
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.DebugLevel)
	rc := newReceiver(t)
	e := setup(t, Options{Logger: zap.New(core), DefaultCallbackURL: rc.srv.URL,
		Callbacks: CallbackOptions{Intermediate: true}})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("secret-ref-123", jumio.WorkflowIDSelfie))
	data := credOf(t, ar, jumio.CategoryData)
	mustOK(t, e.uploadPrepared(data, &jumio.PreparedData{FirstName: "Verysecretname", Email: "private@example.com"}), "data")
	e.completeAPI(ar)
	rc.statuses(t, 3)
	e.s.Close()

	forbidden := []string{tok, data.API.Token, DefaultClientSecret, "secret-ref-123", "Verysecretname", "private@example.com", ar.Web.Href}
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, entry := range logs.All() {
		text := entry.Message
		for k, v := range entry.ContextMap() {
			text += " " + k + "=" + fmt.Sprint(v)
		}
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Errorf("log entry leaks a secret or PII: %s", text)
			}
		}
	}
}
