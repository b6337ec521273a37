package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// DevAPIKey is the API key devstack accepts unless told otherwise. It only
// ever guards a loopback listener.
const DevAPIKey = "kycpipe-local-dev-key"

func run(ctx context.Context, args []string, getenv func(string) string) error {
	var (
		dataDir, httpAddr, simAddr, apiKey, logLevel string
		natsPort                                     int
		autoComplete, simLatency                     time.Duration
		schedule                                     string
	)
	set := config.New("devstack", getenv)
	set.String(&dataDir, "data-dir", "KYCPIPE_DATA_DIR", ".data", "directory of the embedded NATS server's JetStream store")
	set.String(&httpAddr, "http-addr", "KYCPIPE_HTTP_ADDR", "127.0.0.1:8080", "ingest listen address")
	set.Int(&natsPort, "nats-port", "KYCPIPE_NATS_PORT", 4222, "embedded NATS port on 127.0.0.1 (kycctl and the nats CLI connect here)")
	set.String(&simAddr, "sim-addr", "JUMIOSIM_ADDR", "127.0.0.1:8090", "Jumio simulator listen address")
	set.String(&apiKey, "api-key", "KYCPIPE_API_KEYS", DevAPIKey, "API key ingest accepts")
	set.Duration(&autoComplete, "auto-complete-web", "JUMIOSIM_AUTO_COMPLETE_WEB", 20*time.Second, "simulated end users finish web/SDK flows after this long (0: only from the web page)")
	set.Duration(&simLatency, "sim-latency", "JUMIOSIM_LATENCY", 0, "latency the simulator adds to every Jumio call")
	set.String(&schedule, "poll-schedule", "KYCPIPE_POLL_SCHEDULE", "5s,10s,20s,40s,60s", "retriever poll schedule (cumulative offsets; short for local use)")
	set.String(&logLevel, "log-level", "KYCPIPE_LOG_LEVEL", "info", "log level")
	if err := set.Parse(args); err != nil {
		return err
	}
	sched, err := service.ParseSchedule(schedule)
	if err != nil {
		return err
	}
	common := service.Common{LogFormat: "console", LogLevel: logLevel}
	log, err := common.Logger("devstack")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	abs, _ := filepath.Abs(dataDir)

	sim := jumiotest.Options{Addr: simAddr, AutoCompleteWeb: autoComplete}
	if simLatency > 0 {
		sim.Latency = map[jumiotest.Route]time.Duration{}
		for _, r := range jumiotest.Routes() {
			sim.Latency[r] = simLatency
		}
	}
	stack, err := localstack.Start(ctx, localstack.Options{
		DataDir: abs, NATSPort: natsPort, HTTPAddr: httpAddr, APIKeys: []string{apiKey}, Sim: sim,
		Workers: 1, Retrievers: 1, Retriever: pipeline.RetrieverConfig{Schedule: sched},
		Logger: log, Registry: service.NewRegistry(),
	})
	if err != nil {
		return err
	}
	if err := logDecisions(ctx, stack, log); err != nil {
		stack.Close()
		return err
	}
	printBanner(os.Stdout, stack, abs)

	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return stack.Stop(stopCtx)
}

// logDecisions logs every new decision event.
func logDecisions(ctx context.Context, s *localstack.Stack, log *zap.Logger) error {
	subj := s.Topology.Subjects
	cons, err := s.JS.OrderedConsumer(ctx, subj.StreamDecisions(), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj.Decisions()}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return err
	}
	_, err = cons.Consume(func(m jetstream.Msg) {
		ev, err := messages.DecodeDecision(m.Data())
		if err != nil {
			log.Warn("undecodable decision event", zap.Error(err))
			return
		}
		fields := []zap.Field{zap.String("job_id", ev.JobID), zap.String("account_id", ev.AccountID),
			zap.String("workflow_execution_id", ev.WorkflowExecutionID), zap.String("decision", ev.Decision.Type),
			zap.String("label", ev.Decision.Label), zap.String("subject", m.Subject())}
		if ev.Decision.RiskScore != nil {
			fields = append(fields, zap.Float64("risk_score", *ev.Decision.RiskScore))
		}
		log.Info("DECISION EVENT "+string(m.Data()), fields...)
	})
	return err
}

func printBanner(w io.Writer, s *localstack.Stack, dataDir string) {
	fmt.Fprintf(w, `
kycpipe is running (embedded NATS + Jumio simulator + ingest + worker + retriever)

  ingest API     %[1]s
  API key        %[2]s
  NATS           %[3]s   (kycctl, the nats CLI)
  Jumio sim      %[4]s   (control API under /_sim/)
  data dir       %[5]s

Submit a sample job (API channel, email risk):

  curl -sS -X POST %[1]s/v1/verifications \
    -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
    -d @examples/email-risk-api.json

Then follow it:  curl -sS -H 'Authorization: Bearer %[2]s' %[1]s/v1/verifications/<jobId>
Decision events are logged below as they are published. Ctrl-C stops.

`, s.IngestURL, s.APIKey, s.NATSURL, s.Sim.URL, dataDir)
}
