package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// EraseWebhookData removes what the webhooks hold about a job (DESIGN
// 3.7): its pending deliveries (kyc.webhooks.deliver.*.<jobId>), its
// delivery log (kyc.webhooks.log.*.<jobId>) and its attempt counters
// (att.<jobId>.…), purged by subject so nothing, not even a delete
// marker, remains. It returns how many messages it removed. It is
// idempotent.
//
// Call it after deleting the job's events and before publishing its erased
// event: the erased event's own deliveries are made afterwards and must
// not be purged. A delivery of an older event of the job that is fanned
// out after this call finds its event erased and is dropped; an attempt in
// flight during this call removes the log entries and the counter it
// writes afterwards (the notifier reads its event again after writing).
func EraseWebhookData(ctx context.Context, js jetstream.JetStream, t Topology, jobID string) (removed int, err error) {
	if !messages.ValidJobID(jobID) {
		return 0, fmt.Errorf("pipeline: erase webhook data: invalid job ID")
	}
	for _, p := range webhookDataOf(t.WithDefaults().Subjects, jobID) {
		n, err := purgeSubject(ctx, js, p.stream, p.subject)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("pipeline: erase webhook data of %s from %s: %w", jobID, p.stream, err)
		}
	}
	return removed, nil
}

// webhookData names where the webhooks hold something about a job: a
// stream and the subject (with wildcards) of the job's messages in it.
type webhookData struct{ stream, subject string }

// webhookDataOf lists a job's webhook data: its pending deliveries, its
// delivery log and its attempt counters (a key-value bucket's stream).
func webhookDataOf(s messages.Subjects, jobID string) [3]webhookData {
	return [3]webhookData{
		{s.StreamWebhooks(), s.WebhookDeliveriesOfJob(jobID)},
		{s.StreamWebhookLog(), s.WebhookLogsOfJob(jobID)},
		{"KV_" + s.BucketWebhookAttempts(), "$KV." + s.BucketWebhookAttempts() + ".att." + jobID + ".>"},
	}
}

// purgeSubject removes every message on subject (wildcards allowed) from
// stream and returns how many there were.
func purgeSubject(ctx context.Context, js jetstream.JetStream, stream, subject string) (int, error) {
	st, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil // webhooks never provisioned: nothing to erase
	}
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	if n == 0 {
		return 0, nil
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return 0, err
	}
	return n, nil
}

// lateWebhookPurgeAfter is how long after an erasure its task comes back
// to remove what deliveries in flight during the erasure wrote afterwards
// (eraseLateWebhookData): an attempt lasts at most the notifier's timeout
// (15 s by default), and its log entry and attempt counter are written
// within confirm's 15 s each after it.
const lateWebhookPurgeAfter = 2 * time.Minute

// eraseLateWebhookData removes, from an erased job's webhook data, every
// pending delivery, delivery log entry and attempt counter that is not
// about the job's erased event, and returns how many it removed. A
// delivery of an older event in flight during the erasure removes what it
// writes afterwards itself when it reads its event as gone
// (forgetIfErased); this pass is for the delivery that could not (killed)
// or read a stream leader just elected that had not applied the event's
// deletion yet (found by the soak of 2026-12-07 04:15: a failed attempt's
// log entry of an erased job's accepted event, written two seconds after
// the erasure during a node loss). It reads the job's messages by subject,
// one by one, from each stream's leader: a job has a handful.
func eraseLateWebhookData(ctx context.Context, js jetstream.JetStream, t Topology, jobID string, secure bool) (removed int, err error) {
	if !messages.ValidJobID(jobID) {
		return 0, fmt.Errorf("pipeline: erase webhook data: invalid job ID")
	}
	erased := string(webhooks.EventErased)
	where := webhookDataOf(t.WithDefaults().Subjects, jobID)
	for i, keep := range [3]func([]byte) bool{
		func(b []byte) bool { // a delivery job
			var j webhookJob
			return json.Unmarshal(b, &j) == nil && string(j.Type) == erased
		},
		func(b []byte) bool { // a delivery-log entry
			var e webhookLogEntry
			return json.Unmarshal(b, &e) == nil && e.EventType == erased
		},
		func(b []byte) bool { // an attempts entry
			var st attemptState
			return json.Unmarshal(b, &st) == nil && st.Job != nil && string(st.Job.Type) == erased
		},
	} {
		// The attempts bucket (the third) refuses deletes: its keys are purged.
		p := subjectSweep{stream: where[i].stream, subject: where[i].subject, keep: keep, perKey: i == 2, secure: secure}
		n, err := p.run(ctx, js)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("pipeline: erase late webhook data of %s from %s: %w", jobID, p.stream, err)
		}
	}
	return removed, nil
}

// subjectSweep deletes every message on subject (wildcards allowed) in
// stream that keep refuses, reading them in order from the stream's
// leader. Empty bodies (a key-value delete marker) are deleted too. perKey
// purges the message's own subject instead (a key-value bucket, whose
// stream refuses deletes: each key is a subject, and a purge leaves no
// marker).
type subjectSweep struct {
	stream, subject string
	keep            func(data []byte) bool
	perKey, secure  bool
}

// run sweeps and returns how many messages it removed.
func (p subjectSweep) run(ctx context.Context, js jetstream.JetStream) (int, error) {
	stream, subject, keep, secure, perKey := p.stream, p.subject, p.keep, p.secure, p.perKey
	st, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	err = eachBySubject(ctx, st, subject, func(m *jetstream.RawStreamMsg) (bool, error) {
		if len(m.Data) > 0 && keep(m.Data) {
			return true, nil
		}
		if perKey {
			if err := st.Purge(ctx, jetstream.WithPurgeSubject(m.Subject)); err != nil {
				return false, err
			}
			n++
			return true, nil
		}
		removed, err := deleteMsg(ctx, js.Conn(), stream, m.Sequence, secure)
		if removed {
			n++
		}
		return err == nil, err
	})
	return n, err
}

// eachBySubject calls f with every message on subject (wildcards allowed)
// in st, in order, read one by one from the stream's leader, until f
// returns false or an error.
func eachBySubject(ctx context.Context, st jetstream.Stream, subject string, f func(*jetstream.RawStreamMsg) (bool, error)) error {
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		seq = m.Sequence + 1
		if more, err := f(m); err != nil || !more {
			return err
		}
	}
}
