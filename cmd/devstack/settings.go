package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// settings are devstack's flags and environment variables.
type settings struct {
	dataDir, httpAddr, simAddr, apiKey, logLevel string
	natsPort                                     int
	autoComplete, simLatency                     time.Duration
	schedule                                     string
	sched                                        []time.Duration
}

func newSettings(getenv func(string) string) (*settings, *config.Set) {
	s := &settings{}
	set := config.New("devstack", getenv)
	set.String(&s.dataDir, "data-dir", "KYCPIPE_DATA_DIR", ".data", "directory of the embedded NATS server's JetStream store").Check(func() string {
		// Created here, so that a directory that cannot be made stops
		// devstack by name before anything starts.
		if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
			return err.Error()
		}
		return ""
	})
	set.String(&s.httpAddr, "http-addr", "KYCPIPE_HTTP_ADDR", "127.0.0.1:8080", "ingest listen address").HostPort()
	set.Int(&s.natsPort, "nats-port", "KYCPIPE_NATS_PORT", 4222, "embedded NATS port on 127.0.0.1 (kycctl and the nats CLI connect here)").Between(1, 65535)
	set.String(&s.simAddr, "sim-addr", "JUMIOSIM_ADDR", "127.0.0.1:8090", "Jumio simulator listen address").HostPort()
	set.String(&s.apiKey, "api-key", "KYCPIPE_API_KEYS", DevAPIKey, "API key ingest accepts (16+ characters)").Check(func() string {
		if _, err := pipeline.NewAPIKeys([]string{s.apiKey}); err != nil {
			return strings.TrimPrefix(err.Error(), "pipeline: ")
		}
		return ""
	})
	set.Duration(&s.autoComplete, "auto-complete-web", "JUMIOSIM_AUTO_COMPLETE_WEB", 20*time.Second, "simulated end users finish web/SDK flows after this long (0: only from the web page)").NonNegative()
	set.Duration(&s.simLatency, "sim-latency", "JUMIOSIM_LATENCY", 0, "latency the simulator adds to every Jumio call").NonNegative()
	set.String(&s.schedule, "poll-schedule", "KYCPIPE_POLL_SCHEDULE", "5s,10s,20s,40s,60s", "retriever poll schedule (cumulative offsets; short for local use)").Check(func() string {
		sched, err := service.ParseSchedule(s.schedule)
		if err != nil || len(sched) == 0 {
			return fmt.Sprintf("want increasing durations like 5s,10s,20s: %v", err)
		}
		s.sched = sched
		return ""
	})
	set.String(&s.logLevel, "log-level", "KYCPIPE_LOG_LEVEL", "info", "log level: debug, info, warn, error").Check(func() string {
		switch s.logLevel {
		case "debug", "info", "warn", "error":
			return ""
		}
		return "want debug, info, warn or error"
	})
	return s, set
}

// simOptions configures the Jumio simulator: its address, the simulated
// end user's delay, and one latency for every route.
func (st *settings) simOptions() jumiotest.Options {
	sim := jumiotest.Options{Addr: st.simAddr, AutoCompleteWeb: st.autoComplete}
	if st.simLatency > 0 {
		sim.Latency = map[jumiotest.Route]time.Duration{}
		for _, r := range jumiotest.Routes() {
			sim.Latency[r] = st.simLatency
		}
	}
	return sim
}

// devWebhooks lets webhooks reach loopback over http, for the example
// receiver.
var devWebhooks = pipeline.WebhookSettings{Policy: webhooks.Policy{AllowInsecure: true, AllowPrivate: true}}
