// Package localstack runs a whole kycpipe pipeline in one process: an
// embedded NATS server with JetStream (or an external one), the Jumio
// simulator (or a real Jumio), ingest, a worker and a retriever. It backs
// `make run` and the integration tests, so both exercise the same wiring
// as the separate binaries.
package localstack

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Options configures a Stack. The zero value with a DataDir runs everything
// in process on loopback with random ports.
type Options struct {
	// DataDir is the embedded NATS server's JetStream store (required unless
	// NATSURL is set). Reusing it keeps every stream and job.
	DataDir string
	// NATSURL connects to an external NATS server instead of embedding one.
	NATSURL string
	// NATSPort for the embedded server: 0 picks a free port.
	NATSPort int
	// HTTPAddr is ingest's listen address (default 127.0.0.1:0).
	HTTPAddr string
	// APIKeys accepted by ingest (default: one generated key, see Stack.APIKey).
	APIKeys []string
	// JumioBaseURL uses an existing Jumio (or simulator) instead of starting
	// the built-in simulator; then JumioCredentials are required.
	JumioBaseURL     string
	JumioCredentials jumio.Credentials
	// Sim configures the built-in simulator.
	Sim jumiotest.Options

	Topology  pipeline.Topology
	Ingest    pipeline.IngestConfig    // Topology, APIKeys, Logger, Metrics are filled in
	Worker    pipeline.WorkerConfig    // Topology, Jumio, CallbackURL, Logger, Metrics are filled in
	Retriever pipeline.RetrieverConfig // Topology, Jumio, Logger, Metrics are filled in
	// Workers and Retrievers is how many of each to run (default 1 each).
	Workers, Retrievers int

	Logger   *zap.Logger
	Registry *prometheus.Registry
}

// Stack is a running pipeline.
type Stack struct {
	NATS      *server.Server // nil with an external NATS
	NATSURL   string
	NC        *nats.Conn
	JS        jetstream.JetStream
	Sim       *jumiotest.Server // nil with an external Jumio
	Ingest    *pipeline.Ingest
	IngestURL string
	APIKey    string
	Topology  pipeline.Topology

	log      *zap.Logger
	http     *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	runErr   []error
	stopOnce sync.Once
}

// Start provisions the topology and starts every component.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Stack{log: log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.startNATS(o); err != nil {
		return nil, err
	}
	topo := o.Topology
	if topo.Storage == 0 && o.NATSURL == "" {
		topo.Storage = jetstream.FileStorage
	}
	s.Topology = topo.WithDefaults()
	if err := pipeline.Provision(ctx, s.JS, s.Topology); err != nil {
		return nil, err
	}

	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	metrics := pipeline.NewMetrics(reg)

	// Ingest first: its URL is the callback URL given to Jumio.
	ln, err := net.Listen("tcp", cmp.Or(o.HTTPAddr, "127.0.0.1:0"))
	if err != nil {
		return nil, fmt.Errorf("localstack: listen: %w", err)
	}
	s.IngestURL = "http://" + ln.Addr().String()
	keys := o.APIKeys
	if len(keys) == 0 {
		keys = []string{"local-dev-key-" + randomHex(12)}
	}
	s.APIKey = keys[0]
	apiKeys, err := pipeline.NewAPIKeys(keys)
	if err != nil {
		ln.Close()
		return nil, err
	}
	icfg := o.Ingest
	icfg.Topology, icfg.APIKeys, icfg.Logger, icfg.Metrics = s.Topology, apiKeys, log.Named("ingest"), metrics
	icfg.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if s.Ingest, err = pipeline.NewIngest(ctx, s.NC, s.JS, icfg); err != nil {
		ln.Close()
		return nil, err
	}
	s.http = &http.Server{Handler: s.Ingest.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ingest HTTP server failed", zap.Error(err))
		}
	}()
	callbackURL := s.IngestURL + "/v1/callbacks/jumio"
	if icfg.Callbacks.Secret != "" {
		callbackURL += "/" + icfg.Callbacks.Secret
	}

	jcfg := pipeline.JumioConfig{Credentials: o.JumioCredentials, BaseURL: o.JumioBaseURL,
		UserAgent: "kycpipe-local/dev", Observer: metrics.JumioObserver()}
	if o.JumioBaseURL == "" {
		simOpts := o.Sim
		if simOpts.Logger == nil {
			simOpts.Logger = log.Named("jumiosim")
		}
		if s.Sim, err = jumiotest.StartServer(simOpts); err != nil {
			return nil, err
		}
		jcfg.BaseURL, jcfg.Credentials = s.Sim.URL, s.Sim.Credentials()
	}
	clients, err := pipeline.NewClients(jcfg, log)
	if err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for i := 0; i < max(1, o.Workers); i++ {
		wcfg := o.Worker
		wcfg.Topology, wcfg.Jumio, wcfg.Logger, wcfg.Metrics = s.Topology, clients, log.Named("worker"), metrics
		if wcfg.CallbackURL == "" {
			wcfg.CallbackURL = callbackURL
		}
		w, err := pipeline.NewWorker(ctx, s.JS, wcfg)
		if err != nil {
			return nil, err
		}
		s.goRun(func() error { return w.Run(runCtx) })
	}
	for i := 0; i < max(1, o.Retrievers); i++ {
		rcfg := o.Retriever
		rcfg.Topology, rcfg.Jumio, rcfg.Logger, rcfg.Metrics = s.Topology, clients, log.Named("retriever"), metrics
		r, err := pipeline.NewRetriever(ctx, s.JS, rcfg)
		if err != nil {
			return nil, err
		}
		s.goRun(func() error { return r.Run(runCtx) })
	}
	return s, nil
}

func (s *Stack) startNATS(o Options) error {
	if o.NATSURL != "" {
		s.NATSURL = o.NATSURL
	} else {
		ns, err := pipeline.RunEmbedded(pipeline.EmbeddedOptions{StoreDir: o.DataDir, Port: o.NATSPort})
		if err != nil {
			return err
		}
		s.NATS, s.NATSURL = ns, ns.ClientURL()
	}
	nc, err := nats.Connect(s.NATSURL, nats.Name("kycpipe-local"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("localstack: connect to NATS: %w", err)
	}
	s.NC = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s.JS = js
	return nil
}

func (s *Stack) goRun(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			s.mu.Lock()
			s.runErr = append(s.runErr, err)
			s.mu.Unlock()
		}
	}()
}

// Stop shuts down gracefully: ingest stops taking requests, workers and
// retrievers finish or hand back in-flight work, then NATS is drained. It
// returns once everything stopped or ctx ended.
func (s *Stack) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.Ingest != nil {
			s.Ingest.SetDraining(true)
		}
		if s.http != nil {
			err = errors.Join(err, s.http.Shutdown(ctx))
		}
		if s.cancel != nil {
			s.cancel()
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
		}
		if s.NC != nil {
			_ = s.NC.Drain()
		}
		if s.Sim != nil {
			s.Sim.Close()
		}
		if s.NATS != nil {
			s.NATS.Shutdown()
			s.NATS.WaitForShutdown()
		}
		s.mu.Lock()
		err = errors.Join(append([]error{err}, s.runErr...)...)
		s.mu.Unlock()
	})
	return err
}

// Close stops the stack with a 30s bound.
func (s *Stack) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		s.log.Warn("stack stopped with errors", zap.Error(err))
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
