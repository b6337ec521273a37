// Command riverpeer runs kycpipe's saga on River (package riverpeer), the
// peer that `make bench-peers` measures against kycpipe.
//
//	riverpeer migrate -database-url URL          River's schema and the peer's tables
//	riverpeer serve   -database-url URL -addr A  the peer: HTTP routes + River workers
//	riverpeer watch   -database-url URL          print each decision's job ID (LISTEN kyc_decision)
//
// Jumio's settings come from the same environment variables as kycpipe's
// (JUMIO_BASE_URL, JUMIO_CLIENT_ID, JUMIO_CLIENT_SECRET, JUMIO_USER_AGENT).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	riverpeer "github.com/kycpipe/kycpipe/peers/river"
	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "riverpeer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: riverpeer migrate|serve|watch [flags]")
	}
	fs := flag.NewFlagSet("riverpeer "+args[0], flag.ContinueOnError)
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (DATABASE_URL)")
	switch args[0] {
	case "migrate":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pool, err := pgxpool.New(ctx, *dbURL)
		if err != nil {
			return err
		}
		defer pool.Close()
		return riverpeer.Migrate(ctx, pool)
	case "watch":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return watch(ctx, *dbURL, stdout)
	case "serve":
		return serve(ctx, fs, args[1:])
	}
	return fmt.Errorf("unknown command %q (migrate, serve, watch)", args[0])
}

func serve(ctx context.Context, fs *flag.FlagSet, args []string) error {
	var cfg riverpeer.Config
	addr := fs.String("addr", "127.0.0.1:8080", "listen address of the HTTP routes")
	poolSize := fs.Int("pool-size", 16, "pgx pool size of River and the workers (connections to PostgreSQL)")
	ingestPoolSize := fs.Int("ingest-pool-size", 8, "pgx pool size of the submission and callback routes (0: share the main pool)")
	apiKeys := fs.String("api-keys", "", "accepted bearer keys, comma-separated (empty: no auth)")
	profile := fs.String("cpu-profile", "", "write a CPU profile (pprof) here from start to shutdown")
	dbURL := fs.Lookup("database-url")
	fs.StringVar(&cfg.CallbackURL, "callback-url", "", "public URL of POST /v1/callbacks/jumio (default: http://<addr>/v1/callbacks/jumio)")
	fs.IntVar(&cfg.VerifyWorkers, "verify-workers", 256, "MaxWorkers of the verify queue")
	fs.IntVar(&cfg.RetrieveWorkers, "retrieve-workers", 256, "MaxWorkers of the retrieve queue")
	fs.IntVar(&cfg.AccountConcurrency, "account-concurrency", 2, "account calls in flight at most")
	fs.DurationVar(&cfg.FetchCooldown, "fetch-cooldown", 100*time.Millisecond, "River's minimum time between fetches of a queue")
	fs.IntVar(&cfg.BatchSize, "batch-size", 256, "submissions or callbacks per transaction at most")
	fs.IntVar(&cfg.Flushers, "flushers", 4, "batch transactions in flight at most, per route")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logCfg := zap.NewProductionConfig()
	logCfg.Sampling, logCfg.DisableCaller, logCfg.DisableStacktrace = nil, true, true
	log, err := logCfg.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}

	pcfg, err := pgxpool.ParseConfig(dbURL.Value.String())
	if err != nil {
		return fmt.Errorf("database-url: %w", err)
	}
	pcfg.MaxConns = int32(*poolSize)
	pcfg.MinConns = int32(*poolSize)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *ingestPoolSize > 0 {
		icfg := pcfg.Copy()
		icfg.MaxConns, icfg.MinConns = int32(*ingestPoolSize), int32(*ingestPoolSize)
		ipool, err := pgxpool.NewWithConfig(ctx, icfg)
		if err != nil {
			return err
		}
		defer ipool.Close()
		cfg.IngestPool = ipool
	}

	creds := jumio.Credentials{ClientID: os.Getenv("JUMIO_CLIENT_ID"), ClientSecret: os.Getenv("JUMIO_CLIENT_SECRET")}
	var mu sync.Mutex
	clients := map[jumio.Region]*jumio.Client{}
	cfg.Jumio = func(r jumio.Region) (*jumio.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := clients[r]; ok {
			return c, nil
		}
		opts := []jumio.Option{jumio.WithRegion(r), jumio.WithUserAgent(os.Getenv("JUMIO_USER_AGENT"))}
		if base := os.Getenv("JUMIO_BASE_URL"); base != "" {
			opts = append(opts, jumio.WithBaseURL(base))
		}
		c, err := jumio.New(creds, opts...)
		if err != nil {
			return nil, err
		}
		clients[r] = c
		return c, nil
	}
	if *apiKeys != "" {
		cfg.APIKeys = strings.Split(*apiKeys, ",")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if cfg.CallbackURL == "" {
		cfg.CallbackURL = "http://" + ln.Addr().String() + "/v1/callbacks/jumio"
	}
	cfg.Pool, cfg.Logger = pool, log
	cfg.RiverLogger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	peer, err := riverpeer.New(cfg)
	if err != nil {
		return err
	}
	log.Info("serving", zap.String("addr", ln.Addr().String()), zap.Int("pool_size", *poolSize), zap.Int("ingest_pool_size", *ingestPoolSize))
	return peer.Run(ctx, ln)
}

// watch prints "listening", then the job ID of every decision as it is
// committed, one per line.
func watch(ctx context.Context, dbURL string, stdout io.Writer) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+riverpeer.DecisionChannel); err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	fmt.Fprintln(w, "listening")
	if err := w.Flush(); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		w.WriteString(n.Payload)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil {
			return err
		}
	}
}
