package jumio_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// setup starts a simulator and a client pointed at it.
func setup(t *testing.T, simOpts jumiotest.Options, opts ...jumio.Option) (*jumio.Client, *jumiotest.Server) {
	t.Helper()
	sim, err := jumiotest.StartServer(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	c, err := jumio.New(sim.Credentials(), append([]jumio.Option{
		jumio.WithBaseURL(sim.URL), jumio.WithUserAgent("kycpipe-test/1.0"),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c, sim
}

func emailAccount(ref string) *jumio.AccountRequest {
	return &jumio.AccountRequest{CustomerInternalReference: ref, WorkflowDefinition: jumio.WorkflowDefinition{Key: jumio.WorkflowEmailVerification}}
}

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	creds := jumio.Credentials{ClientID: "id", ClientSecret: "secret"}
	for name, opts := range map[string][]jumio.Option{
		"relative base": {jumio.WithBaseURL("/jumio")},
		"ftp base":      {jumio.WithBaseURL("ftp://x")},
		"query base":    {jumio.WithBaseURL("https://x/?a=1")},
		"bad region":    {jumio.WithRegion("mars-1")},
		"zero timeout":  {jumio.WithTimeout(0)},
		"empty UA":      {jumio.WithUserAgent("  ")},
		"multiline UA":  {jumio.WithUserAgent("a\r\nX-Evil: 1")},
		"nil client":    {jumio.WithHTTPClient(nil)},
		"nil logger":    {jumio.WithLogger(nil)},
		"nil clock":     {jumio.WithClock(nil)},
		"negative skew": {jumio.WithRefreshSkew(-time.Second)},
		"nil limiter":   {jumio.WithLimiter(nil)},
		"nil observer":  {jumio.WithObserver(nil)},
	} {
		if _, err := jumio.New(creds, opts...); !errors.Is(err, jumio.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := jumio.New(jumio.Credentials{ClientID: "id"}); !errors.Is(err, jumio.ErrInvalidOption) {
		t.Errorf("missing secret: %v", err)
	}
	c, err := jumio.New(creds, jumio.WithRegion("EU"))
	if err != nil || c.Region() != jumio.RegionEMEA {
		t.Errorf("WithRegion(EU): %v %v", c.Region(), err)
	}
	hc := &http.Client{Timeout: 3 * time.Second}
	if _, err := jumio.New(creds, jumio.WithHTTPClient(hc)); err != nil || hc.CheckRedirect != nil {
		t.Errorf("the caller's *http.Client was modified")
	}
}

func TestAccountCalls(t *testing.T) {
	t.Parallel()
	c, sim := setup(t, jumiotest.Options{})
	ctx := t.Context()

	web, err := c.CreateAccount(ctx, &jumio.AccountRequest{CustomerInternalReference: "ref-web", WorkflowDefinition: jumio.WorkflowDefinition{Key: jumio.WorkflowIDSelfie}})
	if err != nil {
		t.Fatal(err)
	}
	if web.Account.ID == "" || web.WorkflowExecution.ID == "" || web.Web == nil || web.Web.Href == "" || web.SDK == nil || web.SDK.Token == "" {
		t.Fatalf("10164 response = %+v", web)
	}
	var categories []string
	for _, cr := range web.WorkflowExecution.Credentials {
		categories = append(categories, cr.Category)
		if cr.Category == jumio.CategoryFacemap && (cr.API != nil || cr.AllowsChannel(jumio.ChannelAPI)) {
			t.Errorf("FACEMAP must not be API-capable: %+v", cr)
		}
	}
	if got := strings.Join(categories, ","); !strings.Contains(got, "ID") || !strings.Contains(got, "SELFIE") || !strings.Contains(got, "FACEMAP") {
		t.Errorf("categories = %s", got)
	}

	data, err := c.CreateAccount(ctx, emailAccount("ref-data"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data.WorkflowExecution.Credentials) != 1 || data.WorkflowExecution.Credentials[0].Category != jumio.CategoryData || data.Web != nil {
		t.Errorf("10066 response = %+v", data)
	}
	if _, ok := data.WorkflowExecution.Credentials[0].API.PartURL(jumio.PartPreparedData); !ok {
		t.Error("no prepared_data part URL")
	}

	upd, err := c.UpdateAccount(ctx, data.Account.ID, emailAccount("ref-data-2"))
	if err != nil {
		t.Fatal(err)
	}
	if upd.Account.ID != data.Account.ID || upd.WorkflowExecution.ID == data.WorkflowExecution.ID {
		t.Errorf("update: account %s exec %s", upd.Account.ID, upd.WorkflowExecution.ID)
	}
	if st := sim.Stats(); st.AccountsCreated != 2 || st.ExecutionsCreated != 3 {
		t.Errorf("accounts=%d executions=%d", st.AccountsCreated, st.ExecutionsCreated)
	}

	// Error paths.
	_, err = c.UpdateAccount(ctx, "00000000-0000-4000-8000-000000000000", emailAccount("ref-x"))
	if !errors.Is(err, jumio.ErrNotFound) || jumio.IsRetryable(err) {
		t.Errorf("update unknown account: %v", err)
	}
	_, err = c.CreateAccount(ctx, &jumio.AccountRequest{CustomerInternalReference: "a<b", WorkflowDefinition: jumio.WorkflowDefinition{Key: "10066"}})
	var apiErr *jumio.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Detail == "" || jumio.IsRetryable(err) {
		t.Errorf("invalid request: %v", err)
	}
	_, err = c.CreateAccount(ctx, &jumio.AccountRequest{CustomerInternalReference: "ref", WorkflowDefinition: jumio.WorkflowDefinition{Key: "99999"}})
	if !errors.Is(err, jumio.ErrBadRequest) {
		t.Errorf("unknown workflow: %v", err)
	}
	if _, err := c.UpdateAccount(ctx, "", emailAccount("x")); !errors.Is(err, jumio.ErrInvalidArgument) {
		t.Errorf("empty account ID: %v", err)
	}
}

// TestVerificationLifecycle runs an API-channel verification end to end:
// every call, then the errors Jumio gives once the transaction is used up.
func TestVerificationLifecycle(t *testing.T) {
	t.Parallel()
	c, sim := setup(t, jumiotest.Options{})
	ctx := t.Context()
	acct, err := c.CreateAccount(ctx, emailAccount("ref-life"))
	if err != nil {
		t.Fatal(err)
	}
	cred := acct.WorkflowExecution.Credentials[0]
	partURL, _ := cred.API.PartURL(jumio.PartPreparedData)

	// A forbidden character is refused by Jumio with 400.
	_, err = c.UploadPreparedData(ctx, partURL, cred.API.Token, &jumio.PreparedData{Email: "a|b@example.com"})
	if !errors.Is(err, jumio.ErrBadRequest) {
		t.Errorf("forbidden character: %v", err)
	}
	// The OAuth token is not the transaction token.
	oauth, _ := c.AccessToken(ctx)
	_, err = c.UploadPreparedData(ctx, partURL, oauth, &jumio.PreparedData{Email: "jane@example.com"})
	if !errors.Is(err, jumio.ErrUnauthorized) {
		t.Errorf("OAuth token on upload: %v", err)
	}
	up, err := c.UploadPreparedData(ctx, partURL, cred.API.Token, &jumio.PreparedData{Email: "jane@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if up.WorkflowExecution.ID != acct.WorkflowExecution.ID || len(up.API.Parts) != 0 {
		t.Errorf("upload response = %+v", up)
	}

	st, err := c.WorkflowStatus(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
	if err != nil || st.WorkflowExecution.Status != jumio.StatusInitiated {
		t.Fatalf("status before finalize = %+v, %v", st, err)
	}
	if _, err := c.Finalize(ctx, cred.API.WorkflowExecution, cred.API.Token); err != nil {
		t.Fatal(err)
	}
	_, err = c.Finalize(ctx, cred.API.WorkflowExecution, cred.API.Token)
	if !errors.Is(err, jumio.ErrForbidden) || jumio.IsRetryable(err) {
		t.Errorf("second finalize: %v (the transaction token is consumed)", err)
	}
	if got := sim.Stats().FinalizesByExecution[acct.WorkflowExecution.ID]; got != 1 {
		t.Errorf("finalizes = %d", got)
	}

	st, err = c.WorkflowStatus(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
	if err != nil || st.WorkflowExecution.Status != jumio.StatusProcessed {
		t.Fatalf("status after finalize = %+v, %v", st, err)
	}
	d, err := c.WorkflowDetails(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Decision.Type != jumio.DecisionPassed || len(d.Capabilities.EmailVerification) != 1 || d.Workflow.CustomerInternalReference != "ref-life" {
		t.Errorf("details = %+v", d)
	}
	steps, err := c.WorkflowSteps(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
	if err != nil || len(steps.Steps) == 0 {
		t.Errorf("steps = %+v, %v", steps, err)
	}

	if err := c.DeleteWorkflowExecution(ctx, acct.Account.ID, acct.WorkflowExecution.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WorkflowDetails(ctx, acct.Account.ID, acct.WorkflowExecution.ID); !errors.Is(err, jumio.ErrNotFound) {
		t.Errorf("details after deletion: %v", err)
	}
	if err := c.DeleteAccount(ctx, acct.Account.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WorkflowStatus(ctx, acct.Account.ID, acct.WorkflowExecution.ID); !errors.Is(err, jumio.ErrNotFound) {
		t.Errorf("status after account deletion: %v", err)
	}
	for name, err := range map[string]error{
		"status":  func() error { _, err := c.WorkflowStatus(ctx, "", "x"); return err }(),
		"details": func() error { _, err := c.WorkflowDetails(ctx, "a", ""); return err }(),
		"steps":   func() error { _, err := c.WorkflowSteps(ctx, "", ""); return err }(),
		"delete":  c.DeleteAccount(ctx, ""),
		"upload":  func() error { _, err := c.UploadPreparedData(ctx, "", "t", &jumio.PreparedData{}); return err }(),
		"final":   func() error { _, err := c.Finalize(ctx, "https://x/y", ""); return err }(),
		"part":    func() error { _, err := c.UploadPart(ctx, "x", "t", "", "", 1, nil); return err }(),
	} {
		if !errors.Is(err, jumio.ErrInvalidArgument) {
			t.Errorf("%s with empty arguments: %v", name, err)
		}
	}
}

func TestTokenSingleFlight(t *testing.T) {
	t.Parallel()
	c, sim := setup(t, jumiotest.Options{Latency: map[jumiotest.Route]time.Duration{jumiotest.RouteToken: 50 * time.Millisecond}})
	var wg sync.WaitGroup
	tokens := make([]string, 200)
	errs := make([]error, 200)
	start := make(chan struct{})
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tokens[i], errs[i] = c.AccessToken(t.Context())
		}()
	}
	close(start)
	wg.Wait()
	for i := range tokens {
		if errs[i] != nil || tokens[i] == "" || tokens[i] != tokens[0] {
			t.Fatalf("goroutine %d: token %q err %v", i, tokens[i], errs[i])
		}
	}
	if n := sim.Stats().TokenRequests; n != 1 {
		t.Errorf("200 goroutines caused %d token requests, want 1", n)
	}
}

// A caller whose context ends stops waiting, without failing the refresh
// for the others.
func TestTokenWaiterCancellation(t *testing.T) {
	t.Parallel()
	c, sim := setup(t, jumiotest.Options{Latency: map[jumiotest.Route]time.Duration{jumiotest.RouteToken: 200 * time.Millisecond}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.AccessToken(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled caller: %v", err)
	}
	tok, err := c.AccessToken(t.Context())
	if err != nil || tok == "" {
		t.Fatalf("other caller: %q %v", tok, err)
	}
	if n := sim.Stats().TokenRequests; n != 1 {
		t.Errorf("token requests = %d, want 1 (the canceled caller's refresh is shared)", n)
	}
}

func TestTokenRefreshBeforeExpiry(t *testing.T) {
	t.Parallel()
	clock := jumiotest.NewClock(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))
	c, sim := setup(t, jumiotest.Options{Now: clock.Now}, jumio.WithClock(clock.Now))
	ctx := t.Context()
	first, err := c.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(54 * time.Minute) // 6 minutes left: still used
	if tok, _ := c.AccessToken(ctx); tok != first || sim.Stats().TokenRequests != 1 {
		t.Fatalf("token refreshed too early (requests=%d)", sim.Stats().TokenRequests)
	}
	clock.Advance(90 * time.Second) // 4.5 minutes left: under the 5-minute skew
	second, err := c.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || sim.Stats().TokenRequests != 2 {
		t.Errorf("no refresh before expiry: same=%v requests=%d", second == first, sim.Stats().TokenRequests)
	}
}

// Jumio may hand back its cached token, with less life left than
// expires_in says; the JWT's exp claim decides when to refresh.
func TestTokenHonoursJWTExpiry(t *testing.T) {
	t.Parallel()
	clock := jumiotest.NewClock(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))
	sim, err := jumiotest.StartServer(jumiotest.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	newClient := func() *jumio.Client {
		c, err := jumio.New(sim.Credentials(), jumio.WithBaseURL(sim.URL), jumio.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := t.Context()
	a := newClient()
	tokA, _ := a.AccessToken(ctx)
	clock.Advance(40 * time.Minute)
	b := newClient() // gets the same token, 20 minutes left, expires_in 3600
	tokB, _ := b.AccessToken(ctx)
	if tokB != tokA {
		t.Fatal("the simulator did not hand back its cached token")
	}
	clock.Advance(16 * time.Minute) // 4 minutes left for the token
	tokB2, _ := b.AccessToken(ctx)
	if tokB2 == tokB {
		t.Error("client kept a token 4 minutes from its exp claim: it trusted expires_in")
	}
}

func TestUnauthorizedRefreshesOnce(t *testing.T) {
	t.Parallel()
	c, sim := setup(t, jumiotest.Options{})
	ctx := t.Context()
	acct, err := c.CreateAccount(ctx, emailAccount("ref-401"))
	if err != nil {
		t.Fatal(err)
	}
	base := sim.Stats().TokenRequests
	sim.FailNext(jumiotest.RouteStatus, 1, http.StatusUnauthorized)
	if _, err := c.WorkflowStatus(ctx, acct.Account.ID, acct.WorkflowExecution.ID); err != nil {
		t.Fatalf("one 401 then success: %v", err)
	}
	if n := sim.Stats().TokenRequests - base; n != 1 {
		t.Errorf("a 401 caused %d token requests, want exactly 1", n)
	}
	base = sim.Stats().TokenRequests
	sim.FailNext(jumiotest.RouteStatus, 2, http.StatusUnauthorized)
	_, err = c.WorkflowStatus(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
	if !errors.Is(err, jumio.ErrUnauthorized) || jumio.IsRetryable(err) {
		t.Errorf("two 401s: %v", err)
	}
	if n := sim.Stats().TokenRequests - base; n != 1 {
		t.Errorf("two 401s caused %d refreshes, want exactly 1 (no loop)", n)
	}
}

func TestBadCredentials(t *testing.T) {
	t.Parallel()
	sim := jumiotest.NewServer(jumiotest.Options{})
	t.Cleanup(sim.Close)
	c, _ := jumio.New(jumio.Credentials{ClientID: "sim-client", ClientSecret: "wrong"}, jumio.WithBaseURL(sim.URL))
	_, err := c.CreateAccount(t.Context(), emailAccount("x"))
	var apiErr *jumio.APIError
	if !errors.As(err, &apiErr) || apiErr.Op != "token" || apiErr.StatusCode != 400 || jumio.IsRetryable(err) {
		t.Fatalf("bad secret: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Error("error mentions the secret")
	}
}

func TestRetryableErrors(t *testing.T) {
	t.Parallel()
	c, sim := setup(t, jumiotest.Options{})
	ctx := t.Context()
	sim.FailNextWith(jumiotest.RouteCreateAccount, 1, jumiotest.Fault{Status: 503, RetryAfter: 7 * time.Second})
	_, err := c.CreateAccount(ctx, emailAccount("ref-503"))
	if !errors.Is(err, jumio.ErrServer) || !jumio.IsRetryable(err) {
		t.Errorf("503: %v", err)
	}
	if d, ok := jumio.RetryAfter(err); !ok || d != 7*time.Second {
		t.Errorf("Retry-After = %v %v", d, ok)
	}
	sim.FailNextWith(jumiotest.RouteCreateAccount, 1, jumiotest.Fault{CloseConnection: true})
	_, err = c.CreateAccount(ctx, emailAccount("ref-conn"))
	var te *jumio.TransportError
	if !errors.As(err, &te) || !jumio.IsRetryable(err) || strings.Contains(err.Error(), sim.URL) {
		t.Errorf("closed connection: %v", err)
	}
	sim.FailNext(jumiotest.RouteCreateAccount, 1, 501)
	if _, err := c.CreateAccount(ctx, emailAccount("ref-501")); jumio.IsRetryable(err) {
		t.Errorf("501 must be terminal: %v", err)
	}
	if n := sim.Stats().AccountsByReference; n["ref-503"]+n["ref-conn"]+n["ref-501"] != 0 {
		t.Errorf("the client retried on its own: %v", n)
	}
	slow, _ := setup(t, jumiotest.Options{Latency: map[jumiotest.Route]time.Duration{jumiotest.RouteCreateAccount: time.Second}}, jumio.WithTimeout(100*time.Millisecond))
	if _, err := slow.CreateAccount(ctx, emailAccount("ref-slow")); !jumio.IsRetryable(err) {
		t.Errorf("timeout: %v", err)
	}
}

func TestRateLimited(t *testing.T) {
	t.Parallel()
	c, _ := setup(t, jumiotest.Options{RateLimits: &jumiotest.RateLimits{AccountPerSecond: 0.001, AccountBurst: 1, RetrievalPerSecond: 100, RetrievalBurst: 100, TokenPerSecond: 100, TokenBurst: 100}})
	ctx := t.Context()
	if _, err := c.CreateAccount(ctx, emailAccount("ref-rl-1")); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateAccount(ctx, emailAccount("ref-rl-2"))
	var apiErr *jumio.APIError
	if !errors.Is(err, jumio.ErrRateLimited) || !jumio.IsRetryable(err) || !errors.As(err, &apiErr) || apiErr.Detail != "Request limit exceeded" {
		t.Errorf("429: %v", err)
	}
}

// limiterFunc adapts a function to jumio.Limiter.
type limiterFunc func(context.Context, jumio.EndpointClass) error

func (f limiterFunc) Wait(ctx context.Context, c jumio.EndpointClass) error { return f(ctx, c) }

func TestLimiterAndObserver(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	classes := map[jumio.EndpointClass]int{}
	var calls []jumio.CallInfo
	lim := limiterFunc(func(_ context.Context, class jumio.EndpointClass) error {
		mu.Lock()
		defer mu.Unlock()
		classes[class]++
		if class == jumio.ClassRetrieval {
			return &jumio.ThrottledError{Class: class, Delay: 3 * time.Second}
		}
		return nil
	})
	obs := func(ci jumio.CallInfo) { mu.Lock(); calls = append(calls, ci); mu.Unlock() }
	c, _ := setup(t, jumiotest.Options{}, jumio.WithLimiter(lim), jumio.WithObserver(obs))
	acct, err := c.CreateAccount(t.Context(), emailAccount("ref-lim"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WorkflowStatus(t.Context(), acct.Account.ID, acct.WorkflowExecution.ID)
	if d, ok := jumio.RetryAfter(err); !errors.Is(err, jumio.ErrThrottled) || !ok || d != 3*time.Second || !jumio.IsRetryable(err) {
		t.Errorf("throttled: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if classes[jumio.ClassToken] != 1 || classes[jumio.ClassAccount] != 1 || classes[jumio.ClassRetrieval] != 1 {
		t.Errorf("limiter saw %v", classes)
	}
	if len(calls) != 2 || calls[0].Op != "token" || calls[1].Op != "create account" || calls[1].StatusCode != 200 || calls[1].Class != jumio.ClassAccount {
		t.Errorf("observer saw %+v", calls)
	}
}

func TestCallbackFromSimulator(t *testing.T) {
	t.Parallel()
	got := make(chan *jumio.Callback, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb, err := jumio.ParseCallback(r.Body)
		if err != nil {
			t.Errorf("simulator callback does not parse: %v", err)
		}
		got <- cb
	}))
	t.Cleanup(recv.Close)
	c, _ := setup(t, jumiotest.Options{})
	ctx := t.Context()
	req := emailAccount("ref-cb")
	req.CallbackURL = recv.URL + "/jumio"
	req.UserReference = "user-cb"
	acct, err := c.CreateAccount(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	cred := acct.WorkflowExecution.Credentials[0]
	u, _ := cred.API.PartURL(jumio.PartPreparedData)
	if _, err := c.UploadPreparedData(ctx, u, cred.API.Token, &jumio.PreparedData{Email: "jane@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finalize(ctx, cred.API.WorkflowExecution, cred.API.Token); err != nil {
		t.Fatal(err)
	}
	select {
	case cb := <-got:
		if cb.WorkflowExecution.ID != acct.WorkflowExecution.ID || cb.Account.ID != acct.Account.ID ||
			cb.WorkflowExecution.Status != jumio.StatusProcessed || cb.UserReference != "user-cb" {
			t.Errorf("callback = %+v", cb)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
}
