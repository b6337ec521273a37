package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// attemptState is a pending delivery's failed attempts, in the attempts
// bucket under att.<jobId>.<webhookId>.<delivery job sequence>. The key
// names the delivery job's own sequence, so a replayed or resent delivery
// (a new message) starts a fresh count; it starts with the job ID so that
// erasing a job removes its counters by subject.
//
// A delivery job the fan-out queued has one from the moment it is stored
// (the fan-out's track); any other delivery has one whenever it waits in
// the consumer for a later attempt (a failed attempt, a hand-back for a
// busy endpoint, a retry after NATS trouble on the first delivery) or an
// attempt is under way. It holds the delivery job itself: if JetStream
// loses the message, the sweep (notifier_sweep.go) queues the job again
// from it.
type attemptState struct {
	Failed int       `json:"failed"`
	Next   time.Time `json:"next"` // when the next attempt is due (Now's clock)
	// Job is the delivery job (absent in entries written before the sweep).
	Job *webhookJob `json:"job,omitempty"`
}

func attemptKey(jobID, webhookID string, seq uint64) string {
	return "att." + jobID + "." + webhookID + "." + strconv.FormatUint(seq, 10)
}

// delivery is one delivery of one job message.
type delivery struct {
	n   *Notifier
	m   jetstream.Msg
	job *webhookJob
	seq uint64
	ep  *cachedEndpoint
	key string
	log *zap.Logger
	// What this delivery stored about its job: delivery-log entries (by
	// sequence) and a failed-attempt counter. Kept only while the job's
	// event is (forgetIfErased).
	logged []uint64
	saved  bool
	// Whether an attempts entry exists under key: entry is what the
	// delivery knows, known says whether it knows (it read the bucket, or
	// this is the first delivery of a job that was never queued again).
	entry, known bool
	// awaitingEvent: the delivery waits for an event its stream's leader
	// has not stored yet; what it recorded is not about an erased job.
	awaitingEvent bool
}

// deliver handles one delivery job: one signed attempt, then ack (2xx, 410,
// a dropped delivery), a retry at the schedule's next step, or the dead
// letter after the last.
func (n *Notifier) deliver(ctx context.Context, m jetstream.Msg) outcome {
	job, err := decodeWebhookJob(m.Data())
	if err == nil {
		err = n.checkEventRef(job)
	}
	if err != nil {
		return n.giveUp(ctx, m, giveUp{reason: messages.ReasonPoison, info: errorInfo(messages.ErrCodeInvalidJob, err), cause: err})
	}
	d := &delivery{n: n, m: m, job: job, log: n.log.With(zap.String("endpoint_id", job.EndpointID),
		zap.String("webhook_id", job.WebhookID), jobField(job.JobID))}
	if md, err := m.Metadata(); err == nil {
		d.seq = md.Sequence.Stream
	}
	d.key = attemptKey(job.JobID, job.WebhookID, d.seq)
	d.known = deliveries(m) == 1 && job.RedriveOf == 0
	// A first delivery of a job the fan-out tracks has the entry the
	// fan-out writes (a replayed dead letter keeps the mark, not the entry).
	d.entry = d.known && job.Tracked && m.Headers().Get(messages.HeaderReplayOf) == ""
	o := d.run(ctx)
	d.forgetIfErased(ctx)
	return o
}

// forgetIfErased removes what the delivery stored about its job when the
// job's event is no longer stored: the job was erased while the attempt
// was in flight, and the erasure's purge of the job's webhook data
// (EraseWebhookData) may have run before these writes. The erasure
// deletes the job's events before it purges their webhook data, so an
// event read from the stream leader after the writes tells: still there,
// and a later purge removes them; gone, and they are removed here. The
// erased event itself is never deleted: its deliveries keep their entries.
func (d *delivery) forgetIfErased(ctx context.Context) {
	if (len(d.logged) == 0 && !d.saved) || d.job.Type == webhooks.EventErased || d.awaitingEvent {
		return
	}
	_, err := d.event(ctx)
	if err == nil {
		return
	}
	if !errors.Is(err, jetstream.ErrMsgNotFound) {
		d.log.Warn("cannot tell whether the job was erased during the delivery; its delivery log entries stay until the job's erasure or the log's age limit", zap.Error(err))
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, seq := range d.logged {
		if _, err := deleteMsg(ctx, d.n.js.Conn(), d.n.subj.StreamWebhookLog(), seq, d.n.topo.SecureErase); err != nil {
			d.log.Error("cannot remove a delivery log entry of an erased job", zap.Uint64("seq", seq), zap.Error(err))
		}
	}
	if d.saved {
		d.clearAttempts(ctx)
	}
	d.log.Info("the job was erased during the delivery; what the delivery stored about it is removed", zap.Int("log_entries", len(d.logged)))
}

// checkEventRef refuses delivery jobs that point anywhere but an event of
// their type: whoever can publish a job must not be able to make the
// notifier send another stream's messages (jobs hold personal data).
func (n *Notifier) checkEventRef(j *webhookJob) error {
	want := n.subj.StreamEvents()
	if j.Type == webhooks.EventDecided {
		want = n.subj.StreamDecisions()
	}
	if j.Stream != want {
		return fmt.Errorf("%w: a %s delivery must reference %s, not %s", messages.ErrMalformed, j.Type, want, j.Stream)
	}
	return nil
}

func (d *delivery) run(ctx context.Context) outcome {
	n, job := d.n, d.job
	ep, err := n.cache.get(ctx, job.EndpointID)
	if errors.Is(err, ErrWebhookEndpointNotFound) {
		n.wm.delivery(job.EndpointID, outcomeEndpointDeleted)
		d.log.Info("webhook endpoint deleted; dropping the delivery")
		d.clearAttempts(ctx)
		return ack()
	}
	if err != nil {
		return d.infra("cannot read the webhook endpoint", err)
	}
	d.ep = ep
	if !ep.Enabled() {
		n.wm.delivery(ep.ID, outcomeDisabled)
		d.logEntry(ctx, attemptLog{outcome: AttemptDropped, errText: "the endpoint is disabled"})
		d.clearAttempts(ctx)
		return ack()
	}
	if ep.secretsErr != nil {
		return d.infra("cannot open the endpoint's secrets (see KYCPIPE_WEBHOOK_SECRET_KEY)", ep.secretsErr)
	}

	var st attemptState
	if !d.known {
		if st, err = d.loadAttempts(ctx); err != nil {
			return d.infra("cannot read the delivery's attempts", err)
		}
		if wait := st.Next.Sub(n.now()); wait > 0 {
			return retry(min(wait, n.cfg.MaxWait)) // a long wait, served in steps
		}
	}

	release, oldest, ok := n.slots.acquire(ctx, ep.ID)
	if !ok {
		n.wm.busyHandBack(ep.ID)
		d.remember(ctx, st)
		return retry(busyDelay(n.cfg.BusyDelay, n.cfg.Timeout, oldest))
	}
	defer release()

	data, err := d.event(ctx)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		ahead, aerr := d.eventAhead(ctx)
		if aerr != nil {
			return d.infra("cannot tell whether the event is stored yet", aerr)
		}
		if ahead {
			n.wm.eventNotStoredYet()
			d.log.Debug("the event is not stored on its stream's leader yet; will retry", zap.Uint64("event_seq", job.Sequence))
			d.remember(ctx, st)
			d.awaitingEvent = true
			return retry(eventAheadDelay)
		}
		// The leader has stored past the event's sequence: read it once
		// more, for it may have been stored between the two reads.
		data, err = d.event(ctx)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		n.wm.delivery(ep.ID, outcomeEventGone)
		// No log entry: the entry would name a job whose data the erasure
		// just removed (the usual reason an event is gone).
		d.log.Info("the event is no longer stored (erased or aged out); dropping the delivery")
		d.clearAttempts(ctx)
		return ack()
	}
	if err != nil {
		return d.infra("cannot read the event", err)
	}
	body, err := webhooks.EncodePayload(job.Type, job.Timestamp, data)
	if err != nil {
		return n.giveUp(ctx, d.m, giveUp{reason: messages.ReasonPoison, info: errorInfo(messages.ErrCodeInvalidJob, err), cause: err, log: d.log})
	}

	attempt := st.Failed + 1
	start := time.Now()
	stopTracking := d.trackAttempt(ctx, st)
	res := n.deliverer.Deliver(ctx, ep.URL, job.WebhookID, n.now(), body, activeSecrets(ep.secrets, n.now()))
	stopTracking()
	if ctx.Err() != nil {
		return handBack() // stopping: not an attempt
	}
	res.Latency = time.Since(start)
	n.wm.attempt(ep.ID, res.Latency)

	switch res.Class {
	case webhooks.ClassDelivered:
		n.wm.delivery(ep.ID, outcomeDelivered)
		n.wm.delivered(n.now().Sub(job.Timestamp))
		d.logEntry(ctx, attemptLog{outcome: AttemptDelivered, attempt: attempt, res: res})
		if d.entry {
			d.clearAttempts(ctx)
		}
		return ack()
	case webhooks.ClassGone:
		if err := n.endpoints.disable(ctx, ep.ID, DisabledGone); err != nil {
			return d.infra("the endpoint answered 410 but cannot be disabled", err)
		}
		n.wm.delivery(ep.ID, outcomeGone)
		d.log.Warn("the webhook endpoint answered 410 Gone: disabled it")
		d.logEntry(ctx, attemptLog{outcome: AttemptGone, attempt: attempt, res: res, errText: "410 Gone: the endpoint was disabled"})
		d.clearAttempts(ctx)
		return ack()
	}
	return d.failed(ctx, attempt, res)
}

// failed schedules the next attempt after a failed one, or dead-letters
// the delivery after the schedule's last.
func (d *delivery) failed(ctx context.Context, attempt int, res webhooks.Result) outcome {
	n := d.n
	outcomeLabel, entryOutcome := outcomeFailed, AttemptFailed
	if res.Class == webhooks.ClassRefused {
		outcomeLabel, entryOutcome = outcomeRefused, AttemptRefused
	}
	cause := res.Err
	if cause == nil {
		cause = fmt.Errorf("webhook delivery %s", res.Class)
	}
	wait, again := n.cfg.Schedule.Delay(attempt, res.RetryAfter)
	if !again {
		n.wm.delivery(d.ep.ID, outcomeDeadLettered)
		d.logEntry(ctx, attemptLog{outcome: entryOutcome, attempt: attempt, res: res, errText: cause.Error(), dead: true})
		o := n.giveUp(ctx, d.m, giveUp{reason: messages.ReasonRetryBudget,
			info: errorInfo(messages.ErrCodeRetryBudget, fmt.Errorf("after %d attempts: %w", attempt, cause)), cause: cause, log: d.log})
		if o.action == actTerminate {
			d.clearAttempts(ctx)
		}
		return o
	}
	n.wm.delivery(d.ep.ID, outcomeLabel)
	next := n.now().Add(wait)
	if err := d.saveAttemptsRetrying(ctx, attemptState{Failed: attempt, Next: next, Job: d.job}, nil); err != nil {
		// The attempt will be made again without being counted: at most
		// one extra attempt per NATS failure. Should JetStream lose the
		// waiting job meanwhile, nothing is left to queue it again from.
		d.log.Warn("cannot record the failed attempt", zap.Error(err))
	}
	d.logEntry(ctx, attemptLog{outcome: entryOutcome, attempt: attempt, res: res, errText: cause.Error(), next: &next})
	d.log.Info("webhook attempt failed; will retry", zap.Int("attempt", attempt), zap.Int("status", res.StatusCode),
		zap.Error(cause), zap.Duration("wait", wait))
	return retry(min(wait, n.cfg.MaxWait))
}

// infraSteps caps the backoff step of a retry after NATS trouble. A
// delivery's delivery count also counts its scheduled attempts, waits
// served in steps and busy hand-backs, so it is no count of failures: an
// uncapped step after a leader election kept deliveries that had failed a
// few attempts waiting for minutes (found by the short soak: 7 deliveries
// unacknowledged through its 2-minute drain after a NATS restart).
const infraSteps = 4

// infra retries after NATS trouble, using no attempt.
func (d *delivery) infra(what string, err error) outcome {
	delay := d.n.backoff.Delay(min(deliveries(d.m), infraSteps))
	d.log.Warn(what+"; will retry", zap.Error(err), zap.Duration("delay", delay))
	if d.known && !d.entry {
		ctx, cancel := context.WithTimeout(context.Background(), infraRememberTimeout)
		d.remember(ctx, attemptState{})
		cancel()
	}
	return retry(delay)
}

// infraRememberTimeout bounds the attempts entry a retry after NATS
// trouble writes (NATS may be what failed).
const infraRememberTimeout = 2 * time.Second

// remember writes the delivery's attempts entry, with st's counts, before
// the delivery waits in the consumer, when the delivery knows it has none:
// the entry is what the sweep queues the job again from if JetStream loses
// the waiting message. A failure is only logged (the delivery itself does
// not depend on it).
func (d *delivery) remember(ctx context.Context, st attemptState) { d.rememberUntil(ctx, st, nil) }

// rememberUntil is remember, whose tries after NATS trouble stop when
// quit is closed (a write under way finishes).
func (d *delivery) rememberUntil(ctx context.Context, st attemptState, quit <-chan struct{}) {
	if !d.known || d.entry {
		return
	}
	if st.Next.IsZero() {
		st.Next = d.n.now()
	}
	st.Job = d.job
	if err := d.saveAttemptsRetrying(ctx, st, quit); err != nil {
		d.log.Warn("cannot record the waiting delivery", zap.Error(err))
	}
}

// recordFor bounds how long a delivery keeps trying to write its attempts
// entry while NATS cannot store it (the bucket's stream has no leader for
// the seconds of an election). The entry is what the sweep queues a
// waiting delivery again from, and a leader change is also when JetStream
// has lost waiting delivery jobs: the soak of 2026-12-07 05:49 lost an
// erased event's delivery whose failed attempt, during a node loss, could
// not be recorded ("no response from stream"), and whose job then vanished
// from the stream with nothing to redrive it from. The delivery's message
// is kept meanwhile (the runner's InProgress heartbeats). Two minutes
// outlast the soak's longest fault (the meta and stream leader isolated
// for 45 s: the bucket took no write for about a minute, and a delivery
// that tried for 30 s gave up before it did).
const recordFor = 2 * time.Minute

// saveAttemptsRetrying writes the delivery's attempts entry, trying again
// after NATS trouble until it is written, ctx ends, quit is closed or
// recordFor has passed.
func (d *delivery) saveAttemptsRetrying(ctx context.Context, st attemptState, quit <-chan struct{}) error {
	deadline := time.Now().Add(recordFor)
	delay := 100 * time.Millisecond
	for {
		err := d.saveAttempts(ctx, st)
		if err == nil || ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			return err
		}
		d.log.Debug("cannot record the delivery's attempts yet; trying again", zap.Error(err), zap.Duration("delay", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-quit:
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// trackAttempt writes the delivery's attempts entry, due when the attempt
// will have timed out, while a first attempt (a delivery with no entry:
// one the fan-out does not track, such as a resend) runs: a notifier
// killed during the attempt, or a delivery job JetStream no longer has
// once the attempt is over, then leaves an entry from which the sweep
// queues the job again. JetStream's redelivery alone did not
// suffice: the soak of 2026-12-07 04:15 lost a delivery whose notifier was
// killed during an attempt to a hanging endpoint, and the one of 07:06 a
// delivery whose notifier was killed within the attempt's first second,
// its job gone from the stream afterwards with no cluster fault under way
// (the entry was then written only after a second of attempt). The write
// runs beside the attempt (it delays no request); a redelivery that finds
// the entry waits until it is due; a delivered attempt removes it. A write
// NATS refuses is tried again while the attempt runs. The returned
// function waits for the write under way, so that the delivery knows
// whether it has an entry.
func (d *delivery) trackAttempt(ctx context.Context, st attemptState) (stop func()) {
	if !d.known || d.entry {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	st.Next = d.n.now().Add(d.n.cfg.Timeout)
	go func() {
		defer close(done)
		d.rememberUntil(context.WithoutCancel(ctx), st, quit)
	}()
	return func() {
		close(quit)
		<-done
	}
}

// The stream leader answers "no message" for an event it has not stored
// yet: it applies a committed message after the replica that delivered it
// to the fan-out may have (under load, by some milliseconds), and the
// fan-out's delivery job can reach a notifier before the leader has
// caught up. A 2026-12-07 soak dropped a decided event as gone 7 ms after
// it was stored. The delivery waits for such an event, for at most
// eventAheadFor after the delivery job was stored (an event stream deleted
// and created again restarts its sequences: the event is then gone).
const (
	eventAheadDelay = 200 * time.Millisecond
	eventAheadFor   = time.Minute
)

// eventAhead reports whether the delivery's event, not found, lies beyond
// the last sequence its stream's leader has stored, and the delivery job
// is recent enough to wait for it.
func (d *delivery) eventAhead(ctx context.Context) (bool, error) {
	if md, err := d.m.Metadata(); err == nil && time.Since(md.Timestamp) > eventAheadFor {
		return false, nil
	}
	stored, err := d.n.storedPast(ctx, d.job)
	return !stored && err == nil, err
}

// storedPast reports whether the leader of job's event stream has stored
// the event's sequence (the event may have been deleted since).
func (n *Notifier) storedPast(ctx context.Context, job *webhookJob) (bool, error) {
	st, err := n.stream(ctx, job.Stream)
	if err != nil {
		return false, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return false, err
	}
	return job.Sequence <= info.State.LastSeq, nil
}

// event reads the event the delivery references, exactly as stored.
func (d *delivery) event(ctx context.Context) ([]byte, error) { return d.n.event(ctx, d.job) }

// event reads the event job references, exactly as stored.
func (n *Notifier) event(ctx context.Context, job *webhookJob) ([]byte, error) {
	st, err := n.stream(ctx, job.Stream)
	if err != nil {
		return nil, err
	}
	raw, err := st.GetMsg(ctx, job.Sequence)
	if err != nil {
		return nil, err
	}
	if !n.eventSubjectMatches(job.Type, raw.Subject) {
		// The sequence now holds another message (cannot happen in a
		// stream that is not purged and recreated): treat it as gone.
		return nil, jetstream.ErrMsgNotFound
	}
	return raw.Data, nil
}

// eventSubjectMatches reports whether subject is where events of type t
// are published.
func (n *Notifier) eventSubjectMatches(t webhooks.EventType, subject string) bool {
	if t == webhooks.EventDecided {
		return strings.HasPrefix(subject, n.subj.Prefix()+".decisions.")
	}
	kind := strings.TrimPrefix(string(t), "verification.")
	return subject == n.subj.Event(kind)
}

func (d *delivery) loadAttempts(ctx context.Context) (attemptState, error) {
	st, found, err := d.n.readAttempts(ctx, d.key)
	if err == nil && !found && d.job.RedriveOf != 0 {
		// Queued again by the sweep, which moves the entry after the new
		// job is stored: the delivery may come first. The entry read is
		// the old job's: this one has none yet.
		st, _, err = d.n.readAttempts(ctx, attemptKey(d.job.JobID, d.job.WebhookID, d.job.RedriveOf))
	}
	if err != nil {
		return attemptState{}, err
	}
	d.known, d.entry = true, found
	return st, nil
}

// readAttempts reads the attempts entry under key: found is false when
// there is none; an unreadable entry counts afresh rather than block.
func (n *Notifier) readAttempts(ctx context.Context, key string) (st attemptState, found bool, err error) {
	e, err := n.attempts.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	if json.Unmarshal(e.Value(), &st) != nil {
		return attemptState{}, true, nil
	}
	return st, true, nil
}

func (d *delivery) saveAttempts(ctx context.Context, st attemptState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err = d.n.attempts.Put(ctx, d.key, b); err == nil {
		d.saved, d.entry, d.known = true, true, true
	}
	return err
}

// clearAttempts removes the delivery's counter without leaving a delete
// marker behind (the bucket's TTL would remove it anyway).
func (d *delivery) clearAttempts(ctx context.Context) {
	if err := d.n.purgeAttempts(ctx, d.key); err != nil {
		d.log.Debug("cannot remove the delivery's attempt counter; it expires by itself", zap.Error(err))
	}
}

// purgeAttempts removes the attempts entry under key, leaving no delete
// marker.
func (n *Notifier) purgeAttempts(ctx context.Context, key string) error {
	st, err := n.stream(ctx, "KV_"+n.subj.BucketWebhookAttempts())
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject("$KV."+n.subj.BucketWebhookAttempts()+"."+key))
}

// attemptLog is what one delivery-log entry says about an attempt.
type attemptLog struct {
	outcome string          // AttemptDelivered, AttemptDropped, …
	attempt int             // 1-based; 0 when nothing was sent
	res     webhooks.Result // the receiver's answer
	errText string          // why it failed, sanitized before it is stored
	next    *time.Time      // when the next attempt is due (nil: none)
	dead    bool            // the delivery was dead-lettered
}

// logEntry appends to the endpoint's delivery log; a failure is only
// logged (the log is for people, the delivery does not depend on it).
func (d *delivery) logEntry(ctx context.Context, a attemptLog) {
	outcome, attempt, res, errText, next, dead := a.outcome, a.attempt, a.res, a.errText, a.next, a.dead
	e := &webhookLogEntry{WebhookAttempt: WebhookAttempt{
		WebhookID: d.job.WebhookID, EndpointID: d.job.EndpointID, JobID: d.job.JobID, EventType: string(d.job.Type),
		EventID: d.job.EventID, Attempt: attempt, At: d.n.now().UTC(), Outcome: outcome, StatusCode: res.StatusCode,
		DurationMs: res.Latency.Milliseconds(), Error: sanitizeError(errText), NextAttemptAt: next, DeadLettered: dead,
	}, Stream: d.job.Stream, Sequence: d.job.Sequence, Timestamp: d.job.Timestamp}
	if next != nil {
		t := next.UTC()
		e.NextAttemptAt = &t
	}
	ack, err := publishLog(ctx, d.n.js, d.n.subj, e)
	if err != nil {
		d.log.Warn("cannot append to the webhook delivery log", zap.Error(err))
		return
	}
	d.logged = append(d.logged, ack.Sequence)
}
