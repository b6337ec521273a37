package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// This file is the one give-up path of every stage: store the message as a
// dead letter on kyc.dlq.<stage> with why, mark its job FAILED and publish
// the failed event, then terminate the message.

// maxErrorHeader bounds the Kyc-Error header.
const maxErrorHeader = 512

// sanitizeError makes an error message fit a header and a log line: one
// line, printable, bounded. Messages built by this module never contain
// applicant data or secrets; this only guards the format.
func sanitizeError(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorHeader {
		s = s[:maxErrorHeader] + "…"
	}
	return s
}

// errorInfo describes err for a failed event and a job record.
func errorInfo(code string, err error) messages.ErrorInfo {
	info := messages.ErrorInfo{Code: code, Message: sanitizeError(err.Error())}
	if st := jumio.StatusCode(err); st != 0 {
		info.Status = st
	}
	return info
}

// giveUp is what a stage knows about a message it gives up on.
type giveUp struct {
	reason string // messages.Reason…
	jobID  string // "" when the message names no verified job
	info   messages.ErrorInfo
	cause  error
	log    *zap.Logger
	// triggerOnly: the message only triggers work on its job (a callback):
	// the letter is recorded in the job's record (for erasure), but the job
	// is not failed; its own message (the poll task) decides it.
	triggerOnly bool
}

// giveUp dead-letters m, marks its job failed and returns the terminate
// outcome. If storing the dead letter or the failure fails, the message is
// retried instead: it must not disappear without a trace.
func (s *stage) giveUp(ctx context.Context, m jetstream.Msg, g giveUp) outcome {
	log := g.log
	if log == nil {
		log = s.log
	}
	letter, err := s.publishDeadLetter(ctx, deadLetterOf(m, s.name, g))
	if err != nil {
		log.Error("cannot dead-letter; will retry", zap.Error(err))
		return retry(s.delays.GiveUpRetry)
	}
	s.m.deadLettered(s.name, g.reason)
	if g.jobID != "" && g.triggerOnly {
		if err := s.recordLetter(ctx, g.jobID, letter); err != nil {
			log.Error("cannot record the dead letter in its job's record; will retry", zap.Error(err))
			return retry(s.delays.GiveUpRetry)
		}
	} else if g.jobID != "" {
		if err := s.failJob(ctx, g.jobID, g.info, letter); err != nil {
			log.Error("cannot mark job failed; will retry", zap.Error(err))
			return retry(s.delays.GiveUpRetry)
		}
	}
	log.Warn("gave up on message", zap.String("stage", s.name), zap.String("reason", g.reason), zap.String("error", g.info.Message))
	return terminate(g.reason + ": " + g.info.Code)
}

// deadLetter is a message to store on kyc.dlq.<stage>.
type deadLetter struct {
	stage   string
	reason  string
	cause   error
	subject string
	stream  string
	seq     uint64
	deliv   int
	jobID   string
	header  nats.Header
	data    []byte
}

func deadLetterOf(m jetstream.Msg, stage string, g giveUp) deadLetter {
	dl := deadLetter{stage: stage, reason: g.reason, cause: g.cause, subject: m.Subject(), jobID: g.jobID, header: m.Headers(), data: m.Data()}
	if md, err := m.Metadata(); err == nil {
		dl.stream, dl.seq, dl.deliv = md.Stream, md.Sequence.Stream, int(md.NumDelivered)
	}
	return dl
}

// publishDeadLetter stores the original message on kyc.dlq.<stage> with
// headers saying why, and returns where it is (the job record lists it, for
// erasure). Its message ID is derived from the original's stream and
// sequence, so a stage that crashes after dead-lettering and sees the
// message again does not store it twice.
func (s *stage) publishDeadLetter(ctx context.Context, dl deadLetter) (MessageRef, error) {
	m := nats.NewMsg(s.subj.DLQ(dl.stage))
	m.Data = dl.data
	for k, vs := range dl.header {
		if strings.HasPrefix(k, "Nats-") {
			continue // dedup and expectation headers belong to the original publish
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	errText := ""
	if dl.cause != nil {
		errText = sanitizeError(dl.cause.Error())
	}
	m.Header.Set(messages.HeaderStage, dl.stage)
	m.Header.Set(messages.HeaderReason, dl.reason)
	m.Header.Set(messages.HeaderError, errText)
	m.Header.Set(messages.HeaderDeliveries, strconv.Itoa(dl.deliv))
	m.Header.Set(messages.HeaderOriginalSubject, dl.subject)
	if dl.stream != "" {
		m.Header.Set(messages.HeaderOriginalStream, dl.stream)
		m.Header.Set(messages.HeaderOriginalSequence, strconv.FormatUint(dl.seq, 10))
		m.Header.Set(messages.HeaderMsgID, messages.DeadLetterMsgID(dl.stream, dl.seq))
	}
	if dl.jobID != "" {
		m.Header.Set(messages.HeaderJobID, dl.jobID)
	}
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		return MessageRef{}, fmt.Errorf("pipeline: dead-letter to %s: %w", m.Subject, err)
	}
	return MessageRef{Stream: ack.Stream, Seq: ack.Sequence, Kind: MessageKindDeadLetter}, nil
}

// Kinds of the messages a job record lists (MessageRef.Kind).
const (
	MessageKindDeadLetter = "dead_letter"
	MessageKindDecision   = "decision"
)

// eventKindPrefix starts a lifecycle event's MessageRef.Kind.
const eventKindPrefix = "event:"

// EventMessageKind is the MessageRef.Kind of a lifecycle event of kind
// (messages.KindAccepted, …).
func EventMessageKind(kind string) string { return eventKindPrefix + kind }

// EventKind returns the lifecycle event kind m names, if it names an event.
func (m MessageRef) EventKind() (string, bool) { return strings.CutPrefix(m.Kind, eventKindPrefix) }

// failJob marks a job FAILED with info (unless it already finished),
// publishes its failed event, and records where its dead letter (letter,
// zero when none) and the event are, for erasure. It is idempotent. For a
// job being erased it only records the letter (the eraser removes it); for
// an erased one it deletes the letter itself.
func (s *stage) failJob(ctx context.Context, jobID string, info messages.ErrorInfo, letter MessageRef) error {
	// From the stream leader: whether the job is decided decides whether a
	// failed event goes out.
	rec, rev, err := s.store.getLatest(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) {
		rec = &JobRecord{JobID: jobID, CreatedAt: s.now().UTC()}
		if _, rev, err = s.store.Create(ctx, rec); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		if rec, rev, err = s.store.getLatest(ctx, jobID); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	// A decision exists: a late failure of another message does not undo
	// it, and no failed event goes out; the letter is still recorded.
	publishEvent := rec.Status != StatusDecided && !rec.Erasing()
	var event MessageRef
	if publishEvent {
		ev := newEvent(messages.KindFailed, rec, s.now())
		ev.Error = &info
		ack, err := s.publishMessage(ctx, s.subj.Event(messages.KindFailed), ev, messages.EventMsgID(messages.KindFailed, rec.JobID), rec.JobID)
		if err != nil {
			return err
		}
		event = MessageRef{Stream: ack.Stream, Seq: ack.Sequence, Kind: EventMessageKind(messages.KindFailed)}
	}
	// A give-up is a checkpoint of the job: an accepted event whose
	// acknowledgement was lost is confirmed here (accepted.go).
	unconfirmedAt := rec.AcceptedUnconfirmed
	accepted := s.reconfirmAcceptedAtCheckpoint(ctx, rec, s.log.With(jobField(jobID)))
	wasFailed := rec.Status == StatusFailed
	_, _, err = s.store.Update(ctx, rec, rev, func(r *JobRecord) error {
		r.addMessages(letter, event)
		s.noteAccepted(r, unconfirmedAt, accepted, nil)
		if r.Status == StatusDecided || (r.Status == StatusFailed && r.LastError != nil && *r.LastError == info) {
			return nil
		}
		r.LastError = &info
		r.SetStatus(s.now(), StatusFailed, info.Code)
		return nil
	})
	switch {
	case errors.Is(err, ErrErasing):
		return nil
	case errors.Is(err, ErrErased):
		s.deleteMessages(ctx, letter, event, accepted)
		return nil
	case err != nil:
		return err
	}
	if publishEvent && !wasFailed {
		s.m.jobFailed()
	}
	return nil
}

// recordLetter records where a dead letter about a job is (for erasure)
// without changing the job's status.
func (s *stage) recordLetter(ctx context.Context, jobID string, letter MessageRef) error {
	rec, rev, err := s.store.getLatest(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, _, err = s.store.Update(ctx, rec, rev, func(r *JobRecord) error {
		if r.hasMessage(letter) {
			return errStop
		}
		r.addMessages(letter)
		return nil
	})
	switch {
	case errors.Is(err, ErrErasing):
		return nil
	case errors.Is(err, ErrErased):
		s.deleteMessages(ctx, letter)
		return nil
	}
	return err
}

// deleteMessages removes messages about an erased job that were published
// after its erasure completed.
func (s *stage) deleteMessages(ctx context.Context, refs ...MessageRef) {
	for _, r := range refs {
		if r.Seq == 0 {
			continue
		}
		if err := s.eraseMsg(ctx, r.Stream, r.Seq); err != nil {
			s.log.Error("cannot delete a message about an erased job", zap.String("stream", r.Stream), zap.Uint64("seq", r.Seq), zap.Error(err))
		}
	}
}
