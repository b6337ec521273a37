package jumiotest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The call log records, per customerInternalReference, when each Jumio
// call about that reference arrived: the account calls (the reference is
// read from the request body) and every call naming an account in its path
// (uploads, finalize, retrieval, deletion; the reference is the account's
// first execution's). Token and health requests name no reference and are
// not logged. It answers questions the counters cannot, such as "did any
// call for this job arrive after its erasure was accepted?" (the soak's
// check, internal/soak). Off by default (it grows with every call):
// Options.RecordCalls, [Server.SetCallLog], or POST /_sim/call-log.

// Call is one request to a Jumio route, as the call log records it.
type Call struct {
	// At is when the request arrived (real time, before any injected
	// latency or fault).
	At    time.Time `json:"at"`
	Route Route     `json:"route"`
	// Status is the answer's status code; 0 when there was none (the
	// client gave up during injected latency, or a fault closed the
	// connection).
	Status      int    `json:"status"`
	AccountID   string `json:"accountId,omitempty"`
	ExecutionID string `json:"executionId,omitempty"`
}

// CallLog is the call log's content.
type CallLog struct {
	Enabled bool `json:"enabled"`
	// ByReference lists the calls about each customerInternalReference in
	// arrival order.
	ByReference map[string][]Call `json:"byReference"`
	// Unattributed counts logged routes whose reference could not be told
	// (an account unknown to the simulator, a body without a reference).
	Unattributed int `json:"unattributed"`
}

type callLog struct {
	mu           sync.Mutex
	enabled      bool
	byRef        map[string][]Call
	unattributed int
}

// SetCallLog turns the call log on or off. Turning it off keeps what was
// logged; turning it on again appends.
func (s *Server) SetCallLog(enabled bool) {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	s.calls.enabled = enabled
	if s.calls.byRef == nil {
		s.calls.byRef = map[string][]Call{}
	}
}

// CallLog returns a copy of the call log.
func (s *Server) CallLog() CallLog {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	out := CallLog{Enabled: s.calls.enabled, ByReference: make(map[string][]Call, len(s.calls.byRef)), Unattributed: s.calls.unattributed}
	for ref, calls := range s.calls.byRef {
		out.ByReference[ref] = slices.Clone(calls)
	}
	return out
}

func (s *Server) callLogOn() bool {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	return s.calls.enabled
}

// logCall records the arrival of a request on route and returns the
// function that records its answer's status (a no-op when the call log is
// off or the route names no reference).
func (s *Server) logCall(r *http.Request, route Route) func(status int) {
	if route == RouteToken || route == RouteHealth || route == RouteCallback || !s.callLogOn() {
		return func(int) {}
	}
	c := Call{At: time.Now(), Route: route, AccountID: r.PathValue("accountId"), ExecutionID: r.PathValue("executionId")}
	var ref string
	switch route {
	case RouteCreateAccount, RouteUpdateAccount:
		ref = peekReference(r)
	}
	if ref == "" && c.AccountID != "" {
		ref = s.referenceOfAccount(c.AccountID)
	}
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	if ref == "" {
		s.calls.unattributed++
		return func(int) {}
	}
	i := len(s.calls.byRef[ref])
	s.calls.byRef[ref] = append(s.calls.byRef[ref], c)
	return func(status int) {
		s.calls.mu.Lock()
		defer s.calls.mu.Unlock()
		if calls := s.calls.byRef[ref]; i < len(calls) {
			calls[i].Status = status
		}
	}
}

// referenceOfAccount is the customerInternalReference of the account's
// first execution.
func (s *Server) referenceOfAccount(accountID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.accounts[accountID]
	if acc == nil || len(acc.execIDs) == 0 {
		return ""
	}
	if e := s.execs[acc.execIDs[0]]; e != nil {
		return e.customerRef
	}
	return ""
}

// peekReference reads the customerInternalReference of an account request
// body and puts the body back for the handler.
func peekReference(r *http.Request) string {
	if r.Body == nil {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
	if err != nil {
		return ""
	}
	var v struct {
		CustomerInternalReference string `json:"customerInternalReference"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.CustomerInternalReference
}

// ctlCallLog turns the call log on or off: {"enabled": true}.
func (s *Server) ctlCallLog(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Enabled *bool `json:"enabled"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	if req.Enabled == nil {
		writeProblem(w, http.StatusBadRequest, "enabled is required")
		return
	}
	s.SetCallLog(*req.Enabled)
	log := s.CallLog()
	writeJSON(w, http.StatusOK, map[string]any{"enabled": log.Enabled, "references": len(log.ByReference)})
}
