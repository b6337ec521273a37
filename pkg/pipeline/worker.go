package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Worker runs the Jumio saga for submitted jobs: create or update the
// account, upload prepared data and images, then finalize (API channel) or
// announce web.href / sdk.token (WEB and SDK channels). It is stateless:
// every side effect is checkpointed in the job record before the job message
// is acked, and a redelivered job resumes at the next step (see saga.go).
type Worker struct {
	*stage
	cfg    WorkerConfig
	images jetstream.ObjectStore
	// accountSlots bounds account calls in flight (AccountConcurrency).
	accountSlots chan struct{}
	// acceptedJS publishes the accepted event beside the account call: the
	// stage's JetStream (a test loses its acknowledgements through it).
	acceptedJS jetstream.JetStream
}

// NewWorker opens the job-state bucket and image store (they must exist:
// see Provision). It refuses a configuration that cannot work, with an error
// wrapping [ErrInvalidConfig].
func NewWorker(ctx context.Context, js jetstream.JetStream, cfg WorkerConfig) (*Worker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	st, err := newStage(ctx, js, stageOptions{name: messages.StageWorker, topo: cfg.Topology, log: cfg.Logger, now: cfg.Now,
		metrics: cfg.Metrics, tracing: cfg.TracerProvider, backoff: cfg.Backoff, delays: cfg.Delays, budget: cfg.RetryBudget,
		grace: cfg.ShutdownGrace, jumio: cfg.Jumio, probeEvery: cfg.FaultProbeEvery, maxDeliver: cfg.Topology.WorkerMaxDeliver})
	if err != nil {
		return nil, err
	}
	images, err := js.ObjectStore(ctx, cfg.Topology.Subjects.BucketImages())
	if err != nil {
		return nil, fmt.Errorf("pipeline: worker: image store: %w", err)
	}
	return &Worker{stage: st, cfg: cfg, images: images, accountSlots: make(chan struct{}, cfg.AccountConcurrency), acceptedJS: js}, nil
}

// Run consumes jobs until ctx is canceled, then shuts down gracefully
// (see WorkerConfig.ShutdownGrace).
func (w *Worker) Run(ctx context.Context) error {
	jobs := w.runner(consumerSpec{stream: w.subj.StreamJobs(), consumer: ConsumerWorker,
		concurrency: w.cfg.Concurrency, ackWait: w.topo.WorkerAckWait, handle: w.handle, gated: true})
	if w.cfg.Retention > 0 {
		go w.retentionSweep(ctx)
	}
	return w.runStage(ctx, jobs, w.eraserRunner(), newSweeper(w.stage).runner())
}

// jobRun is one delivery of one job.
type jobRun struct {
	w      *Worker
	m      jetstream.Msg
	req    *messages.VerificationRequest
	rec    *JobRecord
	rev    uint64
	client *jumio.Client
	log    *zap.Logger
	// accountNow: this delivery created the job's account (or execution).
	accountNow bool
	// guard is the last look at the job's erasure (erasureguard.go).
	guard *erasureGuard
}

func (w *Worker) handle(ctx context.Context, m jetstream.Msg) outcome {
	req, err := messages.DecodeRequest(m.Data())
	jobID := jobIDOf(req, m)
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("kycpipe.job_id", jobID))
	log := w.log.With(jobField(jobID))
	if err == nil {
		req.JobID = jobID
		err = req.Validate()
	}
	if err == nil {
		// Jumio's rules for API image uploads, as ingest checks them, for
		// jobs published straight to NATS: refused before any Jumio call.
		err = checkJobUploads(req)
	}
	var client *jumio.Client
	if err == nil {
		region, _ := jumio.ParseRegion(cmp.Or(req.Region, string(w.cfg.Jumio.DefaultRegion())))
		client, err = w.cfg.Jumio.For(string(region))
	}
	if err != nil {
		return w.giveUp(ctx, m, giveUp{reason: messages.ReasonPoison, jobID: jobID,
			info: errorInfo(messages.ErrCodeInvalidJob, err), cause: err, log: log})
	}
	run := &jobRun{w: w, m: m, req: req, client: client, log: log}
	if o, done := run.load(ctx, client.Region()); done {
		return o
	}
	ctx, run.guard = withErasureGuard(ctx, w.store, run.rec.JobID, w.now)
	if o, held := run.holdIfPaused(ctx); held {
		return o
	}
	ctx, moves := withIndexHold(ctx, run.mayBeStale())
	defer moves.release(w.store.index)
	return run.saga(ctx)
}

// holdIfPaused holds the job, before any Jumio call, while Jumio refuses
// the configuration of its region. A WEB job that still needs web.href is
// held while the portal's web domain is missing too, except for the
// occasional canary that finds out whether Jumio returns web.href again.
func (r *jobRun) holdIfPaused(ctx context.Context) (outcome, bool) {
	region := r.client.Region()
	needsHref := r.rec.Channel == messages.ChannelWeb && r.rec.WebHref == ""
	if f, ok := r.w.faults.pausedFor(region, needsHref); ok && f.Kind == FaultWebHref &&
		r.w.faults.admitCanary(region, r.rec.AccountID != "") {
		r.log.Info("letting one WEB job through to see whether Jumio returns web.href again")
		return outcome{}, false
	}
	return r.w.stage.holdIfPaused(ctx, r.failureOf("paused", nil), needsHref)
}

// jobIDOf finds a job's ID: the body's jobId, else the message ID a plain
// NATS publisher set, else one derived from the stream sequence (stable
// across redeliveries of the same message).
func jobIDOf(req *messages.VerificationRequest, m jetstream.Msg) string {
	if req != nil && messages.ValidJobID(req.JobID) {
		return req.JobID
	}
	if m.Headers().Get(messages.HeaderRequeueOf) != "" {
		// A held job published again (pause.go): its ID travels in Kyc-Job-Id.
		if id := m.Headers().Get(messages.HeaderJobID); messages.ValidJobID(id) {
			return id
		}
	}
	if id := m.Headers().Get(messages.HeaderMsgID); messages.ValidJobID(id) {
		return id
	}
	if md, err := m.Metadata(); err == nil {
		return "seq_" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	return ""
}

// republished reports whether the message is a job's message published
// again by kycpipe: a held job requeued, or a replayed dead letter.
func (r *jobRun) republished() bool {
	h := r.m.Headers()
	return h.Get(messages.HeaderRequeueOf) != "" || h.Get(messages.HeaderReplayOf) != ""
}

// load reads (or creates) the job record. done means the delivery is
// settled already (a finished job, a conflicting duplicate, an error).
//
// Ingest stores nothing but the job message (see Submitter): the first
// delivery of a job creates its record, from the message (status ACCEPTED,
// created at its submission, JobSeq its stream sequence), before any Jumio
// call; a redelivery reads it.
func (r *jobRun) load(ctx context.Context, region jumio.Region) (outcome, bool) {
	w := r.w
	hash := RequestHash(r.req)
	var seq uint64
	if md, err := r.m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	perJob := r.m.Subject() == w.subj.JobSubmit(r.req.JobID)
	create := func() (*JobRecord, uint64, error) {
		note := r.m.Headers().Get(HeaderSubmitNote)
		if !perJob || note == "" {
			note = "received from " + r.m.Subject()
		}
		rec := acceptedRecord(r.req, hash, seq, note, w.now())
		rec.Region, rec.TraceParent = string(region), traceParentOf(ctx)
		// The accepted event, written ahead (accepted.go): the account
		// step publishes it with this time.
		rec.AcceptedUnconfirmed = w.now().UTC()
		rec, rev, err := w.store.Create(ctx, rec)
		if errors.Is(err, jetstream.ErrKeyExists) {
			err = nil // created meanwhile (another delivery, an erasure): that one
		}
		return rec, rev, err
	}
	var rec *JobRecord
	var rev uint64
	var err error
	if deliveries(r.m) == 1 {
		rec, rev, err = create()
	} else if rec, rev, err = w.store.Get(ctx, r.req.JobID); errors.Is(err, ErrJobNotFound) {
		rec, rev, err = create() // an existing record is read from the leader
	} else if err == nil && rec.Status == StatusFailed {
		// A replay moves a failed job back before it republishes the job: a
		// replica that lags may not know yet (saga.go, reload).
		rec, rev, err = w.store.getLatest(ctx, r.req.JobID)
	}
	if err != nil {
		r.log.Warn("cannot read job record", zap.Error(err))
		return retry(w.backoff.Delay(deliveries(r.m))), true
	}
	if rec.RequestHash != "" && rec.RequestHash != hash {
		if perJob && rec.JobSeq != seq {
			// A resubmission of the job ID with another request, stored
			// after the job's own message had left the queue: ingest
			// answered it 409 (Submitter.afterStore). It is not the job's,
			// whose record was created from another message (JobSeq), or
			// by ingest before submissions were one write (JobSeq 0).
			r.log.Info("dropping a refused resubmission of a job ID with another request", zap.Uint64("job_seq", rec.JobSeq))
			return ack(), true
		}
		err := fmt.Errorf("job ID %s already names a different request", r.req.JobID)
		return w.giveUp(ctx, r.m, giveUp{reason: messages.ReasonPoison, info: errorInfo(messages.ErrCodeInvalidJob, err), cause: err, log: r.log}), true
	}
	if perJob && rec.JobSeq != 0 && rec.JobSeq != seq && !r.republished() {
		// The same request again on the job's subject, but not the message
		// its record was created from, nor that message published again (a
		// held job, a replay): a repeat stored after the job's own message
		// had left the queue, which ingest answered 200 from the record
		// (Submitter.afterStore). The job is the record's; running this
		// message too would be a second delivery of a job in flight.
		r.log.Info("dropping a repeated submission of a job", zap.Uint64("job_seq", rec.JobSeq))
		return ack(), true
	}
	if rec.Status == StatusErasing && r.unrecordedCreate(rec) {
		if o, done := r.noteAmbiguousErasing(ctx); done {
			return o, true
		}
	}
	if rec.Terminal() || rec.Announced {
		r.log.Debug("job already handled, acking duplicate delivery", zap.String("status", rec.Status))
		return ack(), true
	}
	r.rec, r.rev = rec, rev
	r.log = w.log.With(recordFields(rec)...)
	return outcome{}, false
}

// unrecordedCreate reports whether this delivery follows one that may have
// created a Jumio account without recording it (a worker that died between
// Jumio's answer and the checkpoint): a redelivery of a job with no account
// recorded and fewer recorded failures than earlier deliveries.
func (r *jobRun) unrecordedCreate(rec *JobRecord) bool {
	n := deliveries(r.m)
	return rec.WorkflowExecutionID == "" && n > 1 && rec.Attempts+rec.Throttled+rec.Held < n-1
}

// noteAmbiguousErasing counts an ambiguous account creation in the record
// of a job being erased (unrecordedCreate, confirmed on the stream leader):
// the erasure cannot delete an account no record names, and its tombstone
// and log say so (erase.go). The soak of 2026-12-07 16:44 erased such a
// job with nothing saying an account may be left at Jumio. done is false
// when the delivery goes on (acked as a job being erased).
func (r *jobRun) noteAmbiguousErasing(ctx context.Context) (outcome, bool) {
	w := r.w
	rec, rev, err := w.store.getLatest(ctx, r.req.JobID)
	if err == nil && rec.Status == StatusErasing && r.unrecordedCreate(rec) {
		_, _, err = w.store.Update(ctx, rec, rev, func(j *JobRecord) error { j.AmbiguousCreates++; return nil })
		if erasing(err) {
			err = nil
			w.m.ambiguousCreate()
			r.log.Warn("redelivered job being erased has no account recorded; an earlier delivery may have created one at Jumio, which the erasure cannot delete",
				zap.Int("deliveries", deliveries(r.m)))
		}
	}
	if err != nil {
		d := w.backoff.Delay(deliveries(r.m))
		r.log.Warn("cannot record a possible unrecorded account of a job being erased; will retry", zap.Error(err), zap.Duration("delay", d))
		return retry(d), true
	}
	return outcome{}, false
}
