package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Retriever turns callbacks and its own poll tasks into exactly one
// DecisionEvent per workflow execution. A callback triggers a retrieval at
// once; the poll task makes sure a lost callback still ends in a decision.
type Retriever struct {
	*stage
	cfg RetrieverConfig
}

// NewRetriever opens the job-state bucket and the poll stream (they must
// exist: see Provision). It refuses a configuration that cannot work, with an
// error wrapping [ErrInvalidConfig].
func NewRetriever(ctx context.Context, js jetstream.JetStream, cfg RetrieverConfig) (*Retriever, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	st, err := newStage(ctx, js, stageOptions{name: messages.StageRetriever, topo: cfg.Topology, log: cfg.Logger, now: cfg.Now,
		metrics: cfg.Metrics, tracing: cfg.TracerProvider, backoff: cfg.Backoff, delays: cfg.Delays, budget: cfg.RetryBudget,
		grace: cfg.ShutdownGrace, jumio: cfg.Jumio, probeEvery: cfg.FaultProbeEvery, maxDeliver: cfg.Topology.RetrieverMaxDeliver})
	if err != nil {
		return nil, err
	}
	if _, err := js.Stream(ctx, cfg.Topology.Subjects.StreamRetrieve()); err != nil {
		return nil, fmt.Errorf("pipeline: retriever: poll stream: %w", err)
	}
	return &Retriever{stage: st, cfg: cfg}, nil
}

// Run consumes callbacks and poll tasks until ctx is canceled, then shuts
// down gracefully.
func (r *Retriever) Run(ctx context.Context) error {
	callbacks := r.runner(consumerSpec{stream: r.subj.StreamCallbacks(), consumer: ConsumerRetrieverCallback,
		concurrency: r.cfg.Concurrency, ackWait: r.topo.RetrieverAckWait, handle: r.handleCallback,
		log: r.log.With(zap.String("consumer", "callbacks")), gated: true})
	polls := r.runner(consumerSpec{stream: r.subj.StreamRetrieve(), consumer: ConsumerRetrieverPoll,
		concurrency: r.cfg.Concurrency, ackWait: r.topo.RetrieverAckWait, handle: r.handlePoll,
		log: r.log.With(zap.String("consumer", "polls")), gated: true})
	return r.runStage(ctx, callbacks, polls, newSweeper(r.stage).runner())
}

func (r *Retriever) handleCallback(ctx context.Context, m jetstream.Msg) outcome {
	cr, err := messages.DecodeCallback(m.Data())
	if err != nil {
		return r.giveUp(ctx, m, giveUp{reason: messages.ReasonPoison, info: errorInfo(messages.ErrCodeInvalidJob, err), cause: err, log: r.log})
	}
	cb := cr.Callback
	log := r.log.With(accountField(cb.Account.ID), executionField(cb.WorkflowExecution.ID), zap.String("callback_status", cb.WorkflowExecution.Status))
	jobID := cr.JobID
	if jobID == "" {
		jobID, err = r.store.JobForExecution(ctx, cb.WorkflowExecution.ID)
		if errors.Is(err, ErrJobNotFound) {
			// A replica that lags after a partition may not have the
			// index entry yet: only the stream leader says it is unknown.
			jobID, err = r.store.jobForExecutionLatest(ctx, cb.WorkflowExecution.ID)
		}
		if errors.Is(err, ErrJobNotFound) {
			if erased, eerr := r.store.ExecutionErased(ctx, cb.WorkflowExecution.ID); eerr == nil && erased {
				r.m.erased("dropped_callback")
				log.Info("callback for an erased job's execution dropped")
				return ack()
			}
			return r.unknownExecution(ctx, m, log)
		}
		if err != nil {
			return retry(r.backoff.Delay(deliveries(m)))
		}
	}
	rec, rev, err := r.store.Get(ctx, jobID)
	if err != nil || !callbackSettledBy(rec, cb) {
		// Missing, naming another execution, or FAILED (which a replay may
		// have undone): confirm with the stream leader before deciding.
		rec, rev, err = r.store.getLatest(ctx, jobID)
	}
	if err != nil && !errors.Is(err, ErrJobNotFound) {
		return retry(r.backoff.Delay(deliveries(m)))
	}
	if err == nil && rec.Erasing() {
		r.m.erased("dropped_callback")
		log.Info("callback for an erased job's execution dropped")
		return ack()
	}
	if err == nil && rec.AccountID == cb.Account.ID && slices.Contains(rec.ReplacedExecutions, cb.WorkflowExecution.ID) {
		log.Debug("callback for an execution the job replaced; nothing to retrieve")
		return ack()
	}
	if err != nil || !callbackMatches(rec, cb) {
		if cr.JobID != "" && deliveries(m) <= staleReadRetries {
			// Ingest found this execution in the job's record before it
			// stored the callback: a record that says otherwise now is most
			// likely a read of a deposed leader, during a partition.
			log.Info("the callback's job record does not name its execution; reading it again shortly")
			return retry(r.backoff.Delay(deliveries(m)))
		}
		return r.unknownExecution(ctx, m, log)
	}
	log = r.log.With(recordFields(rec)...)
	if rec.Terminal() {
		log.Debug("callback for a finished job; nothing to do", zap.String("status", rec.Status))
		return ack()
	}
	if !jumio.IsTerminalStatus(cb.WorkflowExecution.Status) {
		log.Debug("intermediate callback", zap.String("callback_status", cb.WorkflowExecution.Status))
		return ack()
	}
	// The callback is only a trigger: the decision comes from the
	// authenticated retrieval API, never from the callback body. Jumio's
	// callback carries no trace context: continue the job's own trace,
	// linked to the callback's.
	if jobSC := trace.SpanContextFromContext(contextFromTraceParent(context.Background(), rec.TraceParent)); jobSC.IsValid() {
		link := trace.LinkFromContext(ctx)
		var span trace.Span
		ctx, span = r.tracer.Start(trace.ContextWithRemoteSpanContext(ctx, jobSC), "retriever retrieve",
			trace.WithLinks(link), trace.WithAttributes(attribute.String("kycpipe.job_id", rec.JobID)))
		defer span.End()
	}
	a := &attempt{r: r, m: m, rec: rec, rev: rev, trigger: "callback", receivedAt: cr.ReceivedAt, log: log}
	// Callbacks have their own lane of the retrieval rate limit: they never
	// queue behind polls (§10.8).
	return r.inChain(withCallbackPriority(ctx), m, cb.WorkflowExecution.ID, log, a.retrieve, func() bool { return a.decided })
}

// unknownExecution handles a callback for an execution no job knows: it is
// not retrieved (a forged callback must not cause Jumio calls), but
// dead-lettered and counted.
func (r *Retriever) unknownExecution(ctx context.Context, m jetstream.Msg, log *zap.Logger) outcome {
	r.m.callback("unknown_execution")
	err := errors.New("callback for a workflow execution no job knows")
	return r.giveUp(ctx, m, giveUp{reason: messages.ReasonUnknown, info: errorInfo(messages.ReasonUnknown, err), cause: err, log: log})
}

func (r *Retriever) handlePoll(ctx context.Context, m jetstream.Msg) outcome {
	task, err := messages.DecodeRetrievalTask(m.Data())
	if err != nil {
		return r.giveUp(ctx, m, giveUp{reason: messages.ReasonPoison, info: errorInfo(messages.ErrCodeInvalidJob, err), cause: err, log: r.log})
	}
	// The first delivery only starts the clock: nothing can be retrievable
	// yet, and retrievals are rate limited. A replayed task (its delivery
	// count starts again) goes on to check the record.
	if deliveries(m) == 1 && m.Headers().Get(messages.HeaderReplayOf) == "" {
		return retry(ScheduleDelay(r.cfg.Schedule, 1))
	}
	log := r.log.With(jobField(task.JobID), accountField(task.AccountID), executionField(task.WorkflowExecutionID))
	rec, rev, err := r.store.Get(ctx, task.JobID)
	if err != nil || !pollSettledBy(rec, task) {
		// A record that is missing, does not name the task's execution, or
		// says FAILED (which a replay may have undone) may come from a
		// replica that lags after a partition: only the stream leader's
		// copy decides.
		rec, rev, err = r.store.getLatest(ctx, task.JobID)
	}
	if errors.Is(err, ErrJobNotFound) {
		err = errors.New("retrieval task for a job that has no record")
		return r.giveUp(ctx, m, giveUp{reason: messages.ReasonPoison, info: errorInfo(messages.ErrCodeInternal, err), cause: err, log: log})
	}
	if err != nil {
		return retry(r.backoff.Delay(deliveries(m)))
	}
	if rec.Terminal() {
		return ack()
	}
	if !taskMatches(rec, task) {
		if rec.AccountID == task.AccountID && slices.Contains(rec.ReplacedExecutions, task.WorkflowExecutionID) {
			log.Info("poll task of an execution the job replaced; dropped")
			return ack()
		}
		// The task names the execution its job was announced with, so a
		// record without it is a stale one (a deposed leader during a
		// partition): retried, never given up on, and never used to call
		// Jumio with the record's IDs.
		r.m.poll("poll", "stale_record")
		log.Warn("the job record does not name the poll task's execution yet; reading it again later",
			zap.String("record_execution", rec.WorkflowExecutionID), zap.String("status", rec.Status))
		return retry(r.backoff.Delay(deliveries(m)))
	}
	if deliveries(m) == 1 && rec.Polls == 0 {
		return retry(ScheduleDelay(r.cfg.Schedule, 1))
	}
	// Past the deadline, one last look: the execution may have ended while
	// the retriever could not see it (a pause for a configuration fault);
	// still unfinished, the job fails (notYet).
	pastDeadline := !task.Deadline.IsZero() && r.now().After(task.Deadline)
	a := &attempt{r: r, m: m, rec: rec, rev: rev, trigger: "poll", log: log, deadline: task.Deadline, pastDeadline: pastDeadline}
	return a.retrieve(ctx)
}

// staleReadRetries bounds how many deliveries of a callback that ingest
// verified are retried when the job record does not name its execution
// (a stale read) before it is treated as unknown.
const staleReadRetries = 3

// taskMatches reports whether rec names the account and execution the poll
// task was published for.
func taskMatches(rec *JobRecord, task *messages.RetrievalTask) bool {
	return rec.AccountID == task.AccountID && rec.WorkflowExecutionID == task.WorkflowExecutionID
}

// pollSettledBy reports whether a record read with a direct get is enough
// to act on a poll task: the job is being erased (final), or the record
// names the task's execution and is not FAILED (a replay moves a failed job
// back, and a replica that lags may not have seen it).
func pollSettledBy(rec *JobRecord, task *messages.RetrievalTask) bool {
	return rec.Erasing() || (rec.Status != StatusFailed && taskMatches(rec, task))
}

// callbackMatches reports whether rec names the callback's account and
// execution.
func callbackMatches(rec *JobRecord, cb jumio.Callback) bool {
	return rec.AccountID == cb.Account.ID && rec.WorkflowExecutionID == cb.WorkflowExecution.ID
}

// callbackSettledBy is pollSettledBy for a callback.
func callbackSettledBy(rec *JobRecord, cb jumio.Callback) bool {
	return rec.Erasing() || (rec.Status != StatusFailed && callbackMatches(rec, cb))
}

// attempt is one retrieval of one execution, triggered by a callback or by
// the execution's poll task.
type attempt struct {
	r          *Retriever
	m          jetstream.Msg
	rec        *JobRecord
	rev        uint64
	trigger    string    // "callback" or "poll"
	receivedAt time.Time // when the callback arrived (zero for polls)
	log        *zap.Logger
	region     jumio.Region
	// deadline of a poll task; pastDeadline: this is the last look.
	deadline     time.Time
	pastDeadline bool
	// decided: the job's record says DECIDED after this attempt.
	decided bool
}

// retrieve reads the execution's status and, once it is terminal, its
// details, and publishes the decision. Until then it schedules the next
// attempt on JetStream redelivery.
func (a *attempt) retrieve(ctx context.Context) outcome {
	r, rec := a.r, a.rec
	client, err := r.cfg.Jumio.For(rec.Region)
	if err != nil {
		return r.giveUp(ctx, a.m, giveUp{reason: messages.ReasonPoison, jobID: rec.JobID, info: errorInfo(messages.ErrCodeInternal, err), cause: err, log: a.log,
			triggerOnly: a.trigger == "callback"})
	}
	a.region = client.Region()
	if o, held := r.holdIfPaused(ctx, a.failureOf(nil), false); held {
		return o
	}
	// The record was read just before: a call that waits (the rate
	// limiter) reads it again before it goes out (erasureguard.go).
	ctx, _ = withErasureGuard(ctx, r.store, rec.JobID, r.now)
	st, err := client.WorkflowStatus(ctx, rec.AccountID, rec.WorkflowExecutionID)
	if err != nil {
		return a.failure(ctx, err)
	}
	status := st.WorkflowExecution.Status
	if !jumio.IsTerminalStatus(status) {
		return a.notYet(ctx, status)
	}
	var ev *messages.DecisionEvent
	details, err := client.WorkflowDetails(ctx, rec.AccountID, rec.WorkflowExecutionID)
	switch {
	case errors.Is(err, jumio.ErrNotFound) && jumio.IsExpiredStatus(status):
		// Expired executions have details (jumio-api.md §10.9), read once;
		// without them the event is built from the status.
		ev = expiredEvent(rec, st)
	case errors.Is(err, jumio.ErrNotFound):
		// Processed, but the details are not retrievable yet.
		return a.notYet(ctx, "NOT_RETRIEVABLE")
	case err != nil:
		return a.failure(ctx, err)
	case !jumio.IsTerminalStatus(details.Workflow.Status):
		return a.notYet(ctx, details.Workflow.Status)
	default:
		ev = newDecisionEvent(details, r.cfg.IncludeExtraction)
	}
	ev.JobID, ev.Region = rec.JobID, rec.Region
	ev.DecidedAt = r.now().UTC()
	return a.decide(ctx, ev)
}

// decide publishes the decision event (deduplicated on the execution ID)
// and records it. A second retriever racing on the same execution publishes
// a duplicate JetStream drops, then finds the record decided.
func (a *attempt) decide(ctx context.Context, ev *messages.DecisionEvent) outcome {
	r, m, log := a.r, a.m, a.log
	// A decision for a job whose erasure was accepted is not published.
	if cur, _, err := r.store.Get(ctx, a.rec.JobID); err == nil && cur.Erasing() {
		log.Info("the job is being erased; its decision is not published")
		return ack()
	}
	if h := r.cfg.BeforeDecision; h != nil {
		h(a.rec.JobID)
	}
	pubAck, err := r.publishDecision(ctx, ev, a.rec.JobID)
	if err != nil {
		log.Warn("cannot publish decision; will retry", zap.Error(err))
		return retry(r.backoff.Delay(deliveries(m)))
	}
	decision := MessageRef{Stream: pubAck.Stream, Seq: pubAck.Sequence, Kind: MessageKindDecision, At: ev.DecidedAt}
	summary := ev.Decision
	// The decision is a checkpoint of the job: an accepted event whose
	// acknowledgement was lost is confirmed here (accepted.go).
	unconfirmedAt := a.rec.AcceptedUnconfirmed
	accepted := r.reconfirmAcceptedAtCheckpoint(ctx, a.rec, log)
	rec, _, err := r.store.Update(ctx, a.rec, a.rev, func(j *JobRecord) error {
		if j.Status == StatusDecided && j.hasMessage(decision) && (accepted.Seq == 0 || j.hasMessage(accepted)) {
			return errStop
		}
		j.addMessages(decision)
		r.noteAccepted(j, unconfirmedAt, accepted, nil)
		if j.Status == StatusDecided {
			return nil
		}
		j.Decision, j.DecidedAt, j.LastStatus, j.DecisionDetail = &summary, ev.DecidedAt, ev.Status, detailOf(ev)
		j.SetStatus(r.now(), StatusDecided, summary.Type)
		return nil
	})
	if errors.Is(err, ErrErased) {
		r.deleteMessages(ctx, decision, accepted)
	}
	if erasing(err) {
		log.Info("the job is being erased; its decision is left to the eraser")
		return ack()
	}
	if err != nil {
		log.Warn("decision published but not recorded; will retry (the republish is deduplicated)", zap.Error(err))
		return retry(r.backoff.Delay(deliveries(m)))
	}
	a.decided = true
	if pubAck.Duplicate {
		log.Debug("decision already published", zap.String("trigger", a.trigger))
		return ack()
	}
	var sinceCallback time.Duration
	if !a.receivedAt.IsZero() {
		sinceCallback = r.now().Sub(a.receivedAt)
	}
	r.m.decided(summary.Type, sinceCallback, r.now().Sub(rec.CreatedAt))
	r.m.poll(a.trigger, "decided")
	log.Info("decision published", zap.String("decision", summary.Type), zap.String("label", summary.Label), zap.String("trigger", a.trigger))
	// When a callback cut the wait short, the execution's poll task is left
	// alone: its next delivery finds the job decided and acks it. Deleting it
	// here (as the retriever once did) makes the NATS server terminate the
	// pending message and publish a MSG_TERMINATED advisory for it; on a
	// cluster the dead-letter sweeper could still read the message and took
	// the deletion for a give-up (docs/RELIABILITY.md, "The spurious dead
	// letter").
	return ack()
}

// notYet schedules another attempt for an execution that is not done.
func (a *attempt) notYet(ctx context.Context, status string) outcome {
	r, m, log := a.r, a.m, a.log
	r.m.poll(a.trigger, map[bool]string{true: "not_retrievable", false: "pending"}[status == "NOT_RETRIEVABLE"])
	if a.pastDeadline {
		err := fmt.Errorf("workflow execution still %s at its deadline %s", cmp.Or(status, "unknown"), a.deadline.Format(time.RFC3339))
		return r.giveUp(ctx, m, giveUp{reason: messages.ReasonDeadline, jobID: a.rec.JobID, info: errorInfo(messages.ErrCodeDeadline, err), cause: err, log: log})
	}
	var n int
	if a.trigger == "poll" {
		updated, _, err := r.store.Update(ctx, a.rec, a.rev, func(j *JobRecord) error {
			j.Polls++
			j.LastStatus = status
			return nil
		})
		if erasing(err) {
			return ack()
		}
		if err != nil {
			return retry(r.backoff.Delay(deliveries(m)))
		}
		n = updated.Polls
	} else {
		// A callback that arrived before the result is retrievable: retry it
		// on the same schedule, counted by its own deliveries, as many times
		// as the schedule has steps (Jumio recommends at most 10 attempts
		// after a callback). Then the poll task, which runs until the job's
		// deadline, is the safety net; a forged callback ends here too.
		// Deliveries held for a paused region (rec.Held) were no attempts.
		n = max(1, deliveries(m)-a.rec.Held)
		if n > len(r.cfg.Schedule) {
			r.m.callback("unconfirmed")
			log.Info("Jumio has not confirmed the callback's status; leaving the execution to its poll task",
				zap.String("jumio_status", status), zap.Int("attempts", n))
			return ack()
		}
	}
	d := ScheduleDelay(r.cfg.Schedule, n)
	if a.trigger == "poll" {
		d = PollDelay(r.cfg.Schedule, r.cfg.PollTailEvery, n)
	}
	log.Debug("execution not finished yet", zap.String("jumio_status", status), zap.String("trigger", a.trigger), zap.Duration("next_in", d))
	return retry(d)
}

// failure settles a failed retrieval call through the stage core. A 404 is
// the retriever's own case: Jumio may not show an execution yet, so it is
// retried within the job's budget.
func (a *attempt) failure(ctx context.Context, err error) outcome {
	if errors.Is(err, ErrErasing) {
		// The erasure was accepted while the call waited for the rate
		// limiter: it was not made, and the retrieval stops.
		a.log.Info("the job is being erased; its retrieval stops")
		return ack()
	}
	if errors.Is(err, jumio.ErrNotFound) {
		err = &transientError{err}
	}
	return a.r.settle(ctx, a.failureOf(err))
}

func (a *attempt) failureOf(err error) failure {
	// A callback is only a trigger: giving up on it does not fail the job,
	// whose poll task goes on until a decision or its own give-up (which a
	// replay resumes; a callback's letter, replayed, only retriggers).
	return failure{msg: a.m, jobID: a.rec.JobID, step: "retrieve", err: err, log: a.log, region: a.region,
		charge: a.r.chargeRecord(a.rec, a.rev, nil), hold: a.r.holdRecord(a.rec, a.rev, nil), triggerOnly: a.trigger == "callback"}
}
