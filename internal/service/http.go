package service

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// NewHTTPServer returns an HTTP server for h with the limits every kycpipe
// listener facing clients needs: header, read and write timeouts and a
// bound on header size, so slow or oversized requests cannot hold
// connections.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// HTTPAPI is a stage served over HTTP (ingest).
type HTTPAPI interface {
	Handler() http.Handler
	Ready(ctx context.Context) error
	// SetDraining makes readiness fail, so load balancers stop sending
	// traffic before the server shuts down.
	SetDraining(bool)
}

// HTTPService serves an HTTPAPI on a listener as a [Service].
type HTTPService struct {
	API             HTTPAPI
	Listener        net.Listener
	TLSCert, TLSKey string // both set: serve HTTPS
	ShutdownTimeout time.Duration
	Log             *zap.Logger
}

// Ready reports the API's readiness.
func (h *HTTPService) Ready(ctx context.Context) error { return h.API.Ready(ctx) }

// Run serves until ctx ends, then fails readiness, finishes in-flight
// requests (within ShutdownTimeout) and returns.
func (h *HTTPService) Run(ctx context.Context) error {
	srv := NewHTTPServer(h.API.Handler())
	serveErr := make(chan error, 1)
	go func() {
		if h.TLSCert != "" {
			serveErr <- srv.ServeTLS(h.Listener, h.TLSCert, h.TLSKey)
		} else {
			serveErr <- srv.Serve(h.Listener)
		}
	}()
	h.Log.Info("listening", zap.String("addr", h.Listener.Addr().String()), zap.Bool("tls", h.TLSCert != ""), zap.String("version", Version))
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	h.API.SetDraining(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), h.ShutdownTimeout)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
