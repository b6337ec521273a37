package riverpeer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// ErrInvalidConfig is wrapped by New's errors about its configuration.
var ErrInvalidConfig = errors.New("riverpeer: invalid configuration")

// Config configures a Peer. Pool, Jumio and CallbackURL are required.
type Config struct {
	// Pool is the pgx pool River and the peer share. Size it to the
	// database's cores, not to the workers: a worker holds a connection
	// only for a checkpoint's transaction (see cmd/riverpeer's -pool-size).
	Pool *pgxpool.Pool
	// IngestPool serves the submission and callback routes' batch
	// transactions, so that HTTP answers never queue for a connection
	// behind hundreds of workers' checkpoints (default: Pool). Size it to
	// the flushers: 2 × Flushers.
	IngestPool *pgxpool.Pool
	// Jumio returns the client of a region (kycpipe's region spellings).
	Jumio func(jumio.Region) (*jumio.Client, error)
	// CallbackURL is sent to Jumio as callbackUrl: this peer's
	// POST /v1/callbacks/jumio.
	CallbackURL string
	// APIKeys are the accepted bearer keys of POST /v1/verifications;
	// empty accepts any request (no auth).
	APIKeys []string
	// VerifyWorkers and RetrieveWorkers are the queues' MaxWorkers
	// (default 256 each, kycpipe's worker and retriever concurrency in
	// `make bench`).
	VerifyWorkers, RetrieveWorkers int
	// AccountConcurrency bounds the account calls in flight, as kycpipe's
	// KYCPIPE_ACCOUNT_CONCURRENCY does (default 2): it bounds how many
	// accounts a crash can orphan.
	AccountConcurrency int
	// FetchCooldown is River's minimum time between two fetches of a queue
	// (default River's 100ms).
	FetchCooldown time.Duration
	// BatchSize bounds the submissions or callbacks written in one
	// transaction (default 256); Flushers is the number of such
	// transactions in flight (default 4).
	BatchSize, Flushers int
	// ProcessingGrace bounds the lost-callback polling after finalize
	// (default 1h, kycpipe's default).
	ProcessingGrace time.Duration
	// PollSchedule is when the poll job looks, counted from finalize
	// (default Jumio's recommendation: 40s, 60s, 100s, … 940s, then every
	// 5 minutes).
	PollSchedule []time.Duration
	// Logger receives the peer's logs (IDs only); River's own go to
	// RiverLogger. Default: no logs.
	Logger      *zap.Logger
	RiverLogger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.VerifyWorkers = cmp.Or(c.VerifyWorkers, 256)
	c.RetrieveWorkers = cmp.Or(c.RetrieveWorkers, 256)
	c.AccountConcurrency = cmp.Or(c.AccountConcurrency, 2)
	c.BatchSize = cmp.Or(c.BatchSize, 256)
	c.Flushers = cmp.Or(c.Flushers, 4)
	c.ProcessingGrace = cmp.Or(c.ProcessingGrace, time.Hour)
	if len(c.PollSchedule) == 0 {
		for _, s := range []int{40, 60, 100, 160, 240, 340, 460, 600, 760, 940} {
			c.PollSchedule = append(c.PollSchedule, time.Duration(s)*time.Second)
		}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.RiverLogger == nil {
		c.RiverLogger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.IngestPool == nil {
		c.IngestPool = c.Pool
	}
	return c
}

// Peer is the River saga: a River client with the saga's workers, and the
// HTTP handler of the submission and callback routes.
type Peer struct {
	cfg          Config
	pool         *pgxpool.Pool
	ingestPool   *pgxpool.Pool
	river        *river.Client[pgx.Tx]
	log          *zap.Logger
	accountSlots chan struct{}
	submissions  *batcher[submission, submitResult]
	callbacks    *batcher[callbackItem, bool]
}

// New builds a Peer (the database must be migrated: see Migrate).
func New(cfg Config) (*Peer, error) {
	if cfg.Pool == nil || cfg.Jumio == nil || cfg.CallbackURL == "" {
		return nil, fmt.Errorf("%w: Pool, Jumio and CallbackURL are required", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	p := &Peer{cfg: cfg, pool: cfg.Pool, ingestPool: cfg.IngestPool, log: cfg.Logger, accountSlots: make(chan struct{}, cfg.AccountConcurrency)}
	p.submissions = newBatcher(cfg.BatchSize, cfg.Flushers, p.flushSubmissions)
	p.callbacks = newBatcher(cfg.BatchSize, cfg.Flushers, p.flushCallbacks)

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &verifyWorker{p: p}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &retrieveWorker{p: p}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &pollWorker{p: p}); err != nil {
		return nil, err
	}
	rc, err := river.NewClient(riverpgxv5.New(cfg.Pool), &river.Config{
		Logger:        cfg.RiverLogger,
		FetchCooldown: cfg.FetchCooldown,
		Queues: map[string]river.QueueConfig{
			QueueVerify:   {MaxWorkers: cfg.VerifyWorkers},
			QueueRetrieve: {MaxWorkers: cfg.RetrieveWorkers},
		},
		Workers: workers,
	})
	if err != nil {
		return nil, fmt.Errorf("riverpeer: river client: %w", err)
	}
	p.river = rc
	return p, nil
}

// River returns the peer's River client.
func (p *Peer) River() *river.Client[pgx.Tx] { return p.river }

// Run starts River and serves the HTTP routes on ln until ctx ends, then
// stops accepting requests, lets River finish the jobs in flight and
// returns.
func (p *Peer) Run(ctx context.Context, ln net.Listener) error {
	if err := p.river.Start(ctx); err != nil {
		return fmt.Errorf("riverpeer: start river: %w", err)
	}
	bctx, stopBatchers := context.WithCancel(context.WithoutCancel(ctx))
	batchersDone := make(chan struct{}, 2)
	go func() { p.submissions.run(bctx); batchersDone <- struct{}{} }()
	go func() { p.callbacks.run(bctx); batchersDone <- struct{}{} }()

	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	stopBatchers()
	<-batchersDone
	<-batchersDone
	if serr := p.river.Stop(sctx); serr != nil && err == nil && !errors.Is(serr, context.Canceled) {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Handler serves POST /v1/verifications, POST /v1/callbacks/jumio and
// GET /healthz.
func (p *Peer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/verifications", p.handleSubmit)
	mux.HandleFunc("POST /v1/callbacks/jumio", p.handleCallback)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}
