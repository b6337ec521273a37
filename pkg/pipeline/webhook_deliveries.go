package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// schemaWebhookJob identifies delivery jobs on kyc.webhooks.deliver.
const schemaWebhookJob = "kycpipe.webhook-delivery.v1"

// webhookJob is one delivery of one event to one endpoint, the internal
// message on kyc.webhooks.deliver.<endpointId>.<jobId>. It references the
// event by stream and sequence and holds no copy of it: the body is read at
// delivery time, so an event that is erased is no longer delivered.
type webhookJob struct {
	Schema     string             `json:"schema"`
	WebhookID  string             `json:"webhookId"`
	EndpointID string             `json:"endpointId"`
	JobID      string             `json:"jobId"`
	EventID    string             `json:"eventId"` // the event's Nats-Msg-Id, else <stream>:<seq>
	Type       webhooks.EventType `json:"type"`
	Timestamp  time.Time          `json:"timestamp"` // when the event happened
	Stream     string             `json:"stream"`
	Sequence   uint64             `json:"sequence"`
	// RedriveOf is the sequence of the delivery job this one replaces: the
	// sweep queued it again after JetStream lost the other (its attempts
	// entry moved with it).
	RedriveOf uint64 `json:"redriveOf,omitempty"`
	// Tracked says that the fan-out that queued the job writes its
	// attempts entry (a copy of the job) once JetStream has stored it: its
	// first delivery has one (notifier_fanout.go).
	Tracked bool `json:"tracked,omitempty"`
}

func decodeWebhookJob(b []byte) (*webhookJob, error) {
	var j webhookJob
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%w: webhook delivery: %s", messages.ErrMalformed, messages.DescribeJSONError(err))
	}
	switch {
	case j.Schema != schemaWebhookJob:
		return nil, fmt.Errorf("%w: webhook delivery schema %q", messages.ErrUnsupportedSchema, j.Schema)
	case j.WebhookID == "" || !ValidWebhookEndpointID(j.EndpointID) || !messages.ValidJobID(j.JobID) ||
		!j.Type.Valid() || j.Stream == "" || j.Sequence == 0:
		return nil, fmt.Errorf("%w: webhook delivery without valid IDs or event reference", messages.ErrMalformed)
	}
	return &j, nil
}

// outMsg returns the job as a message to publish with msgID.
func (j *webhookJob) outMsg(subj messages.Subjects, msgID string) (outMsg, error) {
	j.Schema = schemaWebhookJob
	b, err := json.Marshal(j)
	if err != nil {
		return outMsg{}, err
	}
	return outMsg{subject: subj.WebhookDelivery(j.EndpointID, j.JobID), data: b, msgID: msgID, jobID: j.JobID}, nil
}

// Attempt outcomes (WebhookAttempt.Outcome).
const (
	AttemptDelivered = "delivered" // 2xx
	AttemptFailed    = "failed"    // any other answer, a timeout, a network or DNS failure
	AttemptRefused   = "refused"   // nothing sent: the URL or an address of its host breaks the policy now
	AttemptGone      = "gone"      // 410: the endpoint was disabled
	AttemptDropped   = "dropped"   // nothing sent: the endpoint is disabled
)

// WebhookAttempt is one entry of an endpoint's delivery log: an attempt,
// or a delivery dropped without one. It holds IDs, times and outcomes,
// never the body.
type WebhookAttempt struct {
	WebhookID  string    `json:"webhookId"`
	EndpointID string    `json:"endpointId"`
	JobID      string    `json:"jobId"`
	EventType  string    `json:"eventType"`
	EventID    string    `json:"eventId"`
	Attempt    int       `json:"attempt"` // 1 for the first; 0 for a dropped delivery
	At         time.Time `json:"at"`
	Outcome    string    `json:"outcome"` // Attempt…
	StatusCode int       `json:"statusCode,omitempty"`
	DurationMs int64     `json:"durationMs"`
	// Error says why the attempt did not deliver (names only the URL's
	// scheme and host), or why the delivery was dropped.
	Error string `json:"error,omitempty"`
	// NextAttemptAt is set when another attempt is scheduled.
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	// DeadLettered is set on the last attempt of the schedule: the delivery
	// went to kyc.dlq.notifier.
	DeadLettered bool `json:"deadLettered,omitempty"`
}

// webhookLogEntry is a WebhookAttempt as stored, with the event reference
// a resend needs.
type webhookLogEntry struct {
	WebhookAttempt
	Stream    string    `json:"stream"`
	Sequence  uint64    `json:"sequence"`
	Timestamp time.Time `json:"timestamp"`
}

// publishLog appends an entry to the delivery log.
func publishLog(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, e *webhookLogEntry) (*jetstream.PubAck, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subj.WebhookLog(e.EndpointID, e.JobID))
	m.Data = b
	m.Header.Set(messages.HeaderJobID, e.JobID)
	m.Header.Set(messages.HeaderMsgID, "log:"+e.WebhookID+":"+strconv.FormatInt(e.At.UnixNano(), 36)+":"+strconv.Itoa(e.Attempt))
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("pipeline: webhook delivery log: %w", err)
	}
	return ack, nil
}

// DefaultWebhookAttempts and MaxWebhookAttempts bound Deliveries' limit.
const (
	DefaultWebhookAttempts = 50
	MaxWebhookAttempts     = 1000
)

// Deliveries returns an endpoint's most recent delivery log entries (at
// most limit, default DefaultWebhookAttempts, at most MaxWebhookAttempts),
// newest first. The log keeps entries for 7 days (Topology.WebhookLogMaxAge).
func (r *WebhookEndpoints) Deliveries(ctx context.Context, id string, limit int) ([]WebhookAttempt, error) {
	if _, _, err := r.load(ctx, id); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultWebhookAttempts
	}
	limit = min(limit, MaxWebhookAttempts)
	entries, err := r.readLog(ctx, r.subj.WebhookLogsOfEndpoint(id), limit, func(*webhookLogEntry) bool { return true })
	if err != nil {
		return nil, err
	}
	out := make([]WebhookAttempt, len(entries))
	for i, e := range entries {
		out[i] = e.WebhookAttempt
	}
	return out, nil
}

// logWindows are the ages readLog looks back, widening until it has
// enough entries (0: the whole log).
var logWindows = []time.Duration{10 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 0}

// readLog returns up to limit entries on filter that keep accepts, newest
// first. It reads the most recent window of the log that holds enough of
// them, so a busy endpoint's old entries are not read.
func (r *WebhookEndpoints) readLog(ctx context.Context, filter string, limit int, keep func(*webhookLogEntry) bool) ([]webhookLogEntry, error) {
	st, err := r.js.Stream(ctx, r.subj.StreamWebhookLog())
	if err != nil {
		return nil, fmt.Errorf("pipeline: webhook delivery log: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("pipeline: webhook delivery log: %w", err)
	}
	if len(info.State.Subjects) == 0 {
		return nil, nil
	}
	now := r.now()
	for _, window := range logWindows {
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
		if window > 0 {
			start := now.Add(-window)
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
		}
		var found []webhookLogEntry
		err := readOrdered(ctx, r.js, r.subj.StreamWebhookLog(), cfg, func(m jetstream.Msg) bool {
			var e webhookLogEntry
			if json.Unmarshal(m.Data(), &e) == nil && keep(&e) {
				found = append(found, e)
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		if len(found) >= limit || window == 0 {
			slices.Reverse(found)
			return found[:min(limit, len(found))], nil
		}
	}
	return nil, nil
}

// readOrdered reads every message an ordered consumer with cfg delivers
// now, in order, until each returns false.
func readOrdered(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, each func(jetstream.Msg) bool) error {
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return err
	}
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return err
		}
		n := 0
		var pending uint64
		more := true
		for m := range batch.Messages() {
			n++
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
			if more {
				more = each(m)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if n == 0 || pending == 0 || !more {
			return nil
		}
	}
}

// ErrWebhookDeliveryNotFound: the endpoint's delivery log has no entry
// with that webhook-id (never delivered, or older than the log keeps).
var ErrWebhookDeliveryNotFound = errors.New("pipeline: unknown webhook delivery")

// ErrWebhookEventGone: the event of a delivery is no longer stored (it was
// erased, or aged out of its stream), so it cannot be sent again.
var ErrWebhookEventGone = errors.New("pipeline: the event of this delivery is no longer stored")

// ErrWebhookEndpointDisabled: the endpoint is disabled; enable it first.
var ErrWebhookEndpointDisabled = errors.New("pipeline: the webhook endpoint is disabled")

// WebhookResend is the answer to a resend.
type WebhookResend struct {
	WebhookID  string `json:"webhookId"`
	EndpointID string `json:"endpointId"`
	JobID      string `json:"jobId"`
	Status     string `json:"status"` // always QUEUED
}

// Resend queues the delivery with webhookID (from the endpoint's delivery
// log) again, as a new delivery with a fresh retry schedule and the same
// webhook-id, so receivers deduplicate it. Errors: ErrWebhookEndpointNotFound,
// ErrWebhookEndpointDisabled, ErrWebhookDeliveryNotFound, ErrWebhookEventGone.
func (r *WebhookEndpoints) Resend(ctx context.Context, endpointID, webhookID string) (*WebhookResend, error) {
	rec, _, err := r.load(ctx, endpointID)
	if err != nil {
		return nil, err
	}
	if !rec.Enabled() {
		return nil, ErrWebhookEndpointDisabled
	}
	found, err := r.readLog(ctx, r.subj.WebhookLogsOfEndpoint(endpointID), 1, func(e *webhookLogEntry) bool { return e.WebhookID == webhookID })
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, ErrWebhookDeliveryNotFound
	}
	e := found[0]
	st, err := r.js.Stream(ctx, e.Stream)
	if err != nil {
		return nil, fmt.Errorf("pipeline: resend: event stream %s: %w", e.Stream, err)
	}
	if _, err := st.GetMsg(ctx, e.Sequence); errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrWebhookEventGone
	} else if err != nil {
		return nil, fmt.Errorf("pipeline: resend: read the event: %w", err)
	}
	job := &webhookJob{WebhookID: e.WebhookID, EndpointID: e.EndpointID, JobID: e.JobID, EventID: e.EventID,
		Type: webhooks.EventType(e.EventType), Timestamp: e.Timestamp, Stream: e.Stream, Sequence: e.Sequence}
	o, err := job.outMsg(r.subj, "resend:"+webhookID+":"+strconv.FormatInt(r.now().UnixNano(), 36))
	if err != nil {
		return nil, err
	}
	if _, err := publish(ctx, r.js, o); err != nil {
		return nil, err
	}
	return &WebhookResend{WebhookID: webhookID, EndpointID: endpointID, JobID: e.JobID, Status: "QUEUED"}, nil
}
