package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

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
//
// It embeds a copy of its host stage's core under its own name, so its
// dead letters and metrics name the stage of the message, not the host.
type sweeper struct {
	stage

	mu      sync.Mutex
	streams map[string]jetstream.Stream
}

// Sweeper consumer settings.
const (
	sweeperConcurrency = 2
	sweeperAckWait     = 30 * time.Second
)

func newSweeper(host *stage) *sweeper {
	s := &sweeper{stage: *host, streams: map[string]jetstream.Stream{}}
	s.name = "dlq-sweeper"
	s.log = host.log.With(zap.String("consumer", ConsumerDLQSweeper))
	return s
}

func (s *sweeper) runner() *runner {
	return s.stage.runner(consumerSpec{stream: s.subj.StreamAdvisories(), consumer: ConsumerDLQSweeper,
		concurrency: sweeperConcurrency, ackWait: sweeperAckWait, handle: s.handle})
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

func (s *sweeper) handle(ctx context.Context, m jetstream.Msg) outcome {
	var adv advisory
	if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.Stream == "" || adv.StreamSeq == 0 {
		s.log.Warn("ignoring an advisory that cannot be read", zap.String("subject", m.Subject()))
		return ack()
	}
	stage := s.subj.StageOf(adv.Stream)
	if stage == "" {
		return ack() // not one of ours
	}
	maxed := strings.HasPrefix(m.Subject(), AdvisoryMaxDeliveries)
	st, err := s.stream(ctx, adv.Stream)
	if err != nil {
		return retry(s.delays.SweepRetry)
	}
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// Terminated messages leave work queues at once: the stage that
		// terminated them dead-lettered them first. A max-delivered message
		// that is gone was swept already.
		return ack()
	}
	if err != nil {
		return retry(s.delays.SweepRetry)
	}
	reason, code := messages.ReasonMaxDeliveries, messages.ErrCodeMaxDeliveries
	cause := fmt.Errorf("JetStream stopped redelivering after %d deliveries", adv.Deliveries)
	if !maxed {
		reason, code = messages.ReasonTerminal, messages.ErrCodeInternal
		cause = fmt.Errorf("terminated: %s", cmp.Or(adv.Reason, "no reason given"))
	}
	jobID := raw.Header.Get(messages.HeaderJobID)
	dl := deadLetter{stage: stage, reason: reason, cause: cause, subject: raw.Subject, stream: adv.Stream,
		seq: adv.StreamSeq, deliv: int(adv.Deliveries), jobID: jobID, header: raw.Header, data: raw.Data}
	log := s.log.With(jobField(jobID), zap.String("stream", adv.Stream), zap.Uint64("seq", adv.StreamSeq))
	letter, err := s.publishDeadLetter(ctx, dl)
	if err != nil {
		log.Warn("cannot dead-letter; will retry", zap.Error(err))
		return retry(s.delays.SweepRetry)
	}
	if jobID != "" && messages.ValidJobID(jobID) && resumesJobs(stage) {
		if err := s.failJob(ctx, jobID, errorInfo(code, cause), letter); err != nil {
			log.Warn("cannot mark job failed; will retry", zap.Error(err))
			return retry(s.delays.SweepRetry)
		}
	}
	if err := st.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Warn("dead-lettered, but cannot delete the original", zap.Error(err))
	}
	s.m.deadLettered(stage, reason)
	log.Warn("dead-lettered a message JetStream gave up on", zap.String("reason", reason), zap.Uint64("deliveries", adv.Deliveries))
	return ack()
}
