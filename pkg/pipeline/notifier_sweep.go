package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// The stranded-delivery sweep.
//
// A delivery that waits for its next attempt is a message of KYC_WEBHOOKS
// left pending in the notifier-deliveries consumer with a NAK delay. The
// 60-minute chaos soak lost 64 of 82,669 such waits on an R3 cluster under
// node losses, partitions and notifier SIGKILLs: JetStream stopped tracking
// the messages (the consumer's acknowledgement floor moved past them with
// nothing acknowledged) and then removed most of them from the work-queue
// stream as acknowledged (nats-server's interest-state check deletes what
// lies below the floor; nats-io/nats-server#5526, #6905 and #7680 report the
// same states). Nothing in kycpipe acknowledged them, and nothing would
// have delivered them again.
//
// Every notifier therefore sweeps, every SweepEvery, for the two states
// such a delivery can be found in, without reading the whole stream:
//
//   - untracked: the job is still stored, at or below the consumer's
//     acknowledgement floor. In a work-queue stream nothing stays there, so
//     the read from the stream's first sequence up to the floor is one
//     request when all is well. A job seen there by two sweeps in a row is
//     queued again and the stranded message deleted.
//   - vanished: the job is gone, but its attempts entry (written by the
//     fan-out once the job is stored, or by a first attempt of a job
//     queued otherwise, and before every wait; with a copy of the job) is
//     overdue by StrandedAfter and the delivery log holds no final outcome
//     for it. The job is queued again from the entry. (An entry the
//     fan-out wrote after its delivery had already succeeded is found
//     settled and removed.)
//
// A job queued again is a new message with the same webhook-id (receivers
// deduplicate on it; a delivery made twice is the at-least-once contract),
// RedriveOf naming the sequence it replaces, and the attempts entry moved to
// the new sequence, so the retry schedule goes on where it stopped. Its
// Nats-Msg-Id (redrive:<webhook-id>:<old sequence>) lets any number of
// notifiers sweep at once. An erased job's delivery is never queued again:
// the sweep reads the event first (the erasure removes the job's events
// before its webhook data), and removes what it queued if the event is gone
// afterwards.

// Redrive reasons (the reason label of kycpipe_webhook_redriven_total).
const (
	redriveUntracked = "untracked"
	redriveVanished  = "vanished"
)

// runSweeps sweeps every SweepEvery until ctx ends.
func (n *Notifier) runSweeps(ctx context.Context) {
	t := time.NewTicker(n.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := n.sweep(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("cannot sweep for stranded webhook deliveries; will try again", zap.Error(err),
					zap.Duration("every", n.cfg.SweepEvery))
			}
		}
	}
}

// sweep looks once for stranded deliveries and queues them again; it
// returns how many it queued.
func (n *Notifier) sweep(ctx context.Context) (int, error) {
	cons, err := n.js.Consumer(ctx, n.subj.StreamWebhooks(), ConsumerNotifierDelivery)
	if err != nil {
		return 0, err
	}
	floor := cons.CachedInfo().AckFloor.Stream
	st, err := n.stream(ctx, n.subj.StreamWebhooks())
	if err != nil {
		return 0, err
	}
	untracked, err := n.sweepUntracked(ctx, st, floor)
	if err != nil {
		return untracked, err
	}
	vanished, err := n.sweepVanished(ctx, st)
	return untracked + vanished, err
}

// sweepUntracked queues again the jobs stored at or below the consumer's
// acknowledgement floor that the previous sweep saw there too.
func (n *Notifier) sweepUntracked(ctx context.Context, st jetstream.Stream, floor uint64) (int, error) {
	seen := map[uint64]bool{}
	queued := 0
	var err error
	for seq := uint64(1); seq <= floor; {
		var raw *jetstream.RawStreamMsg
		raw, err = st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(n.subj.WebhookDeliveries()))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			err = nil
			break
		}
		if err != nil || raw.Sequence > floor {
			break
		}
		seq = raw.Sequence + 1
		seen[raw.Sequence] = true
		if !n.stranded[raw.Sequence] {
			continue // seen once: an acknowledgement may be on its way
		}
		job, derr := decodeWebhookJob(raw.Data)
		if derr != nil {
			n.log.Warn("a stranded webhook delivery job cannot be read; leaving it", zap.Uint64("seq", raw.Sequence), zap.Error(derr))
			continue
		}
		if n.redrive(ctx, job, raw.Sequence, redriveUntracked) {
			queued++
		}
	}
	n.stranded = seen
	return queued, err
}

// sweepVanished queues again, from their attempts entries, the overdue
// deliveries whose job is no longer stored and that have no final outcome.
func (n *Notifier) sweepVanished(ctx context.Context, st jetstream.Stream) (int, error) {
	w, err := n.attempts.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	type overdue struct {
		seq uint64
		st  attemptState
	}
	var due []overdue
	idle := time.NewTimer(sweepWatchIdle)
	defer idle.Stop()
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-idle.C:
			// nats.go signals the end of the initial values once it has
			// received as many as were pending when the watch began: keys
			// purged meanwhile (delivered deliveries) leave it waiting for
			// the next write. Go on with those read; the next sweep sees
			// the others.
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if e == nil {
			break // the initial values are all in
		}
		idle.Reset(sweepWatchIdle)
		seq, ok := attemptKeySeq(e.Key())
		if !ok {
			continue
		}
		var a attemptState
		if json.Unmarshal(e.Value(), &a) != nil || a.Job == nil || n.now().Before(a.Next.Add(n.cfg.StrandedAfter)) {
			continue
		}
		due = append(due, overdue{seq, a})
	}
	queued := 0
	for _, o := range due {
		_, err := st.GetMsg(ctx, o.seq)
		if err == nil {
			continue // stored: waiting, or untracked (sweepUntracked)
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return queued, err
		}
		settled, err := n.settled(ctx, o.st.Job)
		if err != nil {
			return queued, err
		}
		if settled {
			n.dropAttempts(ctx, o.st.Job, o.seq) // its outcome's clean-up did not finish
			continue
		}
		if n.redrive(ctx, o.st.Job, o.seq, redriveVanished) {
			queued++
		}
	}
	return queued, nil
}

// sweepWatchIdle is how long the sweep waits for the next attempts entry
// of its watch before it takes the initial values as all read.
const sweepWatchIdle = 2 * time.Second

// attemptKeySeq returns the delivery job sequence an attempts key names.
func attemptKeySeq(key string) (uint64, bool) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 || !strings.HasPrefix(key, "att.") {
		return 0, false
	}
	seq, err := strconv.ParseUint(key[i+1:], 10, 64)
	return seq, err == nil && seq > 0
}

// settled reports whether the delivery log holds a final outcome of job's
// delivery: delivered, 410, dropped or dead-lettered.
func (n *Notifier) settled(ctx context.Context, job *webhookJob) (bool, error) {
	st, err := n.stream(ctx, n.subj.StreamWebhookLog())
	if err != nil {
		return false, err
	}
	settled := false
	err = eachBySubject(ctx, st, n.subj.WebhookLog(job.EndpointID, job.JobID), func(raw *jetstream.RawStreamMsg) (bool, error) {
		var e webhookLogEntry
		if json.Unmarshal(raw.Data, &e) != nil || e.WebhookID != job.WebhookID {
			return true, nil
		}
		settled = e.DeadLettered || e.Outcome == AttemptDelivered || e.Outcome == AttemptGone || e.Outcome == AttemptDropped
		return !settled, nil
	})
	return settled, err
}

// redrive queues job (stored at seq, or lost from there) again as a new
// message, moves its attempts entry to it and deletes the old message. It
// reports whether it queued it.
func (n *Notifier) redrive(ctx context.Context, job *webhookJob, seq uint64, reason string) bool {
	log := n.log.With(zap.String("endpoint_id", job.EndpointID), zap.String("webhook_id", job.WebhookID), jobField(job.JobID),
		zap.Uint64("seq", seq), zap.String("reason", reason))
	if _, err := n.event(ctx, job); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			// Erased or aged out: the delivery would be dropped.
			n.dropStranded(ctx, job, seq)
			log.Info("a stranded webhook delivery's event is no longer stored; removed the delivery")
			return false
		}
		log.Warn("cannot read a stranded webhook delivery's event; will try again", zap.Error(err))
		return false
	}
	a, _, err := n.readAttempts(ctx, attemptKey(job.JobID, job.WebhookID, seq))
	if err != nil {
		log.Warn("cannot read a stranded webhook delivery's attempts; will try again", zap.Error(err))
		return false
	}
	again := *job
	again.RedriveOf = seq
	o, err := again.outMsg(n.subj, "redrive:"+job.WebhookID+":"+strconv.FormatUint(seq, 10))
	if err != nil {
		return false
	}
	ack, err := publish(ctx, n.js, o)
	if err != nil {
		log.Warn("cannot queue a stranded webhook delivery again; will try again", zap.Error(err))
		return false
	}
	a.Job = &again
	if b, err := json.Marshal(a); err == nil {
		// Create, not Put: the new job's delivery may have written its own.
		if _, err := n.attempts.Create(ctx, attemptKey(job.JobID, job.WebhookID, ack.Sequence), b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			log.Warn("cannot move a stranded webhook delivery's attempts; its schedule starts again", zap.Error(err))
		}
	}
	n.dropStranded(ctx, job, seq)
	if _, err := n.event(ctx, job); errors.Is(err, jetstream.ErrMsgNotFound) {
		// The job was erased meanwhile and its webhook data may have been
		// purged before the new message was stored.
		n.dropStranded(ctx, &again, ack.Sequence)
	}
	n.wm.redriven(job.EndpointID, reason)
	log.Warn("JetStream no longer delivered a waiting webhook delivery; queued it again", zap.Uint64("new_seq", ack.Sequence),
		zap.Int("failed_attempts", a.Failed))
	return true
}

// dropStranded deletes the delivery job at seq (if still stored) and its
// attempts entry.
func (n *Notifier) dropStranded(ctx context.Context, job *webhookJob, seq uint64) {
	if _, err := deleteMsg(ctx, n.js.Conn(), n.subj.StreamWebhooks(), seq, n.topo.SecureErase); err != nil {
		n.log.Warn("cannot delete a stranded webhook delivery job", zap.Uint64("seq", seq), zap.Error(err))
	}
	n.dropAttempts(ctx, job, seq)
}

// dropAttempts removes the attempts entry of job's delivery stored at seq.
func (n *Notifier) dropAttempts(ctx context.Context, job *webhookJob, seq uint64) {
	if err := n.purgeAttempts(ctx, attemptKey(job.JobID, job.WebhookID, seq)); err != nil {
		n.log.Debug("cannot remove a stranded delivery's attempt counter; it expires by itself", zap.Error(err))
	}
}
