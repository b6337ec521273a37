package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// RetrieverConfig configures a Retriever.
type RetrieverConfig struct {
	Topology Topology
	// Jumio hands out the per-region clients (required).
	Jumio *Clients
	// Concurrency bounds the retrievals this process runs at once, for
	// callbacks and for polls each (default 16).
	Concurrency int
	// Schedule is when to poll an execution that has not reached a terminal
	// status, as cumulative offsets from the first attempt; past its end the
	// last interval repeats until the job's deadline. Default: Jumio's
	// recommended 40s, 60s, 100s, …, 940s.
	Schedule []time.Duration
	// IncludeExtraction copies the extracted document data (PII) into
	// decision events. Off by default.
	IncludeExtraction bool
	// RetryBudget is how many failed retrieval calls (Jumio 5xx, timeouts) a
	// job may have before it fails (default 20).
	RetryBudget int
	Backoff     Backoff
	// TracerProvider records spans (default: none).
	TracerProvider trace.TracerProvider
	ShutdownGrace  time.Duration // default 20s
	Logger         *zap.Logger
	Now            func() time.Time
	Metrics        *Metrics
}

func (c RetrieverConfig) withDefaults() RetrieverConfig {
	c.Topology = c.Topology.WithDefaults()
	c.Concurrency = cmp.Or(c.Concurrency, 16)
	if len(c.Schedule) == 0 {
		c.Schedule = JumioRetrievalSchedule
	}
	c.RetryBudget = cmp.Or(c.RetryBudget, 20)
	c.Backoff = c.Backoff.WithDefaults()
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 20*time.Second)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Retriever turns callbacks and its own poll tasks into exactly one
// DecisionEvent per workflow execution. A callback triggers a retrieval at
// once; the poll task makes sure a lost callback still ends in a decision.
type Retriever struct {
	cfg   RetrieverConfig
	js    jetstream.JetStream
	subj  messages.Subjects
	store *JobStore
	polls jetstream.Stream
	log   *zap.Logger
	now   func() time.Time
	m     *Metrics

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
}

// NewRetriever opens the job-state bucket (it must exist: see Provision).
func NewRetriever(ctx context.Context, js jetstream.JetStream, cfg RetrieverConfig) (*Retriever, error) {
	cfg = cfg.withDefaults()
	if cfg.Jumio == nil {
		return nil, errors.New("pipeline: retriever needs Jumio clients")
	}
	kv, err := js.KeyValue(ctx, cfg.Topology.Subjects.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("pipeline: retriever: job-state bucket: %w", err)
	}
	polls, err := js.Stream(ctx, cfg.Topology.Subjects.StreamRetrieve())
	if err != nil {
		return nil, fmt.Errorf("pipeline: retriever: poll stream: %w", err)
	}
	return &Retriever{cfg: cfg, js: js, subj: cfg.Topology.Subjects, store: NewJobStore(kv, cfg.Now), polls: polls,
		log: cfg.Logger, now: cfg.Now, m: cfg.Metrics}, nil
}

// Run consumes callbacks and poll tasks until ctx is canceled, then shuts
// down gracefully.
func (r *Retriever) Run(ctx context.Context) error {
	t := r.cfg.Topology
	runners := []*runner{
		{name: messages.StageRetriever, js: r.js, stream: r.subj.StreamCallbacks(), consumer: ConsumerRetrieverCallback,
			concurrency: r.cfg.Concurrency, ackWait: t.RetrieverAckWait, grace: r.cfg.ShutdownGrace,
			log: r.log.With(zap.String("consumer", "callbacks")), handle: r.handleCallback, observe: r.m.observeOutcome},
		{name: messages.StageRetriever, js: r.js, stream: r.subj.StreamRetrieve(), consumer: ConsumerRetrieverPoll,
			concurrency: r.cfg.Concurrency, ackWait: t.RetrieverAckWait, grace: r.cfg.ShutdownGrace,
			log: r.log.With(zap.String("consumer", "polls")), handle: r.handlePoll, observe: r.m.observeOutcome},
	}
	runners = append(runners, newSweeper(r.js, r.subj, r.store, r.log, r.now, r.m).runner(t, r.cfg.ShutdownGrace))
	for _, run := range runners {
		run.tracer = tracerOf(r.cfg.TracerProvider)
	}
	return runAll(ctx, runners...)
}

func (r *Retriever) handleCallback(ctx context.Context, m jetstream.Msg) Outcome {
	cr, err := messages.DecodeCallback(m.Data())
	if err != nil {
		return r.giveUp(ctx, m, messages.ReasonPoison, "", errorInfo(messages.ErrCodeInvalidJob, err), err, r.log)
	}
	cb := cr.Callback
	log := r.log.With(accountField(cb.Account.ID), executionField(cb.WorkflowExecution.ID), zap.String("callback_status", cb.WorkflowExecution.Status))
	jobID := cr.JobID
	if jobID == "" {
		jobID, err = r.store.JobForExecution(ctx, cb.WorkflowExecution.ID)
		if errors.Is(err, ErrJobNotFound) {
			return r.unknownExecution(ctx, m, cr, log)
		}
		if err != nil {
			return Retry(r.cfg.Backoff.Delay(deliveries(m)))
		}
	}
	rec, rev, err := r.store.Get(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) || (err == nil && (rec.WorkflowExecutionID != cb.WorkflowExecution.ID || rec.AccountID != cb.Account.ID)) {
		return r.unknownExecution(ctx, m, cr, log)
	}
	if err != nil {
		return Retry(r.cfg.Backoff.Delay(deliveries(m)))
	}
	log = r.log.With(recordFields(rec)...)
	if rec.Terminal() {
		log.Debug("callback for a finished job; nothing to do", zap.String("status", rec.Status))
		return Ack()
	}
	if !jumio.IsTerminalStatus(cb.WorkflowExecution.Status) {
		log.Debug("intermediate callback", zap.String("callback_status", cb.WorkflowExecution.Status))
		return Ack()
	}
	// The callback is only a trigger: the decision comes from the
	// authenticated retrieval API, never from the callback body. Jumio's
	// callback carries no trace context: continue the job's own trace,
	// linked to the callback's.
	if jobSC := trace.SpanContextFromContext(contextFromTraceParent(context.Background(), rec.TraceParent)); jobSC.IsValid() {
		link := trace.LinkFromContext(ctx)
		var span trace.Span
		ctx, span = tracerOf(r.cfg.TracerProvider).Start(trace.ContextWithRemoteSpanContext(ctx, jobSC), "retriever retrieve",
			trace.WithLinks(link), trace.WithAttributes(attribute.String("kycpipe.job_id", rec.JobID)))
		defer span.End()
	}
	return r.retrieve(ctx, m, rec, rev, "callback", cr.ReceivedAt, log)
}

// unknownExecution handles a callback for an execution no job knows: it is
// not retrieved (a forged callback must not cause Jumio calls), but
// dead-lettered and counted.
func (r *Retriever) unknownExecution(ctx context.Context, m jetstream.Msg, cr *messages.CallbackReceived, log *zap.Logger) Outcome {
	r.m.callback("unknown_execution")
	err := errors.New("callback for a workflow execution no job knows")
	return r.giveUp(ctx, m, messages.ReasonUnknown, "", errorInfo(messages.ReasonUnknown, err), err, log)
}

func (r *Retriever) handlePoll(ctx context.Context, m jetstream.Msg) Outcome {
	var task RetrievalTask
	if err := json.Unmarshal(m.Data(), &task); err != nil || !messages.ValidJobID(task.JobID) ||
		!jumio.ValidID(task.AccountID) || !jumio.ValidID(task.WorkflowExecutionID) {
		if err == nil {
			err = errors.New("retrieval task without valid IDs")
		}
		return r.giveUp(ctx, m, messages.ReasonPoison, "", errorInfo(messages.ErrCodeInvalidJob, err), err, r.log)
	}
	// The first delivery only starts the clock: nothing can be retrievable
	// yet, and retrievals are rate limited. A replayed task (its delivery
	// count starts again) goes on to check the record.
	if deliveries(m) == 1 && m.Headers().Get(messages.HeaderReplayOf) == "" {
		return Retry(ScheduleDelay(r.cfg.Schedule, 1))
	}
	log := r.log.With(jobField(task.JobID), accountField(task.AccountID), executionField(task.WorkflowExecutionID))
	rec, rev, err := r.store.Get(ctx, task.JobID)
	if errors.Is(err, ErrJobNotFound) {
		err = errors.New("retrieval task for a job that has no record")
		return r.giveUp(ctx, m, messages.ReasonPoison, "", errorInfo(messages.ErrCodeInternal, err), err, log)
	}
	if err != nil {
		return Retry(r.cfg.Backoff.Delay(deliveries(m)))
	}
	if rec.Terminal() {
		return Ack()
	}
	if deliveries(m) == 1 && rec.Polls == 0 {
		return Retry(ScheduleDelay(r.cfg.Schedule, 1))
	}
	if !task.Deadline.IsZero() && r.now().After(task.Deadline) {
		err := fmt.Errorf("workflow execution still %s at its deadline %s", cmp.Or(rec.LastStatus, "unknown"), task.Deadline.Format(time.RFC3339))
		return r.giveUp(ctx, m, messages.ReasonDeadline, rec.JobID, errorInfo(messages.ErrCodeDeadline, err), err, log)
	}
	return r.retrieve(ctx, m, rec, rev, "poll", time.Time{}, log)
}

// retrieve reads the execution's status and, once it is terminal, its
// details, and publishes the decision. Until then it schedules the next
// attempt on JetStream redelivery.
func (r *Retriever) retrieve(ctx context.Context, m jetstream.Msg, rec *JobRecord, rev uint64, trigger string, receivedAt time.Time, log *zap.Logger) Outcome {
	client, err := r.cfg.Jumio.For(rec.Region)
	if err != nil {
		return r.giveUp(ctx, m, messages.ReasonPoison, rec.JobID, errorInfo(messages.ErrCodeInternal, err), err, log)
	}
	st, err := client.WorkflowStatus(ctx, rec.AccountID, rec.WorkflowExecutionID)
	if err != nil {
		return r.failure(ctx, m, rec, rev, err, log)
	}
	status := st.WorkflowExecution.Status
	if !jumio.IsTerminalStatus(status) {
		return r.notYet(ctx, m, rec, rev, trigger, status, log)
	}
	var ev *messages.DecisionEvent
	if jumio.IsExpiredStatus(status) {
		// Jumio has no details for expired executions.
		ev = &messages.DecisionEvent{
			Schema: messages.SchemaDecision, AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
			CustomerInternalReference: rec.CustomerInternalReference,
			WorkflowDefinitionKey:     st.WorkflowExecution.DefinitionKey, Status: status,
			Decision: messages.DecisionSummary{Type: messages.DecisionExpired, Label: status},
		}
	} else {
		details, err := client.WorkflowDetails(ctx, rec.AccountID, rec.WorkflowExecutionID)
		if errors.Is(err, jumio.ErrNotFound) {
			// Processed, but the details are not retrievable yet.
			return r.notYet(ctx, m, rec, rev, trigger, "NOT_RETRIEVABLE", log)
		}
		if err != nil {
			return r.failure(ctx, m, rec, rev, err, log)
		}
		if !jumio.IsTerminalStatus(details.Workflow.Status) {
			return r.notYet(ctx, m, rec, rev, trigger, details.Workflow.Status, log)
		}
		ev = messages.NewDecisionEvent(details, r.cfg.IncludeExtraction)
	}
	ev.JobID, ev.Region = rec.JobID, rec.Region
	ev.DecidedAt = r.now().UTC()
	return r.decide(ctx, m, rec, rev, ev, trigger, receivedAt, log)
}

// decide publishes the decision event (deduplicated on the execution ID)
// and records it. A second retriever racing on the same execution publishes
// a duplicate JetStream drops, then finds the record decided.
func (r *Retriever) decide(ctx context.Context, m jetstream.Msg, rec *JobRecord, rev uint64, ev *messages.DecisionEvent, trigger string, receivedAt time.Time, log *zap.Logger) Outcome {
	o, err := newOutMsg(r.subj.Decision(ev.Decision.Type), ev, ev.WorkflowExecutionID, rec.JobID)
	if err != nil {
		return Retry(r.cfg.Backoff.Delay(deliveries(m)))
	}
	ack, err := publish(ctx, r.js, o)
	if err != nil {
		log.Warn("cannot publish decision; will retry", zap.Error(err))
		return Retry(r.cfg.Backoff.Delay(deliveries(m)))
	}
	summary := ev.Decision
	rec, _, err = r.store.Update(ctx, rec, rev, func(j *JobRecord) error {
		if j.Status == StatusDecided {
			return errStop
		}
		j.Decision, j.DecidedAt, j.LastStatus = &summary, ev.DecidedAt, ev.Status
		j.SetStatus(r.now(), StatusDecided, summary.Type)
		return nil
	})
	if err != nil {
		log.Warn("decision published but not recorded; will retry (the republish is deduplicated)", zap.Error(err))
		return Retry(r.cfg.Backoff.Delay(deliveries(m)))
	}
	if ack.Duplicate {
		log.Debug("decision already published", zap.String("trigger", trigger))
		return Ack()
	}
	var sinceCallback time.Duration
	if !receivedAt.IsZero() {
		sinceCallback = r.now().Sub(receivedAt)
	}
	r.m.decided(summary.Type, sinceCallback, r.now().Sub(rec.CreatedAt))
	r.m.poll(trigger, "decided")
	log.Info("decision published", zap.String("decision", summary.Type), zap.String("label", summary.Label), zap.String("trigger", trigger))
	if trigger == "callback" && rec.PollSequence > 0 {
		// The callback cut the wait short: the pending poll task has nothing
		// left to do.
		if err := r.polls.DeleteMsg(ctx, rec.PollSequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			log.Debug("cannot delete the poll task; it will find the job decided", zap.Error(err))
		}
	}
	return Ack()
}

// notYet schedules another attempt for an execution that is not done.
func (r *Retriever) notYet(ctx context.Context, m jetstream.Msg, rec *JobRecord, rev uint64, trigger, status string, log *zap.Logger) Outcome {
	r.m.poll(trigger, map[bool]string{true: "not_retrievable", false: "pending"}[status == "NOT_RETRIEVABLE"])
	var n int
	if trigger == "poll" {
		updated, _, err := r.store.Update(ctx, rec, rev, func(j *JobRecord) error {
			j.Polls++
			j.LastStatus = status
			return nil
		})
		if err != nil {
			return Retry(r.cfg.Backoff.Delay(deliveries(m)))
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
			return Ack()
		}
	}
	d := ScheduleDelay(r.cfg.Schedule, n)
	log.Debug("execution not finished yet", zap.String("jumio_status", status), zap.String("trigger", trigger), zap.Duration("next_in", d))
	return Retry(d)
}

// failure maps a failed Jumio call to an outcome, like the worker's.
func (r *Retriever) failure(ctx context.Context, m jetstream.Msg, rec *JobRecord, rev uint64, err error, log *zap.Logger) Outcome {
	if ctx.Err() != nil {
		return handBack()
	}
	switch {
	case errors.Is(err, jumio.ErrRateLimited) || errors.Is(err, jumio.ErrThrottled):
		r.m.throttled("retrieve")
		if d, ok := jumio.RetryAfter(err); ok {
			return Retry(d)
		}
		return Retry(r.cfg.Backoff.Delay(deliveries(m)))
	case jumio.IsRetryable(err) || errors.Is(err, jumio.ErrNotFound):
		updated, _, uerr := r.store.Update(ctx, rec, rev, func(j *JobRecord) error {
			j.Attempts++
			j.LastError = ptr(errorInfo("jumio_unavailable", err))
			return nil
		})
		if uerr != nil {
			return Retry(r.cfg.Backoff.Delay(deliveries(m)))
		}
		if updated.Attempts > r.cfg.RetryBudget {
			return r.giveUp(ctx, m, messages.ReasonRetryBudget, rec.JobID, errorInfo(messages.ErrCodeRetryBudget, err), err, log)
		}
		d := r.cfg.Backoff.Delay(updated.Attempts)
		if ra, ok := jumio.RetryAfter(err); ok && ra > d {
			d = ra
		}
		log.Warn("retrieval failed; will retry", zap.Error(err), zap.Duration("delay", d))
		return Retry(d)
	case jumio.StatusCode(err) != 0:
		return r.giveUp(ctx, m, messages.ReasonTerminal, rec.JobID, errorInfo(messages.ErrCodeJumioRejected, err), err, log)
	default:
		d := r.cfg.Backoff.Delay(deliveries(m))
		log.Warn("unexpected error; will retry", zap.Error(err), zap.Duration("delay", d))
		return Retry(d)
	}
}

func (r *Retriever) giveUp(ctx context.Context, m jetstream.Msg, reason, jobID string, info messages.ErrorInfo, cause error, log *zap.Logger) Outcome {
	r.m.deadLettered(messages.StageRetriever, reason)
	return giveUp(ctx, r.js, r.subj, r.store, r.now, r.m, log, m, messages.StageRetriever, reason, jobID, info, cause)
}

// Ready reports whether the retriever can work: NATS connected, streams,
// consumers and buckets present (checked at most every 5s).
func (x *Retriever) Ready(ctx context.Context) error {
	return readiness(ctx, x.js.Conn(), x.js, x.cfg.Topology, &x.readyMu, &x.readyAt, &x.readyErr, x.now)
}
