// Command jumiosim runs the Jumio platform API simulator
// (github.com/kycpipe/kycpipe/pkg/jumio/jumiotest) as a standalone server,
// for demos and out-of-process tests. Point kycpipe at it with
// JUMIO_BASE_URL and drive it through its control API under /_sim/ (which
// has no authentication: keep the simulator on a trusted network).
//
//	jumiosim -addr 127.0.0.1:8090 -callback-intermediate -latency details=200ms -fail create_account=2:503
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "jumiosim:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("jumiosim", flag.ContinueOnError)
	var o jumiotest.Options
	cb := &o.Callbacks
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:8090", "listen address")
	id := fs.String("client-id", jumiotest.DefaultClientID, "OAuth2 client ID accepted by the token endpoint")
	secret := fs.String("client-secret", jumiotest.DefaultClientSecret, "OAuth2 client secret")
	fs.DurationVar(&o.TokenTTL, "token-ttl", jumiotest.DefaultTokenTTL, "access token lifetime")
	fs.DurationVar(&o.TokenReuseMin, "token-reuse-min", jumiotest.DefaultTokenReuseMin, "hand back the current token while it has this much life left (negative: always mint)")
	rateLimits := fs.Bool("rate-limits", false, "enable Jumio's default per-tenant rate limits")
	accountRPS := fs.Float64("account-rps", 0, "account calls per second (enables rate limits)")
	accountBurst := fs.Int("account-burst", 0, "account call burst")
	retrievalRPS := fs.Float64("retrieval-rps", 0, "retrieval calls per second (enables rate limits)")
	tokenRPS := fs.Float64("token-rps", 0, "token calls per second and client (enables rate limits)")
	latency := fs.String("latency", "", "added latency per route, e.g. details=200ms,token=1s")
	fail := fs.String("fail", "", "faults for the first requests per route, e.g. create_account=3:500,status=1:503")
	fs.DurationVar(&cb.Delay, "callback-delay", 0, "delay before each callback delivery")
	fs.IntVar(&cb.DropFirst, "callback-drop-first", 0, "drop the first N callbacks")
	fs.Float64Var(&cb.DropRate, "callback-drop-rate", 0, "probability of dropping a callback (0..1)")
	fs.IntVar(&cb.Duplicates, "callback-duplicates", 0, "extra copies of every callback")
	fs.BoolVar(&cb.Reorder, "callback-reorder", false, "deliver an execution's callbacks in reverse order")
	fs.BoolVar(&cb.Intermediate, "callback-intermediate", false, "also send ACQUISITION_STARTED and ACQUIRED callbacks")
	fs.IntVar(&cb.Retries, "callback-retries", 0, "re-deliveries after a failed callback")
	fs.DurationVar(&o.ProcessingDelay, "processing-delay", 0, "time from ACQUIRED to PROCESSED")
	fs.DurationVar(&o.RetrievableDelay, "retrievable-delay", 0, "after PROCESSED, details answer 404 for this long")
	fs.DurationVar(&o.AutoCompleteWeb, "auto-complete-web", 0, "complete WEB/SDK executions this long after creation (0: off)")
	fs.StringVar(&o.DefaultCallbackURL, "default-callback-url", "", "callback URL for requests without callbackUrl")
	fs.BoolVar(&o.StrictCallbackURL, "strict-callback-url", false, "enforce Jumio's callbackUrl rules (https, no IP, no port)")
	fs.BoolVar(&o.AllowMissingUserAgent, "allow-missing-user-agent", false, "accept requests without User-Agent")
	fs.Int64Var(&o.Seed, "seed", 0, "seed for random callback drops")
	logFormat := fs.String("log-format", "console", "log format: json or console")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Clients = []jumiotest.ClientCredentials{{ID: *id, Secret: *secret}}
	if *rateLimits || *accountRPS > 0 || *accountBurst > 0 || *retrievalRPS > 0 || *tokenRPS > 0 {
		o.RateLimits = jumiotest.DefaultRateLimits()
		setIf(&o.RateLimits.AccountPerSecond, *accountRPS)
		setIf(&o.RateLimits.AccountBurst, *accountBurst)
		setIf(&o.RateLimits.RetrievalPerSecond, *retrievalRPS)
		setIf(&o.RateLimits.TokenPerSecond, *tokenRPS)
	}
	var err error
	if o.Latency, err = jumiotest.ParseLatencies(*latency); err != nil {
		return fmt.Errorf("-latency: %w", err)
	}
	faults, err := jumiotest.ParseFaults(*fail)
	if err != nil {
		return fmt.Errorf("-fail: %w", err)
	}
	logger, err := newLogger(*logFormat)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	o.Logger = logger

	s, err := jumiotest.StartServer(o)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, f := range faults {
		s.FailNextWith(f.Route, f.Count, f.Fault)
	}
	fmt.Fprintf(stdout, "jumiosim listening on %s\n", s.URL)
	fmt.Fprintf(stdout, "OAuth2 client: id=%s secret=%s\n", *id, *secret)
	fmt.Fprintf(stdout, "use JUMIO_BASE_URL=%s; control API under %s/_sim/\n", s.URL, s.URL)
	<-ctx.Done()
	logger.Info("shutting down")
	return nil
}

func setIf[T int | float64](dst *T, v T) {
	if v > 0 {
		*dst = v
	}
}

func newLogger(format string) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	switch format {
	case "json":
	case "console":
		cfg.Encoding = "console"
		cfg.EncoderConfig = zap.NewDevelopmentEncoderConfig()
	default:
		return nil, fmt.Errorf("-log-format must be json or console, not %q", format)
	}
	return cfg.Build()
}
