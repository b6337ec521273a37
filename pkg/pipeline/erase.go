package pipeline

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Erasure (DESIGN 3.7) happens in two steps. RequestErasure, called by
// ingest's DELETE route, kycctl erase and the retention sweep, stores an
// erasure task (durably: only then is the request answered) and marks the
// job ERASING. From that moment no stage starts a Jumio call for the job
// (the saga re-reads the record before each call; every record write on an
// erasing job keeps it ERASING), and whoever publishes a message about the
// job records it in the record or, if the job is already erased, deletes
// it. A worker's eraser then carries the task out: it waits until the job's
// message has left the jobs queue (its saga stopped), deletes the account
// (or the job's execution) at Jumio, removes every message the record lists,
// the poll task, the images, the index entries, the webhook deliveries and
// the execution index, publishes the audit record, and writes the tombstone
// with compare-and-swap: that write is the commit, and every step before
// it is idempotent, so a crash anywhere is resumed by the task's
// redelivery. Then it publishes the erased event (a redelivery that finds
// the tombstone publishes it again, deduplicated). Jumio or NATS being down only delays it: the task is
// retried, never dropped.

// ErasureRequest asks for a job's erasure.
type ErasureRequest struct {
	JobID  string
	Source string // messages.ErasureRequest or messages.ErasureRetention
	Actor  string // the API key's NAME, or the tool's
}

// RequestErasure queues the erasure of a job and marks it ERASING. It
// returns the job's record: ERASING (queued now or before) or ERASED (done
// before; nothing queued). It returns ErrJobNotFound for a job that has
// neither a record (the bucket stream's leader confirms) nor a pending job
// message. A job accepted but not yet picked up by a worker has no record
// yet: its record is created from its pending message (see [PendingJob]),
// so that the worker that takes the message finds the job erasing and
// acks it without a Jumio call (which removes it from the work queue; the
// eraser waits for that).
func RequestErasure(ctx context.Context, js jetstream.JetStream, store *JobStore, subj messages.Subjects, req ErasureRequest) (*JobRecord, error) {
	rec, rev, err := store.Get(ctx, req.JobID)
	if errors.Is(err, ErrJobNotFound) {
		// A direct get may be answered by a replica that has not seen the
		// record yet (a job accepted a moment before, a replica that was
		// cut off): "unknown job" refuses an erasure, so the bucket
		// stream's leader confirms it (found by the chaosnet soak), and
		// a job without a record may still be pending.
		rec, rev, err = recordPending(ctx, js, store, subj, req.JobID)
	}
	if err != nil {
		return nil, err
	}
	if rec.Status == StatusErased {
		return rec, nil
	}
	requestedAt := store.now().UTC()
	if rec.Erasure != nil {
		requestedAt = rec.Erasure.RequestedAt
	}
	task := &messages.ErasureTask{JobID: req.JobID, Source: req.Source, Actor: req.Actor, RequestedAt: requestedAt}
	o, err := newOutMsg(subj.Erasure(req.JobID), task, messages.ErasureMsgID(req.JobID), req.JobID)
	if err != nil {
		return nil, err
	}
	if _, err := publish(ctx, js, o); err != nil {
		return nil, err
	}
	rec, _, err = store.updateErasure(ctx, rec, rev, func(r *JobRecord) error {
		if r.Erasing() {
			return errStop
		}
		r.Erasure = &Erasure{RequestedAt: requestedAt, Source: req.Source, Actor: req.Actor}
		r.SetStatus(requestedAt, StatusErasing, "erasure requested ("+req.Source+")")
		return nil
	})
	return rec, err
}

// recordPending creates the record of a job whose message is pending (no
// worker has created it yet), or returns the record the worker created
// meanwhile; ErrJobNotFound when there is neither.
func recordPending(ctx context.Context, js jetstream.JetStream, store *JobStore, subj messages.Subjects, jobID string) (*JobRecord, uint64, error) {
	pending, err := PendingJob(ctx, js, subj, jobID)
	if errors.Is(err, ErrJobNotFound) {
		// Taken by a worker meanwhile, or unknown: the leader says which.
		return store.getLatest(ctx, jobID)
	}
	if err != nil {
		return nil, 0, err
	}
	rec, rev, err := store.Create(ctx, pending)
	if errors.Is(err, jetstream.ErrKeyExists) {
		err = nil // the worker created it first: that one
	}
	return rec, rev, err
}

// eraser carries out erasure tasks (a consumer of the worker stage).
type eraser struct {
	*stage
	w *Worker

	mu      sync.Mutex
	streams map[string]jetstream.Stream
}

// stepErasureDataRemoved is the step WorkerConfig.AfterCheckpoint hears
// after each pass of an erasure removed the job's data, before the
// tombstone is written.
const stepErasureDataRemoved = "erasure:data_removed"

// eraseWait is how long an erasure waits for the job's saga to stop.
const eraseWait = time.Second

func (w *Worker) eraserRunner() *runner {
	e := &eraser{stage: w.stage, w: w, streams: map[string]jetstream.Stream{}}
	return w.runner(consumerSpec{stream: w.subj.StreamErasures(), consumer: ConsumerEraser,
		concurrency: max(1, w.cfg.Concurrency/4), ackWait: w.topo.WorkerAckWait, handle: e.handle,
		log: w.log.With(zap.String("consumer", ConsumerEraser))})
}

// erasureRun is one delivery of one erasure task.
type erasureRun struct {
	*eraser
	msg     jetstream.Msg
	task    *messages.ErasureTask
	log     *zap.Logger
	removed messages.ErasureRemoved
}

func (e *eraser) handle(ctx context.Context, m jetstream.Msg) outcome {
	task, err := messages.DecodeErasureTask(m.Data())
	if err != nil {
		return e.giveUp(ctx, m, giveUp{reason: messages.ReasonPoison, info: errorInfo(messages.ErrCodeInvalidJob, err), cause: err})
	}
	run := &erasureRun{eraser: e, msg: m, task: task, log: e.log}
	o, err := run.erase(ctx)
	if err == nil {
		return o
	}
	if ctx.Err() != nil {
		return handBack()
	}
	// An erasure is never dropped: whatever failed (NATS, Jumio), it waits
	// and tries again, without a budget.
	d := e.backoff.Delay(deliveries(m))
	if ra, ok := jumio.RetryAfter(err); ok && ra > d {
		d = ra
	}
	run.log.Warn("erasure not finished; will retry", zap.Error(err), zap.Duration("delay", d))
	return retry(d)
}

func (r *erasureRun) erase(ctx context.Context) (outcome, error) {
	store := r.store
	rec, rev, err := store.Get(ctx, r.task.JobID)
	if errors.Is(err, ErrJobNotFound) {
		// Dropping the task is final: the job would stay ERASING for good
		// if a replica that has not seen its record answered the direct
		// get. The bucket stream's leader confirms (found by the soak).
		rec, rev, err = store.getLatest(ctx, r.task.JobID)
	}
	if errors.Is(err, ErrJobNotFound) {
		r.log.Warn("erasure task for a job that has no record; nothing to erase", jobField(r.task.JobID))
		return ack(), nil
	}
	if err != nil {
		return outcome{}, err
	}
	if rec.Status == StatusErased {
		// Done before; a redelivery after a crash between the tombstone
		// and the erased event publishes it (deduplicated otherwise).
		if rec.Erasure != nil {
			if err := r.announce(ctx, rec); err != nil {
				return outcome{}, err
			}
		}
		return r.latePass(ctx, rec)
	}
	if rec.Status != StatusErasing {
		rec, rev, err = store.updateErasure(ctx, rec, rev, func(j *JobRecord) error {
			j.Erasure = &Erasure{RequestedAt: r.task.RequestedAt, Source: r.task.Source, Actor: r.task.Actor}
			j.SetStatus(r.now(), StatusErasing, "erasure requested ("+r.task.Source+")")
			return nil
		})
		if err != nil {
			return outcome{}, err
		}
	}
	r.log = r.log.With(recordFields(rec)...)
	// The saga must have stopped: its message leaves the jobs queue when the
	// worker that holds it sees the erasure (at its next check).
	if pending, err := r.jobMessagePending(ctx, rec); err != nil || pending {
		if err == nil {
			r.log.Debug("waiting for the job's saga to stop")
		}
		return retry(eraseWait), err
	}
	if rec.Erasure.Jumio == "" {
		result, err := r.deleteAtJumio(ctx, rec)
		if err != nil {
			return outcome{}, err
		}
		if rec, rev, err = store.updateErasure(ctx, rec, rev, func(j *JobRecord) error {
			j.Erasure.Jumio = result
			return nil
		}); err != nil {
			return outcome{}, err
		}
	}
	for {
		if !rec.AcceptedUnconfirmed.IsZero() {
			if rec, rev, err = r.confirmAccepted(ctx, rec, rev); err != nil {
				return outcome{}, err
			}
		}
		if err := r.removeData(ctx, rec); err != nil {
			return outcome{}, err
		}
		if h := r.w.cfg.AfterCheckpoint; h != nil {
			h(stepErasureDataRemoved)
		}
		completedAt := r.now().UTC()
		// The audit record before the commit, so that a job shown ERASED
		// has its audit record (a pass that goes round again publishes a
		// duplicate, dropped: the first pass's counts stand).
		if err := r.audit(ctx, rec, completedAt); err != nil {
			return outcome{}, err
		}
		seen := len(rec.Messages)
		erasure := *rec.Erasure
		erasure.CompletedAt = completedAt
		// The tombstone keeps the execution ID for the erased event (which
		// carries it too), never a reference, and the count of ambiguous
		// account creations: an account a crash may have left at Jumio,
		// which the erasure cannot know of (the soak reads it).
		tomb := &JobRecord{JobID: rec.JobID, Status: StatusErased, CreatedAt: rec.CreatedAt, UpdatedAt: completedAt,
			WorkflowExecutionID: rec.WorkflowExecutionID, AmbiguousCreates: rec.AmbiguousCreates, Erasure: &erasure}
		b, err := encodeRecord(tomb)
		if err != nil {
			return outcome{}, err
		}
		if _, err := store.kv.Update(ctx, jobKey(rec.JobID), b, rev); err == nil {
			r.m.erased(rec.Erasure.Source)
			r.log.Info("job erased", zap.String("source", rec.Erasure.Source), zap.String("jumio", rec.Erasure.Jumio),
				zap.Int("messages", r.removed.Messages), zap.Int("images", r.removed.Images))
			if rec.AmbiguousCreates > 0 {
				r.log.Warn("erased a job whose account creation was ambiguous: an account it may have left at Jumio (no record names it) was not deleted",
					zap.Int("ambiguous_creates", rec.AmbiguousCreates))
			}
			// The erased event after the commit: a pass that goes round
			// again (below) purges the job's webhook deliveries, and the
			// erased event's own must not be among them (found by the
			// soak). A crash before it is made good by the task's
			// redelivery, which finds the tombstone.
			if err := r.announce(ctx, tomb); err != nil {
				return outcome{}, err
			}
			// The task comes back for the late pass (latePass).
			return retry(lateWebhookPurgeAfter), nil
		} else if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return outcome{}, err
		}
		// Someone recorded another message meanwhile: remove it too.
		if rec, rev, err = store.Get(ctx, rec.JobID); err != nil {
			return outcome{}, err
		}
		r.log.Debug("the record changed during the erasure; removing what was added", zap.Int("messages_before", seen), zap.Int("messages_now", len(rec.Messages)))
	}
}

// latePass is an erasure task's last delivery, lateWebhookPurgeAfter after
// the erasure completed: it removes the webhook data that deliveries in
// flight during the erasure wrote afterwards (eraseLateWebhookData). A
// task that comes back sooner waits for the rest of the time.
func (r *erasureRun) latePass(ctx context.Context, tomb *JobRecord) (outcome, error) {
	if tomb.Erasure == nil || tomb.Erasure.CompletedAt.IsZero() {
		return ack(), nil
	}
	if wait := tomb.Erasure.CompletedAt.Add(lateWebhookPurgeAfter).Sub(r.now()); wait > 0 {
		return retry(wait), nil
	}
	n, err := eraseLateWebhookData(ctx, r.js, r.topo, tomb.JobID, r.topo.SecureErase)
	if err != nil {
		return outcome{}, err
	}
	if n > 0 {
		r.log.Info("removed webhook data that deliveries in flight during the erasure wrote afterwards", jobField(tomb.JobID), zap.Int("messages", n))
	}
	// An index entry a stage published before the erasure and that reached
	// the server after it (an asynchronous publish held up, by a reconnect
	// for one) is purged too: listings of decided jobs trust their entries
	// (JobQuery.Summaries). The tombstone no longer says which attributes
	// the job had: every status, region and decision of the job's ID.
	if err := purgeIndexSubject(ctx, r.js, r.subj.StreamIndex(), r.subj.IndexJob("*", "*", "*", tomb.JobID)); err != nil {
		return outcome{}, err
	}
	return ack(), nil
}

// confirmAccepted learns where the job's unconfirmed accepted event is
// (accepted.go) before the job's messages are removed: it searches the
// events stream from the recorded time (findAccepted) and records what it
// finds, which removeData then deletes; nothing found, the event was never
// stored. It never publishes the event: a copy stored now would reach
// subscribers and webhook receivers after the erasure was requested. The
// job's saga has stopped (jobMessagePending), so no publish of it is
// under way.
func (r *erasureRun) confirmAccepted(ctx context.Context, rec *JobRecord, rev uint64) (*JobRecord, uint64, error) {
	refs, err := r.findAccepted(ctx, rec.JobID, rec.AcceptedUnconfirmed)
	if err != nil {
		return rec, rev, fmt.Errorf("search for the accepted event: %w", err)
	}
	return r.store.updateErasure(ctx, rec, rev, func(j *JobRecord) error {
		j.addMessages(refs...)
		j.AcceptedUnconfirmed = time.Time{}
		return nil
	})
}

// jobMessagePending reports whether the job's message is still in the jobs
// queue (pending or in a worker's hands).
func (r *erasureRun) jobMessagePending(ctx context.Context, rec *JobRecord) (bool, error) {
	st, err := r.stream(ctx, r.subj.StreamJobs())
	if err != nil {
		return false, err
	}
	_, err = st.GetLastMsgForSubject(ctx, r.subj.JobSubmit(rec.JobID))
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return false, err
	}
	if rec.JobSeq == 0 {
		return false, nil
	}
	_, err = st.GetMsg(ctx, rec.JobSeq)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	}
	return false, err
}

// deleteAtJumio deletes the account the job created (or, on an existing
// account, the job's workflow execution) and says what happened. A record
// that does not say the job created its account (JobRecord.OwnAccount:
// records of the previous release, or rewritten by it during a rolling
// upgrade) gets only its execution deleted.
func (r *erasureRun) deleteAtJumio(ctx context.Context, rec *JobRecord) (string, error) {
	if rec.AccountID == "" {
		return messages.JumioNotCreated, nil
	}
	if rec.Erasure.Source == messages.ErasureRetention && r.w.cfg.RetentionKeepAtJumio {
		return messages.JumioKept, nil
	}
	client, err := r.w.cfg.Jumio.For(rec.Region)
	if err != nil {
		return "", err
	}
	if rec.ExistingAccount || !rec.OwnAccount {
		err = client.DeleteWorkflowExecution(ctx, rec.AccountID, rec.WorkflowExecutionID)
	} else {
		err = client.DeleteAccount(ctx, rec.AccountID)
	}
	switch {
	case err == nil:
		return messages.JumioDeleted, nil
	case errors.Is(err, jumio.ErrNotFound):
		return messages.JumioNotFound, nil
	}
	return "", fmt.Errorf("delete at Jumio: %w", err)
}

// removeData removes every copy of the job's data the record knows of.
// Each removal is idempotent.
func (r *erasureRun) removeData(ctx context.Context, rec *JobRecord) error {
	var errs []error
	for _, m := range rec.Messages {
		if err := r.eraseMsg(ctx, m.Stream, m.Seq); err != nil {
			errs = append(errs, err)
		}
	}
	if rec.PollSequence > 0 {
		errs = append(errs, r.eraseMsg(ctx, r.subj.StreamRetrieve(), rec.PollSequence))
	}
	if len(rec.Images) > 0 {
		images, err := r.js.ObjectStore(ctx, r.subj.BucketImages())
		if err != nil {
			return err
		}
		for _, name := range rec.Images {
			err := images.Delete(ctx, name)
			if err == nil {
				r.removed.Images++
			} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
				errs = append(errs, fmt.Errorf("delete image: %w", err))
				continue
			}
			errs = append(errs, purgeObjectMeta(ctx, r.js, r.subj.BucketImages(), name))
		}
	}
	if _, err := eraseIndex(ctx, r.js, r.subj, rec); err != nil {
		errs = append(errs, err)
	}
	n, err := EraseWebhookData(ctx, r.js, r.topo, rec.JobID)
	r.removed.Messages += n
	errs = append(errs, err)
	for _, exec := range append(slices.Clip(rec.ReplacedExecutions), rec.WorkflowExecutionID) {
		if exec != "" {
			errs = append(errs, r.store.eraseExecution(ctx, exec, rec.JobID))
		}
	}
	return errors.Join(errs...)
}

// purgeObjectMeta removes what an object store keeps of a deleted object:
// Delete purges the object's chunks but leaves its metadata, marked
// deleted, on a subject and with a body that name the object (for an
// image, the job ID). Found by the soak's marker scan.
func purgeObjectMeta(ctx context.Context, js jetstream.JetStream, bucket, name string) error {
	if _, err := purgeSubject(ctx, js, "OBJ_"+bucket, objectMetaSubject(bucket, name)); err != nil {
		return fmt.Errorf("purge image metadata: %w", err)
	}
	return nil
}

// objectMetaSubject is the subject of an object's metadata entry in its
// object store's stream (nats.go: $O.<bucket>.M.<base64url of the name>).
func objectMetaSubject(bucket, name string) string {
	return "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}

// eraseMsg removes one message, counting it when it was there.
func (r *erasureRun) eraseMsg(ctx context.Context, stream string, seq uint64) error {
	removed, err := deleteMsg(ctx, r.js.Conn(), stream, seq, r.topo.SecureErase)
	if removed {
		r.removed.Messages++
	}
	return err
}

func (e *eraser) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st, ok := e.streams[name]; ok {
		return st, nil
	}
	st, err := e.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	e.streams[name] = st
	return st, nil
}

// announce publishes the erased event of an erasure from its tombstone
// (deduplicated: a redelivered task publishes it once).
func (r *erasureRun) announce(ctx context.Context, tomb *JobRecord) error {
	ev := &messages.Event{Kind: messages.KindErased, JobID: tomb.JobID, WorkflowExecutionID: tomb.WorkflowExecutionID, At: tomb.Erasure.CompletedAt}
	_, err := r.publishMessage(ctx, r.subj.Event(messages.KindErased), ev, messages.EventMsgID(messages.KindErased, tomb.JobID), tomb.JobID)
	return err
}

// audit publishes the erasure's audit record (deduplicated: a pass that
// goes round again, or a redelivered task, publishes it once).
func (r *erasureRun) audit(ctx context.Context, rec *JobRecord, completedAt time.Time) error {
	requested := rec.Erasure.RequestedAt
	removed := r.removed
	removed.KVRevisions = 1
	audit := &messages.AuditRecord{Action: messages.AuditErasure, JobID: rec.JobID, Actor: rec.Erasure.Actor, At: completedAt,
		Source: rec.Erasure.Source, RequestedAt: &requested, CompletedAt: &completedAt, Jumio: rec.Erasure.Jumio, Removed: &removed}
	_, err := r.publishMessage(ctx, r.subj.Audit(messages.AuditErasure), audit, messages.AuditMsgID(messages.AuditErasure, rec.JobID, requested), rec.JobID)
	return err
}

// eraseMsg removes one message about an erased job from a stream (with
// Topology.SecureErase, its bytes are overwritten on disk too). A message
// already gone is fine.
func (s *stage) eraseMsg(ctx context.Context, stream string, seq uint64) error {
	_, err := deleteMsg(ctx, s.js.Conn(), stream, seq, s.topo.SecureErase)
	return err
}

// JetStream's answers to deleting a message that is not (or no longer) in
// the stream: "no message found" (below the first sequence of its block, or
// past the last) and "sequence N not found" (deleted already, in the middle
// of a block: a second pass of an erasure, or its task redelivered after a
// crash, deletes messages the first pass deleted). Both mean "gone".
const (
	errCodeNoMessageFound   = 10057
	errCodeSequenceNotFound = 10043
)

// deleteMsg deletes the message at seq from stream (secure: overwriting
// its bytes on disk, which costs the server about 10 ms a message) and
// reports whether it was there. It talks to the JetStream API directly: the
// client library reports a missing message only as text.
func deleteMsg(ctx context.Context, nc *nats.Conn, stream string, seq uint64, secure bool) (bool, error) {
	req, _ := json.Marshal(map[string]any{"seq": seq, "no_erase": !secure})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+stream, req)
	if err != nil {
		return false, fmt.Errorf("erase %s/%d: %w", stream, seq, err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return false, fmt.Errorf("erase %s/%d: %w", stream, seq, err)
	}
	switch {
	case resp.Success:
		return true, nil
	case resp.Error != nil && (resp.Error.ErrCode == errCodeNoMessageFound || resp.Error.ErrCode == errCodeSequenceNotFound):
		return false, nil
	case resp.Error != nil:
		return false, fmt.Errorf("erase %s/%d: JetStream error %d: %s", stream, seq, resp.Error.ErrCode, resp.Error.Description)
	}
	return false, fmt.Errorf("erase %s/%d: not deleted", stream, seq)
}
