package upgrade

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// HeaderBackend names, in every answer the balancer relays, the ingest
// slot and release that served it (e.g. "ingest-1 9aa777e").
const HeaderBackend = "X-Upgrade-Backend"

// balancer is the load balancer in front of the ingest processes: upstream
// submissions and Jumio's callbacks reach whichever ingest is next, old or
// new, as behind a real one during a rolling deploy. A backend that cannot
// be reached answers 502, which clients retry (submissions carry an
// Idempotency-Key; Jumio resends callbacks).
type balancer struct {
	srv *http.Server
	URL string

	mu       sync.Mutex
	backends []backend
	next     int

	relayed, failed atomic.Int64
}

type backend struct {
	slot, release string
	url           *url.URL
}

type backendKey struct{}

func startBalancer() (*balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &balancer{URL: "http://" + ln.Addr().String()}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			be := r.In.Context().Value(backendKey{}).(backend)
			r.SetURL(be.url)
			r.Out.Host = r.In.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			be := resp.Request.Context().Value(backendKey{}).(backend)
			resp.Header.Set(HeaderBackend, be.slot+" "+be.release)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			b.failed.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			be, ok := b.pick()
			if !ok {
				b.failed.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			b.relayed.Add(1)
			proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), backendKey{}, be)))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = b.srv.Serve(ln) }() // ends with close (http.ErrServerClosed)
	return b, nil
}

func (b *balancer) pick() (backend, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.backends) == 0 {
		return backend{}, false
	}
	be := b.backends[b.next%len(b.backends)]
	b.next++
	return be, true
}

// add puts an ingest (its base URL, e.g. http://127.0.0.1:8080) behind the
// balancer.
func (b *balancer) add(slot, release, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append(b.backends, backend{slot: slot, release: release, url: u})
	return nil
}

func (b *balancer) remove(slot string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.backends[:0]
	for _, be := range b.backends {
		if be.slot != slot {
			out = append(out, be)
		}
	}
	b.backends = out
}

func (b *balancer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.srv.Shutdown(ctx)
}
