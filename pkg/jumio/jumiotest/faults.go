package jumiotest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Route names one simulated endpoint (or the outbound callback delivery)
// for fault injection, latency and counters.
type Route string

// Routes of the simulator.
const (
	RouteToken              Route = "token"                // POST /oauth2/token
	RouteCreateAccount      Route = "create_account"       // POST /api/v1/accounts
	RouteUpdateAccount      Route = "update_account"       // PUT /api/v1/accounts/{a}
	RouteUploadPart         Route = "upload_part"          // POST|PUT /link/…/parts/{FRONT|BACK|FACE}
	RouteUploadPreparedData Route = "upload_prepared_data" // POST|PUT /link/…/parts/PREPARED_DATA
	RouteFinalize           Route = "finalize"             // PUT /link/api/v1/accounts/{a}/workflow-executions/{w}
	RouteStatus             Route = "status"               // GET …/workflow-executions/{w}/status
	RouteDetails            Route = "details"              // GET …/workflow-executions/{w}
	RouteSteps              Route = "steps"                // GET …/workflow-executions/{w}/steps
	RouteGetPart            Route = "get_part"             // GET /api/v1/accounts/{a}/credentials/{c}/parts/{classifier}
	RouteDeleteAccount      Route = "delete_account"       // DELETE /api/v1/accounts/{a}
	RouteDeleteExecution    Route = "delete_execution"     // DELETE …/workflow-executions/{w}
	RouteHealth             Route = "health"               // GET /
	RouteCallback           Route = "callback"             // outbound callback delivery
)

// Routes returns every route, in a stable order.
func Routes() []Route {
	return []Route{RouteToken, RouteCreateAccount, RouteUpdateAccount, RouteUploadPart,
		RouteUploadPreparedData, RouteFinalize, RouteStatus, RouteDetails, RouteSteps,
		RouteGetPart, RouteDeleteAccount, RouteDeleteExecution, RouteHealth, RouteCallback}
}

// Valid reports whether r is one of [Routes].
func (r Route) Valid() bool {
	for _, x := range Routes() {
		if r == x {
			return true
		}
	}
	return false
}

// ParseRoute returns the route named s, or an error listing the valid names.
func ParseRoute(s string) (Route, error) {
	if r := Route(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("jumiotest: unknown route %q (want one of %v)", s, Routes())
}

// Fault is an injected failure, answered before the request is handled
// (like an outage in front of the service): before authentication, rate
// limits and validation.
type Fault struct {
	// Status is the HTTP status to answer (default 500).
	Status int
	// RetryAfter, when positive, adds a Retry-After header in whole seconds
	// (rounded up).
	RetryAfter time.Duration
	// Body replaces the default Jumio error body
	// {"title","status","detail"}; sent as application/json when it is
	// valid JSON, else as text/plain.
	Body string
	// CloseConnection closes the connection without an answer: the client
	// sees a transport error. Status and Body are ignored. Note that Go's
	// transport may transparently retry idempotent requests (GET) that
	// failed this way on a reused connection.
	CloseConnection bool
}

type pendingFault struct {
	f    Fault
	left int
}

// FailNext makes the next n requests on route answer status with Jumio's
// error body. Calls accumulate: faults queue up in call order. Faulted
// requests count in Stats.InjectedFaults.
func (s *Server) FailNext(route Route, n int, status int) {
	s.FailNextWith(route, n, Fault{Status: status})
}

// FailNextWith makes the next n requests on route fail with f. On
// RouteCallback, the next n delivery attempts fail without reaching the
// receiver. n ≤ 0 does nothing.
func (s *Server) FailNextWith(route Route, n int, f Fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], &pendingFault{f: f, left: n})
}

// SetLatency adds d before every request on route is handled (0 removes
// it). The wait ends early when the client gives up or the server closes.
// On RouteCallback it is added to each delivery's delay.
func (s *Server) SetLatency(route Route, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, route)
		return
	}
	s.latency[route] = d
}

func (s *Server) latencyFor(route Route) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latency[route]
}

// takeFault consumes one pending fault of route, if any.
func (s *Server) takeFault(route Route) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[route]
	if len(q) == 0 {
		return Fault{}, false
	}
	pf := q[0]
	pf.left--
	if pf.left <= 0 {
		q = q[1:]
		if len(q) == 0 {
			delete(s.faults, route)
		} else {
			s.faults[route] = q
		}
	}
	return pf.f, true
}

// serveFault answers r with f.
func (s *Server) serveFault(w *recorder, f Fault) {
	s.stat(func(st *Stats) { st.InjectedFaults++ })
	if f.CloseConnection {
		w.record("error")
		conn, _, err := http.NewResponseController(w.ResponseWriter).Hijack()
		if err == nil {
			_ = conn.Close()
			return
		}
		panic(http.ErrAbortHandler) // aborts the response and closes the connection
	}
	status := f.Status
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(f.RetryAfter)))
	}
	if f.Body == "" {
		writeProblem(w, status, "simulated failure (injected fault)")
		return
	}
	ct := "text/plain; charset=utf-8"
	if json.Valid([]byte(f.Body)) {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(f.Body))
}

func ceilSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// RouteFault is a fault for the next Count requests on Route, as parsed by
// [ParseFaults].
type RouteFault struct {
	Route Route
	Count int
	Fault Fault
}

// ParseFaults parses a comma-separated list of route=count:status items
// (e.g. "create_account=3:500,status=1:503"), the syntax of cmd/jumiosim's
// -fail flag. Apply each with [Server.FailNextWith].
func ParseFaults(list string) ([]RouteFault, error) {
	var out []RouteFault
	err := eachRouteValue(list, func(r Route, v string) error {
		n, status, ok := strings.Cut(v, ":")
		count, err1 := strconv.Atoi(n)
		code, err2 := strconv.Atoi(status)
		if !ok || err1 != nil || err2 != nil || count < 1 || code < 100 || code > 999 {
			return fmt.Errorf("jumiotest: fault %q: want route=count:status", v)
		}
		out = append(out, RouteFault{Route: r, Count: count, Fault: Fault{Status: code}})
		return nil
	})
	return out, err
}

// ParseLatencies parses a comma-separated list of route=duration items
// (e.g. "details=200ms,token=1s"), the syntax of cmd/jumiosim's -latency
// flag, into a value for Options.Latency.
func ParseLatencies(list string) (map[Route]time.Duration, error) {
	out := map[Route]time.Duration{}
	err := eachRouteValue(list, func(r Route, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("jumiotest: latency %q: want route=duration", v)
		}
		out[r] = d
		return nil
	})
	return out, err
}

func eachRouteValue(list string, f func(Route, string) error) error {
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("jumiotest: %q: want route=value", item)
		}
		r, err := ParseRoute(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		if err := f(r, strings.TrimSpace(value)); err != nil {
			return err
		}
	}
	return nil
}
