package main

import (
	"context"
	"fmt"
	"io"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

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
kycpipe is running (embedded NATS + Jumio simulator + ingest + worker + retriever + notifier
+ the example webhook receiver)

  console        %[1]s/console/   (sign in with the API key below)
  ingest API     %[1]s
  API key        %[2]s
  NATS           %[3]s   (kycctl, the nats CLI)
  Jumio sim      %[4]s   (control API under /_sim/)
  webhooks       %[6]s   (endpoint %[7]s, every event type)
  data dir       %[5]s

Submit a sample job (API channel, email risk):

  curl -sS -X POST %[1]s/v1/verifications \
    -H 'Authorization: Bearer %[2]s' -H 'Content-Type: application/json' \
    -d @examples/email-risk-api.json

Then follow it:  curl -sS -H 'Authorization: Bearer %[2]s' %[1]s/v1/verifications/<jobId>
Decision events are logged below as they are published, and each signed webhook delivery the
example receiver verifies ("webhook delivered"). Webhook endpoints: kycctl webhooks list. Ctrl-C stops.

`, s.IngestURL, s.APIKey, s.NATSURL, s.Sim.URL, dataDir, s.ReceiverURL, s.ReceiverEndpoint.ID)
}
