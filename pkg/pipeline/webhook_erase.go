package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
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
	s := t.WithDefaults().Subjects
	for _, p := range []struct{ stream, subject string }{
		{s.StreamWebhooks(), s.WebhookDeliveriesOfJob(jobID)},
		{s.StreamWebhookLog(), s.WebhookLogsOfJob(jobID)},
		{"KV_" + s.BucketWebhookAttempts(), "$KV." + s.BucketWebhookAttempts() + ".att." + jobID + ".>"},
	} {
		n, err := purgeSubject(ctx, js, p.stream, p.subject)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("pipeline: erase webhook data of %s from %s: %w", jobID, p.stream, err)
		}
	}
	return removed, nil
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
