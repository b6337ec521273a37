package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Ops serves /healthz, /readyz and /metrics for the stages without an HTTP
// API of their own (worker, retriever, notifier).
type Ops struct {
	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	ready    func(context.Context) error // nil until the service is built
	failed   error                       // set: /healthz fails (the process is about to exit)
	draining bool
}

// errStarting is the readiness answer before the service is built.
var errStarting = errors.New("starting")

// StartOps listens on addr. /readyz answers "starting" until SetReady.
func StartOps(addr string, reg *prometheus.Registry, log *zap.Logger) (*Ops, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("invalid KYCPIPE_METRICS_ADDR (--metrics-addr): listen on %s: %w", addr, err)
	}
	o := &Ops{ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := o.health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, `{"status":"failed","reason":%q}`+"\n", err.Error())
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := o.readiness(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, `{"status":"not ready","reason":%q}`+"\n", err.Error())
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("operations listener failed", zap.Error(err))
		}
	}()
	return o, nil
}

func (o *Ops) health() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed
}

func (o *Ops) readiness(ctx context.Context) error {
	o.mu.Lock()
	ready, failed, draining := o.ready, o.failed, o.draining
	o.mu.Unlock()
	switch {
	case failed != nil:
		return failed
	case draining:
		return errors.New("draining")
	case ready == nil:
		return errStarting
	}
	return ready(ctx)
}

// SetReady makes /readyz ask ready.
func (o *Ops) SetReady(ready func(context.Context) error) {
	o.mu.Lock()
	o.ready = ready
	o.mu.Unlock()
}

// Fail makes /healthz and /readyz fail with err from now on: the process
// is broken and about to exit.
func (o *Ops) Fail(err error) {
	o.mu.Lock()
	o.failed = err
	o.mu.Unlock()
}

// Addr returns the listening address.
func (o *Ops) Addr() string { return o.ln.Addr().String() }

// Drain makes /readyz fail from now on.
func (o *Ops) Drain() {
	o.mu.Lock()
	o.draining = true
	o.mu.Unlock()
}

// Close stops the listener.
func (o *Ops) Close(ctx context.Context) error { return o.srv.Shutdown(ctx) }
