package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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
	cfg   RetrieverConfig
	polls jetstream.Stream
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
		grace: cfg.ShutdownGrace})
	if err != nil {
		return nil, err
	}
	polls, err := js.Stream(ctx, cfg.Topology.Subjects.StreamRetrieve())
	if err != nil {
		return nil, fmt.Errorf("pipeline: retriever: poll stream: %w", err)
	}
	return &Retriever{stage: st, cfg: cfg, polls: polls}, nil
}

// Run consumes callbacks and poll tasks until ctx is canceled, then shuts
// down gracefully.
func (r *Retriever) Run(ctx context.Context) error {
	callbacks := r.runner(consumerSpec{stream: r.subj.StreamCallbacks(), consumer: ConsumerRetrieverCallback,
		concurrency: r.cfg.Concurrency, ackWait: r.topo.RetrieverAckWait, handle: r.handleCallback,
		log: r.log.With(zap.String("consumer", "callbacks"))})
	polls := r.runner(consumerSpec{stream: r.subj.StreamRetrieve(), consumer: ConsumerRetrieverPoll,
		concurrency: r.cfg.Concurrency, ackWait: r.topo.RetrieverAckWait, handle: r.handlePoll,
		log: r.log.With(zap.String("consumer", "polls"))})
	return runAll(ctx, callbacks, polls, newSweeper(r.stage).runner())
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
			return r.unknownExecution(ctx, m, log)
		}
		if err != nil {
			return retry(r.backoff.Delay(deliveries(m)))
		}
	}
	rec, rev, err := r.store.Get(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) || (err == nil && (rec.WorkflowExecutionID != cb.WorkflowExecution.ID || rec.AccountID != cb.Account.ID)) {
		return r.unknownExecution(ctx, m, log)
	}
	if err != nil {
		return retry(r.backoff.Delay(deliveries(m)))
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
	return r.inChain(ctx, m, cb.WorkflowExecution.ID, log, a.retrieve)
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
	if deliveries(m) == 1 && rec.Polls == 0 {
		return retry(ScheduleDelay(r.cfg.Schedule, 1))
	}
	if !task.Deadline.IsZero() && r.now().After(task.Deadline) {
		err := fmt.Errorf("workflow execution still %s at its deadline %s", cmp.Or(rec.LastStatus, "unknown"), task.Deadline.Format(time.RFC3339))
		return r.giveUp(ctx, m, giveUp{reason: messages.ReasonDeadline, jobID: rec.JobID, info: errorInfo(messages.ErrCodeDeadline, err), cause: err, log: log})
	}
	a := &attempt{r: r, m: m, rec: rec, rev: rev, trigger: "poll", log: log}
	return a.retrieve(ctx)
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
}

// retrieve reads the execution's status and, once it is terminal, its
// details, and publishes the decision. Until then it schedules the next
// attempt on JetStream redelivery.
func (a *attempt) retrieve(ctx context.Context) outcome {
	r, rec := a.r, a.rec
	client, err := r.cfg.Jumio.For(rec.Region)
	if err != nil {
		return r.giveUp(ctx, a.m, giveUp{reason: messages.ReasonPoison, jobID: rec.JobID, info: errorInfo(messages.ErrCodeInternal, err), cause: err, log: a.log})
	}
	st, err := client.WorkflowStatus(ctx, rec.AccountID, rec.WorkflowExecutionID)
	if err != nil {
		return a.failure(ctx, err)
	}
	status := st.WorkflowExecution.Status
	if !jumio.IsTerminalStatus(status) {
		return a.notYet(ctx, status)
	}
	var ev *messages.DecisionEvent
	if jumio.IsExpiredStatus(status) {
		// Jumio has no details for expired executions.
		ev = &messages.DecisionEvent{
			AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
			CustomerInternalReference: rec.CustomerInternalReference,
			WorkflowDefinitionKey:     st.WorkflowExecution.DefinitionKey, Status: status,
			Decision: messages.DecisionSummary{Type: messages.DecisionExpired, Label: status},
		}
	} else {
		details, err := client.WorkflowDetails(ctx, rec.AccountID, rec.WorkflowExecutionID)
		if errors.Is(err, jumio.ErrNotFound) {
			// Processed, but the details are not retrievable yet.
			return a.notYet(ctx, "NOT_RETRIEVABLE")
		}
		if err != nil {
			return a.failure(ctx, err)
		}
		if !jumio.IsTerminalStatus(details.Workflow.Status) {
			return a.notYet(ctx, details.Workflow.Status)
		}
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
	pubAck, err := r.publishMessage(ctx, r.subj.Decision(ev.Decision.Type), ev, messages.DecisionMsgID(ev.WorkflowExecutionID), a.rec.JobID)
	if err != nil {
		log.Warn("cannot publish decision; will retry", zap.Error(err))
		return retry(r.backoff.Delay(deliveries(m)))
	}
	summary := ev.Decision
	rec, _, err := r.store.Update(ctx, a.rec, a.rev, func(j *JobRecord) error {
		if j.Status == StatusDecided {
			return errStop
		}
		j.Decision, j.DecidedAt, j.LastStatus = &summary, ev.DecidedAt, ev.Status
		j.SetStatus(r.now(), StatusDecided, summary.Type)
		return nil
	})
	if err != nil {
		log.Warn("decision published but not recorded; will retry (the republish is deduplicated)", zap.Error(err))
		return retry(r.backoff.Delay(deliveries(m)))
	}
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
	if a.trigger == "callback" && rec.PollSequence > 0 {
		// The callback cut the wait short: the pending poll task has nothing
		// left to do.
		if err := r.polls.DeleteMsg(ctx, rec.PollSequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			log.Debug("cannot delete the poll task; it will find the job decided", zap.Error(err))
		}
	}
	return ack()
}

// notYet schedules another attempt for an execution that is not done.
func (a *attempt) notYet(ctx context.Context, status string) outcome {
	r, m, log := a.r, a.m, a.log
	r.m.poll(a.trigger, map[bool]string{true: "not_retrievable", false: "pending"}[status == "NOT_RETRIEVABLE"])
	var n int
	if a.trigger == "poll" {
		updated, _, err := r.store.Update(ctx, a.rec, a.rev, func(j *JobRecord) error {
			j.Polls++
			j.LastStatus = status
			return nil
		})
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
		n = deliveries(m)
		if n > len(r.cfg.Schedule) {
			r.m.callback("unconfirmed")
			log.Info("Jumio has not confirmed the callback's status; leaving the execution to its poll task",
				zap.String("jumio_status", status), zap.Int("attempts", n))
			return ack()
		}
	}
	d := ScheduleDelay(r.cfg.Schedule, n)
	log.Debug("execution not finished yet", zap.String("jumio_status", status), zap.String("trigger", a.trigger), zap.Duration("next_in", d))
	return retry(d)
}

// failure settles a failed retrieval call through the stage core. A 404 is
// the retriever's own case: Jumio may not show an execution yet, so it is
// retried within the job's budget.
func (a *attempt) failure(ctx context.Context, err error) outcome {
	if errors.Is(err, jumio.ErrNotFound) {
		err = &transientError{err}
	}
	return a.r.settle(ctx, failure{msg: a.m, jobID: a.rec.JobID, step: "retrieve", err: err, log: a.log,
		charge: a.r.chargeRecord(a.rec, a.rev, nil)})
}
