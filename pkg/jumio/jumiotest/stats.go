package jumiotest

import (
	"maps"
	"net/http"
	"strconv"
)

// Stats are the simulator's counters, for exact assertions in tests. Every
// counter is updated before the response that caused it is sent, so a
// client that got its answer sees it counted. Callback counters are the
// exception: they change in the background (poll them against a
// deadline). [Server.Stats] returns a copy.
type Stats struct {
	// Requests counts every request by route (see [Route]), whatever its
	// answer: faults, 429s and auth failures included. For RouteCallback it
	// counts delivery attempts.
	Requests map[string]int `json:"requests"`
	// Responses counts answers by route and status code (as a string).
	// Connections closed by a fault, and callback deliveries that got no
	// answer, count under "error".
	Responses map[string]map[string]int `json:"responses"`

	// TokenRequests counts requests to the token endpoint (as
	// Requests["token"]); TokensIssued counts distinct tokens minted, so a
	// reused token is not counted again.
	TokenRequests int `json:"tokenRequests"`
	TokensIssued  int `json:"tokensIssued"`

	// AccountsCreated counts successful POST /api/v1/accounts;
	// ExecutionsCreated counts successful POSTs and PUTs (each creates a
	// workflow execution).
	AccountsCreated   int `json:"accountsCreated"`
	ExecutionsCreated int `json:"executionsCreated"`
	// AccountsByReference and ExecutionsByReference count the same by
	// customerInternalReference.
	AccountsByReference   map[string]int `json:"accountsByReference"`
	ExecutionsByReference map[string]int `json:"executionsByReference"`

	// Uploads counts successful part uploads (images and prepared data,
	// replacements included), in total and by workflow execution ID.
	Uploads            int            `json:"uploads"`
	UploadsByExecution map[string]int `json:"uploadsByExecution"`

	// FinalizeAttempts counts finalize requests (as Requests["finalize"]);
	// Finalizes counts successful ones, in total and by execution ID.
	FinalizeAttempts     int            `json:"finalizeAttempts"`
	Finalizes            int            `json:"finalizes"`
	FinalizesByExecution map[string]int `json:"finalizesByExecution"`

	// CallbacksSent counts callback POSTs made (duplicates and retries
	// included), counted just before the POST is sent. CallbacksDropped
	// counts callbacks dropped by DropFirst or DropRate (never attempted).
	// CallbacksFailed counts callback copies given up after all retries.
	CallbacksSent    int `json:"callbacksSent"`
	CallbacksDropped int `json:"callbacksDropped"`
	CallbacksFailed  int `json:"callbacksFailed"`

	// RateLimited counts 429s from the rate limiter, in total and by route.
	RateLimited        int            `json:"rateLimited"`
	RateLimitedByRoute map[string]int `json:"rateLimitedByRoute"`

	// InjectedFaults counts requests and callback attempts answered by a
	// [Fault].
	InjectedFaults int `json:"injectedFaults"`

	// Deletions counts successful DELETE calls (accounts and executions).
	Deletions int `json:"deletions"`

	// ExecutionsForgotten counts ended workflow executions the simulator
	// dropped to stay within Options.MaxExecutions.
	ExecutionsForgotten int `json:"executionsForgotten"`

	// Refusals counts requests the simulator refused for breaking one of
	// Jumio's rules, by rule (the Refusal* constants): a test can assert
	// that kycpipe never trips one.
	Refusals map[string]int `json:"refusals"`

	// ChunkedRequests counts requests that arrived without Content-Length
	// (chunked transfer encoding), refused or not, in total and by route.
	ChunkedRequests        int            `json:"chunkedRequests"`
	ChunkedRequestsByRoute map[string]int `json:"chunkedRequestsByRoute"`

	// RequestsByRegion counts Jumio requests by the region whose hosts they
	// reached (amer-1, emea-1, apac-1; see [Server.RegionURL]).
	RequestsByRegion map[string]int `json:"requestsByRegion"`
}

// Keys of Stats.Refusals.
const (
	RefusalUserAgentMissing = "user_agent_missing" // no User-Agent (403)
	RefusalUserAgentBlocked = "user_agent_blocked" // a blocked User-Agent (403)
	RefusalContentLength    = "content_length"     // a credential upload without Content-Length (403)
	RefusalValidation       = "validation"         // an account or prepared-data body breaking a rule (400)
	RefusalConsent          = "consent"            // an ID or biometric upload without valid userConsent (403)
	RefusalImage            = "image"              // an image of the wrong format, size or dimensions (400)
	RefusalBadClient        = "bad_client"         // bad client credentials at the token endpoint
	RefusalPermission       = "permission"         // a client without the permission for the call (403)
	RefusalWrongRegion      = "wrong_region"       // a token of another region's tenant (401)
)

func newStats() Stats {
	return Stats{
		Requests:               map[string]int{},
		Responses:              map[string]map[string]int{},
		AccountsByReference:    map[string]int{},
		ExecutionsByReference:  map[string]int{},
		UploadsByExecution:     map[string]int{},
		FinalizesByExecution:   map[string]int{},
		RateLimitedByRoute:     map[string]int{},
		Refusals:               map[string]int{},
		ChunkedRequestsByRoute: map[string]int{},
		RequestsByRegion:       map[string]int{},
	}
}

func (st Stats) clone() Stats {
	c := st
	c.Requests = maps.Clone(st.Requests)
	c.Responses = make(map[string]map[string]int, len(st.Responses))
	for k, v := range st.Responses {
		c.Responses[k] = maps.Clone(v)
	}
	c.AccountsByReference = maps.Clone(st.AccountsByReference)
	c.ExecutionsByReference = maps.Clone(st.ExecutionsByReference)
	c.UploadsByExecution = maps.Clone(st.UploadsByExecution)
	c.FinalizesByExecution = maps.Clone(st.FinalizesByExecution)
	c.RateLimitedByRoute = maps.Clone(st.RateLimitedByRoute)
	c.Refusals = maps.Clone(st.Refusals)
	c.ChunkedRequestsByRoute = maps.Clone(st.ChunkedRequestsByRoute)
	c.RequestsByRegion = maps.Clone(st.RequestsByRegion)
	return c
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats.clone()
}

// ResetStats zeroes every counter.
func (s *Server) ResetStats() {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.stats = newStats()
}

// stat applies f to the counters under their lock. It may be called with
// s.mu held (statsMu is always taken last).
func (s *Server) stat(f func(*Stats)) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	f(&s.stats)
}

// refuse counts a refusal for rule.
func (s *Server) refuse(rule string) {
	s.stat(func(st *Stats) { st.Refusals[rule]++ })
}

func (s *Server) countResponse(route Route, code string) {
	s.stat(func(st *Stats) {
		m := st.Responses[string(route)]
		if m == nil {
			m = map[string]int{}
			st.Responses[string(route)] = m
		}
		m[code]++
	})
}

// recorder counts a response's status when its header is written, which
// is before any byte reaches the client.
type recorder struct {
	http.ResponseWriter
	s        *Server
	route    Route
	recorded bool
	status   int
}

func (w *recorder) record(code string) {
	if w.recorded {
		return
	}
	w.recorded = true
	if w.route != "" {
		w.s.countResponse(w.route, code)
	}
}

func (w *recorder) WriteHeader(code int) {
	if !w.recorded && code >= 200 {
		w.status = code
		w.record(strconv.Itoa(code))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.recorded {
		w.status = http.StatusOK
		w.record("200")
	}
	return w.ResponseWriter.Write(b)
}

// finish records an implicit 200 for handlers that wrote nothing.
func (w *recorder) finish() {
	if !w.recorded {
		w.status = http.StatusOK
		w.record("200")
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
