package main

import (
	"context"
	"errors"

	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

func run(ctx context.Context, args []string, getenv func(string) string) error {
	st, set := newSettings(getenv)
	if err := set.Parse(args); err != nil {
		return err
	}
	check := func() error { return errors.Join(st.jcfg.Check(st.common.DefaultRegion()), st.limits.Check()) }
	return service.Program{Name: "retriever", Common: &st.common, Tracing: &st.tracing, OpsAddr: st.metricsAddr, Check: check,
		Build: func(ctx context.Context, env *service.Env) (service.Service, error) {
			if st.includeExtraction {
				env.Log.Warn("decision events will carry extracted document data (PII): restrict who can read the decisions stream")
			}
			env.Registry.MustRegister(pipeline.NewConsumerCollector(env.JS, pipeline.ConsumersOf(env.Topology, messages.StageRetriever)...))
			clients, err := st.jcfg.Build(ctx, env, st.common.DefaultRegion(), &st.limits)
			if err != nil {
				return nil, err
			}
			return pipeline.NewRetriever(ctx, env.JS, pipeline.RetrieverConfig{
				Topology: env.Topology, Jumio: clients, Concurrency: st.concurrency, Schedule: st.sched, PollTailEvery: st.tailEvery,
				FaultProbeEvery:   st.probeEvery,
				IncludeExtraction: st.includeExtraction, Backoff: st.retry.Backoff(), ShutdownGrace: st.common.ShutdownTimeout * 4 / 5,
				Logger: env.Log, Metrics: env.Metrics, TracerProvider: env.Tracer,
			})
		}}.Run(ctx)
}
