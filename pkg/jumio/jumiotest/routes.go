package jumiotest

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Path prefixes. The credential ("api") service lives under /link, to
// emulate Jumio's separate api.{region}.jumio.link host: clients must use
// the URLs the account response returns.
const (
	apiPrefix  = "/api/v1"
	linkPrefix = "/link/api/v1"
)

// rate-limit classes
const (
	classNone      = ""
	classToken     = "token"
	classAccount   = "account"
	classRetrieval = "retrieval"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	jumioRoute := func(pattern string, route Route, class string, h http.HandlerFunc) {
		mux.Handle(pattern, s.jumio(func(*http.Request) Route { return route }, class, h))
	}
	// Other methods on known paths get Jumio's error shape (not counted).
	notAllowed := func(pattern, allow string) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeProblem(w, http.StatusMethodNotAllowed, "Request method is not supported")
		})
	}

	// auth service
	jumioRoute("POST /oauth2/token", RouteToken, classToken, s.handleToken)
	notAllowed("/oauth2/token", "POST")

	// account service
	jumioRoute("POST "+apiPrefix+"/accounts", RouteCreateAccount, classAccount, s.handleCreateAccount)
	notAllowed(apiPrefix+"/accounts", "POST")
	jumioRoute("PUT "+apiPrefix+"/accounts/{accountId}", RouteUpdateAccount, classAccount, s.handleUpdateAccount)

	// retrieval service
	jumioRoute("DELETE "+apiPrefix+"/accounts/{accountId}", RouteDeleteAccount, classRetrieval, s.handleDeleteAccount)
	notAllowed(apiPrefix+"/accounts/{accountId}", "PUT, DELETE")
	exec := apiPrefix + "/accounts/{accountId}/workflow-executions/{executionId}"
	jumioRoute("GET "+exec+"/status", RouteStatus, classRetrieval, s.handleStatus)
	notAllowed(exec+"/status", "GET")
	jumioRoute("GET "+exec+"/steps", RouteSteps, classRetrieval, s.handleSteps)
	notAllowed(exec+"/steps", "GET")
	jumioRoute("GET "+exec, RouteDetails, classRetrieval, s.handleDetails)
	jumioRoute("DELETE "+exec, RouteDeleteExecution, classRetrieval, s.handleDeleteExecution)
	notAllowed(exec, "GET, DELETE")
	parts := apiPrefix + "/accounts/{accountId}/credentials/{credentialId}/parts/{classifier}"
	jumioRoute("GET "+parts, RouteGetPart, classRetrieval, s.handleGetPart)
	notAllowed(parts, "GET")

	// credential ("api") service, under /link
	linkExec := linkPrefix + "/accounts/{accountId}/workflow-executions/{executionId}"
	uploadRoute := func(r *http.Request) Route {
		if strings.EqualFold(r.PathValue("classifier"), jumio.PartPreparedData) {
			return RouteUploadPreparedData
		}
		return RouteUploadPart
	}
	linkParts := linkExec + "/credentials/{credentialId}/parts/{classifier}"
	mux.Handle("POST "+linkParts, s.jumio(uploadRoute, classNone, s.handleUpload))
	mux.Handle("PUT "+linkParts, s.jumio(uploadRoute, classNone, s.handleUpload))
	notAllowed(linkParts, "POST, PUT")
	jumioRoute("PUT "+linkExec, RouteFinalize, classNone, s.handleFinalize)
	notAllowed(linkExec, "PUT")

	// status service
	jumioRoute("GET /{$}", RouteHealth, classNone, s.handleHealth)
	notAllowed("/{$}", "GET")

	// hosted web flow and the simulator's control API
	mux.HandleFunc("GET /web/v4/app", s.handleWebApp)
	s.controlRoutes(mux)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "No resource at this path")
	})
	return mux
}

// jumio wraps a Jumio endpoint: it counts the request, applies injected
// latency, injected faults, the User-Agent check and rate limits, in that
// order, then calls h.
func (s *Server) jumio(routeOf func(*http.Request) Route, class string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r)
		start := time.Now()
		rw := &recorder{ResponseWriter: w, s: s, route: route}
		region := s.regionOf(r)
		s.stat(func(st *Stats) {
			st.Requests[string(route)]++
			st.RequestsByRegion[string(region)]++
			switch route {
			case RouteToken:
				st.TokenRequests++
			case RouteFinalize:
				st.FinalizeAttempts++
			}
		})
		logged := s.logCall(r, route)
		defer func() {
			logged(rw.status)
			s.log.Debug("request", zap.String("route", string(route)), zap.String("method", r.Method),
				zap.Int("status", rw.status), zap.Duration("duration", time.Since(start)))
		}()

		if d := s.latencyFor(route); d > 0 && !s.waitLatency(r, d) {
			if s.ctx.Err() != nil {
				writeProblem(rw, http.StatusServiceUnavailable, "The service is shutting down")
			}
			return // the client gave up: nobody to answer
		}
		if f, ok := s.takeFault(route); ok {
			s.serveFault(rw, f)
			return
		}
		chunked := r.ContentLength < 0 || slices.Contains(r.TransferEncoding, "chunked")
		if chunked {
			s.stat(func(st *Stats) {
				st.ChunkedRequests++
				st.ChunkedRequestsByRoute[string(route)]++
			})
		}
		if status, rule, detail := s.checkHeaders(r, route, chunked); status != 0 {
			s.refuse(rule)
			writeProblem(rw, status, detail)
			return
		}
		if class != classNone {
			// Jumio's limits are per tenant: one bucket per class and region.
			if ok, wait := s.allow(class, class+"/"+string(region)); !ok {
				s.stat(func(st *Stats) {
					st.RateLimited++
					st.RateLimitedByRoute[string(route)]++
				})
				if wait > 0 {
					rw.Header().Set("Retry-After", itoa(ceilSeconds(wait)))
				}
				writeRawJSON(rw, http.StatusTooManyRequests, []byte(rateLimitBody))
				return
			}
		}
		h(rw, r)
		rw.finish()
	})
}

// checkHeaders applies Jumio's header rules: a User-Agent that is present
// and not blocked, and Content-Length on credential uploads. It returns 0
// or the status, refusal rule and detail of the answer.
func (s *Server) checkHeaders(r *http.Request, route Route, chunked bool) (int, string, string) {
	sw := s.switches()
	ua := strings.TrimSpace(r.UserAgent())
	switch {
	case ua == "" && !sw.AllowMissingUserAgent:
		return http.StatusForbidden, RefusalUserAgentMissing, "The User-Agent header is required"
	case ua != "" && sw.blocked(ua):
		return http.StatusForbidden, RefusalUserAgentBlocked, "The User-Agent header is not accepted"
	case chunked && !sw.AllowChunkedUploads && (route == RouteUploadPart || route == RouteUploadPreparedData):
		return http.StatusForbidden, RefusalContentLength, "The Content-Length header is required"
	}
	return 0, "", ""
}

// waitLatency waits d unless the request or the server ends first.
func (s *Server) waitLatency(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}
