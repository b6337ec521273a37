package jumiotest

import (
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// lookupLocked finds the execution named by the path, applying the clock.
func (s *Server) lookupLocked(r *http.Request) *execution {
	e := s.execs[r.PathValue("executionId")]
	if e == nil || e.deleted || e.accountID != r.PathValue("accountId") || e.region != s.regionOf(r) {
		return nil
	}
	s.applyClockLocked(e, s.now())
	return e
}

const detailNoExecution = "The workflow execution does not exist"

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeOAuth(w, r, permRetrieve) {
		return
	}
	s.mu.Lock()
	e := s.lookupLocked(r)
	if e == nil {
		s.mu.Unlock()
		writeProblem(w, http.StatusNotFound, detailNoExecution)
		return
	}
	resp := s.statusResponseLocked(e)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleDetails(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeOAuth(w, r, permRetrieve) {
		return
	}
	s.mu.Lock()
	e := s.lookupLocked(r)
	if e == nil || !e.retrievable() {
		s.mu.Unlock()
		writeProblem(w, http.StatusNotFound, detailNoExecution)
		return
	}
	// MarshalJSON directly: json.Marshal would re-scan (compact) its output.
	b, err := s.detailsLocked(e).MarshalJSON()
	s.mu.Unlock()
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "The details could not be encoded")
		return
	}
	writeRawJSON(w, http.StatusOK, b)
}

func (s *Server) handleSteps(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeOAuth(w, r, permRetrieve) {
		return
	}
	s.mu.Lock()
	e := s.lookupLocked(r)
	if e == nil || !e.retrievable() {
		s.mu.Unlock()
		writeProblem(w, http.StatusNotFound, detailNoExecution)
		return
	}
	steps := stepsOf(e)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, steps)
}

// handleGetPart serves an acquired part's bytes with its content type.
func (s *Server) handleGetPart(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeOAuth(w, r, permRetrieve) {
		return
	}
	credID := r.PathValue("credentialId")
	classifier := strings.ToUpper(r.PathValue("classifier"))
	s.mu.Lock()
	var data []byte
	var ctype string
	if e := s.execs[s.credOwner[credID]]; e != nil && !e.deleted && e.accountID == r.PathValue("accountId") && e.region == s.regionOf(r) {
		if p := e.credential(credID).parts[classifier]; p != nil && p.data != nil {
			data, ctype = p.data, p.contentType
		}
	}
	s.mu.Unlock()
	if data == nil {
		writeProblem(w, http.StatusNotFound, "The part does not exist")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// handleDeleteAccount deletes an account and all its executions.
func (s *Server) handleDeleteAccount(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeOAuth(w, r, permDelete) {
		return
	}
	s.mu.Lock()
	acc := s.accounts[r.PathValue("accountId")]
	if acc == nil || acc.deleted || acc.region != s.regionOf(r) {
		s.mu.Unlock()
		writeProblem(w, http.StatusNotFound, "The account does not exist")
		return
	}
	acc.deleted = true
	for _, id := range acc.execIDs {
		s.deleteExecutionLocked(s.execs[id])
	}
	s.stat(func(st *Stats) { st.Deletions++ })
	s.log.Info("account deleted", zap.String("account_id", acc.id))
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleDeleteExecution(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeOAuth(w, r, permDelete) {
		return
	}
	s.mu.Lock()
	e := s.lookupLocked(r)
	if e == nil {
		s.mu.Unlock()
		writeProblem(w, http.StatusNotFound, detailNoExecution)
		return
	}
	s.deleteExecutionLocked(e)
	s.stat(func(st *Stats) { st.Deletions++ })
	s.log.Info("workflow execution deleted", zap.String("workflow_execution_id", e.id))
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// deleteExecutionLocked wipes an execution's data; a tombstone remains for
// [Server.Execution].
func (s *Server) deleteExecutionLocked(e *execution) {
	if e == nil || e.deleted {
		return
	}
	e.deleted = true
	e.consumed = true
	e.preparedData = nil
	e.result = nil
	e.cbHeld = nil
	for _, c := range e.creds {
		clear(c.parts)
	}
	delete(s.webTokens, e.webToken)
	s.endedLocked(e)
}
