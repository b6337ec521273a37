package jumiotest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// closeAfterCallbacks waits until the receiver acknowledged n callbacks of
// the execution, then closes the server: no delivery can follow.
func (e *tenv) closeAfterCallbacks(execID string, n int) {
	e.t.Helper()
	eventually(e.t, "callback acknowledgements", func() bool {
		info, _ := e.s.Execution(execID)
		return len(info.CallbacksSent) >= n
	})
	e.s.Close()
}

func TestCallbackShape(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{})
	tok := e.token()
	req := accountReq("cb-shape", jumio.WorkflowIDIVScreening)
	req.CallbackURL = rc.srv.URL + "/hook?tenant=1"
	req.UserReference = "user-77"
	ar := e.createAccount(tok, req)
	e.completeAPI(ar)

	got := rc.next(t)
	if got.header.Get("Content-Type") != "application/json" || got.header.Get("User-Agent") != CallbackUserAgent ||
		got.header.Get("Authorization") != "" {
		t.Errorf("headers = %v", got.header)
	}
	var raw map[string]map[string]any
	var top map[string]any
	_ = json.Unmarshal(got.raw, &top)
	_ = json.Unmarshal(got.raw, &raw)
	if len(top) != 4 || top["userReference"] != "user-77" || top["callbackSentAt"] == nil {
		t.Errorf("callback keys = %s", got.raw)
	}
	we := raw["workflowExecution"]
	if we["definitionKey"] != "10013" || we["status"] != "PROCESSED" || we["id"] != ar.WorkflowExecution.ID ||
		we["href"] != e.s.URL+"/api/v1/workflow-executions/"+ar.WorkflowExecution.ID || len(we) != 4 {
		t.Errorf("workflowExecution = %v", we)
	}
	if acc := raw["account"]; acc["id"] != ar.Account.ID || acc["href"] != e.s.URL+"/api/v1/accounts/"+ar.Account.ID || len(acc) != 2 {
		t.Errorf("account = %v", acc)
	}
	if _, ok := jumio.ParseTimestamp(got.cb.CallbackSentAt); !ok {
		t.Errorf("callbackSentAt = %q", got.cb.CallbackSentAt)
	}

	// Without userReference the key is absent; without any URL nothing is sent.
	otherReq := accountReq("cb-2", jumio.WorkflowIDIV)
	otherReq.CallbackURL = rc.srv.URL
	other := e.createAccount(tok, otherReq)
	e.completeAPI(other)
	if r := rc.next(t); strings.Contains(string(r.raw), "userReference") {
		t.Errorf("userReference present: %s", r.raw)
	}
	silent := e.createAccount(tok, accountReq("cb-none", jumio.WorkflowIDIV))
	e.completeAPI(silent)
	// The receiver hands a callback to the test before it answers: wait
	// for both answers before closing.
	eventually(t, "the first callback's acknowledgement", func() bool {
		info, _ := e.s.Execution(ar.WorkflowExecution.ID)
		return len(info.CallbacksSent) == 1
	})
	e.closeAfterCallbacks(other.WorkflowExecution.ID, 1)
	if len(rc.ch) != 0 {
		t.Errorf("unexpected callback: %s", (<-rc.ch).raw)
	}
	if st := e.s.Stats(); st.CallbacksSent != 2 || st.Requests["callback"] != 2 || st.Responses["callback"]["200"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCallbackOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    CallbackOptions
		answers []int
		want    []string // statuses received by the receiver, in order
		sent    int      // Stats.CallbacksSent
		failed  int
	}{
		{"terminal only by default", CallbackOptions{}, nil, []string{"PROCESSED"}, 1, 0},
		{"intermediate", CallbackOptions{Intermediate: true}, nil, []string{"ACQUISITION_STARTED", "ACQUIRED", "PROCESSED"}, 3, 0},
		{"reorder", CallbackOptions{Intermediate: true, Reorder: true}, nil, []string{"PROCESSED", "ACQUIRED", "ACQUISITION_STARTED"}, 3, 0},
		{"duplicates", CallbackOptions{Duplicates: 2, Delay: 5 * time.Millisecond}, nil, []string{"PROCESSED", "PROCESSED", "PROCESSED"}, 3, 0},
		{"retries after 500", CallbackOptions{Retries: 2}, []int{500, 503}, []string{"PROCESSED", "PROCESSED", "PROCESSED"}, 3, 0},
		{"retries exhausted", CallbackOptions{Retries: 1}, []int{500, 500}, []string{"PROCESSED", "PROCESSED"}, 2, 1},
		{"no retry by default", CallbackOptions{}, []int{500}, []string{"PROCESSED"}, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tt.answers...)
			e := setup(t, Options{Callbacks: tt.opts, DefaultCallbackURL: rc.srv.URL})
			ar := e.createAccount(e.token(), accountReq("cb", jumio.WorkflowIDIV))
			e.completeAPI(ar)
			got := rc.statuses(t, len(tt.want))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("callbacks = %v, want %v", got, tt.want)
			}
			eventually(t, "delivery bookkeeping", func() bool {
				st := e.s.Stats()
				return st.CallbacksSent == tt.sent && st.CallbacksFailed == tt.failed &&
					st.Requests["callback"] == tt.sent
			})
			e.s.Close()
			if len(rc.ch) != 0 {
				t.Errorf("extra callback: %s", (<-rc.ch).raw)
			}
		})
	}
}

func TestCallbackReorderKeepsEventTime(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	rc := newReceiver(t)
	e := setup(t, Options{Now: clock.Now, DefaultCallbackURL: rc.srv.URL, TokenTTL: 24 * time.Hour,
		Callbacks: CallbackOptions{Intermediate: true, Reorder: true}})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("stale", jumio.WorkflowIDIV))
	id := credOf(t, ar, jumio.CategoryID)
	mustOK(t, e.upload(id, jumio.PartFront, frontPNG()), "front")
	clock.Advance(time.Minute)
	e.completeAPI(ar)
	processed, acquired, started := rc.next(t).cb, rc.next(t).cb, rc.next(t).cb
	if processed.WorkflowExecution.Status != "PROCESSED" || acquired.WorkflowExecution.Status != "ACQUIRED" ||
		started.WorkflowExecution.Status != "ACQUISITION_STARTED" {
		t.Fatalf("order = %s %s %s", processed.WorkflowExecution.Status, acquired.WorkflowExecution.Status, started.WorkflowExecution.Status)
	}
	// callbackSentAt is the event's time, so receivers can spot the stale ones.
	if started.CallbackSentAt != jumio.FormatTimestamp(t0) || processed.CallbackSentAt != jumio.FormatTimestamp(t0.Add(time.Minute)) {
		t.Errorf("callbackSentAt: started %s, processed %s", started.CallbackSentAt, processed.CallbackSentAt)
	}
}

func TestCallbackDrops(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{DefaultCallbackURL: rc.srv.URL, Callbacks: CallbackOptions{DropFirst: 1}})
	tok := e.token()
	a := e.createAccount(tok, accountReq("drop-a", jumio.WorkflowIDIV))
	e.completeAPI(a)
	b := e.createAccount(tok, accountReq("drop-b", jumio.WorkflowIDIV))
	e.completeAPI(b)
	if got := rc.next(t).cb.WorkflowExecution.ID; got != b.WorkflowExecution.ID {
		t.Fatalf("received the dropped execution's callback")
	}
	e.closeAfterCallbacks(b.WorkflowExecution.ID, 1)
	if len(rc.ch) != 0 {
		t.Fatal("the dropped callback arrived")
	}
	info, _ := e.s.Execution(a.WorkflowExecution.ID)
	if st := e.s.Stats(); st.CallbacksDropped != 1 || st.CallbacksSent != 1 || info.CallbacksDropped != 1 || len(info.CallbacksSent) != 0 {
		t.Errorf("stats = %+v, info = %+v", st, info)
	}
}

func TestCallbackDropRateIsSeeded(t *testing.T) {
	t.Parallel()
	run := func() []bool {
		e := setup(t, Options{Seed: 42, DefaultCallbackURL: "http://127.0.0.1:1/unused", Callbacks: CallbackOptions{DropRate: 0.5}})
		tok := e.token()
		var dropped []bool
		for range 20 {
			ar := e.createAccount(tok, accountReq("rate", jumio.WorkflowEmailVerification))
			mustOK(t, e.finalize(ar.WorkflowExecution.Credentials[0]), "finalize")
			info, _ := e.s.Execution(ar.WorkflowExecution.ID)
			dropped = append(dropped, info.CallbacksDropped == 1)
		}
		e.s.Close()
		return dropped
	}
	a, b := run(), run()
	n := 0
	for _, d := range a {
		if d {
			n++
		}
	}
	if !slices.Equal(a, b) || n == 0 || n == len(a) {
		t.Errorf("drops not reproducible or degenerate: %v vs %v", a, b)
	}
}

func TestCallbackFaultAndLatency(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{DefaultCallbackURL: rc.srv.URL, Callbacks: CallbackOptions{Retries: 1}})
	e.s.FailNext(RouteCallback, 1, http.StatusServiceUnavailable)
	e.s.SetLatency(RouteCallback, 5*time.Millisecond)
	ar := e.createAccount(e.token(), accountReq("cb-fault", jumio.WorkflowIDIV))
	e.completeAPI(ar)
	if got := rc.next(t).cb.WorkflowExecution.Status; got != "PROCESSED" {
		t.Fatalf("status = %s", got)
	}
	e.closeAfterCallbacks(ar.WorkflowExecution.ID, 1)
	st := e.s.Stats()
	if st.InjectedFaults != 1 || st.CallbacksSent != 1 || st.Requests["callback"] != 2 || st.Responses["callback"]["503"] != 1 || st.CallbacksFailed != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCloseStopsCallbackDelivery(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{DefaultCallbackURL: rc.srv.URL, Callbacks: CallbackOptions{Delay: time.Hour}})
	ar := e.createAccount(e.token(), accountReq("never", jumio.WorkflowIDIV))
	e.completeAPI(ar)
	done := make(chan struct{})
	go func() { e.s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Close did not stop a delayed callback")
	}
	if st := e.s.Stats(); st.CallbacksSent != 0 || len(rc.ch) != 0 {
		t.Errorf("a callback was sent: %+v", st)
	}
}

func TestSetCallbackOptions(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{DefaultCallbackURL: rc.srv.URL})
	e.s.SetCallbackOptions(CallbackOptions{Intermediate: true, DropRate: 7, Retries: -3})
	got := e.s.callbackOptions()
	if got.DropRate != 1 || got.Retries != 0 || got.Timeout != DefaultCallbackTimeout || !got.Intermediate {
		t.Errorf("normalized options = %+v", got)
	}
}
