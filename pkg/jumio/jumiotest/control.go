package jumiotest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// The control API, under /_sim/, drives the simulator from another
// process (cmd/jumiosim users, out-of-process tests). JSON in and out;
// durations are Go duration strings; errors use Jumio's error shape.
// Unknown JSON fields are rejected, to catch typos.

func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /_sim/reset-stats", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /_sim/call-log", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.CallLog())
	})
	mux.HandleFunc("POST /_sim/call-log", s.ctlCallLog)
	mux.HandleFunc("POST /_sim/faults", s.ctlFaults)
	mux.HandleFunc("POST /_sim/latency", s.ctlLatency)
	mux.HandleFunc("GET /_sim/callbacks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.callbackOptions())
	})
	mux.HandleFunc("POST /_sim/callbacks", s.ctlCallbacks)
	mux.HandleFunc("POST /_sim/ratelimits", s.ctlRateLimits)
	mux.HandleFunc("GET /_sim/switches", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.switches())
	})
	mux.HandleFunc("POST /_sim/switches", s.ctlSwitches)
	mux.HandleFunc("GET /_sim/clients", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Clients())
	})
	mux.HandleFunc("POST /_sim/clients/{id}", s.ctlClient)
	mux.HandleFunc("POST /_sim/outcomes", s.ctlOutcomes)
	mux.HandleFunc("POST /_sim/health", s.ctlHealth)
	mux.HandleFunc("POST /_sim/sweep", func(w http.ResponseWriter, r *http.Request) {
		s.Sweep()
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("GET /_sim/executions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.executions())
	})
	mux.HandleFunc("GET /_sim/executions/{id}", s.ctlExecution)
	mux.HandleFunc("POST /_sim/executions/{id}/complete", s.ctlComplete)
	mux.HandleFunc("POST /_sim/executions/{id}/start", s.ctlStart)
}

// decodeControl decodes an optional JSON body strictly. An empty body
// leaves v unchanged.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, "The request body is too large")
		return false
	}
	if strings.TrimSpace(string(b)) == "" {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeProblem(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return false
	}
	return true
}

type faultRequest struct {
	Route           Route        `json:"route"`
	Count           int          `json:"count"`
	Status          int          `json:"status"`
	RetryAfter      jsonDuration `json:"retryAfter"`
	Body            string       `json:"body"`
	CloseConnection bool         `json:"closeConnection"`
}

func (s *Server) ctlFaults(w http.ResponseWriter, r *http.Request) {
	req := faultRequest{Count: 1}
	if !decodeControl(w, r, &req) {
		return
	}
	if !req.Route.Valid() {
		writeProblem(w, http.StatusBadRequest, "route must be one of the simulator's routes")
		return
	}
	if req.Count < 1 || (req.Status != 0 && (req.Status < 100 || req.Status > 999)) || req.RetryAfter < 0 {
		writeProblem(w, http.StatusBadRequest, "count must be at least 1, status a valid HTTP status, retryAfter not negative")
		return
	}
	s.FailNextWith(req.Route, req.Count, Fault{Status: req.Status, RetryAfter: timeDuration(req.RetryAfter),
		Body: req.Body, CloseConnection: req.CloseConnection})
	writeJSON(w, http.StatusOK, req)
}

type latencyRequest struct {
	Route   Route        `json:"route"`
	Latency jsonDuration `json:"latency"`
}

func (s *Server) ctlLatency(w http.ResponseWriter, r *http.Request) {
	var req latencyRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if !req.Route.Valid() || req.Latency < 0 {
		writeProblem(w, http.StatusBadRequest, "route must be one of the simulator's routes and latency not negative")
		return
	}
	s.SetLatency(req.Route, timeDuration(req.Latency))
	writeJSON(w, http.StatusOK, req)
}

func (s *Server) ctlCallbacks(w http.ResponseWriter, r *http.Request) {
	var o CallbackOptions
	if !decodeControl(w, r, &o) {
		return
	}
	if err := o.validate(); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	s.SetCallbackOptions(o)
	writeJSON(w, http.StatusOK, s.callbackOptions())
}

type rateLimitsRequest struct {
	Enabled *bool `json:"enabled"`
	RateLimits
}

// ctlRateLimits: {"enabled":false} turns limits off; {} or
// {"enabled":true} enables Jumio's defaults; any limit field sets exactly
// the limits given.
func (s *Server) ctlRateLimits(w http.ResponseWriter, r *http.Request) {
	var req rateLimitsRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.Enabled != nil && !*req.Enabled {
		s.SetRateLimits(nil)
		writeJSON(w, http.StatusOK, map[string]bool{"enabled": false})
		return
	}
	rl := req.RateLimits
	if rl == (RateLimits{}) {
		rl = *DefaultRateLimits()
	} else if rl == (RateLimits{RetryAfter: true}) {
		rl = *DefaultRateLimits()
		rl.RetryAfter = true
	}
	if err := rl.validate(); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	s.SetRateLimits(&rl)
	writeJSON(w, http.StatusOK, rl)
}

type outcomeRequest struct {
	CustomerInternalReference string  `json:"customerInternalReference"`
	Outcome                   Outcome `json:"outcome"`
}

func (s *Server) ctlOutcomes(w http.ResponseWriter, r *http.Request) {
	var req outcomeRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.CustomerInternalReference == "" || !validDecisionType(req.Outcome.Decision, true) {
		writeProblem(w, http.StatusBadRequest, "customerInternalReference is required and outcome.decision must be PASSED, WARNING, REJECTED or NOT_EXECUTED")
		return
	}
	s.SetOutcome(req.CustomerInternalReference, req.Outcome)
	writeJSON(w, http.StatusOK, req)
}

func validDecisionType(t string, allowEmpty bool) bool {
	switch t {
	case jumio.DecisionPassed, jumio.DecisionWarning, jumio.DecisionRejected, jumio.DecisionNotExecuted:
		return true
	}
	return allowEmpty && t == ""
}

func (s *Server) ctlHealth(w http.ResponseWriter, r *http.Request) {
	var req healthState
	if !decodeControl(w, r, &req) {
		return
	}
	switch req.Status {
	case "UP", "DEGRADED", "DOWN":
	default:
		writeProblem(w, http.StatusBadRequest, "status must be UP, DEGRADED or DOWN")
		return
	}
	s.SetHealth(req.Status, req.Details)
	writeJSON(w, http.StatusOK, s.healthSnapshot())
}

func (s *Server) ctlExecution(w http.ResponseWriter, r *http.Request) {
	info, ok := s.Execution(r.PathValue("id"))
	if !ok {
		writeProblem(w, http.StatusNotFound, detailNoExecution)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// ctlComplete finishes the web flow; an optional Outcome body (e.g.
// {"decision":"REJECTED"}) overrides the outcome of this execution.
func (s *Server) ctlComplete(w http.ResponseWriter, r *http.Request) {
	var o Outcome
	if !decodeControl(w, r, &o) {
		return
	}
	if !validDecisionType(o.Decision, true) {
		writeProblem(w, http.StatusBadRequest, "decision must be PASSED, WARNING, REJECTED or NOT_EXECUTED")
		return
	}
	var override *Outcome
	if o.Decision != "" || o.Label != "" || o.Score != 0 || len(o.Capabilities) > 0 || o.WatchlistAlert {
		override = &o
	}
	id := r.PathValue("id")
	if err := s.complete(id, override); err != nil {
		writeControlError(w, err)
		return
	}
	s.ctlExecution(w, r)
}

func (s *Server) ctlStart(w http.ResponseWriter, r *http.Request) {
	if err := s.StartAcquisition(r.PathValue("id")); err != nil {
		writeControlError(w, err)
		return
	}
	s.ctlExecution(w, r)
}

func writeControlError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownExecution):
		writeProblem(w, http.StatusNotFound, detailNoExecution)
	case errors.Is(err, ErrInvalidState):
		writeProblem(w, http.StatusConflict, strings.TrimPrefix(err.Error(), "jumiotest: "))
	default:
		writeProblem(w, http.StatusInternalServerError, "unexpected error")
	}
}
