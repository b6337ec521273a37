package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// settings are the worker's flags and environment variables.
type settings struct {
	common                                service.Common
	tracing                               service.Tracing
	jcfg                                  service.Jumio
	retry                                 service.Retry
	limits                                service.Limits
	metricsAddr, callbackURL              string
	concurrency, retryBudget, accountConc int
}

func newSettings(getenv func(string) string) (*settings, *config.Set) {
	s := &settings{}
	set := config.New("worker", getenv)
	s.common.Bind(set)
	s.tracing.Bind(set)
	s.jcfg.Bind(set)
	s.retry.Bind(set)
	s.limits.Bind(set)
	set.String(&s.metricsAddr, "metrics-addr", "KYCPIPE_METRICS_ADDR", ":9090", "listen address for /healthz, /readyz and /metrics")
	set.String(&s.callbackURL, "callback-url", "KYCPIPE_CALLBACK_URL", "", "public URL of ingest's callback route, sent to Jumio as callbackUrl (unset: Jumio uses the portal's URL)")
	set.Int(&s.concurrency, "concurrency", "KYCPIPE_WORKER_CONCURRENCY", 32, "jobs this process runs at once")
	set.Int(&s.accountConc, "account-concurrency", "KYCPIPE_ACCOUNT_CONCURRENCY", 2, "account calls in flight at once (bounds the accounts a crash can orphan: Jumio's account API has no idempotency key)")
	set.Int(&s.retryBudget, "retry-budget", "KYCPIPE_RETRY_BUDGET", 10, "retryable Jumio failures a job may have before it fails")
	return s, set
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	st, set := newSettings(getenv)
	if err := set.Parse(args); err != nil {
		return err
	}
	common, tracing, jcfg, retry, limits := &st.common, &st.tracing, &st.jcfg, &st.retry, &st.limits
	metricsAddr, callbackURL, concurrency, retryBudget, accountConc := st.metricsAddr, st.callbackURL, st.concurrency, st.retryBudget, st.accountConc
	if err := common.Validate(); err != nil {
		return err
	}
	log, err := common.Logger("worker")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopProfile, err := common.StartCPUProfile(log)
	if err != nil {
		return err
	}
	defer stopProfile()
	tp, flushTraces, err := tracing.Provider(ctx, "worker")
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = flushTraces(fctx)
	}()
	if callbackURL == "" {
		log.Warn("KYCPIPE_CALLBACK_URL is not set: Jumio will call the portal's callback URL, or none (decisions then come from polling)")
	} else if msg := jumio.CheckCallbackURL(callbackURL); msg != "" {
		log.Warn("KYCPIPE_CALLBACK_URL breaks Jumio's callback URL rules; fine for a simulator, not for Jumio", zap.String("rule", msg))
	}

	reg := service.NewRegistry()
	metrics := pipeline.NewMetrics(reg)
	if err := jcfg.CheckJumio(); err != nil {
		return err
	}
	nc, js, err := common.Connect("worker", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	topo := common.Topology()
	if err := common.Setup(ctx, js, topo, log); err != nil {
		return err
	}
	reg.MustRegister(pipeline.NewConsumerCollector(js, pipeline.ConsumersOf(topo, messages.StageWorker)...))
	limiters, err := limits.Build(ctx, js, topo, log, metrics)
	if err != nil {
		return err
	}
	jcfg.TracerProvider = tp
	clients, err := jcfg.Clients(common.DefaultRegion(), log, metrics.JumioObserver(), limiters)
	if err != nil {
		return err
	}
	w, err := pipeline.NewWorker(ctx, js, pipeline.WorkerConfig{
		Topology: topo, Jumio: clients, CallbackURL: callbackURL, Concurrency: concurrency,
		RetryBudget: retryBudget, AccountConcurrency: accountConc, Backoff: retry.Backoff(), ShutdownGrace: common.ShutdownTimeout * 4 / 5, Logger: log, Metrics: metrics, TracerProvider: tp,
		AfterCheckpoint: crashHook(getenv("KYCPIPE_TEST_KILL_AFTER"), log),
	})
	if err != nil {
		return err
	}
	ops, err := service.StartOps(metricsAddr, reg, w.Ready, log)
	if err != nil {
		return err
	}
	log.Info("worker started", zap.String("nats", nc.ConnectedUrlRedacted()), zap.String("ops_addr", ops.Addr()),
		zap.Int("concurrency", concurrency), zap.String("version", service.Version))

	err = w.Run(ctx) // returns after a graceful stop once ctx is canceled
	ops.Drain()
	log.Info("worker stopping: draining NATS")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = nc.Drain()
	_ = ops.Close(shutdownCtx)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	log.Info("worker stopped")
	return nil
}

// crashHook supports the chaos tests: with KYCPIPE_TEST_KILL_AFTER=<step>
// the process kills itself with SIGKILL right after that saga checkpoint
// (see pipeline.WorkerConfig.AfterCheckpoint), as a crash at that exact
// boundary would. Never set it in production.
func crashHook(step string, log *zap.Logger) func(string) {
	if step == "" {
		return nil
	}
	log.Warn("KYCPIPE_TEST_KILL_AFTER is set: this worker will kill itself after a checkpoint (testing only)", zap.String("step", step))
	return func(s string) {
		if s == step {
			_ = log.Sync()
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
