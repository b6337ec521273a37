package jumiotest

import (
	"slices"

	"go.uber.org/zap"
)

// The simulator keeps every workflow execution it created, so that tests
// can inspect them (Server.Execution, GET /_sim/executions) and retrieve
// them at any time. A long load test or demo (hundreds of thousands of
// jobs) would then grow without bound: Options.MaxExecutions bounds what
// it keeps. Beyond the bound, the sweeper forgets the executions that
// ended longest ago (PROCESSED, expired or deleted) as Jumio's retention
// deletes data: every route then answers for them as for an ID never
// issued (404), their transaction tokens are refused, their per-execution
// counters (Stats.UploadsByExecution, FinalizesByExecution) are dropped,
// and an account goes with its last execution. Executions that have not
// ended, and ended ones whose callbacks are still being delivered, are
// kept.

// endedLocked notes that e ended (PROCESSED, expired or deleted): with
// Options.MaxExecutions, it joins the queue of executions the sweeper may
// forget. s.mu must be held.
func (s *Server) endedLocked(e *execution) {
	if s.opts.MaxExecutions <= 0 || e.ended {
		return
	}
	e.ended = true
	s.finished = append(s.finished, e.id)
}

// forgetLocked forgets the executions that ended longest ago while the
// simulator keeps more than Options.MaxExecutions. It stops at one whose
// callbacks are still queued or being delivered (it is forgotten by a
// later sweep). s.mu must be held.
func (s *Server) forgetLocked() {
	limit := s.opts.MaxExecutions
	if limit <= 0 {
		return
	}
	n := 0
	for len(s.execs) > limit && n < len(s.finished) {
		e := s.execs[s.finished[n]]
		if e != nil && (e.cbRunning || len(e.cbQueue) > 0 || len(e.cbHeld) > 0) {
			break
		}
		if e != nil {
			s.forgetExecutionLocked(e)
		}
		n++
	}
	if n > 0 {
		// Reuse the backing array rather than let it creep forward.
		s.finished = slices.Delete(s.finished, 0, n)
		s.log.Debug("workflow executions forgotten", zap.Int("count", n), zap.Int("kept", len(s.execs)))
	}
}

// forgetExecutionLocked removes e and everything that finds it. s.mu must
// be held.
func (s *Server) forgetExecutionLocked(e *execution) {
	delete(s.execs, e.id)
	delete(s.initiated, e.id)
	delete(s.txTokens, e.txToken)
	if e.webToken != "" && s.webTokens[e.webToken] == e.id {
		delete(s.webTokens, e.webToken)
	}
	for _, c := range e.creds {
		delete(s.credOwner, c.id)
	}
	if acc := s.accounts[e.accountID]; acc != nil {
		acc.execIDs = slices.DeleteFunc(acc.execIDs, func(id string) bool { return id == e.id })
		if len(acc.execIDs) == 0 {
			delete(s.accounts, acc.id)
		}
	}
	s.stat(func(st *Stats) {
		st.ExecutionsForgotten++
		delete(st.UploadsByExecution, e.id)
		delete(st.FinalizesByExecution, e.id)
	})
}
