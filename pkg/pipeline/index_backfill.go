package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// BackfillResult counts what an index backfill did.
type BackfillResult struct {
	Records    int `json:"records"`    // job records read
	Indexed    int `json:"indexed"`    // records given their entry now
	Present    int `json:"present"`    // records whose entry was there already
	Skipped    int `json:"skipped"`    // records with nothing to index (erasing, erased, gone meanwhile)
	References int `json:"references"` // reference entries added
}

// Backfill gives every job record that has no index entry under its
// current attributes that entry, and its reference entries: the index a
// release before it wrote none of (9aa777e; docs/OPERATIONS.md, upgrading).
// Without them the listings (kycctl jobs, the console) and the retention
// sweep miss those jobs. It reads every record once (the bucket's keys,
// then one read per record: a one-off cost) and is safe to run beside the
// stages and to repeat: an entry is published only on a subject that holds
// none (the publish expects the subject's last sequence to be 0), so a run
// that races a stage's own write adds no second entry. progress, when not
// nil, is called every 1,000 records.
func (x *JobIndex) Backfill(ctx context.Context, progress func(BackfillResult)) (BackfillResult, error) {
	var res BackfillResult
	keys, err := x.store.kv.ListKeys(ctx, jetstream.MetaOnly())
	if err != nil {
		return res, fmt.Errorf("pipeline: backfill: list job records: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	for key := range keys.Keys() {
		jobID, ok := strings.CutPrefix(key, "job.")
		if !ok {
			continue // the execution index, marks, bindings, leases
		}
		res.Records++
		if err := x.backfillOne(ctx, jobID, &res); err != nil {
			return res, err
		}
		if progress != nil && res.Records%1000 == 0 {
			progress(res)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

func (x *JobIndex) backfillOne(ctx context.Context, jobID string, res *BackfillResult) error {
	rec, _, err := x.store.Get(ctx, jobID)
	if errors.Is(err, ErrJobNotFound) {
		res.Skipped++ // erased or expired since the listing
		return nil
	}
	if err != nil {
		return fmt.Errorf("pipeline: backfill: read job %s: %w", jobID, err)
	}
	if rec.Status == "" || rec.Erasing() {
		res.Skipped++ // the eraser owns an erasing job's entries
		return nil
	}
	b, err := json.Marshal(indexEntryOf(rec))
	if err != nil {
		return err
	}
	added, err := x.publishIfNone(ctx, indexSubject(x.subj, rec), b)
	if err != nil {
		return fmt.Errorf("pipeline: backfill: index job %s: %w", jobID, err)
	}
	if !added {
		res.Present++
		return nil
	}
	res.Indexed++
	for _, ref := range []struct{ kind, value string }{{"c", rec.CustomerInternalReference}, {"u", rec.UserReference}} {
		if ref.value == "" {
			continue
		}
		added, err := x.publishIfNone(ctx, x.subj.IndexRef(ref.kind, messages.RefHash(ref.value), rec.JobID), nil)
		if err != nil {
			return fmt.Errorf("pipeline: backfill: index job %s: %w", jobID, err)
		}
		if added {
			res.References++
		}
	}
	return nil
}

// publishIfNone stores data on subject unless the subject holds a message
// already, and reports whether it stored it.
func (x *JobIndex) publishIfNone(ctx context.Context, subject string, data []byte) (bool, error) {
	m := nats.NewMsg(subject)
	m.Data = data
	_, err := x.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0))
	// A subject that holds a message: 10071, or 10164 on a replicated
	// stream (nats.go's jetstream/errors.go).
	if subjectHoldsMessage(err) {
		return false, nil
	}
	return err == nil, err
}
