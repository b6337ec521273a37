package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// This file is the worker's saga: the steps of one job, each checkpointed in
// the job record before the next, so a redelivery resumes where the last
// delivery stopped.

// saga runs the remaining steps of the job.
func (r *jobRun) saga(ctx context.Context) outcome {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"account", r.account},
		{"web link", r.webLink},
		{"prepared data", r.preparedData},
		{"images", r.parts},
		{"finish", r.finish},
	}
	for _, s := range steps {
		start := r.w.now()
		err := s.fn(ctx)
		if errors.Is(err, errJobDone) {
			// Another delivery of the job got further (announced it, or
			// finished it): this one has nothing left to do.
			r.w.m.observeStep(s.name, r.w.now().Sub(start), nil)
			discardHeldMoves(ctx)
			r.log.Info("another delivery of the job got further; this one stops", zap.String("step", s.name), zap.String("status", r.rec.Status))
			return ack()
		}
		r.w.m.observeStep(s.name, r.w.now().Sub(start), err)
		if errors.Is(err, ErrErasing) || errors.Is(err, ErrErased) {
			// The job is being erased: stop here. Its message leaves the
			// queue, which tells the eraser the saga is over.
			discardHeldMoves(ctx)
			r.log.Info("erasure requested; the saga stops", zap.String("step", s.name))
			return ack()
		}
		if err != nil {
			return r.failure(ctx, s.name, err)
		}
	}
	return ack()
}

// checkErasure returns ErrErasing when the job's erasure was requested. The
// saga calls it right before every Jumio call, so that no call for the job
// starts once the erasure is recorded.
func (r *jobRun) checkErasure(ctx context.Context) error {
	rec, _, err := r.w.store.Get(ctx, r.rec.JobID)
	if err != nil {
		return &infraError{fmt.Errorf("check for an erasure: %w", err)}
	}
	if rec.Erasing() {
		return ErrErasing
	}
	r.guard.looked()
	return nil
}

// errJobDone says that the job record, read again, shows that another
// delivery of the job announced or finished it: this delivery acks.
var errJobDone = errors.New("the job was announced or finished by another delivery")

// reload reads the job record again from the bucket stream's leader and
// continues from it: a delivery that may have read a stale record (a
// redelivery, after a partition) or lost a race must not go on with it.
// It returns errJobDone when the job was announced or finished meanwhile,
// ErrErasing when its erasure was requested.
func (r *jobRun) reload(ctx context.Context) error {
	rec, rev, err := r.w.store.getLatest(ctx, r.rec.JobID)
	if err != nil {
		return &infraError{fmt.Errorf("read the job record again: %w", err)}
	}
	r.rec, r.rev = rec, rev
	r.log = r.w.log.With(recordFields(rec)...)
	switch {
	case rec.Erasing():
		return ErrErasing
	case rec.Terminal() || rec.Announced:
		return errJobDone
	}
	return nil
}

// mayBeStale reports whether this delivery's record may be older than
// what an earlier delivery of the job recorded: a redelivery, a held job
// published again, or a replay. (On a first delivery the record is the one
// the worker just created from the message, or, when one existed, read by
// Create from the stream leader.)
func (r *jobRun) mayBeStale() bool {
	h := r.m.Headers()
	return deliveries(r.m) > 1 || h.Get(messages.HeaderRequeueOf) != "" || h.Get(messages.HeaderReplayOf) != ""
}

// checkpoint records a side effect in the job record.
func (r *jobRun) checkpoint(ctx context.Context, mutate func(*JobRecord) error) error {
	rec, rev, err := r.w.store.Update(ctx, r.rec, r.rev, mutate)
	if errors.Is(err, ErrErasing) || errors.Is(err, ErrErased) {
		return err // recorded (erasing) or not (erased); the saga stops
	}
	if err != nil {
		return &infraError{fmt.Errorf("checkpoint: %w", err)}
	}
	r.rec, r.rev = rec, rev
	return nil
}

// account creates the Jumio account (POST) or a new execution on the
// job's existing account (PUT), once.
func (r *jobRun) account(ctx context.Context) error {
	if r.rec.WorkflowExecutionID != "" {
		if r.mayBeStale() {
			return r.ensureIndexed(ctx)
		}
		return nil
	}
	// Before creating an account, make sure no earlier delivery recorded
	// one: the record a redelivery read may come from a replica that lags
	// after a partition.
	if r.mayBeStale() {
		if err := r.reload(ctx); err != nil || r.rec.WorkflowExecutionID != "" {
			return err
		}
	}
	w := r.w
	// A redelivery that finds no account and no recorded failure of the
	// previous delivery may follow a crash after Jumio created one.
	if r.unrecordedCreate(r.rec) {
		w.m.ambiguousCreate()
		r.log.Warn("redelivered job has no account recorded; an earlier delivery may have created one at Jumio",
			zap.Int("deliveries", deliveries(r.m)))
		if err := r.checkpoint(ctx, func(rec *JobRecord) error { rec.AmbiguousCreates++; return nil }); err != nil {
			return err
		}
	}
	if err := r.checkErasure(ctx); err != nil {
		return err
	}
	acceptedAt, accepted, err := r.announceAccepted(ctx)
	if err != nil {
		return err
	}
	areq := accountRequest(r.req, w.cfg.CallbackURL)
	select {
	case w.accountSlots <- struct{}{}:
	case <-ctx.Done():
		r.recordEvent(ctx, acceptedAt, accepted)
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
		r.recordEvent(ctx, acceptedAt, accepted)
		return err // Jumio errors name their operation
	}
	if !jumio.ValidID(resp.Account.ID) || !jumio.ValidID(resp.WorkflowExecution.ID) {
		r.recordEvent(ctx, acceptedAt, accepted)
		return &infraError{fmt.Errorf("jumio account response without valid account or execution ID")}
	}
	r.log = w.log.With(jobField(r.rec.JobID), accountField(resp.Account.ID), executionField(resp.WorkflowExecution.ID))
	// Record the account before anything else, and insist: until it is
	// recorded, a redelivery would create a second one. Then index the
	// execution, which must be done before Jumio can call back, i.e. before
	// finalize. In this order, so that a worker that dies in between
	// leaves no index entry naming the job that the record does not lead
	// to: the erasure finds the entry through the record. (Written side by
	// side, a worker SIGKILLed between the two in the soak of 2026-12-07
	// 16:44 left an entry the job's erasure could not find.) A redelivery
	// indexes an execution recorded without its entry (ensureIndexed).
	jobID, execID := r.rec.JobID, resp.WorkflowExecution.ID
	acceptedEvent, aerr := accepted()
	if aerr != nil {
		// Unconfirmed (lostAck) is recorded with the account: the job's
		// next checkpoints learn where the event is (accepted.go).
		r.log.Warn("accepted event not stored", zap.Error(aerr), zap.Bool("unconfirmed", lostAck(aerr)))
	}
	err = r.record(ctx, "account", func(ctx context.Context) error {
		return r.checkpoint(ctx, func(rec *JobRecord) error {
			if rec.WorkflowExecutionID != "" && rec.WorkflowExecutionID != execID {
				return fmt.Errorf("%w: job already has execution %s", errConcurrentAccount, rec.WorkflowExecutionID)
			}
			rec.AccountID, rec.WorkflowExecutionID = resp.Account.ID, execID
			w.noteAccepted(rec, acceptedAt, acceptedEvent, aerr)
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
	})
	if err == nil {
		err = r.record(ctx, "index", func(ctx context.Context) error { return w.store.IndexExecution(ctx, execID, jobID) })
	}
	if errors.Is(err, ErrErased) {
		r.w.deleteMessages(ctx, acceptedEvent)
		r.w.forgetAccepted(ctx, r.rec, acceptedAt, aerr)
	}
	if errors.Is(err, errConcurrentAccount) {
		return r.compensate(ctx, resp, err)
	}
	if err == nil {
		r.log.Info("jumio account ready", zap.Bool("existing_account", r.req.AccountID != ""))
		r.accountNow = true
		r.boundary("account")
	}
	return err
}

// webLink makes sure a WEB job has its web.href (jumio-api.md §10.4: Jumio
// generates it only when the portal defines the web domain). Without one,
// Jumio's configuration is at fault, not the job: the SDK token is never
// handed out instead. The account created in this delivery reports the
// fault (the region's WEB jobs are then held before they create accounts);
// a later delivery of the job (a canary, or after the pause) asks Jumio
// for a new execution on the job's own account, which carries web.href
// once the setting is fixed, and deletes the first one.
func (r *jobRun) webLink(ctx context.Context) error {
	if r.rec.Channel != messages.ChannelWeb || r.rec.WebHref != "" {
		if r.rec.WebHref != "" && r.accountNow {
			r.w.faults.webHrefBack(r.client.Region())
		}
		return nil
	}
	if !r.rec.offersChannel(jumio.ChannelWeb) {
		return &terminalError{code: messages.ErrCodeInvalidJob, err: errors.New("channel WEB: the workflow offers no web channel")}
	}
	if r.accountNow {
		return r.webHrefFault()
	}
	return r.relaunch(ctx)
}

// webHrefFault is the configuration fault of a missing web.href.
func (r *jobRun) webHrefFault() error {
	return &configFaultError{&ConfigFault{Region: r.client.Region(), Kind: FaultWebHref,
		Fix: "the Jumio portal's web domain (Settings: Domain Name: define a subdomain, which Jumio needs to generate web.href)"}}
}

// relaunch starts a new execution on the job's account (PUT) to get
// web.href. With it, the new execution replaces the job's first one (which
// is deleted at Jumio); without it, the new execution is deleted and the
// fault stands.
func (r *jobRun) relaunch(ctx context.Context) error {
	w := r.w
	select {
	case w.accountSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	resp, err := r.client.UpdateAccount(ctx, r.rec.AccountID, accountRequest(r.req, w.cfg.CallbackURL))
	<-w.accountSlots
	if err != nil {
		return err
	}
	if !jumio.ValidID(resp.WorkflowExecution.ID) {
		return &infraError{errors.New("jumio account response without a valid execution ID")}
	}
	newExec := resp.WorkflowExecution.ID
	if resp.Web == nil || resp.Web.Href == "" {
		if derr := r.client.DeleteWorkflowExecution(ctx, r.rec.AccountID, newExec); derr != nil {
			r.log.Warn("cannot delete the execution started to look for web.href; it expires at Jumio", zap.Error(derr))
		}
		return r.webHrefFault()
	}
	old := r.rec.WorkflowExecutionID
	jobID := r.rec.JobID
	// The record first, then the index entry (as in account).
	err = r.record(ctx, "relaunch", func(ctx context.Context) error {
		return r.checkpoint(ctx, func(rec *JobRecord) error {
			if rec.WorkflowExecutionID != old {
				return fmt.Errorf("%w: job already has execution %s", errConcurrentAccount, rec.WorkflowExecutionID)
			}
			rec.ReplacedExecutions = append(rec.ReplacedExecutions, old)
			rec.WorkflowExecutionID = newExec
			rec.Credentials = credentialStates(resp.WorkflowExecution.Credentials)
			rec.WebHref = resp.Web.Href
			if resp.SDK != nil {
				rec.SDKToken = resp.SDK.Token
			}
			rec.note(w.now(), rec.Status, "launched again: Jumio returned web.href")
			return nil
		})
	})
	if errors.Is(err, errConcurrentAccount) {
		// Another delivery launched the job again first: ours is an orphan.
		if derr := r.client.DeleteWorkflowExecution(ctx, r.rec.AccountID, newExec); derr != nil {
			r.log.Warn("cannot delete a concurrent delivery's duplicate execution; it expires at Jumio", zap.Error(derr))
		}
		return r.reload(ctx)
	}
	if err != nil {
		return err
	}
	if err := r.record(ctx, "index", func(ctx context.Context) error { return w.store.IndexExecution(ctx, newExec, jobID) }); err != nil {
		return err
	}
	r.log = w.log.With(recordFields(r.rec)...)
	if derr := r.client.DeleteWorkflowExecution(ctx, r.rec.AccountID, old); derr != nil && !errors.Is(derr, jumio.ErrNotFound) {
		r.log.Warn("cannot delete the execution without web.href; it expires at Jumio", zap.Error(derr))
	}
	w.faults.webHrefBack(r.client.Region())
	r.log.Info("Jumio returned web.href: the job runs on a new execution of its account", zap.String("replaced_execution", old))
	return nil
}

// ensureIndexed writes the index entry of the job's recorded execution
// when the stream leader has none: the delivery that recorded the
// execution may have died before it indexed it (account). A job being
// erased, or that another delivery announced or finished, is left alone
// (reload): its entry is the eraser's to remove, or was written before
// the job was finalized.
func (r *jobRun) ensureIndexed(ctx context.Context) error {
	_, err := r.w.store.jobForExecutionLatest(ctx, r.rec.WorkflowExecutionID)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrJobNotFound) {
		return &infraError{fmt.Errorf("read the execution's index entry: %w", err)}
	}
	if err := r.reload(ctx); err != nil || r.rec.WorkflowExecutionID == "" {
		return err
	}
	execID, jobID := r.rec.WorkflowExecutionID, r.rec.JobID
	if err := r.record(ctx, "index", func(ctx context.Context) error { return r.w.store.IndexExecution(ctx, execID, jobID) }); err != nil {
		return err
	}
	r.log.Warn("indexed the job's execution, which an earlier delivery recorded and did not index (it stopped in between)")
	return nil
}

// record persists a side effect with checkpoint calls in fn, retrying until
// it succeeds (or the process stops): a side effect that is not recorded
// would be repeated by the next delivery. The message stays in flight,
// kept alive by heartbeats, while NATS recovers.
func (r *jobRun) record(ctx context.Context, step string, fn func(context.Context) error) error {
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || errors.Is(err, errConcurrentAccount) || errors.Is(err, ErrErasing) || errors.Is(err, ErrErased) || ctx.Err() != nil {
			return err
		}
		if attempt == 1 || attempt%20 == 0 {
			r.log.Warn("cannot record a Jumio side effect yet; retrying until NATS accepts it", zap.String("step", step), zap.Int("attempt", attempt), zap.Error(err))
		}
		if !ctxutil.Sleep(ctx, delay) {
			return err
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// compensate handles losing a race with a concurrent delivery of the same
// job that recorded another execution first: ours is an orphan, and since we
// know its ID we remove it at Jumio, then carry on from the record as the
// winner left it, read again from the stream leader (never from the record
// this delivery started with, nor from a replica that may lag): when the
// winner announced or finished the job, this delivery has nothing left to
// do (errJobDone: ack).
func (r *jobRun) compensate(ctx context.Context, ours *jumio.AccountResponse, cause error) error {
	r.w.m.ambiguousCreate()
	var err error
	ctx = withoutErasureGuard(ctx) // a DELETE is made even for a job being erased
	if r.req.AccountID == "" {
		err = r.client.DeleteAccount(ctx, ours.Account.ID)
	} else {
		err = r.client.DeleteWorkflowExecution(ctx, ours.Account.ID, ours.WorkflowExecution.ID)
	}
	r.log.Warn("a concurrent delivery recorded another execution first; deleted ours at Jumio",
		zap.NamedError("cause", cause), zap.NamedError("delete_error", err))
	if err := r.reload(ctx); err != nil {
		return err
	}
	if r.rec.WorkflowExecutionID == "" {
		// The leader's record must name the winner's execution (the
		// conflict was read from it): anything else is not a record to
		// continue from. Retried; the redelivery reads it again.
		return &infraError{errors.New("the job record names no execution after a concurrent delivery recorded one")}
	}
	return nil
}

// boundary reports a completed checkpoint to WorkerConfig.AfterCheckpoint.
func (r *jobRun) boundary(step string) {
	if h := r.w.cfg.AfterCheckpoint; h != nil {
		h(step)
	}
}

var errConcurrentAccount = errors.New("concurrent account creation")

// recordEvent waits for the accepted event's acknowledgement (the event
// published at at) and records where it is, or that the acknowledgement
// was lost (accepted.go), on a path where no checkpoint follows (a failed
// account call), so that an erasure finds it. It is best effort: the
// failure is what matters here.
func (r *jobRun) recordEvent(ctx context.Context, at time.Time, wait func() (MessageRef, error)) {
	ref, werr := wait()
	if ref.Seq == 0 && !lostAck(werr) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	err := r.checkpoint(ctx, func(rec *JobRecord) error { r.w.noteAccepted(rec, at, ref, werr); return nil })
	if err != nil && !erasing(err) {
		r.log.Warn("cannot record where the accepted event is", zap.Error(err))
	}
	if errors.Is(err, ErrErased) {
		r.w.deleteMessages(ctx, ref)
		r.w.forgetAccepted(ctx, r.rec, at, werr)
	}
}

// announceAccepted publishes the accepted event asynchronously and returns
// its time and a function that waits for its acknowledgement and says
// where it is stored. The time is the one the record holds (written ahead
// by the record's creation, accepted.go); a record without one, or with
// one too old to publish with, first records the time used now, so that
// an erasure knows from when on to search for the event.
func (r *jobRun) announceAccepted(ctx context.Context) (at time.Time, wait func() (MessageRef, error), err error) {
	if i := slices.IndexFunc(r.rec.Messages, func(m MessageRef) bool { return m.Kind == EventMessageKind(messages.KindAccepted) }); i >= 0 {
		// Announced by an earlier delivery whose account call failed.
		ref := r.rec.Messages[i]
		return r.w.now().UTC(), func() (MessageRef, error) { return ref, nil }, nil
	}
	at = r.rec.AcceptedUnconfirmed
	if at.IsZero() || !r.w.reconfirmable(at) {
		now := r.w.now().UTC()
		if err := r.checkpoint(ctx, func(rec *JobRecord) error { rec.AcceptedUnconfirmed = now; return nil }); err != nil {
			return now, nil, err
		}
		at = now
	}
	o, err := acceptedMsg(r.w.subj, r.rec, at)
	if err != nil {
		return at, nil, err
	}
	js := r.w.acceptedJS
	f, err := js.PublishMsgAsync(o.natsMsg(ctx))
	if err != nil {
		return at, nil, &infraError{err}
	}
	return at, func() (MessageRef, error) {
		ack, err := awaitAck(ctx, f)
		if err != nil {
			if !unconfirmed(ctx, o, err) {
				return MessageRef{}, err
			}
			if ack, err = confirm(ctx, js, o, err); err != nil {
				return MessageRef{}, err
			}
		}
		return acceptedRef(ack.Stream, ack.Sequence, at), nil
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
	if err := r.checkErasure(ctx); err != nil {
		return err
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
		if err := r.checkErasure(ctx); err != nil {
			return err
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
	size := int64(len(p.Data))
	if size > 0 {
		body = bytes.NewReader(p.Data)
	} else {
		obj, err := r.w.images.Get(ctx, p.Object)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			// The replica that answered may not have the image yet (see
			// objectStoredAtLeader): gone only if the leader says so.
			stored, lerr := objectStoredAtLeader(ctx, r.w.js, r.w.subj.BucketImages(), p.Object)
			if lerr != nil {
				return &infraError{lerr}
			}
			if stored {
				r.log.Info("image not yet on the replica that answered; retrying", zap.String("classifier", p.Classifier))
				return &infraError{fmt.Errorf("image %s: stored, but not yet on the replica that answered", p.Classifier)}
			}
			return &terminalError{code: messages.ErrCodeImageMissing, err: fmt.Errorf("image %s is no longer in the image store (expired?)", p.Classifier)}
		}
		if err != nil {
			return &infraError{fmt.Errorf("read image %s: %w", p.Classifier, err)}
		}
		defer obj.Close()
		info, err := obj.Info()
		if err != nil {
			return &infraError{fmt.Errorf("read image %s: %w", p.Classifier, err)}
		}
		body, size = obj, int64(info.Size)
		if contentType == "" {
			contentType = info.Headers.Get("Content-Type")
		}
	}
	if contentType == "" {
		contentType = "image/jpeg"
	}
	ext := map[string]string{"image/png": ".png"}[contentType]
	if ext == "" {
		ext = ".jpg"
	}
	// The length is sent (Jumio refuses requests without Content-Length);
	// the image is still streamed from the store.
	if _, err := r.client.UploadPart(ctx, partURL, token, p.Classifier+ext, contentType, size, body); err != nil {
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
	finalizedNow := false
	if api && !r.rec.Finalized {
		cred, ok := r.rec.FinalizeCredential()
		if !ok {
			return &terminalError{code: messages.ErrCodeInvalidJob, err: errors.New("the workflow allows no API finalize")}
		}
		if err := r.checkErasure(ctx); err != nil {
			return err
		}
		if _, err := r.client.Finalize(ctx, cred.FinalizeURL, cred.Token); err != nil {
			if done, cerr := r.acquisitionOver(ctx, err); cerr != nil || !done {
				return cmp.Or(cerr, err)
			}
		} else {
			// Recorded with the announcement below, in one checkpoint: a
			// crash before it makes the next delivery finalize again, which
			// Jumio refuses (the token is spent) and acquisitionOver
			// recognizes. The step boundary is still reported here.
			finalizedNow = true
			r.boundary("finalize")
		}
		w.m.finalized()
		r.log.Info("finalized")
	}
	imagesDeleted := false
	if api {
		imagesDeleted = r.deleteImages(ctx)
	}
	switch {
	case r.rec.Channel == messages.ChannelWeb && r.rec.WebHref == "":
		return r.webHrefFault() // webLink saw to it; never hand out the SDK token instead
	case r.rec.Channel == messages.ChannelSDK && r.rec.SDKToken == "":
		return &terminalError{code: messages.ErrCodeInvalidJob, err: errors.New("channel SDK: the workflow returned no sdk.token")}
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
	ev := newEvent(kind, r.rec, now)
	switch r.rec.Channel {
	case messages.ChannelWeb:
		ev.Web = &messages.WebLink{Href: r.rec.WebHref}
	case messages.ChannelSDK:
		ev.SDK = &messages.SDKToken{Token: r.rec.SDKToken}
	}
	evMsg, err := newOutMsg(w.subj.Event(kind), ev, messages.EventMsgID(kind, r.rec.JobID), r.rec.JobID)
	if err != nil {
		return err
	}
	task := &messages.RetrievalTask{JobID: r.rec.JobID, Region: r.rec.Region,
		AccountID: r.rec.AccountID, WorkflowExecutionID: r.rec.WorkflowExecutionID, Deadline: deadline}
	taskMsg, err := newOutMsg(w.subj.Retrieve(r.rec.Region), task, messages.PollMsgID(r.rec.WorkflowExecutionID), r.rec.JobID)
	if err != nil {
		return err
	}
	acks, err := publishAll(ctx, w.js, evMsg, taskMsg)
	if err != nil {
		return &infraError{err}
	}
	event := MessageRef{Stream: acks[0].Stream, Seq: acks[0].Sequence, Kind: EventMessageKind(kind), At: ev.At}
	// The announce is the job's next checkpoint after its account: an
	// accepted event whose acknowledgement was lost is confirmed here.
	unconfirmedAt := r.rec.AcceptedUnconfirmed
	accepted := w.reconfirmAcceptedAtCheckpoint(ctx, r.rec, r.log)
	err = r.record(ctx, "announce", func(ctx context.Context) error {
		return r.checkpoint(ctx, func(rec *JobRecord) error {
			if finalizedNow {
				rec.Finalized = true
			}
			if imagesDeleted {
				rec.ImagesDeleted = true
			}
			rec.Announced = true
			rec.PollSequence = acks[1].Sequence
			rec.PollDeadline = deadline
			rec.addMessages(event)
			w.noteAccepted(rec, unconfirmedAt, accepted, nil)
			// The retriever may have decided already: Jumio can call
			// back before the finalize answer arrives. A decided job
			// stays DECIDED.
			if !rec.Terminal() {
				rec.SetStatus(w.now(), status, "")
			}
			return nil
		})
	})
	if errors.Is(err, ErrErased) {
		w.deleteMessages(ctx, event, MessageRef{Stream: acks[1].Stream, Seq: acks[1].Sequence}, accepted)
	}
	if err == nil && !api {
		r.log.Info("launched; waiting for the end user", zap.String("channel", r.rec.Channel))
	}
	if err == nil {
		r.boundary("announce")
	}
	return err
}

// deleteImages removes the job's images from the store after finalize
// (data minimization) and reports whether it removed any, which the
// announce checkpoint records. Failures are logged: the store's TTL
// removes them anyway.
func (r *jobRun) deleteImages(ctx context.Context) bool {
	if r.rec.ImagesDeleted {
		return false
	}
	n := 0
	for _, p := range r.req.Parts {
		if p.Object == "" {
			continue
		}
		if err := r.w.images.Delete(ctx, p.Object); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			r.log.Warn("cannot delete image after finalize; the store's TTL will", zap.String("part", p.Classifier), zap.Error(err))
			return false
		}
		n++
	}
	return n > 0
}

// failure settles a failed step through the stage core: the job's record
// counts retryable failures (its retry budget), rate-limit waits and holds
// for a paused region.
func (r *jobRun) failure(ctx context.Context, step string, err error) outcome {
	return r.w.settle(ctx, r.failureOf(step, err))
}

func (r *jobRun) failureOf(step string, err error) failure {
	after := func(rec *JobRecord, rev uint64) { r.rec, r.rev = rec, rev }
	return failure{msg: r.m, jobID: r.rec.JobID, step: step, err: err, log: r.log, region: r.client.Region(),
		charge: r.w.chargeRecord(r.rec, r.rev, after), hold: r.w.holdRecord(r.rec, r.rev, after)}
}

// accountRequest returns the Jumio account request for a job, with
// callbackURL used when the job does not override it.
func accountRequest(req *messages.VerificationRequest, callbackURL string) *jumio.AccountRequest {
	return &jumio.AccountRequest{
		CustomerInternalReference: req.CustomerInternalReference,
		WorkflowDefinition:        req.WorkflowDefinition,
		UserReference:             req.UserReference,
		ReportingCriteria:         req.ReportingCriteria,
		CallbackURL:               cmp.Or(req.CallbackURL, callbackURL),
		TokenLifetime:             req.TokenLifetime,
		Web:                       req.Web,
		UserConsent:               req.UserConsent,
	}
}
