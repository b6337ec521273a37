package jumiotest

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func TestTokenExpired(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	rc := newReceiver(t)
	e := setup(t, Options{Now: clock.Now, SweepInterval: -1, TokenTTL: 24 * time.Hour})
	tok := e.token()
	req := accountReq("expire-me", jumio.WorkflowIDIVScreening)
	req.TokenLifetime = "5m"
	req.CallbackURL = rc.srv.URL
	ar := e.createAccount(tok, req)

	clock.Advance(5*time.Minute - time.Second)
	e.s.Sweep()
	if info, _ := e.s.Execution(ar.WorkflowExecution.ID); info.Status != jumio.StatusInitiated {
		t.Fatalf("status before the lifetime ends = %s", info.Status)
	}
	clock.Advance(time.Second)
	e.s.Sweep()
	cb := rc.next(t).cb
	if cb.WorkflowExecution.Status != jumio.StatusTokenExpired || cb.WorkflowExecution.ID != ar.WorkflowExecution.ID {
		t.Fatalf("callback = %+v", cb)
	}
	if got := e.status(tok, ar); got != jumio.StatusTokenExpired {
		t.Fatalf("status = %s", got)
	}
	d := e.details(tok, ar)
	if d.Decision.Type != jumio.DecisionNotExecuted || d.Decision.Details.Label != jumio.StatusTokenExpired ||
		d.Decision.Risk.Score != -1 || d.StartedAt != "" || d.CompletedAt != jumio.FormatTimestamp(t0.Add(5*time.Minute)) {
		t.Fatalf("details = %+v", d)
	}
	for _, g := range d.Capabilities.All() {
		if g.Decision.Type != jumio.DecisionNotExecuted {
			t.Errorf("%s = %+v", g.Name, g.Decision)
		}
	}
	if len(d.Capabilities.WatchlistScreening) != 1 || len(d.Capabilities.Usability) != 2 {
		t.Errorf("capabilities = %+v", d.Capabilities)
	}
	if r := e.upload(credOf(t, ar, jumio.CategoryID), jumio.PartFront, frontPNG()); r.status != http.StatusForbidden {
		t.Errorf("upload after expiry: %d", r.status)
	}
	if err := e.s.CompleteWeb(ar.WorkflowExecution.ID); !errors.Is(err, ErrInvalidState) {
		t.Errorf("CompleteWeb after expiry: %v", err)
	}
}

func TestSessionExpired(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	rc := newReceiver(t)
	e := setup(t, Options{Now: clock.Now, SweepInterval: -1, TokenTTL: 24 * time.Hour, DefaultCallbackURL: rc.srv.URL})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("session", jumio.WorkflowIDIV))
	id := credOf(t, ar, jumio.CategoryID)

	mustOK(t, e.upload(id, jumio.PartFront, frontPNG()), "front")
	clock.Advance(14 * time.Minute)
	mustOK(t, e.upload(id, jumio.PartBack, frontPNG()), "back") // resets the session
	clock.Advance(14 * time.Minute)
	e.s.Sweep()
	if got := e.status(tok, ar); got != jumio.StatusInitiated {
		t.Fatalf("status while the session is active = %s", got)
	}
	// Past the token lifetime (30m) but started: only the session counts.
	clock.Advance(time.Minute)
	e.s.Sweep()
	if got := rc.next(t).cb.WorkflowExecution.Status; got != jumio.StatusSessionExpired {
		t.Fatalf("callback status = %s", got)
	}
	d := e.details(tok, ar)
	if d.Workflow.Status != jumio.StatusSessionExpired || d.Decision.Details.Label != jumio.StatusSessionExpired || d.StartedAt == "" {
		t.Fatalf("details = %+v", d)
	}
	if len(d.Credentials) != 2 || len(d.Credentials[0].Parts) != 2 || d.Credentials[1].Parts == nil {
		t.Errorf("credentials = %+v", d.Credentials)
	}
	if r := e.finalize(id); r.status != http.StatusForbidden {
		t.Errorf("finalize after expiry: %d", r.status)
	}
}

func TestExpiryAppliedOnAccess(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	e := setup(t, Options{Now: clock.Now, SweepInterval: -1, TokenTTL: 24 * time.Hour})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("lazy", jumio.WorkflowEmailVerification))
	clock.Advance(31 * time.Minute) // default tokenLifetime is 30m
	if got := e.status(tok, ar); got != jumio.StatusTokenExpired {
		t.Fatalf("status = %s, want TOKEN_EXPIRED without a sweep", got)
	}
}

func TestBackgroundSweeper(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	e := setup(t, Options{Now: clock.Now, SweepInterval: 5 * time.Millisecond, TokenTTL: 24 * time.Hour})
	ar := e.createAccount(e.token(), accountReq("sweeper", jumio.WorkflowEmailVerification))
	clock.Advance(time.Hour)
	eventually(t, "the sweeper to expire the execution", func() bool {
		e.s.mu.Lock()
		defer e.s.mu.Unlock()
		return e.s.execs[ar.WorkflowExecution.ID].status == jumio.StatusTokenExpired
	})
}

func TestProcessingDelayAndClose(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{ProcessingDelay: time.Hour, AutoCompleteWeb: time.Hour})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("slow", jumio.WorkflowEmailVerification))
	data := ar.WorkflowExecution.Credentials[0]
	mustOK(t, e.uploadPrepared(data, map[string]string{"email": "a@example.com"}), "data")
	mustOK(t, e.finalize(data), "finalize")
	if got := e.status(tok, ar); got != jumio.StatusAcquired {
		t.Fatalf("status = %s", got)
	}
	d := e.details(tok, ar)
	if d.Decision.Type != jumio.DecisionNotExecuted || d.Decision.Details.Label != jumio.StatusAcquired || len(d.Capabilities.All()) != 0 {
		t.Errorf("in-progress details = %+v", d)
	}
	e.createAccount(tok, accountReq("web", jumio.WorkflowIDIV)) // a pending auto-completion
	done := make(chan struct{})
	go func() { e.s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Close blocked on pending timers")
	}
}

func TestProcessingDelay(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{ProcessingDelay: 20 * time.Millisecond})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("delayed", jumio.WorkflowIDIV))
	e.completeAPI(ar)
	eventually(t, "PROCESSED", func() bool {
		info, _ := e.s.Execution(ar.WorkflowExecution.ID)
		return info.Status == jumio.StatusProcessed
	})
}

func TestRetrievableDelay(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{RetrievableDelay: 2 * time.Second, DefaultCallbackURL: rc.srv.URL})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("early-callback", jumio.WorkflowIDIV))
	e.completeAPI(ar)
	if got := rc.next(t).cb.WorkflowExecution.Status; got != jumio.StatusProcessed {
		t.Fatalf("callback = %s", got)
	}
	// The callback came first: status still ACQUIRED, details and steps 404.
	if got := e.status(tok, ar); got != jumio.StatusAcquired {
		t.Fatalf("status right after the callback = %s", got)
	}
	if r := e.do(http.MethodGet, execPath(ar), nil, bearer(tok)); r.status != http.StatusNotFound {
		t.Fatalf("details right after the callback: %d", r.status)
	}
	eventually(t, "details to become retrievable", func() bool {
		return e.do(http.MethodGet, execPath(ar), nil, bearer(tok)).status == http.StatusOK
	})
	if got := e.status(tok, ar); got != jumio.StatusProcessed {
		t.Fatalf("status = %s", got)
	}
}

func TestDeletion(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	a := e.createAccount(tok, accountReq("del-a", jumio.WorkflowIDIV))
	e.completeAPI(a)
	idA := credOf(t, a, jumio.CategoryID)
	b := e.createAccount(tok, accountReq("del-b", jumio.WorkflowIDIV))

	mustOK(t, e.do(http.MethodDelete, execPath(a), nil, bearer(tok)), "delete execution")
	for _, p := range []string{execPath(a), execPath(a) + "/status", execPath(a) + "/steps",
		"/api/v1/accounts/" + a.Account.ID + "/credentials/" + idA.ID + "/parts/FRONT"} {
		if r := e.do(http.MethodGet, p, nil, bearer(tok)); r.status != http.StatusNotFound {
			t.Errorf("GET %s after deletion: %d", p, r.status)
		}
	}
	if r := e.do(http.MethodDelete, execPath(a), nil, bearer(tok)); r.status != http.StatusNotFound {
		t.Errorf("second delete: %d", r.status)
	}
	r := e.do(http.MethodDelete, "/api/v1/accounts/"+b.Account.ID, nil, bearer(tok))
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("delete account: %d %q", r.status, r.body)
	}
	if r := e.do(http.MethodGet, execPath(b)+"/status", nil, bearer(tok)); r.status != http.StatusNotFound {
		t.Errorf("status after account deletion: %d", r.status)
	}
	if r := e.upload(credOf(t, b, jumio.CategoryID), jumio.PartFront, frontPNG()); r.status != http.StatusNotFound {
		t.Errorf("upload after deletion: %d", r.status)
	}
	if info, ok := e.s.Execution(b.WorkflowExecution.ID); !ok || !info.Deleted {
		t.Errorf("execution info after deletion = %+v", info)
	}
	if st := e.s.Stats(); st.Deletions != 2 {
		t.Errorf("Deletions = %d", st.Deletions)
	}
}

func TestWebFlow(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{DefaultCallbackURL: rc.srv.URL, Callbacks: CallbackOptions{Intermediate: true}})
	tok := e.token()
	req := accountReq("web-flow", jumio.WorkflowIDSelfie)
	req.Web = &jumio.WebSettings{SuccessURL: "https://shop.example.com/done", Locale: "de"}
	ar := e.createAccount(tok, req)

	page := e.do(http.MethodGet, ar.Web.Href, nil)
	body := string(page.body)
	if page.status != 200 || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, ar.WorkflowExecution.ID) || !strings.Contains(body, "Finish (pass)") ||
		!strings.Contains(body, "Finish (warning)") || !strings.Contains(body, "Finish (reject)") ||
		strings.Contains(body, "src=\"http") || strings.Contains(body, "href=\"http") {
		t.Fatalf("web page: %d\n%s", page.status, body)
	}
	if got := rc.next(t).cb.WorkflowExecution.Status; got != jumio.StatusAcquisitionStarted {
		t.Fatalf("opening the page sent %s", got)
	}

	// What the page's "Finish (reject)" button does:
	r := e.do(http.MethodPost, "/_sim/executions/"+ar.WorkflowExecution.ID+"/complete", strings.NewReader(`{"decision":"REJECTED"}`))
	mustOK(t, r, "complete")
	var info ExecutionInfo
	r.decode(t, &info)
	if info.Status != jumio.StatusProcessed || info.Channel != jumio.ChannelWeb || info.Decision.Type != jumio.DecisionRejected {
		t.Fatalf("info = %+v", info)
	}
	if got := rc.statuses(t, 2); strings.Join(got, ",") != "ACQUIRED,PROCESSED" {
		t.Fatalf("callbacks = %v", got)
	}
	d := e.details(tok, ar)
	if d.Decision.Type != jumio.DecisionRejected || d.Capabilities.Similarity[0].Decision.Details.Label != "NO_MATCH" {
		t.Errorf("decision = %+v", d.Decision)
	}
	var facemap *jumio.RetrievedCredential
	for i := range d.Credentials {
		if d.Credentials[i].Category == jumio.CategoryFacemap {
			facemap = &d.Credentials[i]
		}
	}
	if facemap == nil || len(facemap.Parts) != 7 || facemap.Parts[0].Classifier != "FACEMAP" || facemap.Parts[0].Href != "" ||
		facemap.Parts[6].Classifier != "LIVENESS_6" || facemap.Parts[6].Href == "" {
		t.Fatalf("facemap credential = %+v", facemap)
	}
	if r := e.do(http.MethodGet, facemap.Parts[1].Href, nil, bearer(tok)); r.status != 200 || r.header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("liveness image: %d", r.status)
	}
	if len(d.Capabilities.Usability) != 3 || len(d.Capabilities.Liveness[0].Credentials) != 2 {
		t.Errorf("capabilities = %+v", d.Capabilities)
	}

	// The link is used up.
	if page := e.do(http.MethodGet, ar.Web.Href, nil); !strings.Contains(string(page.body), "already been completed") {
		t.Errorf("page after completion: %s", page.body)
	}
	if r := e.do(http.MethodGet, "/web/v4/app?authorizationToken=nope", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown link: %d", r.status)
	}
	if err := e.s.CompleteWeb(ar.WorkflowExecution.ID); !errors.Is(err, ErrInvalidState) {
		t.Errorf("second completion: %v", err)
	}
	if err := e.s.CompleteWeb("nope"); !errors.Is(err, ErrUnknownExecution) {
		t.Errorf("unknown execution: %v", err)
	}
	data := e.createAccount(tok, accountReq("data-only", jumio.WorkflowEmailVerification))
	if err := e.s.CompleteWeb(data.WorkflowExecution.ID); !errors.Is(err, ErrInvalidState) {
		t.Errorf("web completion of an API-only workflow: %v", err)
	}
}

func TestAutoCompleteWeb(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{AutoCompleteWeb: 10 * time.Millisecond})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("auto-warn", jumio.WorkflowIDIV))
	eventually(t, "auto completion", func() bool {
		info, _ := e.s.Execution(ar.WorkflowExecution.ID)
		return info.Status == jumio.StatusProcessed
	})
	d := e.details(tok, ar)
	if d.Decision.Type != jumio.DecisionWarning || d.Capabilities.ImageChecks[0].Decision.Details.Label != "REPEATED_FACE" {
		t.Errorf("decision = %+v", d.Decision)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	if r := e.do(http.MethodGet, "/", nil); r.status != 200 || string(r.body) != `{"status":"UP"}` {
		t.Fatalf("health: %d %s", r.status, r.body)
	}
	e.s.SetHealth("DEGRADED", map[string]string{"callback": "DEGRADED"})
	if r := e.do(http.MethodGet, "/", nil); string(r.body) != `{"status":"DEGRADED","details":{"callback":"DEGRADED"}}` {
		t.Fatalf("health: %s", r.body)
	}
	if r := e.do(http.MethodPost, "/", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", r.status)
	}
	if r := e.do(http.MethodGet, "/nowhere", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown path: %d", r.status)
	} else {
		r.problem(t)
	}
}

func TestQuirkOptions(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	rc := newReceiver(t)
	e := setup(t, Options{Now: clock.Now, SweepInterval: -1, TokenTTL: 24 * time.Hour, DefaultCallbackURL: rc.srv.URL,
		Switches: Switches{ExpiredAsRejected: true}})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("quirks", jumio.WorkflowIDIVScreening))
	clock.Advance(time.Hour)
	e.s.Sweep()
	cb := rc.next(t).cb
	wantHref := e.s.URL + "/api/v1/workflow-executions/" + ar.WorkflowExecution.ID
	if cb.WorkflowExecution.Href != wantHref || cb.Account.Href != e.s.URL+"/api/v1/accounts/"+ar.Account.ID {
		t.Errorf("hrefs = %s, %s", cb.WorkflowExecution.Href, cb.Account.Href)
	}
	if r := e.do(http.MethodGet, wantHref, nil, bearer(tok)); r.status != http.StatusNotFound {
		t.Errorf("short href served: %d", r.status)
	}
	d := e.details(tok, ar)
	if d.Decision.Type != jumio.DecisionRejected || d.Decision.Risk.Score != 100 || d.Workflow.Status != jumio.StatusTokenExpired {
		t.Errorf("decision = %+v", d.Decision)
	}
	for _, g := range d.Capabilities.All() {
		if g.Decision.Type != jumio.DecisionNotExecuted {
			t.Errorf("%s = %+v", g.Name, g.Decision)
		}
	}
}
