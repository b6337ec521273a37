// Command jumiosim runs the Jumio platform API simulator
// (github.com/kycpipe/kycpipe/pkg/jumio/jumiotest) as a standalone server,
// for demos and out-of-process tests. Point kycpipe at it with
// JUMIO_BASE_URL (the root for the default region, {URL}/regions/{region}
// for any region) and drive it through its control API under /_sim/ (which
// has no authentication: keep the simulator on a trusted network).
// jumiosim -h lists the flags and the outcome markers (notexec, reject,
// warn, alert).
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
	"runtime/pprof"
	"syscall"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
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
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.logFormat)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	cfg.opts.Logger = logger
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}

	s, err := jumiotest.StartServer(cfg.opts)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, f := range cfg.faults {
		s.FailNextWith(f.Route, f.Count, f.Fault)
	}
	c := s.Credentials()
	fmt.Fprintf(stdout, "jumiosim listening on %s\n", s.URL)
	fmt.Fprintf(stdout, "OAuth2 client: id=%s secret=%s\n", c.ClientID, c.ClientSecret)
	for _, r := range jumio.Regions {
		rc, _ := s.RegionCredentials(r)
		fmt.Fprintf(stdout, "region %s: %s (client id=%s secret=%s)\n", r, s.RegionURL(r), rc.ClientID, rc.ClientSecret)
	}
	fmt.Fprintf(stdout, "use JUMIO_BASE_URL=%s; control API under %s/_sim/\n", s.URL, s.URL)
	<-ctx.Done()
	logger.Info("shutting down")
	return nil
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
