package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/docs"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Ingest is the HTTP front door: job submission and status, the Jumio
// callback receiver, health and readiness.
type Ingest struct {
	cfg       IngestConfig
	nc        *nats.Conn
	js        jetstream.JetStream
	subj      messages.Subjects
	store     *JobStore
	images    jetstream.ObjectStore
	log       *zap.Logger
	now       func() time.Time
	m         *Metrics
	draining  atomic.Bool
	cbLimit   *sourceLimiter // callbacks per source address
	submitter *Submitter
	hooks     *WebhookEndpoints

	// Callbacks for unknown executions are logged at most cbLog's rate; the
	// others are counted in cbSuppressed.
	cbLog        *bucket
	cbSuppressed atomic.Int64

	ready *readiness
}

// NewIngest opens the job-state bucket and image store. Unless
// cfg.Callbacks.Open, it warns when callbacks are accepted from anyone (no
// secret path, no allowlist): it does so at every start.
func NewIngest(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg IngestConfig) (*Ingest, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	kv, err := js.KeyValue(ctx, cfg.Topology.Subjects.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("pipeline: ingest: job-state bucket: %w", err)
	}
	images, err := js.ObjectStore(ctx, cfg.Topology.Subjects.BucketImages())
	if err != nil {
		return nil, fmt.Errorf("pipeline: ingest: image store: %w", err)
	}
	submitter, err := NewSubmitter(ctx, js, cfg.Topology, cfg.Now)
	if err != nil {
		return nil, err
	}
	hooks, err := NewWebhookEndpoints(ctx, js, cfg.Topology, cfg.Webhooks, cfg.Now)
	if err != nil {
		return nil, err
	}
	if cfg.Callbacks.unprotected() && !cfg.Callbacks.Open {
		cfg.Logger.Warn("callbacks are accepted from anyone: set KYCPIPE_CALLBACK_SECRET and/or KYCPIPE_CALLBACK_ALLOWLIST=jumio (docs/SECURITY.md)")
	}
	return &Ingest{cfg: cfg, nc: nc, js: js, subj: cfg.Topology.Subjects, store: NewJobStore(kv, cfg.Now).withIndex(js, cfg.Topology.Subjects, cfg.Logger).withLeaderReads(js),
		images: images, log: cfg.Logger, now: cfg.Now, m: cfg.Metrics, submitter: submitter, hooks: hooks,
		cbLimit: newSourceLimiter(cfg.Callbacks.RatePerSecond, cfg.Callbacks.Burst, maxSources),
		cbLog:   newBucket(1, 10),
		ready:   &readiness{nc: nc, js: js, topo: cfg.Topology, now: cfg.Now}}, nil
}

// SetDraining makes readiness fail, so load balancers stop sending traffic
// before the server shuts down.
func (in *Ingest) SetDraining(d bool) {
	in.draining.Store(d)
	if c, ok := in.cfg.Console.(interface{ SetDraining(bool) }); ok {
		c.SetDraining(d)
	}
}

// Handler returns the HTTP API.
func (in *Ingest) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/verifications", in.route("submit", in.authed(ScopeSubmit, in.submit)))
	mux.Handle("GET /v1/verifications/{jobId}", in.route("status", in.authed(ScopeRead, in.status)))
	mux.Handle("DELETE /v1/verifications/{jobId}", in.route("erase", in.authed(ScopeErase, in.erase)))
	mux.Handle("POST /v1/callbacks/jumio", in.route("callback", http.HandlerFunc(in.callbackBare)))
	mux.Handle("POST /v1/callbacks/jumio/{secret}", in.route("callback", http.HandlerFunc(in.callbackWithSecret)))
	mux.Handle("GET /healthz", in.route("healthz", http.HandlerFunc(in.healthz)))
	mux.Handle("GET /readyz", in.route("readyz", http.HandlerFunc(in.readyz)))
	mux.Handle("GET /openapi.yaml", in.route("openapi", in.authed("", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(docs.OpenAPI)
	})))
	in.webhookRoutes(mux)
	if in.cfg.MetricsHandler != nil {
		mux.Handle("GET /metrics", in.authed(ScopeMetrics, in.cfg.MetricsHandler.ServeHTTP))
	}
	if in.cfg.Console != nil {
		// The console sets its own Content-Security-Policy (its pages load
		// their stylesheet and script) over the API's stricter one.
		mux.Handle("/console/", in.route("console", in.cfg.Console))
	}
	return securityHeaders(problemFallback(mux))
}

// statusRecorder captures the status code for metrics and logs.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines of uploads; the console's event streams flush and extend their
// write deadline through it).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (in *Ingest) route(name string, h http.Handler) http.Handler {
	tracer := tracerOf(in.cfg.TracerProvider)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		ctx, span := tracer.Start(propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)), r.Method+" "+name,
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("http.route", name)))
		r = r.WithContext(ctx)
		defer func() {
			span.SetAttributes(attribute.Int("http.response.status_code", rec.code))
			span.End()
		}()
		defer func() {
			if p := recover(); p != nil {
				in.log.Error("handler panicked", zap.String("route", name), zap.Any("panic", p))
				if rec.code == 0 {
					writeProblem(rec, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError})
				}
			}
			in.m.observeHTTP(name, rec.code, time.Since(start))
		}()
		h.ServeHTTP(rec, r)
	})
}

// authed serves h only to requests with a valid API key carrying scope
// (401 without a valid key, 403 without the scope). The key's principal is
// in the request's context (PrincipalFrom).
func (in *Ingest) authed(scope Scope, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := insecurePrincipal
		if !in.cfg.InsecureNoAuth {
			key, ok := bearer(r)
			if ok {
				p, ok = in.cfg.APIKeys.Authenticate(key)
			}
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kycpipe"`)
				writeProblem(w, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized,
					Detail: "send a valid API key as Authorization: Bearer <key>"})
				return
			}
		}
		if scope != "" && !p.Has(scope) {
			in.log.Info("request refused: the key lacks a scope", zap.String("key", p.Name), zap.String("scope", string(scope)), zap.String("path", r.URL.Path))
			writeProblem(w, Problem{Type: ProblemForbidden, Status: http.StatusForbidden,
				Detail: "this API key lacks the " + string(scope) + " scope"})
			return
		}
		h(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

// securityHeaders sets headers that suit a JSON API holding personal data.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		hd.Set("Referrer-Policy", "no-referrer")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=63072000")
		}
		h.ServeHTTP(w, r)
	})
}

// problemFallback answers unknown routes and wrong methods with problems
// instead of the mux's plain-text bodies.
func problemFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			// Ask the mux what it would do: 404 or 405.
			rec := &statusRecorder{ResponseWriter: discardWriter{h: http.Header{}}}
			mux.ServeHTTP(rec, r)
			if rec.code == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", rec.ResponseWriter.Header().Get("Allow"))
				writeProblem(w, Problem{Type: ProblemMethodNotAllowed, Status: http.StatusMethodNotAllowed})
				return
			}
			writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "no such route"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

// healthz is the liveness probe: it fails once the NATS connection is
// closed for good (nats.go gave up, or the server refused it), so the
// orchestrator restarts a process that could otherwise only answer 503.
func (in *Ingest) healthz(w http.ResponseWriter, _ *http.Request) {
	if in.nc != nil && in.nc.IsClosed() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed", "reason": reasonNATSClosed})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Reason codes of /healthz and /readyz. The probes take no key, so they say
// why in a code, never in internal error text (which names streams,
// servers and errors an outsider has no business reading).
const (
	reasonDraining        = "draining"
	reasonNATSClosed      = "nats_closed"
	reasonNATSUnavailable = "nats_unavailable"
	reasonTopology        = "topology_unavailable"
)

func (in *Ingest) readyz(w http.ResponseWriter, r *http.Request) {
	if err := in.Ready(r.Context()); err != nil {
		reason := reasonTopology
		switch {
		case in.draining.Load():
			reason = reasonDraining
		case in.nc != nil && in.nc.IsClosed():
			reason = reasonNATSClosed
		case in.nc != nil && !in.nc.IsConnected():
			reason = reasonNATSUnavailable
		}
		in.log.Debug("not ready", zap.String("reason", reason), zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Ready reports whether ingest can take work: not draining, NATS connected,
// streams and buckets present (checked at most every 5s).
func (in *Ingest) Ready(ctx context.Context) error {
	if in.draining.Load() {
		return errors.New("draining")
	}
	return in.ready.check(ctx)
}
