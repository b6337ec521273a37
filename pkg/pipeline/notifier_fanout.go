package pipeline

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// eventHead is what fan-out reads of an event: its type, job and time. A
// lifecycle event has kind and at; a decision has decidedAt.
type eventHead struct {
	Kind      string    `json:"kind"`
	JobID     string    `json:"jobId"`
	At        time.Time `json:"at"`
	DecidedAt time.Time `json:"decidedAt"`
}

// webhookEvent reads the type, job ID and time of an event message, and
// the ID the webhook-id derives from (its Nats-Msg-Id, else
// <stream>:<sequence>). ok is false for messages that are no event of a
// job (nothing to deliver).
func (n *Notifier) webhookEvent(m jetstream.Msg, md *jetstream.MsgMetadata) (t webhooks.EventType, jobID, eventID string, at time.Time, ok bool) {
	var h eventHead
	if json.Unmarshal(m.Data(), &h) != nil || !messages.ValidJobID(h.JobID) {
		return "", "", "", time.Time{}, false
	}
	if md.Stream == n.subj.StreamDecisions() {
		t, at = webhooks.EventDecided, h.DecidedAt
	} else {
		if t, ok = webhooks.LifecycleEventType(h.Kind); !ok {
			return "", "", "", time.Time{}, false
		}
		at = h.At
	}
	if at.IsZero() {
		at = md.Timestamp
	}
	eventID = m.Headers().Get(messages.HeaderMsgID)
	if eventID == "" {
		eventID = md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	return t, h.JobID, eventID, at, true
}

// fanout turns one event into a delivery job per enabled endpoint
// subscribed to its type. Each job's Nats-Msg-Id is its webhook-id, so a
// fan-out repeated after a crash (within the duplicate window) adds none.
func (n *Notifier) fanout(ctx context.Context, m jetstream.Msg) outcome {
	md, err := m.Metadata()
	if err != nil {
		return ack()
	}
	t, jobID, eventID, at, ok := n.webhookEvent(m, md)
	if !ok {
		n.log.Debug("not a job's event; nothing to deliver", zap.String("subject", m.Subject()))
		return ack()
	}
	eps := n.cache.subscribed(t)
	if len(eps) == 0 {
		return ack()
	}
	msgs := make([]outMsg, 0, len(eps))
	for _, ep := range eps {
		job := &webhookJob{WebhookID: webhooks.MessageID(eventID, ep.ID), EndpointID: ep.ID, JobID: jobID, EventID: eventID,
			Type: t, Timestamp: at.UTC(), Stream: md.Stream, Sequence: md.Sequence.Stream}
		o, err := job.outMsg(n.subj, job.WebhookID)
		if err != nil {
			return ack() // cannot happen: the job is plain JSON
		}
		msgs = append(msgs, o)
	}
	if _, err := publishAll(ctx, n.js, msgs...); err != nil {
		if ctx.Err() != nil {
			return handBack()
		}
		d := n.backoff.Delay(min(deliveries(m), infraSteps))
		n.log.Warn("cannot queue webhook deliveries; will retry", jobField(jobID), zap.String("type", string(t)), zap.Error(err), zap.Duration("delay", d))
		return retry(d)
	}
	n.wm.fannedOut(string(t), len(msgs))
	return ack()
}
