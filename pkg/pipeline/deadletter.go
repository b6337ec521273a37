package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// This file reads dead letters: the messages on kyc.dlq.<stage> that a stage
// (or the sweeper, for JetStream) gave up on, with why.

// DeadLetter is one message on kyc.dlq.<stage>, with why it is there.
type DeadLetter struct {
	Sequence         uint64      `json:"sequence"` // in the dead-letter stream
	Subject          string      `json:"subject"`
	Time             time.Time   `json:"time"`
	Stage            string      `json:"stage"`
	Reason           string      `json:"reason"`
	Error            string      `json:"error"`
	Deliveries       int         `json:"deliveries"`
	JobID            string      `json:"jobId,omitempty"`
	OriginalSubject  string      `json:"originalSubject"`
	OriginalStream   string      `json:"originalStream,omitempty"`
	OriginalSequence uint64      `json:"originalSequence,omitempty"`
	Header           nats.Header `json:"-"`
	Data             []byte      `json:"-"` // the original payload (may hold PII)
}

func deadLetterFrom(seq uint64, subject string, t time.Time, h nats.Header, data []byte) DeadLetter {
	dl := DeadLetter{Sequence: seq, Subject: subject, Time: t, Header: h, Data: data,
		Stage: h.Get(messages.HeaderStage), Reason: h.Get(messages.HeaderReason), Error: h.Get(messages.HeaderError),
		JobID: h.Get(messages.HeaderJobID), OriginalSubject: h.Get(messages.HeaderOriginalSubject),
		OriginalStream: h.Get(messages.HeaderOriginalStream)}
	dl.Deliveries, _ = strconv.Atoi(h.Get(messages.HeaderDeliveries))
	dl.OriginalSequence, _ = strconv.ParseUint(h.Get(messages.HeaderOriginalSequence), 10, 64)
	return dl
}

// DLQFilter selects dead letters. Zero fields match everything.
type DLQFilter struct {
	Stage  string
	Reason string
	JobID  string
	Since  time.Time
	Limit  int
}

func (f DLQFilter) match(dl DeadLetter) bool {
	return (f.Reason == "" || dl.Reason == f.Reason) && (f.JobID == "" || dl.JobID == f.JobID) &&
		(f.Since.IsZero() || !dl.Time.Before(f.Since))
}

// ListDeadLetters returns the dead letters matching f, oldest first.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, f DLQFilter) ([]DeadLetter, error) {
	filter := subj.DLQs()
	if f.Stage != "" {
		filter = subj.DLQ(f.Stage)
	}
	st, err := js.Stream(ctx, subj.StreamDLQ())
	if err != nil {
		return nil, fmt.Errorf("pipeline: dead-letter stream: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
	if !f.Since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &f.Since
	}
	cons, err := js.OrderedConsumer(ctx, subj.StreamDLQ(), cfg)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, err
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = md.NumPending
			dl := deadLetterFrom(md.Sequence.Stream, m.Subject(), md.Timestamp, m.Headers(), m.Data())
			if f.match(dl) {
				out = append(out, dl)
				if f.Limit > 0 && len(out) >= f.Limit {
					return out, nil
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if n == 0 || pending == 0 {
			return out, nil
		}
	}
}

// GetDeadLetter returns one dead letter by its sequence in the dead-letter
// stream.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, seq uint64) (*DeadLetter, error) {
	st, err := js.Stream(ctx, subj.StreamDLQ())
	if err != nil {
		return nil, fmt.Errorf("pipeline: dead-letter stream: %w", err)
	}
	raw, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("pipeline: dead letter %d: %w (replayed or deleted already, or never written; see kycctl dlq list)", seq, err)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: dead letter %d: %w", seq, err)
	}
	dl := deadLetterFrom(raw.Sequence, raw.Subject, raw.Time, raw.Header, raw.Data)
	return &dl, nil
}
