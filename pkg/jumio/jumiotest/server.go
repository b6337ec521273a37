package jumiotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Server is a Jumio platform API simulator listening on one address that
// serves every Jumio service (auth, account, api, retrieval, status), the
// hosted web page and a control API. See the package documentation.
//
// All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, http://127.0.0.1:port with no
	// trailing slash, set by Start. Point the kycpipe client at it with
	// JUMIO_BASE_URL (or jumio.WithBaseURL).
	URL string

	// Listener is the server's listener, created by Start on Options.Addr.
	// Set it before Start to serve on a listener of your own.
	Listener net.Listener

	opts      Options
	log       *zap.Logger
	handler   http.Handler
	httpSrv   *http.Server
	transport *http.Transport // for Client()
	client    *http.Client
	cbClient  *http.Client // default callback client
	jwtKey    []byte
	ctx       context.Context // lifecycle: canceled when Close starts; parent of background work
	cancel    context.CancelFunc
	wg        sync.WaitGroup // background goroutines

	mu          sync.Mutex // guards everything below
	clients     map[string]ClientCredentials
	clientOrder []string // client IDs in configuration order
	started     bool
	closed      bool
	rng         *mrand.Rand
	accounts    map[string]*account
	execs       map[string]*execution
	initiated   map[string]*execution // executions the clock may still expire (Sweep's work)
	finished    []string              // IDs of ended executions, oldest first (retention.go)
	credOwner   map[string]string     // credential ID -> execution ID
	txTokens    map[string]string     // transaction api.token -> execution ID
	webTokens   map[string]string     // web authorizationToken -> execution ID
	oauth       map[string]*oauthToken
	current     map[string]*oauthToken // client ID -> token handed out
	faults      map[Route][]*pendingFault
	latency     map[Route]time.Duration
	limits      *RateLimits
	buckets     map[string]*bucket
	cbOpts      CallbackOptions
	sw          Switches
	cbSeq       int
	decide      func(Execution) Outcome
	outcomes    map[string]Outcome
	health      healthState

	statsMu sync.Mutex
	stats   Stats

	calls callLog // the call log (calllog.go), with its own lock
}

// NewServer starts and returns a new server, like httptest.NewServer. It
// panics if opts are invalid or it cannot listen; [StartServer] returns an
// error instead. The caller should call Close when finished.
func NewServer(opts Options) *Server {
	s := NewUnstartedServer(opts)
	s.Start()
	return s
}

// NewUnstartedServer returns a new server that is not yet listening; call
// Start (or mount [Server.Handler] elsewhere). It panics if opts are
// invalid.
func NewUnstartedServer(opts Options) *Server {
	s, err := newServer(opts)
	if err != nil {
		panic(err.Error())
	}
	return s
}

// StartServer starts a server like [NewServer] but returns an error for
// invalid options or a failed listen. It is meant for binaries such as
// cmd/jumiosim.
func StartServer(opts Options) (*Server, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func newServer(opts Options) (*Server, error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      o,
		clients:   map[string]ClientCredentials{},
		log:       o.Logger.Named("jumiosim"),
		jwtKey:    randomBytes(32),
		ctx:       ctx,
		cancel:    cancel,
		rng:       mrand.New(mrand.NewPCG(uint64(o.Seed), 0x6a756d696f)),
		accounts:  map[string]*account{},
		execs:     map[string]*execution{},
		initiated: map[string]*execution{},
		credOwner: map[string]string{},
		txTokens:  map[string]string{},
		webTokens: map[string]string{},
		oauth:     map[string]*oauthToken{},
		current:   map[string]*oauthToken{},
		faults:    map[Route][]*pendingFault{},
		latency:   map[Route]time.Duration{},
		buckets:   map[string]*bucket{},
		cbOpts:    o.Callbacks,
		sw:        o.Switches.clone(),
		decide:    o.Decide,
		outcomes:  map[string]Outcome{},
		health:    healthState{Status: "UP"},
		stats:     newStats(),
		calls:     callLog{enabled: o.RecordCalls, byRef: map[string][]Call{}},
	}
	for _, c := range o.Clients {
		s.clients[c.ID] = c
		s.clientOrder = append(s.clientOrder, c.ID)
	}
	for r, d := range o.Latency {
		if d > 0 {
			s.latency[r] = d
		}
	}
	if o.RateLimits != nil {
		rl := *o.RateLimits
		s.limits = &rl
	}
	s.transport = http.DefaultTransport.(*http.Transport).Clone()
	s.client = &http.Client{Transport: s.transport}
	// Callbacks go out concurrently to one host: keep their connections
	// (the default keeps 2, so most callbacks dialed a new one).
	cbTransport := http.DefaultTransport.(*http.Transport).Clone()
	cbTransport.MaxIdleConnsPerHost = 256
	s.cbClient = &http.Client{Transport: cbTransport}
	s.handler = s.withRegion(s.routes())
	return s, nil
}

// Start starts a server from [NewUnstartedServer]: it listens on
// Options.Addr (or uses Listener) and starts the background sweeper. It
// panics if the server was already started or closed, or cannot listen.
func (s *Server) Start() {
	if err := s.start(); err != nil {
		panic(err.Error())
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("jumiotest: server already started or closed")
	}
	s.started = true
	s.mu.Unlock()

	ln := s.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", s.opts.Addr)
		if err != nil {
			return fmt.Errorf("jumiotest: listen on %s: %w", s.opts.Addr, err)
		}
		s.Listener = ln
	}
	s.URL = "http://" + urlHost(ln.Addr())
	s.httpSrv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}
	srv := s.httpSrv
	s.mu.Lock()
	s.goLocked(func() { _ = srv.Serve(ln) })
	if s.opts.SweepInterval > 0 {
		s.goLocked(s.sweeper)
	}
	s.mu.Unlock()
	s.log.Info("jumio simulator listening", zap.String("url", s.URL))
	return nil
}

// urlHost turns a listen address into a host:port usable in URLs: an
// unspecified IP (0.0.0.0, ::; Go listens dual-stack) becomes 127.0.0.1.
func urlHost(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Close shuts the server down: it stops accepting connections, ends
// injected latencies and pending timers, stops callback delivery and the
// sweeper, and blocks until in-flight requests and background goroutines
// have finished. Calling Close more than once is harmless.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()

	s.cancel()
	if !started && s.Listener != nil {
		_ = s.Listener.Close()
	}
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			_ = s.httpSrv.Close()
		}
		cancel()
	}
	s.wg.Wait()
	s.transport.CloseIdleConnections()
	s.cbClient.CloseIdleConnections()
	s.log.Info("jumio simulator stopped")
}

// Client returns an HTTP client for the server. Its idle connections are
// closed by Close. Like any Go client it sends a default User-Agent
// (Go-http-client/1.1), which the simulator accepts.
func (s *Server) Client() *http.Client { return s.client }

// Credentials returns the ID and secret of the default region's first
// OAuth2 client (as they are now: see [Server.SetClient]), or zero
// credentials if that tenant has none. See [Server.RegionCredentials] for
// the other regions.
func (s *Server) Credentials() jumio.Credentials {
	c, _ := s.RegionCredentials(s.opts.DefaultRegion)
	return c
}

// Handler returns the server's whole HTTP handler (every Jumio service,
// the web page and the control API), for mounting in another server. URLs
// in responses are built from each request's Host. The background sweeper
// runs only after Start: without it, call [Server.Sweep] (requests apply
// clock-driven transitions to the executions they touch anyway).
func (s *Server) Handler() http.Handler { return s.handler }

// goLocked starts f as a tracked background goroutine unless the server is
// closed. s.mu must be held.
func (s *Server) goLocked(f func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// afterLocked runs f after d (real time) unless the server closes first.
// s.mu must be held.
func (s *Server) afterLocked(d time.Duration, f func()) {
	s.goLocked(func() {
		if s.sleep(d) {
			f()
		}
	})
}

// sleep waits d; it returns false if the server closed first.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *Server) sweeper() {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

func (s *Server) now() time.Time { return s.opts.Now() }

// problem is Jumio's error body.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// writeProblem answers with Jumio's error shape. detail must never contain
// request values.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, problem{Title: http.StatusText(status), Status: status, Detail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"title":"Internal Server Error","status":500}`)
	}
	writeRawJSON(w, status, b)
}

func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(h[len(prefix):])
}
