package pipeline

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The accepted event goes out beside the Jumio account creation
// (announceAccepted), and its sequence reaches the job record with the
// account's checkpoint: an erasure finds the event by that sequence only
// (its subject does not name the job). When JetStream's acknowledgement is
// lost (a node loss, a partition), confirm publishes the event again with
// its Nats-Msg-Id, and the answer to the duplicate carries the stored
// copy's sequence; but confirm gives up after confirmFor, and a worker slot
// is not held for longer (issue 15: a 30-second isolation of a node left an
// accepted event in KYC_EVENTS after its job's erasure).
//
// So the job record says that the accepted event is unconfirmed
// (JobRecord.AcceptedUnconfirmed, the event's time), and the job's next
// checkpoints (the announce of finish, a decision, a FAILED job) publish the
// same event again, with the same Nats-Msg-Id and time, and record the
// sequence JetStream answers with; so does the eraser before it removes the
// job's messages. Within the events stream's duplicate window
// (Topology.DuplicateWindow) the answer is the stored copy's sequence and
// nothing new is stored; if the first copy was never stored, the republish
// stores the event once, as it should have been (a later republish is a
// duplicate of it). Past the window a republish would store a second copy,
// an extra event for subscribers, and would not find the first one:
// nothing is republished then (reconfirmable keeps a fifth of the window
// clear of its end, for clock skew). Should a republish still land past the
// window on the server, its copy is handled like any message about the
// job: recorded (the job side) or deleted (the eraser, which records it
// before it removes the job's messages).

// The erasure must also find an accepted event whose worker died before
// any checkpoint recorded it (the 60-minute soak of 2026-12-07 02:38: a
// worker SIGKILLed between the publish and the account's checkpoint, the
// job erased before its redelivery). So the accepted event is written
// ahead: the record the first delivery creates says when the event will
// be published (AcceptedUnconfirmed, at no extra write), and the publish
// uses that time, or first records a new one when it is too old to be
// published again. The eraser then never publishes the event (a copy it
// stored would reach subscribers and webhook receivers after the erasure
// was requested): it searches the events stream for the job's accepted
// event from that time on (findAccepted), which reads a few accepted
// events' headers and only for a job erased between its record and the
// account's checkpoint, or whose acknowledgement was lost.

// acceptedSkew is how much earlier than the recorded time the search for
// an accepted event starts: the time is the worker's clock, the stream's
// is the server's.
const acceptedSkew = 2 * time.Second

// findAccepted returns where the job's accepted event, published at at
// (AcceptedUnconfirmed), is stored: it reads the headers of the accepted
// events stored from at on, until the time past which no publish of it
// can have been made (the duplicate window; a publish is made only while
// reconfirmable), or the end of the stream. None found: the event was
// never stored.
func (s *stage) findAccepted(ctx context.Context, jobID string, at time.Time) ([]MessageRef, error) {
	start, end := at.Add(-acceptedSkew), at.Add(s.topo.DuplicateWindow+acceptedSkew)
	want := messages.EventMsgID(messages.KindAccepted, jobID)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.subj.Event(messages.KindAccepted)},
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start, HeadersOnly: true}
	var refs []MessageRef
	err := readOrdered(ctx, s.js, s.subj.StreamEvents(), cfg, func(m jetstream.Msg) bool {
		md, err := m.Metadata()
		if err != nil {
			return true
		}
		if md.Timestamp.After(end) {
			return false
		}
		if m.Headers().Get(messages.HeaderMsgID) == want {
			refs = append(refs, acceptedRef(md.Stream, md.Sequence.Stream, at))
		}
		return true
	})
	return refs, err
}

// errAcceptedTooOld says that an unconfirmed accepted event is older than
// a republish may be: past the duplicate window, JetStream would store a
// second copy instead of answering with the first one's sequence.
var errAcceptedTooOld = errors.New("the accepted event's acknowledgement was lost longer ago than the events stream's duplicate window")

// acceptedMsg returns the job's accepted event as announceAccepted
// publishes it at at: before the job has an account, so it names none.
func acceptedMsg(subj messages.Subjects, rec *JobRecord, at time.Time) (outMsg, error) {
	ev := newEvent(messages.KindAccepted, rec, at)
	ev.AccountID, ev.WorkflowExecutionID = "", ""
	return newOutMsg(subj.Event(messages.KindAccepted), ev, messages.EventMsgID(messages.KindAccepted, rec.JobID), rec.JobID)
}

// acceptedRef is where an acknowledged accepted event of time at is.
func acceptedRef(stream string, seq uint64, at time.Time) MessageRef {
	return MessageRef{Stream: stream, Seq: seq, Kind: EventMessageKind(messages.KindAccepted), At: at.UTC()}
}

// reconfirmable reports whether an accepted event published at at may be
// published again: JetStream still remembers its Nats-Msg-Id (the events
// stream's duplicate window counts from the first copy, which was stored
// at at or later), with a fifth of the window kept clear for clock skew.
func (s *stage) reconfirmable(at time.Time) bool {
	w := s.topo.DuplicateWindow
	return s.now().Sub(at) < w-w/5
}

// lostAck reports whether a publish failed without JetStream's answer, so
// that the message may be stored all the same.
func lostAck(err error) bool { return err != nil && !answered(err) }

// noteAccepted records, in the job record rec, the outcome of publishing
// the job's accepted event at at: ref, where it is stored, or err, why it
// is not known. A stored copy learned while the window of an earlier
// unconfirmed publish is open is that publish's copy (or the only one):
// the record no longer says unconfirmed. A lost acknowledgement marks the
// event unconfirmed (the earliest such publish is kept: its window closes
// first).
func (s *stage) noteAccepted(rec *JobRecord, at time.Time, ref MessageRef, err error) {
	rec.addMessages(ref)
	switch {
	case ref.Seq != 0:
		if !rec.AcceptedUnconfirmed.IsZero() && s.reconfirmable(rec.AcceptedUnconfirmed) {
			rec.AcceptedUnconfirmed = time.Time{}
		}
	case lostAck(err) && rec.AcceptedUnconfirmed.IsZero():
		rec.AcceptedUnconfirmed = at.UTC()
	}
}

// reconfirmAccepted publishes the job's unconfirmed accepted event again
// (same Nats-Msg-Id, same content) and returns where JetStream says it is:
// the stored copy's sequence (a duplicate), or the copy stored now if the
// first one never was. It returns a zero ref and no error when the record
// has no unconfirmed accepted event, and errAcceptedTooOld when the
// duplicate window has passed (nothing is published then).
func (s *stage) reconfirmAccepted(ctx context.Context, rec *JobRecord) (MessageRef, error) {
	at := rec.AcceptedUnconfirmed
	if at.IsZero() {
		return MessageRef{}, nil
	}
	if !s.reconfirmable(at) {
		return MessageRef{}, errAcceptedTooOld
	}
	o, err := acceptedMsg(s.subj, rec, at)
	if err != nil {
		return MessageRef{}, err
	}
	ack, err := publish(ctx, s.js, o)
	if err != nil {
		return MessageRef{}, err
	}
	if !ack.Duplicate {
		// Not a duplicate: the first copy never reached the stream (or
		// the window passed on the server); this copy is the recorded one.
		s.log.Info("the unconfirmed accepted event was not stored; stored it now", jobField(rec.JobID))
	}
	return acceptedRef(ack.Stream, ack.Sequence, at), nil
}

// reconfirmAcceptedAtCheckpoint is reconfirmAccepted on a job's own path
// (not the eraser's): best effort, the checkpoint goes on without it. A job
// being erased is left to the eraser.
func (s *stage) reconfirmAcceptedAtCheckpoint(ctx context.Context, rec *JobRecord, log *zap.Logger) MessageRef {
	if rec.AcceptedUnconfirmed.IsZero() || rec.Erasing() {
		return MessageRef{}
	}
	ref, err := s.reconfirmAccepted(ctx, rec)
	switch {
	case errors.Is(err, errAcceptedTooOld):
		log.Debug("the accepted event is unconfirmed and too old to be published again")
	case err != nil:
		log.Warn("cannot confirm where the accepted event is yet; a later checkpoint or the erasure tries again", zap.Error(err))
	}
	return ref
}

// forgetAccepted handles an accepted event whose acknowledgement was lost
// (werr) for a job already erased (its tombstone refused the write that
// would have recorded the outcome): it searches for the event and deletes
// what it finds. The eraser searched too, from the record's time, but the
// event may have been stored after its search. Found by the 60-minute
// soak: a worker cut off from NATS during the job's account step, the job
// erased meanwhile; its accepted event stayed in KYC_EVENTS.
func (s *stage) forgetAccepted(ctx context.Context, rec *JobRecord, at time.Time, werr error) {
	if !lostAck(werr) || at.IsZero() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	refs, err := s.findAccepted(ctx, rec.JobID, at)
	if err != nil {
		s.log.Error("cannot search for the accepted event of an erased job (its acknowledgement was lost); it stays until the events stream's age limit",
			jobField(rec.JobID), zap.Error(err))
		return
	}
	s.deleteMessages(ctx, refs...)
}
