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
// Not every advisory is a give-up. A MSG_TERMINATED advisory names who
// terminated the message in its reason: a stage (which dead-lettered the
// message itself), the NATS server (a pending message was removed from its
// stream: see serverTermDeleted) or another client. Only a max-delivered
// message, another client's termination, or a server-side termination of a
// message whose job is unfinished becomes a dead letter; and a message whose
// job is DECIDED never does.
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

// Reasons nats-server (v2.15, server/consumer.go) gives the messages it
// terminates itself: a message pending in a consumer (delivered, not acked:
// a poll task waiting out its NakWithDelay) was removed from its stream by a
// DeleteMsg, a purge or a stream limit. No client gave up on it. On a
// cluster the consumer leader sends the advisory when its own replica of the
// stream applies the removal, and the stream leader may still return the
// message by sequence for a moment (internal/termprobe shows it): such an
// advisory is not a give-up.
const (
	serverTermDeleted = "Unacknowledged message was deleted"
	serverTermLimits  = "Message deleted by stream limits"
)

// termination is who terminated a message, read from a MSG_TERMINATED
// advisory's reason.
type termination int

const (
	termByStage  termination = iota // a kycpipe stage gave up: it dead-lettered the message first
	termByServer                    // the server: the message was removed from its stream
	termByOther                     // another client (an operator's tool, …)
)

// stageReasons are the dead-letter reasons a stage's TermWithReason starts
// with ("<reason>: <error code>", see giveUp).
var stageReasons = map[string]bool{
	messages.ReasonTerminal: true, messages.ReasonPoison: true, messages.ReasonMaxDeliveries: true,
	messages.ReasonRetryBudget: true, messages.ReasonDeadline: true, messages.ReasonUnknown: true,
}

func terminatedBy(reason string) termination {
	switch reason {
	case serverTermDeleted, serverTermLimits:
		return termByServer
	}
	if r, code, ok := strings.Cut(reason, ": "); ok && stageReasons[r] && code != "" {
		return termByStage
	}
	return termByOther
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
	by := terminatedBy(adv.Reason)
	log := s.log.With(zap.String("stream", adv.Stream), zap.Uint64("seq", adv.StreamSeq))
	if !maxed && by == termByStage {
		// The stage dead-lettered the message before terminating it. On a
		// cluster the message may still be readable for a moment: it must
		// not be dead-lettered twice.
		return ack()
	}
	st, err := s.stream(ctx, adv.Stream)
	if err != nil {
		return retry(s.delays.SweepRetry)
	}
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// A terminated message leaves its work queue (a stage dead-lettered
		// it first; a message the server terminated was removed on
		// purpose). A max-delivered message that is gone was swept already.
		return ack()
	}
	if err != nil {
		return retry(s.delays.SweepRetry)
	}
	jobID := raw.Header.Get(messages.HeaderJobID)
	log = log.With(jobField(jobID))
	if jobID != "" && messages.ValidJobID(jobID) {
		// From the stream leader: a replica that lags could show a decided
		// job unfinished, and its message would be dead-lettered.
		rec, _, err := s.store.getLatest(ctx, jobID)
		switch {
		case errors.Is(err, ErrJobNotFound):
		case err != nil:
			log.Warn("cannot read the job of a message JetStream gave up on; will retry", zap.Error(err))
			return retry(s.delays.SweepRetry)
		case rec.Status == StatusDecided || rec.Erasing() || (!maxed && by == termByServer && rec.Terminal()):
			// Nothing is left to do for this message: a decided job is never
			// dead-lettered, an erased one's data must not be kept, and a
			// server-side termination of a finished job's message is its
			// cleanup, not a give-up.
			if maxed {
				// Max-delivered messages stay in work queues until deleted.
				if err := st.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
					log.Warn("cannot delete a max-delivered message of a finished job", zap.Error(err))
				}
			}
			log.Info("not a give-up: the message's job is finished", zap.String("status", rec.Status),
				zap.Bool("max_deliveries", maxed), zap.String("reason", adv.Reason))
			return ack()
		}
	}
	reason, code := messages.ReasonMaxDeliveries, messages.ErrCodeMaxDeliveries
	cause := fmt.Errorf("JetStream stopped redelivering after %d deliveries", adv.Deliveries)
	if !maxed {
		reason, code = messages.ReasonTerminal, messages.ErrCodeInternal
		cause = fmt.Errorf("terminated: %s", cmp.Or(adv.Reason, "no reason given"))
		if by == termByServer {
			// The server is removing a message its unfinished job still
			// needs: keep it, so that it can be replayed.
			cause = fmt.Errorf("terminated by the NATS server while its job was unfinished: %s", adv.Reason)
		}
	}
	dl := deadLetter{stage: stage, reason: reason, cause: cause, subject: raw.Subject, stream: adv.Stream,
		seq: adv.StreamSeq, deliv: int(adv.Deliveries), jobID: jobID, header: raw.Header, data: raw.Data}
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
