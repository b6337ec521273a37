package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
// Once the jobs are stored, it writes their attempts entries (track).
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
	jobs := make([]*webhookJob, 0, len(eps))
	msgs := make([]outMsg, 0, len(eps))
	for _, ep := range eps {
		job := &webhookJob{WebhookID: webhooks.MessageID(eventID, ep.ID), EndpointID: ep.ID, JobID: jobID, EventID: eventID,
			Type: t, Timestamp: at.UTC(), Stream: md.Stream, Sequence: md.Sequence.Stream, Tracked: true}
		o, err := job.outMsg(n.subj, job.WebhookID)
		if err != nil {
			return ack() // cannot happen: the job is plain JSON
		}
		jobs = append(jobs, job)
		msgs = append(msgs, o)
	}
	acks, err := publishAll(ctx, n.js, msgs...)
	if err == nil {
		err = n.track(ctx, jobs, acks)
	}
	if err != nil {
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

// track writes the attempts entry of each delivery job the fan-out
// queued (stored at acks[i].Sequence): no failure, due now, a copy of the
// job. It is what the sweep queues a job again from should JetStream lose
// it before its first attempt has written one: the 60-minute soak of
// 2026-12-07 15:18 lost 7 deliveries that way (1,288 waiting deliveries
// vanished from the stream in its minutes of node isolation and notifier
// kills; those with an entry were queued again). The jobs are marked
// Tracked, so their first delivery relies on the entry rather than write
// its own (the write costs what the first attempt's own did).
//
// The writes are Creates: an entry a delivery already wrote (a failed
// attempt) stays. A delivery can also succeed and remove its entry before
// the fan-out writes it; the sweep removes such an entry once it is
// overdue (its delivery log holds the outcome). An error leaves the event
// to be fanned out again: the jobs are deduplicated, the entries written.
//
// Entries written after the job's erasure purged its webhook data are
// removed by the erasure's late pass (lateWebhookPurgeAfter), or by the
// delivery or the sweep, which find the event gone: no read of the event
// here.
func (n *Notifier) track(ctx context.Context, jobs []*webhookJob, acks []*jetstream.PubAck) error {
	now := n.now()
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		b, err := json.Marshal(attemptState{Next: now, Job: job})
		if err != nil {
			return err
		}
		key := attemptKey(job.JobID, job.WebhookID, acks[i].Sequence)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.attempts.Create(ctx, key, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
				errs[i] = fmt.Errorf("pipeline: record the queued webhook delivery: %w", err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
