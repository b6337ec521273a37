package main

import (
	"fmt"
	"time"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
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
	sched             []time.Duration
	tailEvery         time.Duration
	probeEvery        time.Duration
}

func newSettings(getenv func(string) string) (*settings, *config.Set) {
	s := &settings{}
	set := config.New("retriever", getenv)
	s.common.Bind(set)
	s.tracing.Bind(set)
	s.jcfg.Bind(set)
	s.retry.Bind(set)
	s.limits.Bind(set)
	set.String(&s.metricsAddr, "metrics-addr", "KYCPIPE_METRICS_ADDR", ":9090", "listen address for /healthz, /readyz and /metrics, which have no authentication (default: every interface, for probes and scrapers; use an internal one)").HostPort()
	set.Int(&s.concurrency, "concurrency", "KYCPIPE_RETRIEVER_CONCURRENCY", 16, "retrievals this process runs at once (callbacks and polls each)").Positive()
	set.Bool(&s.includeExtraction, "include-extraction", "KYCPIPE_INCLUDE_EXTRACTION", false, "copy extracted document data (PII) into decision events")
	s.scheduleSetting = set.String(&s.schedule, "poll-schedule", "KYCPIPE_POLL_SCHEDULE", "40s,60s,100s,160s,240s,340s,460s,600s,760s,940s",
		"when to poll an unfinished execution: cumulative offsets (Jumio's recommended schedule); then every --poll-tail-every until the job's deadline")
	s.scheduleSetting.Check(func() string {
		sched, err := service.ParseSchedule(s.schedule)
		if err != nil || len(sched) == 0 {
			return fmt.Sprintf("want increasing durations like 40s,60s,100s: %v", err)
		}
		s.sched = sched
		return ""
	})
	set.Duration(&s.tailEvery, "poll-tail-every", "KYCPIPE_POLL_TAIL_EVERY", pipeline.DefaultPollTailEvery,
		"how often an unfinished execution is polled after the schedule, until its deadline (Jumio allows 10 attempts after a callback; short intervals spend the tenant's retrieval budget)").Positive()
	set.Duration(&s.probeEvery, "fault-probe-every", "KYCPIPE_FAULT_PROBE_EVERY", pipeline.DefaultFaultProbeEvery,
		"how often a region paused because Jumio refuses the configuration (credentials, a permission) is probed; work resumes by itself once Jumio accepts").Positive()
	return s, set
}
