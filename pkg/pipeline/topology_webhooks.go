package pipeline

import (
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream resources of outbound webhooks (cmd/notifier, DESIGN 3.8):
//
//   - KYC_WEBHOOKS (work queue, kyc.webhooks.deliver.<endpointId>.<jobId>):
//     one delivery job per (event, endpoint), removed once delivered, given
//     up or dropped. It references its event by stream and sequence and
//     carries no copy of it.
//   - KYC_WEBHOOK_LOG (limits, kyc.webhooks.log.<endpointId>.<jobId>): one
//     entry per attempt, for GET /v1/webhook-endpoints/{id}/deliveries.
//   - KYC_WEBHOOK_ENDPOINTS (KV, ep.<id>): the registered endpoints.
//   - KYC_WEBHOOK_ATTEMPTS (KV, att.<jobId>.<webhookId>.<seq>): deliveries
//     waiting for their next attempt (failed attempts, when it is due, and
//     the delivery job, for the stranded-delivery sweep).
//   - Durable consumers: notifier-events on KYC_EVENTS and
//     notifier-decisions on KYC_DECISIONS (fan-out, from their creation
//     onward), notifier-deliveries on KYC_WEBHOOKS.

// streamConsumer is a durable consumer and its stream.
type streamConsumer struct {
	stream string
	cfg    jetstream.ConsumerConfig
}

// Sizes of the webhook messages: a delivery job holds IDs and a reference;
// a log entry IDs, an outcome and a short error.
const (
	// webhookEndpointsMaxBytes bounds the endpoint registry: thousands of
	// endpoints of a few hundred bytes each.
	webhookEndpointsMaxBytes = 64 << 20
	webhookJobMaxSize        = 4 << 10
	webhookLogMaxSize        = 4 << 10
)

func (t Topology) webhookStreamConfigs() []jetstream.StreamConfig {
	s := t.Subjects
	jobs := jetstream.StreamConfig{
		Name: s.StreamWebhooks(), Description: "kycpipe: pending webhook deliveries (work queue, internal)",
		Subjects: []string{s.WebhookDeliveries()}, Retention: jetstream.WorkQueuePolicy,
		MaxMsgs: t.WebhooksMaxMsgs, MaxBytes: t.WebhooksMaxBytes, Discard: jetstream.DiscardNew, MaxMsgSize: webhookJobMaxSize,
		Storage: t.Storage, Replicas: t.Replicas, Duplicates: t.DuplicateWindow,
	}
	log := jetstream.StreamConfig{
		Name: s.StreamWebhookLog(), Description: "kycpipe: recent webhook delivery attempts",
		Subjects: []string{s.WebhookLogs()}, MaxAge: t.WebhookLogMaxAge, MaxBytes: t.WebhookLogMaxBytes,
		MaxMsgSize: webhookLogMaxSize, Storage: t.Storage, Replicas: t.Replicas, Duplicates: t.DuplicateWindow,
	}
	return []jetstream.StreamConfig{jobs, log}
}

func (t Topology) webhookConsumerConfigs() []streamConsumer {
	s := t.Subjects
	fanout := func(stream, durable, filter, desc string) streamConsumer {
		return streamConsumer{stream, jetstream.ConsumerConfig{
			Durable: durable, Description: desc, FilterSubject: filter,
			// Events from the consumer's creation onward: a new deployment
			// does not deliver the history of the events stream.
			DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: t.NotifierAckWait, MaxDeliver: -1, MaxAckPending: 1024, Replicas: t.Replicas,
		}}
	}
	return []streamConsumer{
		fanout(s.StreamEvents(), ConsumerNotifierEvents, s.Events(), "kycpipe notifiers: lifecycle events to webhook deliveries"),
		fanout(s.StreamDecisions(), ConsumerNotifierDecisions, s.Decisions(), "kycpipe notifiers: decisions to webhook deliveries"),
		{s.StreamWebhooks(), jetstream.ConsumerConfig{
			Durable: ConsumerNotifierDelivery, Description: "kycpipe notifiers: deliver webhooks",
			FilterSubject: s.WebhookDeliveries(), AckPolicy: jetstream.AckExplicitPolicy,
			// Deliveries waiting for their next attempt are pending acks
			// (NakWithDelay) and must not block the others; hand-backs for
			// a busy endpoint are redeliveries that use no attempt, so the
			// delivery count is no budget: the retry schedule ends a
			// delivery.
			AckWait: t.NotifierAckWait, MaxDeliver: -1, MaxAckPending: -1, Replicas: t.Replicas,
		}},
	}
}

func (t Topology) webhookKVConfigs() []jetstream.KeyValueConfig {
	s := t.Subjects
	return []jetstream.KeyValueConfig{
		{Bucket: s.BucketWebhookEndpoints(), Description: "kycpipe: registered webhook endpoints",
			History: 1, Storage: t.Storage, Replicas: t.Replicas, MaxBytes: webhookEndpointsMaxBytes},
		{Bucket: s.BucketWebhookAttempts(), Description: "kycpipe: failed attempts of pending webhook deliveries",
			History: 1, TTL: t.WebhookAttemptsTTL, Storage: t.Storage, Replicas: t.Replicas, MaxBytes: max(t.JobsMaxBytes/16, 1<<20)},
	}
}
