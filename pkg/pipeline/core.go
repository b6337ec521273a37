package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// stage is the core every consuming stage embeds (the worker, the retriever,
// the dead-letter sweeper): the JetStream handle and the pipeline's names,
// the job store, logging, the clock, metrics and tracing, readiness, and the
// one way to turn a failure into an outcome and to give up on a message. A
// stage only adds the handlers that are genuinely its own.
type stage struct {
	name    string // messages.Stage…: the dead-letter subject and the metrics label
	js      jetstream.JetStream
	topo    Topology
	subj    messages.Subjects
	store   *JobStore
	log     *zap.Logger
	now     func() time.Time
	m       *Metrics
	tracer  trace.Tracer
	ready   *readiness
	backoff Backoff
	delays  Delays
	budget  int           // retryable failures a job may have
	grace   time.Duration // how long in-flight handlers may finish at shutdown
	// faults pauses regions whose Jumio configuration Jumio refuses
	// (pause.go); nil for stages that call no Jumio.
	faults *faultGate
	// maxDeliver is the MaxDeliver of the stage's work consumers: a held
	// message close to it is requeued instead of being given up by
	// JetStream.
	maxDeliver int
}

// stageOptions are what a stage is built from.
type stageOptions struct {
	name    string
	topo    Topology
	log     *zap.Logger
	now     func() time.Time
	metrics *Metrics
	tracing trace.TracerProvider
	backoff Backoff
	delays  Delays
	budget  int
	grace   time.Duration
	// jumio, when set, lets the stage pause regions whose configuration
	// Jumio refuses, probing every probeEvery (default 30s).
	jumio      *Clients
	probeEvery time.Duration
	maxDeliver int
}

// newStage opens the job-state bucket (it must exist: see Provision).
func newStage(ctx context.Context, js jetstream.JetStream, o stageOptions) (*stage, error) {
	kv, err := js.KeyValue(ctx, o.topo.Subjects.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("pipeline: %s: job-state bucket: %w", o.name, err)
	}
	return &stage{
		name: o.name, js: js, topo: o.topo, subj: o.topo.Subjects, store: NewJobStore(kv, o.now).withIndex(js, o.topo.Subjects, o.log).withLeaderReads(js),
		log: o.log, now: o.now, m: o.metrics, tracer: tracerOf(o.tracing), ready: newReadiness(js, o.topo, o.now),
		backoff: o.backoff, delays: o.delays.withDefaults(), budget: o.budget, grace: o.grace,
		faults: newFaultGate(o.name, o.jumio, o.probeEvery, o.log, o.now, o.metrics), maxDeliver: o.maxDeliver,
	}, nil
}

// Ready reports whether the stage can work: NATS connected, streams,
// consumers and buckets present (checked at most every 5s), and no region
// paused because Jumio refuses its configuration (the error names the
// setting to fix).
func (s *stage) Ready(ctx context.Context) error {
	if err := s.ready.check(ctx); err != nil {
		return err
	}
	return s.faults.err()
}

// runStage runs the stage's runners and its pause gate's probes until ctx
// ends.
func (s *stage) runStage(ctx context.Context, runners ...*runner) error {
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.faults.run(gctx)
	return runAll(ctx, runners...)
}

// consumerSpec names a durable consumer a stage runs a handler on.
type consumerSpec struct {
	stream, consumer string
	concurrency      int
	ackWait          time.Duration
	handle           handlerFunc
	log              *zap.Logger // default: the stage's logger
	// gated: the runner stops pulling while every region the stage serves
	// is paused for a configuration fault.
	gated bool
}

// runner returns the runner of one of the stage's consumers.
func (s *stage) runner(c consumerSpec) *runner {
	log := c.log
	if log == nil {
		log = s.log
	}
	r := &runner{
		name: s.name, js: s.js, stream: c.stream, consumer: c.consumer, concurrency: c.concurrency,
		ackWait: c.ackWait, grace: s.grace, log: log, handle: c.handle, observe: s.m.observeOutcome,
		tracer: s.tracer, panicRetry: s.delays.PanicRetry,
	}
	if c.gated {
		r.gate = s.faults
	}
	return r
}

// failure is one failed attempt at a message's work, for [stage.settle].
type failure struct {
	msg    jetstream.Msg
	jobID  string // "" when the message names no verified job
	step   string // for metrics and logs
	err    error
	reason string // dead-letter reason when terminal (default messages.ReasonTerminal)
	log    *zap.Logger
	// charge records the failure in the job's record (throttled: rate
	// limiting, which does not use the retry budget) and returns how many
	// such failures the job has had. nil: nothing is recorded, and the
	// message's delivery count stands in.
	charge func(ctx context.Context, throttled bool, info messages.ErrorInfo) (int, error)
	// region is the Jumio region (credential set) the work was for: a
	// configuration fault pauses it.
	region jumio.Region
	// hold records in the job's record that the message waits for a
	// paused region (Held, LastError); nil: nothing is recorded.
	hold func(ctx context.Context, info messages.ErrorInfo) error
	// triggerOnly: giving up on the message does not fail its job (see
	// giveUp.triggerOnly).
	triggerOnly bool
}

// settle turns a failure into an outcome, the same way for every stage:
// cancellation hands the message back; terminal errors dead-letter it and
// fail its job; rate limiting waits (Retry-After when given) without using
// the retry budget; transient errors use the budget until it is spent;
// infrastructure trouble is retried as is.
func (s *stage) settle(ctx context.Context, f failure) outcome {
	if ctx.Err() != nil {
		return handBack()
	}
	log := f.log
	if log == nil {
		log = s.log
	}
	log = log.With(zap.String("step", f.step))
	class, retryAfter := classify(f.err)
	if class == classSuspect || class == classConfig {
		var fault *ConfigFault
		var err error
		if class == classSuspect {
			fault, err = s.faults.confirm(ctx, f.region, permissionOf(f.err))
		} else {
			fault = s.configFault(f.region, f.err)
			s.faults.report(fault)
		}
		switch {
		case err != nil:
			// Jumio could not be asked: neither the job's fault nor known
			// to be the configuration's. Retried without using the budget.
			d := s.backoff.Delay(deliveries(f.msg))
			log.Warn("Jumio refused a call and cannot be probed now; will retry", zap.NamedError("refusal", f.err), zap.Error(err), zap.Duration("delay", d))
			return retry(d)
		case fault != nil:
			return s.hold(ctx, f, fault, log)
		}
		class = classTerminal // a probe passed: the refusal is the job's
	}
	switch class {
	case classCanceled:
		return handBack()
	case classTerminal:
		reason := f.reason
		if reason == "" {
			reason = messages.ReasonTerminal
		}
		return s.giveUp(ctx, f.msg, giveUp{reason: reason, jobID: f.jobID, info: errorInfo(errorCode(f.err), f.err), cause: f.err, log: log, triggerOnly: f.triggerOnly})
	case classThrottled:
		n := deliveries(f.msg)
		if f.charge != nil {
			c, err := f.charge(ctx, true, errorInfo("rate_limited", f.err))
			if erasing(err) {
				return ack()
			}
			if err == nil {
				n = c
			}
		}
		d := retryAfter
		if d <= 0 {
			d = s.backoff.Delay(n)
		}
		s.m.throttled(f.step)
		log.Info("rate limited; waiting without using the retry budget", zap.Duration("delay", d))
		return retry(d)
	case classTransient:
		n := deliveries(f.msg)
		if f.charge != nil {
			c, err := f.charge(ctx, false, errorInfo("jumio_unavailable", f.err))
			if erasing(err) {
				log.Info("the job is being erased; its work stops")
				return ack()
			}
			if err != nil {
				return retry(s.backoff.Delay(deliveries(f.msg)))
			}
			n = c
			if n > s.budget {
				return s.giveUp(ctx, f.msg, giveUp{reason: messages.ReasonRetryBudget, jobID: f.jobID,
					info: errorInfo(messages.ErrCodeRetryBudget, f.err), cause: f.err, log: log, triggerOnly: f.triggerOnly})
			}
		}
		d := max(s.backoff.Delay(n), retryAfter)
		log.Warn("Jumio call failed; will retry", zap.Error(f.err), zap.Int("attempt", n), zap.Duration("delay", d))
		return retry(d)
	default:
		// NATS trouble or an unexpected local failure is not the job's
		// fault: retry without using its budget.
		d := s.backoff.Delay(deliveries(f.msg))
		log.Warn("infrastructure error; will retry", zap.Error(f.err), zap.Duration("delay", d))
		return retry(d)
	}
}

// chargeRecord returns a failure.charge that counts the failure in the job
// record at rev (Attempts or Throttled) with its error, and hands the record
// as written to after.
func (s *stage) chargeRecord(rec *JobRecord, rev uint64, after func(*JobRecord, uint64)) func(context.Context, bool, messages.ErrorInfo) (int, error) {
	return func(ctx context.Context, throttled bool, info messages.ErrorInfo) (int, error) {
		updated, newRev, err := s.store.Update(ctx, rec, rev, func(j *JobRecord) error {
			if throttled {
				j.Throttled++
			} else {
				j.Attempts++
			}
			j.LastError = &info
			return nil
		})
		if err != nil {
			return 0, err
		}
		if after != nil {
			after(updated, newRev)
		}
		if throttled {
			return updated.Throttled, nil
		}
		return updated.Attempts, nil
	}
}

// erasing reports whether err says the job is being (or was) erased: its
// work stops there.
func erasing(err error) bool { return errors.Is(err, ErrErasing) || errors.Is(err, ErrErased) }

// configFault returns the configuration fault err is or carries: a fault a
// stage reported, or the token endpoint refusing region's credentials.
func (s *stage) configFault(region jumio.Region, err error) *ConfigFault {
	var f *ConfigFault
	if errors.As(err, &f) {
		return f
	}
	if s.faults != nil && s.faults.clients != nil {
		return s.faults.clients.credentialFault(region, err)
	}
	return &ConfigFault{Region: region, Kind: FaultCredentials, Status: jumio.StatusCode(err), Fix: "the Jumio client credentials", Err: err}
}

// requeueMargin: a held message this close to its consumer's MaxDeliver is
// requeued (published again, then acked) so that JetStream never gives up
// on it while its region is paused.
const requeueMargin = 5

// hold hands a message back for a paused region: its job's record notes
// why (Held, LastError), its retry budget is untouched, and it comes back
// around the region's next probe.
func (s *stage) hold(ctx context.Context, f failure, fault *ConfigFault, log *zap.Logger) outcome {
	s.m.heldMessage(s.name)
	if f.hold != nil {
		if err := f.hold(ctx, heldInfo(fault)); err != nil {
			log.Debug("cannot note the hold in the job record", zap.Error(err))
		}
	}
	log.Debug("region paused by a configuration fault; message held", zap.String("region", string(f.region)), zap.String("fault", string(fault.Kind)))
	if s.maxDeliver > 0 && deliveries(f.msg) >= s.maxDeliver-requeueMargin {
		return s.requeue(ctx, f.msg, f.jobID, log)
	}
	return retry(s.faults.holdDelay(f.region))
}

// holdIfPaused holds the message of f when its region is paused (web: for a
// WEB-channel job that still needs web.href), before any Jumio call.
func (s *stage) holdIfPaused(ctx context.Context, f failure, web bool) (outcome, bool) {
	fault, ok := s.faults.pausedFor(f.region, web)
	if !ok {
		return outcome{}, false
	}
	log := f.log
	if log == nil {
		log = s.log
	}
	return s.hold(ctx, f, fault, log), true
}

// holdRecord returns a failure.hold that notes a hold in the job record at
// rev, and hands the record as written to after.
func (s *stage) holdRecord(rec *JobRecord, rev uint64, after func(*JobRecord, uint64)) func(context.Context, messages.ErrorInfo) error {
	return func(ctx context.Context, info messages.ErrorInfo) error {
		updated, newRev, err := s.store.Update(ctx, rec, rev, func(j *JobRecord) error {
			j.Held++
			j.LastError = &info
			return nil
		})
		if err == nil && after != nil {
			after(updated, newRev)
		}
		return err
	}
}
