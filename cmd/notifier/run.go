package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

func run(ctx context.Context, args []string, getenv func(string) string) error {
	st, set := newSettings(getenv)
	if err := set.Parse(args); err != nil {
		return err
	}
	return service.Program{Name: "notifier", Common: &st.common, Tracing: &st.tracing, OpsAddr: st.metricsAddr,
		Build: func(ctx context.Context, env *service.Env) (service.Service, error) {
			hooks := st.hooks.Settings()
			if hooks.SecretKey == nil {
				env.Log.Warn("KYCPIPE_WEBHOOK_SECRET_KEY is not set: webhook endpoint secrets are stored unencrypted in JetStream")
			}
			if st.hooks.AllowInsecure || st.hooks.AllowPrivate {
				env.Log.Warn("webhooks may go to http:// or non-public addresses: for development only",
					zap.Bool("allow_insecure", st.hooks.AllowInsecure), zap.Bool("allow_private", st.hooks.AllowPrivate))
			}
			env.Registry.MustRegister(pipeline.NewConsumerCollector(env.JS, pipeline.ConsumersOf(env.Topology, messages.StageNotifier)...))
			return pipeline.NewNotifier(ctx, env.JS, pipeline.NotifierConfig{
				Topology: env.Topology, Webhooks: hooks, Timeout: st.timeout, Schedule: &st.sched, SweepEvery: st.sweepEvery,
				Concurrency: st.concurrency, EndpointConcurrency: st.perEndpoint,
				ShutdownGrace: st.common.ShutdownTimeout * 4 / 5, Logger: env.Log, Metrics: env.Metrics,
				WebhookMetrics: pipeline.NewWebhookMetrics(env.Registry, env.JS, env.Topology), TracerProvider: env.Tracer,
			})
		}}.Run(ctx)
}
