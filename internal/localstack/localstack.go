// Package localstack runs a whole kycpipe pipeline in one process: an
// embedded NATS server with JetStream (or an external one), the Jumio
// simulator (or a real Jumio), ingest, workers, retrievers, notifiers and
// the example webhook receiver. It backs
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
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/examples/webhook-receiver/receiver"
	"github.com/kycpipe/kycpipe/internal/console"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
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
	// JumioLimiter, when set, paces every Jumio call of the stack's stages
	// (pipeline.JumioConfig.Limiter).
	JumioLimiter jumio.Limiter

	Topology  pipeline.Topology
	Ingest    pipeline.IngestConfig    // Topology, APIKeys, Logger, Metrics are filled in
	Worker    pipeline.WorkerConfig    // Topology, Jumio, CallbackURL, Logger, Metrics are filled in
	Retriever pipeline.RetrieverConfig // Topology, Jumio, Logger, Metrics are filled in
	Notifier  pipeline.NotifierConfig  // Topology, Logger, Metrics, WebhookMetrics are filled in
	// Workers, Retrievers and Notifiers is how many of each to start (0 is
	// allowed: tests add them with AddWorker, AddRetriever and AddNotifier).
	Workers, Retrievers, Notifiers int
	// WebhookReceiver starts the example webhook receiver
	// (examples/webhook-receiver) on loopback and registers it for every
	// event type, replacing the one a previous run registered. Ingest's and
	// the notifiers' webhook policy must allow http and loopback
	// (Ingest.Webhooks, Notifier.Webhooks).
	WebhookReceiver bool
	// Console, when set, mounts the operator console at /console/ (its
	// Topology, APIKeys, Gatherer, Webhooks and Logger are filled in).
	Console *console.Config

	Logger         *zap.Logger
	Registry       *prometheus.Registry
	TracerProvider trace.TracerProvider // default: none
}

// Stack is a running pipeline.
type Stack struct {
	NATS      *server.Server // nil with an external NATS
	NATSURL   string
	NC        *nats.Conn
	JS        jetstream.JetStream
	Sim       *jumiotest.Server // nil with an external Jumio
	Ingest    *pipeline.Ingest
	Console   *console.Console // nil without Options.Console
	IngestURL string
	APIKey    string
	Topology  pipeline.Topology
	// Receiver is the example webhook receiver (Options.WebhookReceiver),
	// listening on ReceiverURL and registered as ReceiverEndpoint.
	Receiver         *receiver.Receiver
	ReceiverURL      string
	ReceiverEndpoint *pipeline.WebhookEndpoint

	log         *zap.Logger
	http        *http.Server
	opts        Options
	clients     *pipeline.Clients
	metrics     *pipeline.Metrics
	webhookM    *pipeline.WebhookMetrics
	receiverSrv *http.Server
	callbackURL string
	wg          sync.WaitGroup
	mu          sync.Mutex
	procs       []*Process
	runErr      []error
	stopOnce    sync.Once
}

// Process is a running worker, retriever or notifier.
type Process struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Stop shuts the process down gracefully (in-flight work finishes within
// its shutdown grace, or is handed back) and waits for it, or for ctx.
func (p *Process) Stop(ctx context.Context) error {
	p.cancel()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AddWorker starts another worker. mutate adjusts its configuration.
func (s *Stack) AddWorker(ctx context.Context, mutate func(*pipeline.WorkerConfig)) (*Process, error) {
	wcfg := s.opts.Worker
	wcfg.Topology, wcfg.Jumio, wcfg.Logger, wcfg.Metrics = s.Topology, s.clients, s.log.Named("worker"), s.metrics
	if wcfg.CallbackURL == "" {
		wcfg.CallbackURL = s.callbackURL
	}
	wcfg.TracerProvider = s.opts.TracerProvider
	if mutate != nil {
		mutate(&wcfg)
	}
	w, err := pipeline.NewWorker(ctx, s.JS, wcfg)
	if err != nil {
		return nil, err
	}
	return s.goRun(w.Run), nil
}

// AddRetriever starts another retriever. mutate adjusts its configuration.
func (s *Stack) AddRetriever(ctx context.Context, mutate func(*pipeline.RetrieverConfig)) (*Process, error) {
	rcfg := s.opts.Retriever
	rcfg.Topology, rcfg.Jumio, rcfg.Logger, rcfg.Metrics = s.Topology, s.clients, s.log.Named("retriever"), s.metrics
	rcfg.TracerProvider = s.opts.TracerProvider
	if mutate != nil {
		mutate(&rcfg)
	}
	r, err := pipeline.NewRetriever(ctx, s.JS, rcfg)
	if err != nil {
		return nil, err
	}
	return s.goRun(r.Run), nil
}

// AddNotifier starts another notifier. mutate adjusts its configuration.
func (s *Stack) AddNotifier(ctx context.Context, mutate func(*pipeline.NotifierConfig)) (*Process, error) {
	ncfg := s.opts.Notifier
	ncfg.Topology, ncfg.Logger, ncfg.Metrics, ncfg.WebhookMetrics = s.Topology, s.log.Named("notifier"), s.metrics, s.webhookM
	ncfg.TracerProvider = s.opts.TracerProvider
	if mutate != nil {
		mutate(&ncfg)
	}
	n, err := pipeline.NewNotifier(ctx, s.JS, ncfg)
	if err != nil {
		return nil, err
	}
	return s.goRun(n.Run), nil
}

// receiverDescription marks the endpoint of the example receiver, so a
// restart on the same data directory replaces it.
const receiverDescription = "make run: the example receiver (examples/webhook-receiver)"

// startReceiver serves the example receiver on loopback and registers it
// for every event type.
func (s *Stack) startReceiver(ctx context.Context) error {
	reg, err := pipeline.NewWebhookEndpoints(ctx, s.JS, s.Topology, s.opts.Ingest.Webhooks, nil)
	if err != nil {
		return err
	}
	old, err := reg.List(ctx)
	if err != nil {
		return err
	}
	for _, ep := range old {
		if ep.Description == receiverDescription {
			if err := reg.Delete(ctx, ep.ID); err != nil {
				return err
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("localstack: webhook receiver: %w", err)
	}
	s.ReceiverURL = "http://" + ln.Addr().String() + "/kyc/webhooks"
	ep, secret, err := reg.Create(ctx, pipeline.WebhookEndpointInput{URL: s.ReceiverURL, EventTypes: []string{"*"}, Description: receiverDescription})
	if err != nil {
		ln.Close()
		return fmt.Errorf("localstack: register the webhook receiver: %w", err)
	}
	rc, err := receiver.NewReceiver(receiver.Config{Secrets: []webhooks.Secret{secret}, Logger: s.log.Named("webhook-receiver")})
	if err != nil {
		ln.Close()
		return err
	}
	s.Receiver, s.ReceiverEndpoint = rc, ep
	s.receiverSrv = &http.Server{Handler: rc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.receiverSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("webhook receiver failed", zap.Error(err))
		}
	}()
	return nil
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
	s.webhookM = pipeline.NewWebhookMetrics(reg, s.JS, s.Topology)
	var consumers [][2]string
	for _, stage := range []string{messages.StageWorker, messages.StageRetriever, messages.StageNotifier} {
		consumers = append(consumers, pipeline.ConsumersOf(s.Topology, stage)...)
	}
	reg.MustRegister(pipeline.NewConsumerCollector(s.JS, consumers...))

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
	icfg.TracerProvider = o.TracerProvider
	// The local stack's simulator calls back over loopback: callbacks open to
	// any source are intended here (cmd/ingest warns about them).
	icfg.Callbacks.Open = true
	if o.Console != nil {
		ccfg := *o.Console
		ccfg.Topology, ccfg.APIKeys, ccfg.Gatherer, ccfg.Logger = s.Topology, apiKeys, reg, log.Named("console")
		if ccfg.Webhooks, err = pipeline.NewWebhookEndpoints(ctx, s.JS, s.Topology, icfg.Webhooks, nil); err != nil {
			ln.Close()
			return nil, err
		}
		if s.Console, err = console.New(ctx, s.JS, ccfg); err != nil {
			ln.Close()
			return nil, err
		}
		icfg.Console = s.Console
	}
	if s.Ingest, err = pipeline.NewIngest(ctx, s.NC, s.JS, icfg); err != nil {
		ln.Close()
		return nil, err
	}
	// The same limits as cmd/ingest's server: header, read and write
	// timeouts and a header size bound.
	s.http = service.NewHTTPServer(s.Ingest.Handler())
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
		UserAgent: "kycpipe-local/dev", Observer: metrics.JumioObserver(), TracerProvider: o.TracerProvider, Limiter: o.JumioLimiter}
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

	s.clients, s.metrics, s.callbackURL, s.opts = clients, metrics, callbackURL, o
	for i := 0; i < o.Workers; i++ {
		if _, err := s.AddWorker(ctx, nil); err != nil {
			return nil, err
		}
	}
	for i := 0; i < o.Retrievers; i++ {
		if _, err := s.AddRetriever(ctx, nil); err != nil {
			return nil, err
		}
	}
	if o.WebhookReceiver {
		if err := s.startReceiver(ctx); err != nil {
			return nil, err
		}
	}
	for i := 0; i < o.Notifiers; i++ {
		if _, err := s.AddNotifier(ctx, nil); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Stack) startNATS(o Options) error {
	if o.NATSURL != "" {
		s.NATSURL = o.NATSURL
	} else {
		ns, err := natsembed.Run(natsembed.Options{StoreDir: o.DataDir, Port: o.NATSPort})
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

func (s *Stack) goRun(run func(context.Context) error) *Process {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Process{cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(p.done)
		if p.err = run(ctx); p.err != nil {
			s.mu.Lock()
			s.runErr = append(s.runErr, p.err)
			s.mu.Unlock()
		}
	}()
	return p
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
		s.mu.Lock()
		for _, p := range s.procs {
			p.cancel()
		}
		s.mu.Unlock()
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
		if s.receiverSrv != nil {
			_ = s.receiverSrv.Close()
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
