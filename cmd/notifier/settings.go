package main

import (
	"time"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// settings are the notifier's flags and environment variables.
type settings struct {
	common                   service.Common
	tracing                  service.Tracing
	hooks                    service.Webhooks
	metricsAddr, schedule    string
	sched                    webhooks.Schedule
	timeout                  time.Duration
	concurrency, perEndpoint int
}

func newSettings(getenv func(string) string) (*settings, *config.Set) {
	s := &settings{}
	set := config.New("notifier", getenv)
	s.common.Bind(set)
	s.tracing.Bind(set)
	s.hooks.Bind(set)
	set.String(&s.metricsAddr, "metrics-addr", "KYCPIPE_METRICS_ADDR", ":9090", "listen address for /healthz, /readyz and /metrics, which have no authentication (default: every interface, for probes and scrapers; use an internal one)").HostPort()
	set.Duration(&s.timeout, "webhook-timeout", "KYCPIPE_WEBHOOK_TIMEOUT", webhooks.DefaultTimeout,
		"bound on one delivery attempt, from resolving the host to reading the answer (no 2xx within it: a failed attempt)").Positive()
	set.String(&s.schedule, "webhook-schedule", "KYCPIPE_WEBHOOK_SCHEDULE", webhooks.DefaultScheduleString,
		"waits before each retry of a failed delivery (one more attempt per entry), then the dead letter on kyc.dlq.notifier").Check(func() string {
		sched, err := webhooks.ParseSchedule(s.schedule)
		if err != nil {
			return err.Error()
		}
		s.sched = sched
		return ""
	})
	set.Int(&s.concurrency, "concurrency", "KYCPIPE_NOTIFIER_CONCURRENCY", 64, "webhook deliveries this process makes at once").Positive()
	set.Int(&s.perEndpoint, "endpoint-concurrency", "KYCPIPE_WEBHOOK_ENDPOINT_CONCURRENCY", 8,
		"deliveries this process makes to one endpoint at once; more wait, using no attempt, so an endpoint that hangs holds no more").Positive()
	return s, set
}
