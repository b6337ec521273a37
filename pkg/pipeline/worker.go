package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Topology Topology
	// Jumio hands out the per-region clients (required).
	Jumio *Clients
	// CallbackURL is sent to Jumio as callbackUrl for jobs that do not
	// override it (KYCPIPE_CALLBACK_URL). Empty: Jumio uses the portal's URL.
	CallbackURL string
	// Concurrency bounds the jobs this process runs at once (default 32).
	Concurrency int
	// AccountConcurrency bounds the account calls (create or update) this
	// process has in flight at once (default 2). Jumio's account API has no
	// idempotency key: a process killed while an account call is in flight
	// may leave an account nobody knows; this bounds how many per crash.
	// Jumio admits about one account initiation per second anyway.
	AccountConcurrency int
	// RetryBudget is how many retryable failures (Jumio 5xx, timeouts) a job
	// may have before it fails (default 10). Rate limiting does not count.
	RetryBudget int
	// Backoff spaces the retries (default 1s doubling to 5m, ±20%).
	Backoff Backoff
	// ShutdownGrace is how long in-flight jobs may finish after shutdown
	// starts before they are handed back (default 20s).
	ShutdownGrace time.Duration
	// ProcessingGrace is added to the token lifetime (web/SDK) or used alone
	// (API) to bound how long the retriever polls an execution (default 1h).
	ProcessingGrace time.Duration
	Logger          *zap.Logger
	Now             func() time.Time
	Metrics         *Metrics
	// TracerProvider records spans (default: none; the trace context is
	// still propagated).
	TracerProvider trace.TracerProvider
	// AfterCheckpoint, when set, is called after each saga checkpoint with
	// its step: "account", "prepared_data", "part:FRONT" (BACK, FACE),
	// "finalize", "announce". Tests use it to crash a worker at an exact
	// step boundary.
	AfterCheckpoint func(step string)
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	c.Topology = c.Topology.WithDefaults()
	c.Concurrency = cmp.Or(c.Concurrency, 32)
	c.RetryBudget = cmp.Or(c.RetryBudget, 10)
	c.AccountConcurrency = cmp.Or(c.AccountConcurrency, 2)
	c.Backoff = c.Backoff.WithDefaults()
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 20*time.Second)
	c.ProcessingGrace = cmp.Or(c.ProcessingGrace, time.Hour)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Worker runs the Jumio saga for submitted jobs: create or update the
// account, upload prepared data and images, then finalize (API channel) or
// announce web.href / sdk.token (WEB and SDK channels). It is stateless:
// every side effect is checkpointed in the job record before the job message
// is acked, and a redelivered job resumes at the next step.
type Worker struct {
	cfg    WorkerConfig
	js     jetstream.JetStream
	subj   messages.Subjects
	store  *JobStore
	images jetstream.ObjectStore
	log    *zap.Logger
	now    func() time.Time
	m      *Metrics
	// accountSlots bounds account calls in flight (AccountConcurrency).
	accountSlots chan struct{}

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
}

// NewWorker opens the job-state bucket and image store (they must exist:
// see Provision).
func NewWorker(ctx context.Context, js jetstream.JetStream, cfg WorkerConfig) (*Worker, error) {
	cfg = cfg.withDefaults()
	if cfg.Jumio == nil {
		return nil, errors.New("pipeline: worker needs Jumio clients")
	}
	kv, err := js.KeyValue(ctx, cfg.Topology.Subjects.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("pipeline: worker: job-state bucket: %w", err)
	}
	images, err := js.ObjectStore(ctx, cfg.Topology.Subjects.BucketImages())
	if err != nil {
		return nil, fmt.Errorf("pipeline: worker: image store: %w", err)
	}
	return &Worker{
		cfg: cfg, js: js, subj: cfg.Topology.Subjects, store: NewJobStore(kv, cfg.Now),
		images: images, log: cfg.Logger, now: cfg.Now, m: cfg.Metrics,
		accountSlots: make(chan struct{}, cfg.AccountConcurrency),
	}, nil
}

// Run consumes jobs until ctx is canceled, then shuts down gracefully
// (see WorkerConfig.ShutdownGrace).
func (w *Worker) Run(ctx context.Context) error {
	r := &runner{
		name: messages.StageWorker, js: w.js, stream: w.subj.StreamJobs(), consumer: ConsumerWorker,
		concurrency: w.cfg.Concurrency, ackWait: w.cfg.Topology.WorkerAckWait, grace: w.cfg.ShutdownGrace,
		log: w.log, handle: w.handle, observe: w.m.observeOutcome, tracer: tracerOf(w.cfg.TracerProvider),
	}
	sw := newSweeper(w.js, w.subj, w.store, w.log, w.now, w.m).runner(w.cfg.Topology, w.cfg.ShutdownGrace)
	sw.tracer = tracerOf(w.cfg.TracerProvider)
	return runAll(ctx, r, sw)
}

// RetrievalTask is the internal message that makes the retriever poll an
// execution until it reaches a terminal status (kyc.retrieve.<region>).
type RetrievalTask struct {
	Schema              string    `json:"schema"`
	JobID               string    `json:"jobId"`
	Region              string    `json:"region"`
	AccountID           string    `json:"accountId"`
	WorkflowExecutionID string    `json:"workflowExecutionId"`
	Deadline            time.Time `json:"deadline"`
}

// SchemaRetrievalTask identifies RetrievalTask payloads.
const SchemaRetrievalTask = "kycpipe.retrieval.v1"

// jobRun is one delivery of one job.
type jobRun struct {
	w      *Worker
	m      jetstream.Msg
	req    *messages.VerificationRequest
	rec    *JobRecord
	rev    uint64
	client *jumio.Client
	log    *zap.Logger
}

func (w *Worker) handle(ctx context.Context, m jetstream.Msg) Outcome {
	req, err := messages.DecodeRequest(m.Data())
	jobID := jobIDOf(req, m)
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("kycpipe.job_id", jobID))
	log := w.log.With(jobField(jobID))
	if err != nil {
		return w.giveUp(ctx, m, messages.ReasonPoison, jobID, errorInfo(messages.ErrCodeInvalidJob, err), err, log)
	}
	req.JobID = jobID
	if err := req.Validate(); err != nil {
		return w.giveUp(ctx, m, messages.ReasonPoison, jobID, errorInfo(messages.ErrCodeInvalidJob, err), err, log)
	}
	region, _ := jumio.ParseRegion(cmp.Or(req.Region, string(w.cfg.Jumio.DefaultRegion())))
	client, err := w.cfg.Jumio.For(string(region))
	if err != nil {
		return w.giveUp(ctx, m, messages.ReasonPoison, jobID, errorInfo(messages.ErrCodeInvalidJob, err), err, log)
	}
	run := &jobRun{w: w, m: m, req: req, client: client, log: log}
	if o, done := run.load(ctx, region); done {
		return o
	}
	return run.saga(ctx)
}

// jobIDOf finds a job's ID: the body's jobId, else the message ID a plain
// NATS publisher set, else one derived from the stream sequence (stable
// across redeliveries of the same message).
func jobIDOf(req *messages.VerificationRequest, m jetstream.Msg) string {
	if req != nil && messages.ValidJobID(req.JobID) {
		return req.JobID
	}
	if id := m.Headers().Get(messages.HeaderMsgID); messages.ValidJobID(id) {
		return id
	}
	if md, err := m.Metadata(); err == nil {
		return "seq_" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	return ""
}

// RequestHash identifies a request's content, to tell a repeated submission
// from a different one under the same job ID.
func RequestHash(req *messages.VerificationRequest) string {
	c := *req
	c.SubmittedAt = nil
	c.Schema = ""
	// Images are compared by content, not by where a submission stored them.
	c.Parts = make([]messages.Part, len(req.Parts))
	for i, p := range req.Parts {
		if p.SHA256 == "" && len(p.Data) > 0 {
			sum := sha256.Sum256(p.Data)
			p.SHA256 = hex.EncodeToString(sum[:])
		}
		c.Parts[i] = messages.Part{Classifier: p.Classifier, ContentType: p.ContentType, SHA256: p.SHA256}
	}
	b, _ := json.Marshal(&c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// load reads (or creates) the job record. done means the delivery is
// settled already (a finished job, a conflicting duplicate, an error).
func (r *jobRun) load(ctx context.Context, region jumio.Region) (Outcome, bool) {
	w := r.w
	hash := RequestHash(r.req)
	rec, rev, err := w.store.Get(ctx, r.req.JobID)
	if errors.Is(err, ErrJobNotFound) {
		rec = &JobRecord{
			JobID: r.req.JobID, Status: StatusAccepted, Region: string(region), Channel: r.req.EffectiveChannel(),
			CustomerInternalReference: r.req.CustomerInternalReference, RequestHash: hash, CreatedAt: w.now().UTC(),
			TraceParent: traceParentOf(ctx),
		}
		rec.note(w.now(), StatusAccepted, "received from "+r.m.Subject())
		rec, rev, err = w.store.Create(ctx, rec)
		if errors.Is(err, jetstream.ErrKeyExists) {
			err = nil
		}
	}
	if err != nil {
		r.log.Warn("cannot read job record", zap.Error(err))
		return Retry(w.cfg.Backoff.Delay(deliveries(r.m))), true
	}
	if rec.RequestHash != "" && rec.RequestHash != hash {
		err := fmt.Errorf("job ID %s already names a different request", r.req.JobID)
		return w.giveUp(ctx, r.m, messages.ReasonPoison, "", errorInfo(messages.ErrCodeInvalidJob, err), err, r.log), true
	}
	if rec.Terminal() || rec.Announced {
		r.log.Debug("job already handled, acking duplicate delivery", zap.String("status", rec.Status))
		return Ack(), true
	}
	r.rec, r.rev = rec, rev
	r.log = w.log.With(recordFields(rec)...)
	return Outcome{}, false
}

// saga runs the remaining steps of the job.
func (r *jobRun) saga(ctx context.Context) Outcome {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"account", r.account},
		{"prepared data", r.preparedData},
		{"images", r.parts},
		{"finish", r.finish},
	}
	for _, s := range steps {
		start := r.w.now()
		err := s.fn(ctx)
		r.w.m.observeStep(s.name, r.w.now().Sub(start), err)
		if err != nil {
			return r.failure(ctx, s.name, err)
		}
	}
	return Ack()
}

// checkpoint records a side effect in the job record.
func (r *jobRun) checkpoint(ctx context.Context, mutate func(*JobRecord) error) error {
	rec, rev, err := r.w.store.Update(ctx, r.rec, r.rev, mutate)
	if err != nil {
		return &infraError{fmt.Errorf("checkpoint: %w", err)}
	}
	r.rec, r.rev = rec, rev
	return nil
}

// infraError marks failures of NATS (KV, publish), retried without using
// the job's retry budget.
type infraError struct{ err error }

func (e *infraError) Error() string { return e.err.Error() }
func (e *infraError) Unwrap() error { return e.err }

// account creates the Jumio account (POST) or a new execution on the
// job's existing account (PUT), once.
func (r *jobRun) account(ctx context.Context) error {
	if r.rec.WorkflowExecutionID != "" {
		return nil
	}
	w := r.w
	// A redelivery that finds no account and no recorded failure of the
	// previous delivery may follow a crash after Jumio created one.
	if n := deliveries(r.m); n > 1 && r.rec.Attempts+r.rec.Throttled < n-1 {
		w.m.ambiguousCreate()
		r.log.Warn("redelivered job has no account recorded; an earlier delivery may have created one at Jumio",
			zap.Int("deliveries", n))
		if err := r.checkpoint(ctx, func(rec *JobRecord) error { rec.AmbiguousCreates++; return nil }); err != nil {
			return err
		}
	}
	accepted, err := r.announceAccepted(ctx)
	if err != nil {
		return err
	}
	areq := r.req.AccountRequest(w.cfg.CallbackURL)
	select {
	case w.accountSlots <- struct{}{}:
	case <-ctx.Done():
		_ = accepted()
		return ctx.Err()
	}
	var resp *jumio.AccountResponse
	if r.req.AccountID != "" {
		resp, err = r.client.UpdateAccount(ctx, r.req.AccountID, areq)
	} else {
		resp, err = r.client.CreateAccount(ctx, areq)
	}
	<-w.accountSlots
	if err != nil {
		_ = accepted()
		return err // Jumio errors name their operation
	}
	if !jumio.ValidID(resp.Account.ID) || !jumio.ValidID(resp.WorkflowExecution.ID) {
		_ = accepted()
		return &infraError{fmt.Errorf("jumio account response without valid account or execution ID")}
	}
	r.log = w.log.With(jobField(r.rec.JobID), accountField(resp.Account.ID), executionField(resp.WorkflowExecution.ID))
	// Record the account before anything else, and insist: until it is
	// recorded, a redelivery would create a second one. The index must exist
	// before Jumio can call back, i.e. before finalize.
	jobID, execID := r.rec.JobID, resp.WorkflowExecution.ID
	err = r.record(ctx, "account", func(ctx context.Context) error {
		indexErr := make(chan error, 1)
		go func() { indexErr <- w.store.IndexExecution(ctx, execID, jobID) }()
		err := r.checkpoint(ctx, func(rec *JobRecord) error {
			if rec.WorkflowExecutionID != "" && rec.WorkflowExecutionID != execID {
				return fmt.Errorf("%w: job already has execution %s", errConcurrentAccount, rec.WorkflowExecutionID)
			}
			rec.AccountID, rec.WorkflowExecutionID = resp.Account.ID, execID
			rec.Credentials = credentialStates(resp.WorkflowExecution.Credentials)
			if resp.Web != nil {
				rec.WebHref = resp.Web.Href
			}
			if resp.SDK != nil {
				rec.SDKToken = resp.SDK.Token
			}
			rec.SetStatus(w.now(), StatusAccountCreated, "")
			return nil
		})
		return cmp.Or(err, <-indexErr)
	})
	if aerr := accepted(); aerr != nil {
		r.log.Warn("accepted event not stored", zap.Error(aerr))
	}
	if errors.Is(err, errConcurrentAccount) {
		return r.compensate(ctx, resp, err)
	}
	if err == nil {
		r.log.Info("jumio account ready", zap.Bool("existing_account", r.req.AccountID != ""))
		r.boundary("account")
	}
	return err
}

// record persists a side effect with checkpoint calls in fn, retrying until
// it succeeds (or the process stops): a side effect that is not recorded
// would be repeated by the next delivery. The message stays in flight,
// kept alive by heartbeats, while NATS recovers.
func (r *jobRun) record(ctx context.Context, step string, fn func(context.Context) error) error {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || errors.Is(err, errConcurrentAccount) || ctx.Err() != nil {
			return err
		}
		if attempt == 1 || attempt%20 == 0 {
			r.log.Warn("cannot record a Jumio side effect yet; retrying until NATS accepts it", zap.String("step", step), zap.Int("attempt", attempt), zap.Error(err))
		}
		if !sleepCtx(ctx, delay) {
			return err
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// compensate handles losing a race with a concurrent delivery of the same
// job that recorded another execution first: ours is an orphan, and since we
// know its ID we remove it at Jumio, then carry on with the recorded one.
func (r *jobRun) compensate(ctx context.Context, ours *jumio.AccountResponse, cause error) error {
	r.w.m.ambiguousCreate()
	var err error
	if r.req.AccountID == "" {
		err = r.client.DeleteAccount(ctx, ours.Account.ID)
	} else {
		err = r.client.DeleteWorkflowExecution(ctx, ours.Account.ID, ours.WorkflowExecution.ID)
	}
	r.log.Warn("a concurrent delivery recorded another execution first; deleted ours at Jumio",
		zap.NamedError("cause", cause), zap.NamedError("delete_error", err))
	rec, rev, gerr := r.w.store.Get(ctx, r.rec.JobID)
	if gerr != nil {
		return &infraError{gerr}
	}
	r.rec, r.rev = rec, rev
	r.log = r.w.log.With(recordFields(rec)...)
	return nil
}

// boundary reports a completed checkpoint to WorkerConfig.AfterCheckpoint.
func (r *jobRun) boundary(step string) {
	if h := r.w.cfg.AfterCheckpoint; h != nil {
		h(step)
	}
}

var errConcurrentAccount = errors.New("concurrent account creation")

// announceAccepted publishes the accepted event asynchronously and returns a
// function that waits for its acknowledgement.
func (r *jobRun) announceAccepted(ctx context.Context) (wait func() error, err error) {
	ev := &messages.Event{
		Schema: messages.SchemaEvent, Kind: messages.KindAccepted, JobID: r.rec.JobID, Region: r.rec.Region,
		CustomerInternalReference: r.rec.CustomerInternalReference, At: r.w.now().UTC(),
	}
	o, err := newOutMsg(r.w.subj.Event(messages.KindAccepted), ev, "accepted:"+r.rec.JobID, r.rec.JobID)
	if err != nil {
		return nil, err
	}
	f, err := r.w.js.PublishMsgAsync(o.natsMsg(ctx))
	if err != nil {
		return nil, &infraError{err}
	}
	return func() error {
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

// preparedData uploads the job's prepared data to its DATA credential (or
// the first credential with a prepared_data part), once.
func (r *jobRun) preparedData(ctx context.Context) error {
	if r.req.PreparedData == nil || r.rec.HasUploaded(jumio.PartPreparedData) || r.rec.Finalized {
		return nil
	}
	cred, u, ok := r.rec.CredentialFor(jumio.PartPreparedData)
	if !ok {
		return &terminalError{code: messages.ErrCodeInvalidJob, err: errors.New("the workflow has no credential that accepts prepared data")}
	}
	if _, err := r.client.UploadPreparedData(ctx, u, cred.Token, r.req.PreparedData); err != nil {
		if done, cerr := r.acquisitionOver(ctx, err); cerr != nil || !done {
			return cmp.Or(cerr, err)
		}
	}
	if err := r.record(ctx, "prepared_data", func(ctx context.Context) error {
		return r.checkpoint(ctx, func(rec *JobRecord) error {
			if !rec.HasUploaded(jumio.PartPreparedData) {
				rec.Uploaded = append(rec.Uploaded, jumio.PartPreparedData)
			}
			return nil
		})
	}); err != nil {
		return err
	}
	r.boundary("prepared_data")
	return nil
}

// parts streams each image part from the image store to Jumio, once each.
func (r *jobRun) parts(ctx context.Context) error {
	for _, p := range r.req.Parts {
		if r.rec.HasUploaded(p.Classifier) || r.rec.Finalized {
			continue
		}
		cred, u, ok := r.rec.CredentialFor(p.Classifier)
		if !ok {
			return &terminalError{code: messages.ErrCodeInvalidJob, err: fmt.Errorf("the workflow has no credential that accepts %s", p.Classifier)}
		}
		if err := r.uploadPart(ctx, p, cred.Token, u); err != nil {
			if done, cerr := r.acquisitionOver(ctx, err); cerr != nil || !done {
				return cmp.Or(cerr, err)
			}
		}
		classifier := p.Classifier
		if err := r.record(ctx, "part", func(ctx context.Context) error {
			return r.checkpoint(ctx, func(rec *JobRecord) error {
				if !rec.HasUploaded(classifier) {
					rec.Uploaded = append(rec.Uploaded, classifier)
				}
				return nil
			})
		}); err != nil {
			return err
		}
		r.boundary("part:" + classifier)
	}
	return nil
}

func (r *jobRun) uploadPart(ctx context.Context, p messages.Part, token, partURL string) error {
	var body io.Reader
	contentType := p.ContentType
	if len(p.Data) > 0 {
		body = bytes.NewReader(p.Data)
	} else {
		obj, err := r.w.images.Get(ctx, p.Object)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return &terminalError{code: messages.ErrCodeImageMissing, err: fmt.Errorf("image %s is no longer in the image store (expired?)", p.Classifier)}
		}
		if err != nil {
			return &infraError{fmt.Errorf("read image %s: %w", p.Classifier, err)}
		}
		defer obj.Close()
		body = obj
		if contentType == "" {
			if info, err := obj.Info(); err == nil {
				contentType = info.Headers.Get("Content-Type")
			}
		}
	}
	if contentType == "" {
		contentType = "image/jpeg"
	}
	ext := map[string]string{"image/png": ".png"}[contentType]
	if ext == "" {
		ext = ".jpg"
	}
	if _, err := r.client.UploadPart(ctx, partURL, token, p.Classifier+ext, contentType, body); err != nil {
		return err
	}
	return nil
}

// acquisitionOver tells whether a failed credential call failed because an
// earlier delivery already finalized the execution (Jumio consumed the
// transaction token): the execution has left INITIATED.
func (r *jobRun) acquisitionOver(ctx context.Context, callErr error) (bool, error) {
	if !errors.Is(callErr, jumio.ErrUnauthorized) && !errors.Is(callErr, jumio.ErrForbidden) && !errors.Is(callErr, jumio.ErrNotFound) {
		return false, nil
	}
	st, err := r.client.WorkflowStatus(ctx, r.rec.AccountID, r.rec.WorkflowExecutionID)
	if err != nil {
		return false, fmt.Errorf("check execution status after %v: %w", callErr, err)
	}
	if s := st.WorkflowExecution.Status; s != jumio.StatusInitiated && s != jumio.StatusAcquisitionStarted {
		r.log.Info("execution already left INITIATED; an earlier delivery finalized it", zap.String("jumio_status", s))
		if !r.rec.Finalized {
			return true, r.checkpoint(ctx, func(rec *JobRecord) error { rec.Finalized = true; return nil })
		}
		return true, nil
	}
	return false, nil
}

// finish finalizes (API) or launches (WEB/SDK), then publishes the
// lifecycle event and the retrieval task, and records that it did.
func (r *jobRun) finish(ctx context.Context) error {
	w := r.w
	api := r.rec.Channel == messages.ChannelAPI
	if api && !r.rec.Finalized {
		cred, ok := r.rec.FinalizeCredential()
		if !ok {
			return &terminalError{code: messages.ErrCodeInvalidJob, err: errors.New("the workflow allows no API finalize")}
		}
		if _, err := r.client.Finalize(ctx, cred.FinalizeURL, cred.Token); err != nil {
			if done, cerr := r.acquisitionOver(ctx, err); cerr != nil || !done {
				return cmp.Or(cerr, err)
			}
		} else if err := r.record(ctx, "finalize", func(ctx context.Context) error {
			return r.checkpoint(ctx, func(rec *JobRecord) error {
				rec.Finalized = true
				rec.SetStatus(w.now(), StatusFinalized, "")
				return nil
			})
		}); err != nil {
			return err
		} else {
			r.boundary("finalize")
		}
		w.m.finalized()
		r.log.Info("finalized")
	}
	if api {
		r.deleteImages(ctx)
	}
	if !api && r.rec.WebHref == "" && r.rec.SDKToken == "" {
		return &terminalError{code: messages.ErrCodeInvalidJob, err: fmt.Errorf("channel %s: the workflow returned neither web.href nor sdk.token", r.rec.Channel)}
	}

	now := w.now().UTC()
	kind, status := messages.KindFinalized, StatusFinalized
	deadline := now.Add(w.cfg.ProcessingGrace)
	if !api {
		kind, status = messages.KindLaunched, StatusLaunched
		lifetime := jumio.DefaultTokenLifetime
		if r.req.TokenLifetime != "" {
			if d, err := jumio.ParseTokenLifetime(r.req.TokenLifetime); err == nil {
				lifetime = d
			}
		}
		deadline = now.Add(lifetime + 15*time.Minute + w.cfg.ProcessingGrace)
	}
	ev := &messages.Event{
		Schema: messages.SchemaEvent, Kind: kind, JobID: r.rec.JobID, Region: r.rec.Region,
		AccountID: r.rec.AccountID, WorkflowExecutionID: r.rec.WorkflowExecutionID,
		CustomerInternalReference: r.rec.CustomerInternalReference, At: now,
	}
	if !api {
		if r.rec.WebHref != "" && r.rec.Channel == messages.ChannelWeb {
			ev.Web = &messages.WebLink{Href: r.rec.WebHref}
		}
		if r.rec.SDKToken != "" && r.rec.Channel == messages.ChannelSDK {
			ev.SDK = &messages.SDKToken{Token: r.rec.SDKToken}
		}
		if ev.Web == nil && ev.SDK == nil { // the channel asked for is not offered; hand over what is
			if r.rec.WebHref != "" {
				ev.Web = &messages.WebLink{Href: r.rec.WebHref}
			} else {
				ev.SDK = &messages.SDKToken{Token: r.rec.SDKToken}
			}
		}
	}
	evMsg, err := newOutMsg(w.subj.Event(kind), ev, kind+":"+r.rec.JobID, r.rec.JobID)
	if err != nil {
		return err
	}
	task := &RetrievalTask{Schema: SchemaRetrievalTask, JobID: r.rec.JobID, Region: r.rec.Region,
		AccountID: r.rec.AccountID, WorkflowExecutionID: r.rec.WorkflowExecutionID, Deadline: deadline}
	taskMsg, err := newOutMsg(w.subj.Retrieve(r.rec.Region), task, "poll:"+r.rec.WorkflowExecutionID, r.rec.JobID)
	if err != nil {
		return err
	}
	acks, err := publishAll(ctx, w.js, evMsg, taskMsg)
	if err != nil {
		return &infraError{err}
	}
	err = r.checkpoint(ctx, func(rec *JobRecord) error {
		rec.Announced = true
		rec.PollSequence = acks[1].Sequence
		rec.PollDeadline = deadline
		if rec.Status != StatusDecided && rec.Status != StatusFailed {
			rec.SetStatus(w.now(), status, "")
		}
		return nil
	})
	if err == nil && !api {
		r.log.Info("launched; waiting for the end user", zap.String("channel", r.rec.Channel))
	}
	if err == nil {
		r.boundary("announce")
	}
	return err
}

// deleteImages removes the job's images from the store after finalize
// (data minimization). Failures are logged: the store's TTL removes them
// anyway.
func (r *jobRun) deleteImages(ctx context.Context) {
	if r.rec.ImagesDeleted {
		return
	}
	n := 0
	for _, p := range r.req.Parts {
		if p.Object == "" {
			continue
		}
		if err := r.w.images.Delete(ctx, p.Object); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			r.log.Warn("cannot delete image after finalize; the store's TTL will", zap.String("part", p.Classifier), zap.Error(err))
			return
		}
		n++
	}
	if n > 0 {
		_ = r.checkpoint(ctx, func(rec *JobRecord) error { rec.ImagesDeleted = true; return nil })
	}
}

// terminalError is a failure no retry can fix.
type terminalError struct {
	code string
	err  error
}

func (e *terminalError) Error() string { return e.err.Error() }
func (e *terminalError) Unwrap() error { return e.err }

// failure turns a step's error into an outcome: terminal errors end the job
// (dead letter, failed event); rate limiting waits without using the retry
// budget; other retryable errors use it; NATS trouble is retried as is.
func (r *jobRun) failure(ctx context.Context, step string, err error) Outcome {
	w := r.w
	log := r.log.With(zap.String("step", step))
	if ctx.Err() != nil {
		return handBack()
	}
	var term *terminalError
	var infra *infraError
	switch {
	case errors.As(err, &term):
		return w.giveUp(ctx, r.m, messages.ReasonTerminal, r.rec.JobID, errorInfo(term.code, err), err, log)
	case errors.As(err, &infra):
		d := w.cfg.Backoff.Delay(deliveries(r.m))
		log.Warn("infrastructure error; will retry", zap.Error(err), zap.Duration("delay", d))
		return Retry(d)
	case errors.Is(err, jumio.ErrRateLimited) || errors.Is(err, jumio.ErrThrottled):
		var d time.Duration
		_ = r.checkpoint(ctx, func(rec *JobRecord) error {
			rec.Throttled++
			rec.LastError = ptr(errorInfo("rate_limited", err))
			return nil
		})
		if ra, ok := jumio.RetryAfter(err); ok {
			d = ra
		} else {
			d = w.cfg.Backoff.Delay(r.rec.Throttled)
		}
		w.m.throttled(step)
		log.Info("rate limited; waiting without using the retry budget", zap.Duration("delay", d))
		return Retry(d)
	case jumio.IsRetryable(err):
		cerr := r.checkpoint(ctx, func(rec *JobRecord) error {
			rec.Attempts++
			rec.LastError = ptr(errorInfo("jumio_unavailable", err))
			return nil
		})
		if cerr != nil {
			return Retry(w.cfg.Backoff.Delay(deliveries(r.m)))
		}
		if r.rec.Attempts > w.cfg.RetryBudget {
			return w.giveUp(ctx, r.m, messages.ReasonRetryBudget, r.rec.JobID, errorInfo(messages.ErrCodeRetryBudget, err), err, log)
		}
		d := w.cfg.Backoff.Delay(r.rec.Attempts)
		if ra, ok := jumio.RetryAfter(err); ok && ra > d {
			d = ra
		}
		log.Warn("jumio call failed; will retry", zap.Error(err), zap.Int("attempt", r.rec.Attempts), zap.Duration("delay", d))
		return Retry(d)
	case jumio.StatusCode(err) != 0 || errors.Is(err, jumio.ErrInvalidArgument) || errors.Is(err, jumio.ErrValidation):
		// Jumio refused the request (a 4xx other than 401-after-refresh,
		// 408 and 429): no retry can fix it.
		return w.giveUp(ctx, r.m, messages.ReasonTerminal, r.rec.JobID, errorInfo(messages.ErrCodeJumioRejected, err), err, log)
	default:
		// Anything else (NATS, an unexpected local failure) is not the job's
		// fault: retry without using its budget.
		d := w.cfg.Backoff.Delay(deliveries(r.m))
		log.Warn("unexpected error; will retry", zap.Error(err), zap.Duration("delay", d))
		return Retry(d)
	}
}

func ptr[T any](v T) *T { return &v }

func (w *Worker) giveUp(ctx context.Context, m jetstream.Msg, reason, jobID string, info messages.ErrorInfo, cause error, log *zap.Logger) Outcome {
	w.m.deadLettered(messages.StageWorker, reason)
	return giveUp(ctx, w.js, w.subj, w.store, w.now, w.m, log, m, messages.StageWorker, reason, jobID, info, cause)
}

// Ready reports whether the worker can work: NATS connected, streams,
// consumers and buckets present (checked at most every 5s).
func (x *Worker) Ready(ctx context.Context) error {
	return readiness(ctx, x.js.Conn(), x.js, x.cfg.Topology, &x.readyMu, &x.readyAt, &x.readyErr, x.now)
}
