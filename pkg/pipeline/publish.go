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

// publish stores one message and waits for JetStream's acknowledgement.
func publish(ctx context.Context, js jetstream.JetStream, o outMsg) (*jetstream.PubAck, error) {
	ack, err := js.PublishMsg(ctx, o.natsMsg(ctx))
	if err != nil {
		return nil, fmt.Errorf("pipeline: publish %s: %w", o.subject, err)
	}
	return ack, nil
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
		select {
		case ack := <-f.Ok():
			acks[i] = ack
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("pipeline: publish %s: %w", msgs[i].subject, err))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return acks, nil
}
