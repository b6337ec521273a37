package main

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// settings are the retriever's flags and environment variables.
type settings struct {
	common            service.Common
	tracing           service.Tracing
	jcfg              service.Jumio
	retry             service.Retry
	limits            service.Limits
	metricsAddr       string
	concurrency       int
	includeExtraction bool
	schedule          string
	scheduleSetting   *config.Setting
}

func newSettings(getenv func(string) string) (*settings, *config.Set) {
	s := &settings{}
	set := config.New("retriever", getenv)
	s.common.Bind(set)
	s.tracing.Bind(set)
	s.jcfg.Bind(set)
	s.retry.Bind(set)
	s.limits.Bind(set)
	set.String(&s.metricsAddr, "metrics-addr", "KYCPIPE_METRICS_ADDR", ":9090", "listen address for /healthz, /readyz and /metrics")
	set.Int(&s.concurrency, "concurrency", "KYCPIPE_RETRIEVER_CONCURRENCY", 16, "retrievals this process runs at once (callbacks and polls each)")
	set.Bool(&s.includeExtraction, "include-extraction", "KYCPIPE_INCLUDE_EXTRACTION", false, "copy extracted document data (PII) into decision events")
	s.scheduleSetting = set.String(&s.schedule, "poll-schedule", "KYCPIPE_POLL_SCHEDULE", "40s,60s,100s,160s,240s,340s,460s,600s,760s,940s",
		"when to poll an unfinished execution: cumulative offsets; the last interval repeats until the job's deadline")
	return s, set
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	st, set := newSettings(getenv)
	if err := set.Parse(args); err != nil {
		return err
	}
	common, tracing, jcfg, retry, limits := &st.common, &st.tracing, &st.jcfg, &st.retry, &st.limits
	metricsAddr, concurrency, includeExtraction, schedule, scheduleSetting := st.metricsAddr, st.concurrency, st.includeExtraction, st.schedule, st.scheduleSetting
	if err := common.Validate(); err != nil {
		return err
	}
	sched, err := service.ParseSchedule(schedule)
	if err != nil || len(sched) == 0 {
		return config.Invalid(scheduleSetting, fmt.Errorf("want increasing durations like 40s,60s,100s: %v", err))
	}
	log, err := common.Logger("retriever")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	stopProfile, err := common.StartCPUProfile(log)
	if err != nil {
		return err
	}
	defer stopProfile()
	tp, flushTraces, err := tracing.Provider(ctx, "retriever")
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = flushTraces(fctx)
	}()
	if includeExtraction {
		log.Warn("decision events will carry extracted document data (PII): restrict who can read the decisions stream")
	}

	reg := service.NewRegistry()
	metrics := pipeline.NewMetrics(reg)
	if err := jcfg.CheckJumio(); err != nil {
		return err
	}
	nc, js, err := common.Connect("retriever", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	topo := common.Topology()
	if err := common.Setup(ctx, js, topo, log); err != nil {
		return err
	}
	reg.MustRegister(pipeline.NewConsumerCollector(js, pipeline.ConsumersOf(topo, messages.StageRetriever)...))
	limiters, err := limits.Build(ctx, js, topo, log, metrics)
	if err != nil {
		return err
	}
	jcfg.TracerProvider = tp
	clients, err := jcfg.Clients(common.DefaultRegion(), log, metrics.JumioObserver(), limiters)
	if err != nil {
		return err
	}
	r, err := pipeline.NewRetriever(ctx, js, pipeline.RetrieverConfig{
		Topology: topo, Jumio: clients, Concurrency: concurrency, Schedule: sched, IncludeExtraction: includeExtraction,
		Backoff: retry.Backoff(), ShutdownGrace: common.ShutdownTimeout * 4 / 5, Logger: log, Metrics: metrics, TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	ops, err := service.StartOps(metricsAddr, reg, r.Ready, log)
	if err != nil {
		return err
	}
	log.Info("retriever started", zap.String("nats", nc.ConnectedUrlRedacted()), zap.String("ops_addr", ops.Addr()),
		zap.Int("concurrency", concurrency), zap.String("version", service.Version))

	err = r.Run(ctx)
	ops.Drain()
	log.Info("retriever stopping: draining NATS")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = nc.Drain()
	_ = ops.Close(shutdownCtx)
	if err != nil {
		return fmt.Errorf("retriever: %w", err)
	}
	log.Info("retriever stopped")
	return nil
}
