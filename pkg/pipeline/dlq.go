package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

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

// deadLetter is what a stage knows about a message it gives up on.
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

func deadLetterOf(m jetstream.Msg, stage, reason, jobID string, cause error) deadLetter {
	dl := deadLetter{stage: stage, reason: reason, cause: cause, subject: m.Subject(), jobID: jobID, header: m.Headers(), data: m.Data()}
	if md, err := m.Metadata(); err == nil {
		dl.stream, dl.seq, dl.deliv = md.Stream, md.Sequence.Stream, int(md.NumDelivered)
	}
	return dl
}

// publishDeadLetter stores the original message on kyc.dlq.<stage> with
// headers saying why. Its message ID is derived from the original's stream
// and sequence, so a stage that crashes after dead-lettering and sees the
// message again does not store it twice.
func publishDeadLetter(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, dl deadLetter) error {
	m := nats.NewMsg(subj.DLQ(dl.stage))
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
		m.Header.Set(messages.HeaderMsgID, "dlq:"+dl.stream+":"+strconv.FormatUint(dl.seq, 10))
	}
	if dl.jobID != "" {
		m.Header.Set(messages.HeaderJobID, dl.jobID)
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("pipeline: dead-letter to %s: %w", m.Subject, err)
	}
	return nil
}

// failJob marks a job FAILED with info (unless it already finished) and
// publishes its failed event. It is idempotent.
func failJob(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, store *JobStore, now func() time.Time, m *Metrics, jobID string, info messages.ErrorInfo) error {
	rec, rev, err := store.Get(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) {
		rec = &JobRecord{JobID: jobID, CreatedAt: now().UTC()}
		if _, rev, err = store.Create(ctx, rec); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		if rec, rev, err = store.Get(ctx, jobID); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if rec.Status == StatusDecided {
		return nil // a decision exists; a late failure of another message does not undo it
	}
	wasFailed := rec.Status == StatusFailed
	rec, _, err = store.Update(ctx, rec, rev, func(r *JobRecord) error {
		if r.Status == StatusFailed && r.LastError != nil && *r.LastError == info {
			return errStop
		}
		r.LastError = &info
		r.SetStatus(now(), StatusFailed, info.Code)
		return nil
	})
	if err != nil {
		return err
	}
	if !wasFailed {
		m.jobFailed()
	}
	ev := &messages.Event{
		Schema: messages.SchemaEvent, Kind: messages.KindFailed, JobID: rec.JobID, Region: rec.Region,
		AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
		CustomerInternalReference: rec.CustomerInternalReference, Error: &info, At: now().UTC(),
	}
	o, err := newOutMsg(subj.Event(messages.KindFailed), ev, "failed:"+rec.JobID, rec.JobID)
	if err != nil {
		return err
	}
	_, err = publish(ctx, js, o)
	return err
}

// errorInfo describes err for a failed event and a job record.
func errorInfo(code string, err error) messages.ErrorInfo {
	info := messages.ErrorInfo{Code: code, Message: sanitizeError(err.Error())}
	if st := jumio.StatusCode(err); st != 0 {
		info.Status = st
	}
	return info
}

// giveUp dead-letters m, marks its job failed and returns the Terminate
// outcome. If storing the dead letter fails, the message is retried instead:
// it must not disappear without a trace.
func giveUp(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, store *JobStore, now func() time.Time, metrics *Metrics, log *zap.Logger,
	m jetstream.Msg, stage, reason, jobID string, info messages.ErrorInfo, cause error) Outcome {
	dl := deadLetterOf(m, stage, reason, jobID, cause)
	if err := publishDeadLetter(ctx, js, subj, dl); err != nil {
		log.Error("cannot dead-letter; will retry", zap.Error(err))
		return Retry(10 * time.Second)
	}
	if jobID != "" {
		if err := failJob(ctx, js, subj, store, now, metrics, jobID, info); err != nil {
			log.Error("cannot mark job failed; will retry", zap.Error(err))
			return Retry(10 * time.Second)
		}
	}
	log.Warn("gave up on message", zap.String("stage", stage), zap.String("reason", reason), zap.String("error", info.Message))
	return Terminate(reason + ": " + info.Code)
}
