// Command webhook-receiver is an example receiver of kycpipe's signed
// webhooks (Standard Webhooks). It verifies every delivery's signature,
// acknowledges each webhook-id once, logs the event type, webhook-id and
// job ID, and answers 204.
//
//	WEBHOOK_SECRET=whsec_... go run ./examples/webhook-receiver --listen 127.0.0.1:8070
//
// --failure-rate 0.1 answers 500 to a tenth of the verified deliveries, to
// watch kycpipe retry them; --hang-rate 0.05 holds a twentieth without an
// answer until the sender times out (at most --hang-for). --journal FILE
// appends one JSON line per verified delivery (path, webhook-id, type, job
// ID, the event's SHA-256, what was answered): the soak checks the
// deliveries with it. GET /stats returns the counters as JSON; GET
// /healthz answers 204.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/examples/webhook-receiver/receiver"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

func main() {
	listen := flag.String("listen", envOr("WEBHOOK_RECEIVER_LISTEN", "127.0.0.1:8070"), "listen address (env WEBHOOK_RECEIVER_LISTEN; not 8090, make run's Jumio simulator)")
	secret := flag.String("secret", "", "signing secret(s), whsec_…, comma-separated during a rotation; prefer env WEBHOOK_SECRET (flags show in ps)")
	failureRate := flag.String("failure-rate", envOr("WEBHOOK_FAILURE_RATE", "0"), "fraction of verified deliveries answered 500 on purpose, 0 to 1 (env WEBHOOK_FAILURE_RATE)")
	hangRate := flag.String("hang-rate", envOr("WEBHOOK_HANG_RATE", "0"), "fraction of verified deliveries held without an answer until the sender times out, 0 to 1 (env WEBHOOK_HANG_RATE)")
	hangFor := flag.Duration("hang-for", 30*time.Second, "longest hang of --hang-rate")
	journal := flag.String("journal", os.Getenv("WEBHOOK_JOURNAL"), "append one JSON line per verified delivery to this file (env WEBHOOK_JOURNAL)")
	tolerance := flag.Duration("tolerance", webhooks.DefaultTolerance, "accepted webhook-timestamp skew")
	flag.Parse()
	opts := options{failureRate: *failureRate, hangRate: *hangRate, hangFor: *hangFor, journal: *journal, tolerance: *tolerance}
	if err := start(*listen, cmp.Or(*secret, os.Getenv("WEBHOOK_SECRET")), opts); err != nil {
		fmt.Fprintln(os.Stderr, "webhook-receiver:", err)
		os.Exit(1)
	}
}

// options are the receiver's settings besides its address and secret.
type options struct {
	failureRate, hangRate string
	hangFor               time.Duration
	journal               string
	tolerance             time.Duration
}

func start(listen, rawSecret string, o options) error {
	failureRate, err := strconv.ParseFloat(o.failureRate, 64)
	if err != nil {
		return errors.New("--failure-rate / WEBHOOK_FAILURE_RATE: not a number")
	}
	hangRate, err := strconv.ParseFloat(o.hangRate, 64)
	if err != nil {
		return errors.New("--hang-rate / WEBHOOK_HANG_RATE: not a number")
	}
	secrets, err := webhooks.ParseSecrets(rawSecret)
	if err != nil {
		return fmt.Errorf("WEBHOOK_SECRET / --secret: the endpoint's whsec_ secret is required: %w", err)
	}
	logger, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	cfg := receiver.Config{Secrets: secrets, Tolerance: o.tolerance, FailureRate: failureRate, HangRate: hangRate, HangFor: o.hangFor, Logger: logger}
	if o.journal != "" {
		f, err := os.OpenFile(o.journal, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("--journal: %w", err)
		}
		defer f.Close()
		cfg.Journal = f
	}
	rc, err := receiver.NewReceiver(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("webhook receiver listening", zap.String("addr", ln.Addr().String()), zap.Float64("failure_rate", failureRate), zap.Float64("hang_rate", hangRate))
	if err := run(ctx, ln, rc.Handler()); err != nil {
		return err
	}
	logger.Info("webhook receiver stopped", zap.Any("stats", rc.Stats()))
	return nil
}

// run serves h on ln until ctx ends, then shuts down within 10 seconds.
func run(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
