package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// advisory is the part of JetStream's MAX_DELIVERIES and MSG_TERMINATED
// advisories the sweeper needs.
type advisory struct {
	Type       string `json:"type"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

// sweeper dead-letters the messages JetStream gave up on. It reads the
// advisories captured in the advisories stream (so none is missed while no
// sweeper runs), fetches the original message by sequence, publishes it on
// kyc.dlq.<stage>, marks its job FAILED and removes it from its work queue
// (max-delivered messages stay in work queues until deleted).
type sweeper struct {
	js    jetstream.JetStream
	subj  messages.Subjects
	store *JobStore
	log   *zap.Logger
	now   func() time.Time
	m     *Metrics

	mu      sync.Mutex
	streams map[string]jetstream.Stream
}

func newSweeper(js jetstream.JetStream, subj messages.Subjects, store *JobStore, log *zap.Logger, now func() time.Time, m *Metrics) *sweeper {
	return &sweeper{js: js, subj: subj, store: store, log: log.With(zap.String("consumer", ConsumerDLQSweeper)), now: now, m: m, streams: map[string]jetstream.Stream{}}
}

func (s *sweeper) runner(t Topology, grace time.Duration) *runner {
	return &runner{name: "dlq-sweeper", js: s.js, stream: s.subj.StreamAdvisories(), consumer: ConsumerDLQSweeper,
		concurrency: 2, ackWait: 30 * time.Second, grace: grace, log: s.log, handle: s.handle}
}

func (s *sweeper) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.streams[name]; ok {
		return st, nil
	}
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	s.streams[name] = st
	return st, nil
}

func (s *sweeper) handle(ctx context.Context, m jetstream.Msg) Outcome {
	var adv advisory
	if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.Stream == "" || adv.StreamSeq == 0 {
		s.log.Warn("ignoring an advisory that cannot be read", zap.String("subject", m.Subject()))
		return Ack()
	}
	stage := s.subj.StageOf(adv.Stream)
	if stage == "" {
		return Ack() // not one of ours
	}
	maxed := strings.HasPrefix(m.Subject(), AdvisoryMaxDeliveries)
	st, err := s.stream(ctx, adv.Stream)
	if err != nil {
		return Retry(5 * time.Second)
	}
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Terminated messages leave work queues at once: the stage that
		// terminated them dead-lettered them first. A max-delivered message
		// that is gone was swept already.
		return Ack()
	}
	if err != nil {
		return Retry(5 * time.Second)
	}
	reason, code := messages.ReasonMaxDeliveries, messages.ErrCodeMaxDeliveries
	cause := fmt.Errorf("JetStream stopped redelivering after %d deliveries", adv.Deliveries)
	if !maxed {
		reason, code = messages.ReasonTerminal, messages.ErrCodeInternal
		cause = fmt.Errorf("terminated: %s", cmpOr(adv.Reason, "no reason given"))
	}
	jobID := raw.Header.Get(messages.HeaderJobID)
	dl := deadLetter{stage: stage, reason: reason, cause: cause, subject: raw.Subject, stream: adv.Stream,
		seq: adv.StreamSeq, deliv: int(adv.Deliveries), jobID: jobID, header: raw.Header, data: raw.Data}
	log := s.log.With(jobField(jobID), zap.String("stream", adv.Stream), zap.Uint64("seq", adv.StreamSeq))
	if err := publishDeadLetter(ctx, s.js, s.subj, dl); err != nil {
		log.Warn("cannot dead-letter; will retry", zap.Error(err))
		return Retry(5 * time.Second)
	}
	if jobID != "" && messages.ValidJobID(jobID) {
		if err := failJob(ctx, s.js, s.subj, s.store, s.now, s.m, jobID, errorInfo(code, cause)); err != nil {
			log.Warn("cannot mark job failed; will retry", zap.Error(err))
			return Retry(5 * time.Second)
		}
	}
	if err := st.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Warn("dead-lettered, but cannot delete the original", zap.Error(err))
	}
	s.m.deadLettered(stage, reason)
	log.Warn("dead-lettered a message JetStream gave up on", zap.String("reason", reason), zap.Uint64("deliveries", adv.Deliveries))
	return Ack()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

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

// ReplayResult says what a replay did.
type ReplayResult struct {
	Sequence  uint64 `json:"sequence"`
	JobID     string `json:"jobId,omitempty"`
	Subject   string `json:"subject"`
	Duplicate bool   `json:"duplicate"` // the same dead letter was replayed already
}

// ReplayDeadLetter puts a dead letter back into the pipeline: it resets its
// job from FAILED to the status its checkpoint reached (so the job resumes
// there: a replayed job never creates a second Jumio account or finalizes
// twice), republishes the original payload on its original subject, and
// removes the dead letter. The republish is deduplicated on the dead letter's
// sequence, so replaying the same dead letter twice (two operators at once)
// yields one message. Retrieval tasks get a new deadline (now + deadline).
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, seq uint64, deadline time.Duration) (*ReplayResult, error) {
	dl, err := GetDeadLetter(ctx, js, subj, seq)
	if err != nil {
		return nil, err
	}
	if dl.OriginalSubject == "" || !strings.HasPrefix(dl.OriginalSubject, subj.Prefix()+".") {
		return nil, fmt.Errorf("pipeline: dead letter %d has no replayable original subject", seq)
	}
	data := dl.Data
	if strings.HasPrefix(dl.OriginalSubject, subj.Prefix()+".retrieve.") {
		var task RetrievalTask
		if err := json.Unmarshal(data, &task); err == nil {
			task.Deadline = time.Now().Add(deadline).UTC()
			data, _ = json.Marshal(task)
		}
	}
	var store *JobStore
	var restore func()
	if dl.JobID != "" {
		kv, err := js.KeyValue(ctx, subj.BucketJobs())
		if err != nil {
			return nil, err
		}
		store = NewJobStore(kv, time.Now)
		if restore, err = resumeJob(ctx, store, dl.JobID, seq); err != nil {
			return nil, err
		}
	}
	m := nats.NewMsg(dl.OriginalSubject)
	m.Data = data
	for k, vs := range dl.Header {
		if strings.HasPrefix(k, "Kyc-") && k != messages.HeaderJobID || strings.HasPrefix(k, "Nats-") {
			continue
		}
		m.Header[k] = append([]string(nil), vs...)
	}
	if dl.JobID != "" {
		m.Header.Set(messages.HeaderJobID, dl.JobID)
	}
	m.Header.Set(messages.HeaderReplayOf, strconv.FormatUint(seq, 10))
	m.Header.Set(messages.HeaderMsgID, "replay:"+subj.StreamDLQ()+":"+strconv.FormatUint(seq, 10))
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		if restore != nil {
			restore()
		}
		return nil, fmt.Errorf("pipeline: replay dead letter %d: %w", seq, err)
	}
	if st, err := js.Stream(ctx, subj.StreamDLQ()); err == nil {
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("pipeline: replayed dead letter %d but cannot remove it: %w", seq, err)
		}
	}
	return &ReplayResult{Sequence: seq, JobID: dl.JobID, Subject: dl.OriginalSubject, Duplicate: ack.Duplicate}, nil
}

// resumeJob moves a FAILED job back to the status its checkpoint reached and
// gives it a fresh retry budget. It returns a function undoing that (for a
// replay whose republish failed).
func resumeJob(ctx context.Context, store *JobStore, jobID string, seq uint64) (func(), error) {
	rec, rev, err := store.Get(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.Status != StatusFailed {
		return nil, nil
	}
	var prev *messages.ErrorInfo
	if rec.LastError != nil {
		e := *rec.LastError
		prev = &e
	}
	now := time.Now()
	updated, newRev, err := store.Update(ctx, rec, rev, func(r *JobRecord) error {
		if r.Status != StatusFailed {
			return errStop
		}
		status := StatusAccepted
		switch {
		case r.Announced && r.Channel == messages.ChannelAPI:
			status = StatusFinalized
		case r.Announced:
			status = StatusLaunched
		case r.WorkflowExecutionID != "":
			status = StatusAccountCreated
		}
		r.LastError, r.Attempts, r.Throttled = nil, 0, 0
		r.SetStatus(now, status, "replayed from dead letter "+strconv.FormatUint(seq, 10))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		_, _, _ = store.Update(context.WithoutCancel(ctx), updated, newRev, func(r *JobRecord) error {
			r.LastError = prev
			r.SetStatus(time.Now(), StatusFailed, "replay failed")
			return nil
		})
	}, nil
}
