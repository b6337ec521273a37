package main

import (
	"time"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
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
	probeEvery                            time.Duration
}

func newSettings(getenv func(string) string) (*settings, *config.Set) {
	s := &settings{}
	set := config.New("worker", getenv)
	s.common.Bind(set)
	s.tracing.Bind(set)
	s.jcfg.Bind(set)
	s.retry.Bind(set)
	s.limits.Bind(set)
	set.String(&s.metricsAddr, "metrics-addr", "KYCPIPE_METRICS_ADDR", ":9090", "listen address for /healthz, /readyz and /metrics, which have no authentication (default: every interface, for probes and scrapers; use an internal one)").HostPort()
	set.String(&s.callbackURL, "callback-url", "KYCPIPE_CALLBACK_URL", "", "public URL of ingest's callback route, sent to Jumio as callbackUrl (unset: Jumio uses the portal's URL)").URL("http", "https")
	set.Int(&s.concurrency, "concurrency", "KYCPIPE_WORKER_CONCURRENCY", 32, "jobs this process runs at once").Positive()
	set.Int(&s.accountConc, "account-concurrency", "KYCPIPE_ACCOUNT_CONCURRENCY", 2, "account calls in flight at once (bounds the accounts a crash can orphan: Jumio's account API has no idempotency key)").Positive()
	set.Int(&s.retryBudget, "retry-budget", "KYCPIPE_RETRY_BUDGET", 10, "retryable Jumio failures a job may have before it fails").Positive()
	set.Duration(&s.probeEvery, "fault-probe-every", "KYCPIPE_FAULT_PROBE_EVERY", pipeline.DefaultFaultProbeEvery,
		"how often a region paused because Jumio refuses the configuration (credentials, a permission, web.href) is probed; work resumes by itself once Jumio accepts").Positive()
	return s, set
}
