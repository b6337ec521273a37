package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Log field helpers: only identifiers, never applicant data or tokens.
func jobField(id string) zap.Field       { return zap.String("job_id", id) }
func accountField(id string) zap.Field   { return zap.String("account_id", id) }
func executionField(id string) zap.Field { return zap.String("workflow_execution_id", id) }

// recordFields returns the identifiers of a job for log lines.
func recordFields(r *JobRecord) []zap.Field {
	fs := []zap.Field{jobField(r.JobID)}
	if r.AccountID != "" {
		fs = append(fs, accountField(r.AccountID))
	}
	if r.WorkflowExecutionID != "" {
		fs = append(fs, executionField(r.WorkflowExecutionID))
	}
	return fs
}

// newEvent returns the lifecycle event of kind for a job, at now. It is the
// one constructor of events: every event carries the job's identifiers as
// its record knows them.
func newEvent(kind string, rec *JobRecord, now time.Time) *messages.Event {
	return &messages.Event{
		Kind: kind, JobID: rec.JobID, Region: rec.Region,
		AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
		CustomerInternalReference: rec.CustomerInternalReference, At: now.UTC(),
	}
}

// outMsg is a message to publish to JetStream.
type outMsg struct {
	subject string
	data    []byte
	msgID   string // Nats-Msg-Id for deduplication ("" for none)
	jobID   string // Kyc-Job-Id
	header  nats.Header
}

// newOutMsg encodes msg (stamping its schema) for subject.
func newOutMsg(subject string, msg messages.Message, msgID, jobID string) (outMsg, error) {
	b, err := messages.Marshal(msg)
	if err != nil {
		return outMsg{}, fmt.Errorf("pipeline: encode %s: %w", subject, err)
	}
	return outMsg{subject: subject, data: b, msgID: msgID, jobID: jobID}, nil
}

func (o outMsg) natsMsg(ctx context.Context) *nats.Msg {
	m := nats.NewMsg(o.subject)
	m.Data = o.data
	for k, vs := range o.header {
		m.Header[k] = append([]string(nil), vs...)
	}
	if o.msgID != "" {
		m.Header.Set(messages.HeaderMsgID, o.msgID)
	}
	if o.jobID != "" {
		m.Header.Set(messages.HeaderJobID, o.jobID)
	}
	injectTrace(ctx, m.Header)
	return m
}

// publish stores one message and waits for JetStream's acknowledgement. A
// message with a Nats-Msg-Id whose acknowledgement did not come is
// published again (confirm).
func publish(ctx context.Context, js jetstream.JetStream, o outMsg) (*jetstream.PubAck, error) {
	ack, err := js.PublishMsg(ctx, o.natsMsg(ctx))
	if err != nil && unconfirmed(ctx, o, err) {
		ack, err = confirm(ctx, js, o, err)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: publish %s: %w", o.subject, err)
	}
	return ack, nil
}

// confirmFor bounds how long confirm repeats a publish.
const confirmFor = 15 * time.Second

// unconfirmed reports whether a publish of o failed without an answer from
// JetStream (a timeout, no responders while a stream leader is elected, a
// lost connection), so that the message may be stored all the same, and o
// can be published again safely (it has a Nats-Msg-Id).
func unconfirmed(ctx context.Context, o outMsg, err error) bool {
	return o.msgID != "" && ctx.Err() == nil && !answered(err)
}

// answered reports whether err is JetStream's own answer (an API error),
// which is final, as opposed to no answer at all.
func answered(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api)
}

// subjectHoldsMessage reports whether err is JetStream's refusal of a
// publish whose expected last sequence per subject did not hold (here
// always 0: the subject holds a message already). A single-replica stream
// answers 10071; a replicated (R3) one answers 10164 instead (nats.go's
// jetstream/errors.go), so both are that refusal.
func subjectHoldsMessage(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// confirm publishes o again until JetStream answers, for up to confirmFor:
// a message that was stored answers as a duplicate with its sequence. The
// sequence is what an erasure needs: an event stored without its sequence
// in the job record outlived its job's erasure (found by the chaosnet
// soak: acknowledgements lost during node losses and partitions).
func confirm(ctx context.Context, js jetstream.JetStream, o outMsg, first error) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, confirmFor)
	defer cancel()
	err := first
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		ack, perr := js.PublishMsg(ctx, o.natsMsg(ctx))
		if perr == nil {
			return ack, nil
		}
		if answered(perr) {
			return nil, perr
		}
		err = perr
	}
}

// asyncAckTimeout bounds the wait for an asynchronous publish's
// acknowledgement. A future of nats.go's PublishMsgAsync resolves only
// when JetStream answers, the connection changes state, or a timeout set
// on the JetStream context (WithPublishAsyncTimeout, which callers of this
// package need not set) fires: a publish that reached a server just as the
// stream's leader was lost is never answered. The 60-minute soak of
// 2026-12-07 had a worker wait on the accepted event's future for good (a
// node killed as the event was published) while it kept its job alive with
// progress acknowledgements: the job never moved again.
const asyncAckTimeout = 5 * time.Second

// errNoAck is awaitAck's error when no acknowledgement came in time: not
// JetStream's answer, so a message with an ID is published again
// (unconfirmed, confirm).
var errNoAck = errors.New("pipeline: no acknowledgement of an asynchronous publish")

// awaitAck waits for f's acknowledgement, its error, errNoAck after
// asyncAckTimeout, or ctx's end.
func awaitAck(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	t := time.NewTimer(asyncAckTimeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-t.C:
		return nil, errNoAck
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// publishMessage encodes msg and publishes it on subject.
func (s *stage) publishMessage(ctx context.Context, subject string, msg messages.Message, msgID, jobID string) (*jetstream.PubAck, error) {
	o, err := newOutMsg(subject, msg, msgID, jobID)
	if err != nil {
		return nil, err
	}
	return publish(ctx, s.js, o)
}

// publishAll stores several messages concurrently and waits until every one
// is acknowledged. It returns the acks in order, or the first error.
func publishAll(ctx context.Context, js jetstream.JetStream, msgs ...outMsg) ([]*jetstream.PubAck, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, o := range msgs {
		f, err := js.PublishMsgAsync(o.natsMsg(ctx))
		if err != nil {
			return nil, fmt.Errorf("pipeline: publish %s: %w", o.subject, err)
		}
		futures = append(futures, f)
	}
	acks := make([]*jetstream.PubAck, len(futures))
	var errs []error
	for i, f := range futures {
		ack, err := awaitAck(ctx, f)
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil && unconfirmed(ctx, msgs[i], err) {
			ack, err = confirm(ctx, js, msgs[i], err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pipeline: publish %s: %w", msgs[i].subject, err))
			continue
		}
		acks[i] = ack
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return acks, nil
}
