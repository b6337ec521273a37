package jumiotest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// ctl calls the control API (no User-Agent, as from curl without one).
func (e *tenv) ctl(method, path, body string) response {
	e.t.Helper()
	var opts []reqOpt
	if body != "" {
		opts = append(opts, header("Content-Type", "application/json"))
	}
	return e.do(method, "/_sim/"+path, strings.NewReader(body), append(opts, header("User-Agent", ""))...)
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{DefaultCallbackURL: rc.srv.URL})
	tok := e.token()

	// faults
	mustOK(t, e.ctl("POST", "faults", `{"route":"create_account","count":2,"status":500,"retryAfter":"2s"}`), "faults")
	for range 2 {
		if r := e.postAccount(tok, accountReq("ctl", jumio.WorkflowIDIV)); r.status != 500 || r.header.Get("Retry-After") != "2" {
			t.Fatalf("injected fault: %d %v", r.status, r.header)
		}
	}
	for _, bad := range []string{`{"route":"nope"}`, `{"route":"details","count":0}`, `{"route":"details","retryAfter":5}`, `{"route":"details","typo":1}`} {
		if r := e.ctl("POST", "faults", bad); r.status != 400 {
			t.Errorf("faults %s: %d", bad, r.status)
		} else {
			r.problem(t)
		}
	}

	// latency
	mustOK(t, e.ctl("POST", "latency", `{"route":"details","latency":"200ms"}`), "latency")
	if got := e.s.latencyFor(RouteDetails); got != 200*time.Millisecond {
		t.Errorf("latency = %v", got)
	}
	mustOK(t, e.ctl("POST", "latency", `{"route":"details","latency":"0s"}`), "latency off")

	// callbacks
	r := e.ctl("POST", "callbacks", `{"delay":"1ms","duplicates":1,"intermediate":true}`)
	mustOK(t, r, "callbacks")
	if !strings.Contains(string(r.body), `"delay":"1ms"`) || !strings.Contains(string(r.body), `"timeout":"5s"`) {
		t.Errorf("callbacks answer = %s", r.body)
	}
	if r := e.ctl("POST", "callbacks", `{"dropRate":2}`); r.status != 400 {
		t.Errorf("invalid callbacks: %d", r.status)
	}
	if r := e.ctl("GET", "callbacks", ""); !strings.Contains(string(r.body), `"duplicates":1`) {
		t.Errorf("GET callbacks = %s", r.body)
	}

	// rate limits
	r = e.ctl("POST", "ratelimits", `{}`)
	mustOK(t, r, "ratelimits")
	if !strings.Contains(string(r.body), `"accountBurst":5`) {
		t.Errorf("default limits = %s", r.body)
	}
	mustOK(t, e.ctl("POST", "ratelimits", `{"tokenPerSecond":0.001,"tokenBurst":1}`), "custom limits")
	e.token()
	if r := e.tokenFor(DefaultClientID, DefaultClientSecret); r.status != 429 {
		t.Errorf("custom token limit: %d", r.status)
	}
	mustOK(t, e.ctl("POST", "ratelimits", `{"enabled":false}`), "limits off")
	e.token()

	// outcomes
	mustOK(t, e.ctl("POST", "outcomes", `{"customerInternalReference":"ctl-web","outcome":{"decision":"WARNING","score":60}}`), "outcomes")
	if r := e.ctl("POST", "outcomes", `{"customerInternalReference":"x","outcome":{"decision":"MAYBE"}}`); r.status != 400 {
		t.Errorf("bad outcome: %d", r.status)
	}

	// executions: start, complete, get
	ar := e.createAccount(tok, accountReq("ctl-web", jumio.WorkflowIDIV))
	id := ar.WorkflowExecution.ID
	r = e.ctl("POST", "executions/"+id+"/start", "")
	mustOK(t, r, "start")
	var info ExecutionInfo
	r.decode(t, &info)
	if !info.Started || info.Status != jumio.StatusInitiated || info.WebHref != ar.Web.Href || info.StartedAt.IsZero() {
		t.Errorf("after start: %+v", info)
	}
	r = e.ctl("POST", "executions/"+id+"/complete", "")
	mustOK(t, r, "complete")
	r.decode(t, &info)
	if info.Status != jumio.StatusProcessed || info.Decision == nil || info.Decision.Type != "WARNING" || info.Decision.Risk.Score != 60 {
		t.Errorf("after complete: %+v", info)
	}
	if r := e.ctl("POST", "executions/"+id+"/complete", `{"decision":"PASSED"}`); r.status != http.StatusConflict {
		t.Errorf("second complete: %d", r.status)
	}
	if r := e.ctl("POST", "executions/nope/start", ""); r.status != http.StatusNotFound {
		t.Errorf("unknown execution: %d", r.status)
	}
	if r := e.ctl("GET", "executions/"+id, ""); r.status != 200 || !strings.Contains(string(r.body), `"channel":"WEB"`) {
		t.Errorf("get execution: %d %s", r.status, r.body)
	}
	var all []ExecutionInfo
	e.ctl("GET", "executions", "").decode(t, &all)
	if len(all) != 1 || all[0].ID != id {
		t.Errorf("executions = %+v", all)
	}
	// 3 callbacks (started, acquired, processed) with one duplicate each
	if got := rc.statuses(t, 6); strings.Join(got, ",") != "ACQUISITION_STARTED,ACQUISITION_STARTED,ACQUIRED,ACQUIRED,PROCESSED,PROCESSED" {
		t.Errorf("callbacks = %v", got)
	}

	// health
	mustOK(t, e.ctl("POST", "health", `{"status":"DOWN","details":{"api":"DOWN"}}`), "health")
	if r := e.do(http.MethodGet, "/", nil); string(r.body) != `{"status":"DOWN","details":{"api":"DOWN"}}` {
		t.Errorf("health = %s", r.body)
	}
	if r := e.ctl("POST", "health", `{"status":"MEH"}`); r.status != 400 {
		t.Errorf("bad health: %d", r.status)
	}

	// sweep, stats, reset
	mustOK(t, e.ctl("POST", "sweep", ""), "sweep")
	var st Stats
	e.ctl("GET", "stats", "").decode(t, &st)
	if st.AccountsCreated != 1 || st.InjectedFaults != 2 || st.RateLimited != 1 || st.ExecutionsByReference["ctl-web"] != 1 {
		t.Errorf("stats = %+v", st)
	}
	mustOK(t, e.ctl("POST", "reset-stats", ""), "reset")
	if st := e.s.Stats(); st.AccountsCreated != 0 || len(st.Requests) != 0 {
		t.Errorf("stats after reset = %+v", st)
	}
}
