package jumiotest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// processedJob runs one prepared-data job to PROCESSED and returns its
// account response.
func (e *tenv) processedJob(tok, ref string) jumio.AccountResponse {
	e.t.Helper()
	ar := e.createAccount(tok, accountReq(ref, jumio.WorkflowPreparedData))
	mustOK(e.t, e.uploadPrepared(credOf(e.t, ar, jumio.CategoryData), &jumio.PreparedData{Email: "a@example.com"}), "prepared data")
	mustOK(e.t, e.finalize(ar.WorkflowExecution.Credentials[0]), "finalize")
	return ar
}

func TestMaxExecutionsForgetsTheOldestEnded(t *testing.T) {
	t.Parallel()
	clock := NewClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	rc := newReceiver(t)
	e := setup(t, Options{Now: clock.Now, SweepInterval: -1, TokenTTL: 24 * time.Hour, DefaultCallbackURL: rc.srv.URL, MaxExecutions: 3})
	tok := e.token()

	var done []jumio.AccountResponse
	for _, ref := range []string{"r1", "r2", "r3", "r4"} {
		done = append(done, e.processedJob(tok, ref))
		rc.next(t) // PROCESSED
	}
	// Not ended: never forgotten, whatever its age.
	open := e.createAccount(tok, accountReq("open", jumio.WorkflowPreparedData))
	// Ended before the others: deleted.
	if r := e.do(http.MethodDelete, "/api/v1/accounts/"+done[1].Account.ID, nil, bearer(tok)); r.status != http.StatusOK {
		t.Fatalf("delete account: %d %s", r.status, r.body)
	}
	eventually(t, "callbacks delivered", func() bool {
		e.s.mu.Lock()
		defer e.s.mu.Unlock()
		for _, x := range e.s.execs {
			if x.cbRunning || len(x.cbQueue) > 0 {
				return false
			}
		}
		return true
	})

	e.s.Sweep()

	// Five executions, three kept: the two that ended first (r1, then r2)
	// are gone; r2's deletion came later, but it ended when processed.
	for i, ar := range done {
		_, kept := e.s.Execution(ar.WorkflowExecution.ID)
		if want := i >= 2; kept != want {
			t.Errorf("%s kept = %v, want %v", ar.WorkflowExecution.ID, kept, want)
		}
	}
	if _, kept := e.s.Execution(open.WorkflowExecution.ID); !kept {
		t.Error("an INITIATED execution was forgotten")
	}
	gone := done[0]
	if r := e.do(http.MethodGet, execPath(gone), nil, bearer(tok)); r.status != http.StatusNotFound {
		t.Errorf("details of a forgotten execution: %d, want 404", r.status)
	}
	if r := e.do(http.MethodGet, execPath(gone)+"/status", nil, bearer(tok)); r.status != http.StatusNotFound {
		t.Errorf("status of a forgotten execution: %d, want 404", r.status)
	}
	if r := e.finalize(gone.WorkflowExecution.Credentials[0]); r.status < 400 || r.status >= 500 {
		t.Errorf("finalize with a forgotten execution's token: %d, want a 4xx", r.status)
	}
	// The account went with its only execution; a kept one's account stays.
	e.s.mu.Lock()
	_, acctKept := e.s.accounts[gone.Account.ID]
	_, keptAcct := e.s.accounts[done[3].Account.ID]
	_, txKept := e.s.txTokens[gone.WorkflowExecution.Credentials[0].API.Token]
	owners := len(e.s.credOwner)
	e.s.mu.Unlock()
	if acctKept || !keptAcct {
		t.Errorf("accounts kept: forgotten one %v (want false), kept one %v (want true)", acctKept, keptAcct)
	}
	if txKept {
		t.Error("a forgotten execution's transaction token still maps to it")
	}
	if owners != 3 {
		t.Errorf("credential owners = %d, want 3 (one credential per kept execution)", owners)
	}

	st := e.s.Stats()
	if st.ExecutionsForgotten != 2 {
		t.Errorf("ExecutionsForgotten = %d, want 2", st.ExecutionsForgotten)
	}
	if _, ok := st.FinalizesByExecution[gone.WorkflowExecution.ID]; ok {
		t.Error("a forgotten execution's finalize counter is kept")
	}
	if st.FinalizesByExecution[done[3].WorkflowExecution.ID] != 1 {
		t.Error("a kept execution's finalize counter is lost")
	}

	// The open execution expires: it ends, after r3 and r4. A new
	// execution then takes the simulator over its bound again: r3, the
	// oldest ended, goes; the expired one stays.
	clock.Advance(25 * time.Hour)
	e.s.Sweep()
	rc.next(t) // TOKEN_EXPIRED
	eventually(t, "the expiry's callback delivered", func() bool {
		e.s.mu.Lock()
		defer e.s.mu.Unlock()
		x := e.s.execs[open.WorkflowExecution.ID]
		return x != nil && !x.cbRunning && len(x.cbQueue) == 0
	})
	e.createAccount(e.token(), accountReq("later", jumio.WorkflowPreparedData))
	e.s.Sweep()
	if _, kept := e.s.Execution(done[2].WorkflowExecution.ID); kept {
		t.Error("r3 kept after a fourth execution was created")
	}
	for _, ar := range []jumio.AccountResponse{done[3], open} {
		if _, kept := e.s.Execution(ar.WorkflowExecution.ID); !kept {
			t.Errorf("%s forgotten: it ended after r3", ar.WorkflowExecution.ID)
		}
	}
	if info, _ := e.s.Execution(open.WorkflowExecution.ID); info.Status != jumio.StatusTokenExpired {
		t.Errorf("the expired execution's status = %s", info.Status)
	}
}

func TestMaxExecutionsKeepsExecutionsWithCallbacksPending(t *testing.T) {
	t.Parallel()
	// A callback endpoint that never answers in time: the first
	// execution's callback stays in delivery.
	blocked, release := newBlockingReceiver(t)
	e := setup(t, Options{SweepInterval: -1, DefaultCallbackURL: blocked, MaxExecutions: 1,
		Callbacks: CallbackOptions{Timeout: time.Minute}})
	tok := e.token()
	first := e.processedJob(tok, "slow")
	second := e.createAccount(tok, accountReq("second", jumio.WorkflowPreparedData))
	e.s.Sweep()
	if _, kept := e.s.Execution(first.WorkflowExecution.ID); !kept {
		t.Fatal("an execution whose callback is being delivered was forgotten")
	}
	release()
	eventually(t, "forgotten once its callback is delivered", func() bool {
		e.s.Sweep()
		_, kept := e.s.Execution(first.WorkflowExecution.ID)
		return !kept
	})
	if _, kept := e.s.Execution(second.WorkflowExecution.ID); !kept {
		t.Error("the INITIATED execution was forgotten")
	}
}

func TestMaxExecutionsMustNotBeNegative(t *testing.T) {
	t.Parallel()
	if _, err := StartServer(Options{MaxExecutions: -1}); err == nil {
		t.Fatal("MaxExecutions -1 accepted")
	}
}

// newBlockingReceiver is a callback endpoint that answers 200 once
// release is called (at the latest at cleanup, before the server closes).
func newBlockingReceiver(t *testing.T) (url string, release func()) {
	t.Helper()
	hold := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-hold
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release)
	return srv.URL, release
}

// BenchmarkSweep is one sweep of a simulator that has run 100,000 jobs and
// has 100 executions still INITIATED (each iteration holds the lock every
// request needs):
//
//	go test -run '^$' -bench BenchmarkSweep ./pkg/jumio/jumiotest
func BenchmarkSweep(b *testing.B) {
	s := NewUnstartedServer(Options{SweepInterval: -1})
	defer s.Close()
	now := s.now()
	s.mu.Lock()
	for i := range 100_000 {
		id := fmt.Sprintf("ended-%06d", i)
		s.execs[id] = &execution{id: id, status: jumio.StatusProcessed, createdAt: now, completedAt: now}
	}
	for i := range 100 {
		id := fmt.Sprintf("open-%03d", i)
		e := &execution{id: id, status: jumio.StatusInitiated, createdAt: now, tokenDeadline: now.Add(time.Hour), lastActivity: now}
		s.execs[id], s.initiated[id] = e, e
	}
	s.mu.Unlock()
	s.Sweep()
	for b.Loop() {
		s.Sweep()
	}
}
