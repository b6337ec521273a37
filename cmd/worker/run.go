package main

import (
	"context"
	"errors"
	"os"
	"syscall"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

func run(ctx context.Context, args []string, getenv func(string) string) error {
	st, set := newSettings(getenv)
	if err := set.Parse(args); err != nil {
		return err
	}
	check := func() error { return errors.Join(st.jcfg.Check(st.common.DefaultRegion()), st.limits.Check()) }
	return service.Program{Name: "worker", Common: &st.common, Tracing: &st.tracing, OpsAddr: st.metricsAddr, Check: check,
		Build: func(ctx context.Context, env *service.Env) (service.Service, error) {
			if st.callbackURL == "" {
				env.Log.Warn("KYCPIPE_CALLBACK_URL is not set: Jumio will call the portal's callback URL, or none (decisions then come from polling)")
			} else if msg := jumio.CheckCallbackURL(st.callbackURL); msg != "" {
				env.Log.Warn("KYCPIPE_CALLBACK_URL breaks Jumio's callback URL rules; fine for a simulator, not for Jumio", zap.String("rule", msg))
			}
			env.Registry.MustRegister(pipeline.NewConsumerCollector(env.JS, pipeline.ConsumersOf(env.Topology, messages.StageWorker)...))
			clients, err := st.jcfg.Build(ctx, env, st.common.DefaultRegion(), &st.limits)
			if err != nil {
				return nil, err
			}
			return pipeline.NewWorker(ctx, env.JS, pipeline.WorkerConfig{
				Topology: env.Topology, Jumio: clients, CallbackURL: st.callbackURL, Concurrency: st.concurrency,
				RetryBudget: st.retryBudget, AccountConcurrency: st.accountConc, Backoff: st.retry.Backoff(), FaultProbeEvery: st.probeEvery,
				ShutdownGrace: st.common.ShutdownTimeout * 4 / 5, Logger: env.Log, Metrics: env.Metrics, TracerProvider: env.Tracer,
				Retention: st.common.Retention, RetentionKeepAtJumio: !st.common.RetentionJumio,
				AfterCheckpoint: crashHook(getenv("KYCPIPE_TEST_KILL_AFTER"), env.Log),
			})
		}}.Run(ctx)
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
