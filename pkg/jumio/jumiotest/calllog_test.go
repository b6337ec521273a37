package jumiotest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// The call log attributes every call about a job to its reference, in
// arrival order with its answer, including a faulted account call (read
// from its body) and the deletion; tokens are not logged.
func TestCallLog(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{RecordCalls: true})
	tok := e.token()
	e.s.FailNext(RouteCreateAccount, 1, http.StatusServiceUnavailable)
	before := time.Now()
	if r := e.postAccount(tok, accountReq("ref-a", jumio.WorkflowIDIV)); r.status != http.StatusServiceUnavailable {
		t.Fatalf("faulted create: %d", r.status)
	}
	ar := e.createAccount(tok, accountReq("ref-a", jumio.WorkflowIDIV))
	e.completeAPI(ar)
	other := e.createAccount(tok, accountReq("ref-b", jumio.WorkflowIDIV))
	if r := e.do(http.MethodDelete, "/api/v1/accounts/"+ar.Account.ID, nil, bearer(tok)); r.status != http.StatusOK && r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}

	log := e.s.CallLog()
	if !log.Enabled || log.Unattributed != 0 {
		t.Fatalf("log enabled %v, unattributed %d", log.Enabled, log.Unattributed)
	}
	var routes []string
	for i, c := range log.ByReference["ref-a"] {
		routes = append(routes, string(c.Route)+":"+itoa(c.Status))
		if c.At.Before(before) || (i > 0 && c.At.Before(log.ByReference["ref-a"][i-1].At)) {
			t.Errorf("call %d at %s: not in arrival order after %s", i, c.At, before)
		}
		if c.Route != RouteCreateAccount && c.AccountID != ar.Account.ID {
			t.Errorf("call %d (%s) names account %q, want %s", i, c.Route, c.AccountID, ar.Account.ID)
		}
	}
	want := "create_account:503 create_account:200 upload_part:200 upload_part:200 upload_part:200 finalize:200 delete_account:"
	if got := strings.Join(routes, " "); !strings.HasPrefix(got, want) {
		t.Errorf("ref-a calls = %s, want %s…", got, want)
	}
	if b := log.ByReference["ref-b"]; len(b) != 1 || b[0].Route != RouteCreateAccount || other.Account.ID == "" {
		t.Errorf("ref-b calls = %+v", b)
	}
	for _, calls := range log.ByReference {
		for _, c := range calls {
			if c.Route == RouteToken {
				t.Errorf("a token request was logged")
			}
		}
	}
}

// Off by default; the control API turns it on and serves it.
func TestCallLogControl(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	e.createAccount(tok, accountReq("before", jumio.WorkflowIDIV))
	if r := e.do(http.MethodPost, "/_sim/call-log", strings.NewReader(`{"enabled":true}`)); r.status != http.StatusOK {
		t.Fatalf("POST /_sim/call-log: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/_sim/call-log", strings.NewReader(`{}`)); r.status != http.StatusBadRequest {
		t.Errorf("POST /_sim/call-log without enabled: %d", r.status)
	}
	e.createAccount(tok, accountReq("after", jumio.WorkflowIDIV))
	r := e.do(http.MethodGet, "/_sim/call-log", nil)
	var log CallLog
	r.decode(t, &log)
	if !log.Enabled || len(log.ByReference["after"]) != 1 || len(log.ByReference["before"]) != 0 {
		b, _ := json.Marshal(log)
		t.Errorf("call log = %s", b)
	}
}
