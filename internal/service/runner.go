package service

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Service is what a binary runs once everything is connected: a stage that
// works until its context ends, then stops gracefully, and that can say
// whether it is ready.
type Service interface {
	Run(ctx context.Context) error
	Ready(ctx context.Context) error
}

// Env is what a Program's Build gets: the connected, provisioned world.
type Env struct {
	Log      *zap.Logger
	NC       *nats.Conn
	JS       jetstream.JetStream
	Topology pipeline.Topology
	Registry *prometheus.Registry
	Metrics  *pipeline.Metrics
	Tracer   trace.TracerProvider
}

// Program describes one kycpipe binary to [Program.Run]: everything the
// binaries share (logging, tracing, the operations listener, connecting to
// NATS, provisioning, signals and draining) is done there, and a binary
// only adds its settings and the stage it builds.
type Program struct {
	Name    string // the component name in logs and the NATS connection
	Common  *Common
	Tracing *Tracing
	// OpsAddr is where /healthz, /readyz and /metrics are served; "" when
	// the service serves them itself (ingest).
	OpsAddr string
	// Check validates what needs no connection. It runs before anything
	// is connected, so a bad setting stops the process at once with an
	// error naming it, even when NATS is down.
	Check func() error
	// Build builds the service once NATS is connected and the topology is
	// provisioned (or checked).
	Build func(ctx context.Context, env *Env) (Service, error)
}

// ErrConnectionClosed is returned by Run when the NATS connection closed
// for good (the client gave up reconnecting, or the server refused it):
// the process exits non-zero so that its supervisor restarts it.
var ErrConnectionClosed = errors.New("NATS connection closed")

// Run runs the program until ctx ends (SIGTERM), then drains and returns.
func (p Program) Run(ctx context.Context) (err error) {
	if err := p.Common.Validate(); err != nil {
		return err
	}
	if p.Check != nil {
		if err := p.Check(); err != nil {
			return err
		}
	}
	log, err := p.Common.Logger(p.Name)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopProfile, err := p.Common.StartCPUProfile(log)
	if err != nil {
		return err
	}
	defer stopProfile()
	tp, flushTraces, err := p.Tracing.Provider(ctx, p.Name)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = flushTraces(fctx)
	}()
	reg := NewRegistry()
	var ops *Ops
	if p.OpsAddr != "" {
		// Listen before connecting: a bad address is a setting error.
		if ops, err = StartOps(p.OpsAddr, reg, log); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ops.Close(sctx)
		}()
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var stopping atomic.Bool // this process closes the connection on purpose
	nc, js, err := p.Common.Connect(p.Name, log, func(err error) {
		if stopping.Load() {
			return
		}
		log.Error("NATS connection closed for good; stopping so the supervisor restarts this process", zap.Error(err))
		if ops != nil {
			ops.Fail(ErrConnectionClosed)
		}
		cancel(ErrConnectionClosed)
	})
	if err != nil {
		return err
	}
	defer func() { stopping.Store(true); nc.Close() }()
	topo := p.Common.Topology()
	if err := p.Common.Setup(ctx, js, topo, log); err != nil {
		return errors.Join(err, context.Cause(ctx))
	}
	env := &Env{Log: log, NC: nc, JS: js, Topology: topo, Registry: reg, Metrics: pipeline.NewMetrics(reg), Tracer: tp}
	svc, err := p.Build(ctx, env)
	if err != nil {
		return err
	}
	if ops != nil {
		ops.SetReady(svc.Ready)
		log.Info(p.Name+" started", zap.String("nats", nc.ConnectedUrlRedacted()), zap.String("ops_addr", ops.Addr()), zap.String("version", Version))
	}

	runErr := svc.Run(ctx) // returns after a graceful stop once ctx ends
	if ops != nil {
		ops.Drain()
	}
	log.Info(p.Name + " stopping: draining NATS")
	stopping.Store(true)
	_ = nc.Drain()
	if cause := context.Cause(ctx); errors.Is(cause, ErrConnectionClosed) {
		return fmt.Errorf("%s: %w", p.Name, cause)
	}
	if runErr != nil {
		return fmt.Errorf("%s: %w", p.Name, runErr)
	}
	log.Info(p.Name + " stopped")
	return nil
}
