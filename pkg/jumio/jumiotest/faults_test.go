package jumiotest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func TestFailNext(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	e.s.FailNext(RouteCreateAccount, 2, http.StatusServiceUnavailable)
	e.s.FailNextWith(RouteCreateAccount, 1, Fault{Status: http.StatusTooManyRequests, RetryAfter: 1500 * time.Millisecond, Body: `{"message":"slow down"}`})
	e.s.FailNextWith(RouteCreateAccount, 1, Fault{Status: http.StatusBadGateway, Body: "<html>bad gateway</html>"})

	for i := range 2 {
		r := e.postAccount(tok, accountReq("faulty", jumio.WorkflowIDIV))
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %d", i, r.status)
		}
		if p := r.problem(t); p.Detail == "" {
			t.Error("fault without detail")
		}
	}
	r := e.postAccount(tok, accountReq("faulty", jumio.WorkflowIDIV))
	if r.status != 429 || r.header.Get("Retry-After") != "2" || string(r.body) != `{"message":"slow down"}` || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("custom fault: %d %v %s", r.status, r.header, r.body)
	}
	r = e.postAccount(tok, accountReq("faulty", jumio.WorkflowIDIV))
	if r.status != 502 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("raw fault: %d %v", r.status, r.header)
	}
	mustOK(t, e.postAccount(tok, accountReq("faulty", jumio.WorkflowIDIV)), "after the faults")

	// Faults come before authentication.
	e.s.FailNext(RouteStatus, 1, http.StatusInternalServerError)
	if r := e.do(http.MethodGet, "/api/v1/accounts/a/workflow-executions/b/status", nil); r.status != 500 {
		t.Fatalf("fault before auth: %d", r.status)
	}
	st := e.s.Stats()
	if st.InjectedFaults != 5 || st.AccountsCreated != 1 || st.Requests["create_account"] != 5 ||
		st.Responses["create_account"]["503"] != 2 || st.Responses["create_account"]["200"] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFaultCloseConnection(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	e.s.FailNextWith(RouteCreateAccount, 1, Fault{CloseConnection: true})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.s.URL+"/api/v1/accounts",
		jsonBody(t, accountReq("closed", jumio.WorkflowIDIV)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a transport error", resp.StatusCode)
	}
	mustOK(t, e.postAccount(tok, accountReq("closed", jumio.WorkflowIDIV)), "next request")
	if st := e.s.Stats(); st.InjectedFaults != 1 || st.Responses["create_account"]["error"] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{Latency: map[Route]time.Duration{RouteHealth: 20 * time.Millisecond}})
	start := time.Now()
	mustOK(t, e.do(http.MethodGet, "/", nil), "health")
	if time.Since(start) < 20*time.Millisecond {
		t.Error("latency not applied")
	}

	// The wait ends when the client gives up.
	e.s.SetLatency(RouteDetails, time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.s.URL+"/api/v1/accounts/a/workflow-executions/b", nil)
	if _, err := e.hc.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	e.s.SetLatency(RouteHealth, 0)
	e.s.SetLatency(RouteDetails, 0)
	mustOK(t, e.do(http.MethodGet, "/", nil), "health")
	if e.s.latencyFor(RouteHealth) != 0 {
		t.Error("latency not removed")
	}
}

func TestLatencyEndsOnClose(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	e.s.SetLatency(RouteHealth, time.Hour)
	result := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, e.s.URL+"/", nil)
		resp, err := e.hc.Do(req)
		if err != nil {
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	eventually(t, "the request to arrive", func() bool { return e.s.Stats().Requests["health"] == 1 })
	e.s.Close()
	select {
	case code := <-result:
		if code != http.StatusServiceUnavailable && code != 0 {
			t.Errorf("status = %d", code)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close left a request waiting")
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	// Jumio's documented limits; the test keeps their bursts and slows
	// their refill, which runs in real time: on a loaded machine 100 ms
	// between two token calls would refill one at 10/s.
	limits := DefaultRateLimits()
	if *limits != (RateLimits{AccountPerSecond: 1, AccountBurst: 5, RetrievalPerSecond: 15, RetrievalBurst: 15, TokenPerSecond: 10, TokenBurst: 10}) {
		t.Fatalf("default rate limits %+v", *limits)
	}
	limits.AccountPerSecond, limits.RetrievalPerSecond, limits.TokenPerSecond = 0.001, 0.001, 0.001
	e := setup(t, Options{RateLimits: limits, Clients: []ClientCredentials{{ID: "a", Secret: "a"}, {ID: "b", Secret: "b"}}})

	// token: 10 per tenant, then 429 with exactly Jumio's body
	var tr tokenResponse
	for i := range 10 {
		r := e.tokenFor("a", "a")
		mustOK(t, r, fmt.Sprintf("token call %d", i+1))
		r.decode(t, &tr)
	}
	r := e.tokenFor("a", "a")
	if r.status != 429 || string(r.body) != rateLimitBody || r.header.Get("Content-Type") != "application/json" || r.header.Get("Retry-After") != "" {
		t.Fatalf("11th token call: %d %q %v", r.status, r.body, r.header)
	}
	// The limit is the tenant's, not the client's (jumio-api.md §7).
	if r := e.tokenFor("b", "b"); r.status != 429 {
		t.Fatalf("client b of the same tenant: %d", r.status)
	}

	// accounts: burst 5 for the tenant
	for range 5 {
		mustOK(t, e.postAccount(tr.AccessToken, accountReq("rl", jumio.WorkflowEmailVerification)), "account")
	}
	if r := e.postAccount(tr.AccessToken, accountReq("rl", jumio.WorkflowEmailVerification)); r.status != 429 || string(r.body) != rateLimitBody {
		t.Fatalf("6th account: %d %s", r.status, r.body)
	}
	// retrieval: burst 15
	for range 15 {
		e.do(http.MethodGet, "/api/v1/accounts/x/workflow-executions/y/status", nil, bearer(tr.AccessToken))
	}
	if r := e.do(http.MethodGet, "/api/v1/accounts/x/workflow-executions/y", nil, bearer(tr.AccessToken)); r.status != 429 {
		t.Fatalf("16th retrieval: %d", r.status)
	}
	st := e.s.Stats()
	if st.RateLimited != 4 || st.RateLimitedByRoute["token"] != 2 || st.RateLimitedByRoute["create_account"] != 1 ||
		st.RateLimitedByRoute["details"] != 1 || st.AccountsCreated != 5 || st.TokenRequests != 12 {
		t.Errorf("stats = %+v", st)
	}

	e.s.SetRateLimits(&RateLimits{AccountPerSecond: 0.001, AccountBurst: 1, RetryAfter: true})
	mustOK(t, e.postAccount(tr.AccessToken, accountReq("rl", jumio.WorkflowEmailVerification)), "account after reset")
	r = e.postAccount(tr.AccessToken, accountReq("rl", jumio.WorkflowEmailVerification))
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("Retry-After: %d %v", r.status, r.header)
	}
	for range 20 { // retrieval is unlimited in these limits
		if r := e.do(http.MethodGet, "/", nil); r.status != 200 {
			t.Fatal("health limited")
		}
	}
	e.s.SetRateLimits(nil)
	mustOK(t, e.postAccount(tr.AccessToken, accountReq("rl", jumio.WorkflowEmailVerification)), "limits off")
}

func TestRateLimitsOffByDefault(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	for range 20 {
		mustOK(t, e.postAccount(tok, accountReq("many", jumio.WorkflowEmailVerification)), "account")
	}
	if st := e.s.Stats(); st.RateLimited != 0 || st.AccountsByReference["many"] != 20 {
		t.Errorf("stats = %+v", st)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tests := []struct {
		method, path, allow string
	}{
		{"GET", "/oauth2/token", "POST"},
		{"GET", "/api/v1/accounts", "POST"},
		{"GET", "/api/v1/accounts/a", "PUT, DELETE"},
		{"POST", "/api/v1/accounts/a/workflow-executions/b", "GET, DELETE"},
		{"DELETE", "/link/api/v1/accounts/a/workflow-executions/b/credentials/c/parts/FRONT", "POST, PUT"},
		{"POST", "/link/api/v1/accounts/a/workflow-executions/b", "PUT"},
	}
	for _, tt := range tests {
		r := e.do(tt.method, tt.path, nil)
		if r.status != 405 || r.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q", tt.method, tt.path, r.status, r.header.Get("Allow"))
		} else {
			r.problem(t)
		}
	}
}
