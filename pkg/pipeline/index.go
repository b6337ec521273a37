package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The job index is the stream KYC_INDEX, one message per subject:
//
//	kyc.index.jobs.<status>.<region>.<decision>.<jobId>   IndexEntry: where a job stands
//	kyc.index.refs.c.<RefHash(customerInternalReference)>.<jobId>
//	kyc.index.refs.u.<RefHash(userReference)>.<jobId>
//
// A job's entry lives under its current attributes: when they change, the
// new entry is published and the old subject purged. Listing jobs by
// status, region or decision, and finding them by reference, are then reads
// of the matching subjects (JetStream's subject index), never a scan of the
// job records. The entries hold IDs, attributes and times, no personal data
// (references appear only as hashes). Writes are asynchronous and
// best-effort: the record is the truth, and readers check each entry against
// it (a stale entry is skipped and repaired), so a lost index write delays a
// listing's accuracy, never a job.

// IndexEntry is a job's entry in the index.
type IndexEntry struct {
	JobID               string    `json:"jobId"`
	Status              string    `json:"status"`
	Region              string    `json:"region,omitempty"`
	Decision            string    `json:"decision,omitempty"`
	Channel             string    `json:"channel,omitempty"`
	WorkflowExecutionID string    `json:"workflowExecutionId,omitempty"`
	CreatedAt           time.Time `json:"createdAt"`
	UpdatedAt           time.Time `json:"updatedAt"`
}

func indexEntryOf(r *JobRecord) IndexEntry {
	e := IndexEntry{JobID: r.JobID, Status: r.Status, Region: r.Region, Channel: r.Channel,
		WorkflowExecutionID: r.WorkflowExecutionID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.Decision != nil {
		e.Decision = r.Decision.Type
	}
	return e
}

func indexSubject(subj messages.Subjects, r *JobRecord) string {
	decision := ""
	if r.Decision != nil {
		decision = r.Decision.Type
	}
	return subj.IndexJob(r.Status, r.Region, decision, r.JobID)
}

// jobIndexer keeps the index in step with the job records.
type jobIndexer struct {
	js   jetstream.JetStream
	subj messages.Subjects
	log  *zap.Logger

	mu     sync.Mutex
	stream jetstream.Stream // the index stream, once looked up
}

// withIndex makes the store maintain the job index.
func (s *JobStore) withIndex(js jetstream.JetStream, subj messages.Subjects, log *zap.Logger) *JobStore {
	s.index = &jobIndexer{js: js, subj: subj, log: log}
	return s
}

// update publishes next's entry and removes prev's when the job's
// attributes changed. It does not wait: index writes are best-effort.
func (x *jobIndexer) update(prev, next *JobRecord) {
	if x == nil || next == nil || next.Status == "" {
		return
	}
	newSubj := indexSubject(x.subj, next)
	oldSubj := ""
	if prev != nil && prev.Status != "" {
		oldSubj = indexSubject(x.subj, prev)
	}
	if next.Status == StatusErased {
		// The eraser removes the entries itself, and waits for it.
		return
	}
	if newSubj != oldSubj {
		b, _ := json.Marshal(indexEntryOf(next))
		if _, err := x.js.PublishMsgAsync(&nats.Msg{Subject: newSubj, Data: b}); err != nil {
			x.log.Debug("index entry not published", jobField(next.JobID), zap.Error(err))
		}
	}
	if prev == nil {
		for _, ref := range []struct{ kind, value string }{{"c", next.CustomerInternalReference}, {"u", next.UserReference}} {
			if ref.value != "" {
				if _, err := x.js.PublishMsgAsync(&nats.Msg{Subject: x.subj.IndexRef(ref.kind, messages.RefHash(ref.value), next.JobID)}); err != nil {
					x.log.Debug("reference index entry not published", jobField(next.JobID), zap.Error(err))
				}
			}
		}
	}
	if oldSubj != "" && oldSubj != newSubj {
		go x.purge(oldSubj)
	}
}

// purge removes the entries under one exact subject: one purge request
// (the stream is looked up once per process).
func (x *jobIndexer) purge(subject string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := x.indexStream(ctx)
	if err == nil {
		err = st.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
	if err != nil {
		x.log.Debug("stale index entry not purged; readers skip it", zap.Error(err))
	}
}

func (x *jobIndexer) indexStream(ctx context.Context) (jetstream.Stream, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stream != nil {
		return x.stream, nil
	}
	st, err := x.js.Stream(ctx, x.subj.StreamIndex())
	if err != nil {
		return nil, err
	}
	x.stream = st
	return st, nil
}

// eraseIndex removes a job's entries (its current one and its references')
// and waits until they are gone.
func eraseIndex(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, r *JobRecord) (int, error) {
	subjects := []string{indexSubject(subj, r)}
	for _, ref := range []struct{ kind, value string }{{"c", r.CustomerInternalReference}, {"u", r.UserReference}} {
		if ref.value != "" {
			subjects = append(subjects, subj.IndexRef(ref.kind, messages.RefHash(ref.value), r.JobID))
		}
	}
	var errs []error
	for _, s := range subjects {
		_, err := purgeSubject(ctx, js, subj.StreamIndex(), s)
		errs = append(errs, err)
	}
	return len(subjects), errors.Join(errs...)
}

// JobIndex answers listings and searches of jobs from the index, checking
// each entry against the job's record.
type JobIndex struct {
	js    jetstream.JetStream
	subj  messages.Subjects
	store *JobStore
}

// NewJobIndex opens the index and the job-state bucket (see Provision).
func NewJobIndex(ctx context.Context, js jetstream.JetStream, t Topology) (*JobIndex, error) {
	t = t.WithDefaults()
	kv, err := js.KeyValue(ctx, t.Subjects.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("pipeline: job-state bucket: %w", err)
	}
	return &JobIndex{js: js, subj: t.Subjects, store: NewJobStore(kv, nil)}, nil
}

// JobQuery selects jobs. Empty fields match everything.
type JobQuery struct {
	Status, Region, Decision string
	// CreatedAfter keeps jobs created at or after it.
	CreatedAfter time.Time
	// Before is a page cursor: the Cursor of the previous page (0: the
	// newest jobs).
	Before uint64
	Limit  int // default 50, at most 500
}

// JobPage is one page of a listing, newest first.
type JobPage struct {
	Jobs []*JobRecord
	// Cursor continues the listing (JobQuery.Before); 0 when this is the
	// last page.
	Cursor uint64
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// List returns the jobs matching q, most recently changed first.
func (x *JobIndex) List(ctx context.Context, q JobQuery) (*JobPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	filter := x.subj.IndexJobs(orStar(q.Status), orStar(q.Region), orStar(q.Decision))
	st, err := x.js.Stream(ctx, x.subj.StreamIndex())
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	end := info.State.LastSeq + 1
	if q.Before > 0 && q.Before < end {
		end = q.Before
	}
	first := max(info.State.FirstSeq, 1)
	page := &JobPage{}
	window := uint64(4 * limit)
	for end > first && len(page.Jobs) < limit {
		start := first
		if end > window && end-window > first {
			start = end - window
		}
		msgs, err := x.newest(ctx, filter, start, end, limit-len(page.Jobs))
		if err != nil {
			return nil, err
		}
		// Newest first within the window.
		for i := len(msgs) - 1; i >= 0 && len(page.Jobs) < limit; i-- {
			rec := x.check(ctx, msgs[i], q)
			if rec != nil {
				page.Jobs = append(page.Jobs, rec)
				page.Cursor = msgs[i].seq
			}
		}
		end = start
		window *= 4
	}
	if len(page.Jobs) < limit || page.Cursor <= first {
		page.Cursor = 0
	}
	return page, nil
}

// newest returns the newest n entries matching filter in [start, end), in
// stream order. It reads the range forward in bounded batches, keeping the
// last n.
func (x *JobIndex) newest(ctx context.Context, filter string, start, end uint64, n int) ([]rawMsg, error) {
	const chunk = 1000
	var kept []rawMsg
	for seq := start; seq < end; {
		msgs, err := directGet(ctx, x.js.Conn(), x.subj.StreamIndex(), directGetRequest{Seq: seq, NextFor: filter, Batch: chunk, UpToSeq: end - 1})
		if err != nil {
			return nil, err
		}
		kept = append(kept, msgs...)
		if len(kept) > 4*n {
			kept = append([]rawMsg(nil), kept[len(kept)-4*n:]...)
		}
		if len(msgs) < chunk {
			break
		}
		seq = msgs[len(msgs)-1].seq + 1
	}
	return kept, nil
}

// check returns the record an entry stands for, if the entry is current
// and matches q; a stale entry (the job moved on, or was erased) is skipped.
func (x *JobIndex) check(ctx context.Context, m rawMsg, q JobQuery) *JobRecord {
	var e IndexEntry
	if err := json.Unmarshal(m.data, &e); err != nil || !messages.ValidJobID(e.JobID) {
		return nil
	}
	rec, _, err := x.store.Get(ctx, e.JobID)
	if err != nil || rec.Erasing() || indexSubject(x.subj, rec) != m.subject {
		return nil
	}
	if !q.CreatedAfter.IsZero() && rec.CreatedAt.Before(q.CreatedAfter) {
		return nil
	}
	return rec
}

// FindByReference returns the IDs of the jobs whose customerInternalReference
// (kind "c") or userReference (kind "u") is ref, oldest first, at most 100.
func (x *JobIndex) FindByReference(ctx context.Context, kind, ref string) ([]string, error) {
	msgs, err := directGet(ctx, x.js.Conn(), x.subj.StreamIndex(), directGetRequest{Seq: 1, NextFor: x.subj.IndexRefs(kind, messages.RefHash(ref)), Batch: 100})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, m := range msgs {
		if i := lastDot(m.subject); i >= 0 && messages.ValidJobID(m.subject[i+1:]) {
			ids = append(ids, m.subject[i+1:])
		}
	}
	return ids, nil
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// Ended returns up to limit jobs that ended (DECIDED or FAILED) before
// cutoff, oldest first: the retention sweep's work. It reads the index in
// stream order (the order jobs last changed), so it stops at the first
// entry newer than cutoff.
func (x *JobIndex) Ended(ctx context.Context, cutoff time.Time, limit int) ([]*JobRecord, error) {
	var out []*JobRecord
	for _, status := range []string{StatusDecided, StatusFailed} {
		seq := uint64(1)
		for len(out) < limit {
			msgs, err := directGet(ctx, x.js.Conn(), x.subj.StreamIndex(), directGetRequest{Seq: seq, NextFor: x.subj.IndexJobs(status, "*", "*"), Batch: 256})
			if err != nil {
				return nil, err
			}
			if len(msgs) == 0 {
				break
			}
			newer := false
			for _, m := range msgs {
				seq = m.seq + 1
				if m.time.After(cutoff) {
					newer = true
					break
				}
				if rec := x.check(ctx, m, JobQuery{}); rec != nil && rec.UpdatedAt.Before(cutoff) {
					out = append(out, rec)
					if len(out) >= limit {
						break
					}
				}
			}
			if newer {
				break
			}
		}
	}
	return out, nil
}

// directGetRequest is JetStream's direct-get request (batch form).
type directGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
	UpToSeq uint64 `json:"up_to_seq,omitempty"`
}

type rawMsg struct {
	subject string
	seq     uint64
	time    time.Time
	data    []byte
}

// directGet runs a batched direct get on a stream (AllowDirect) and returns
// the messages in stream order.
func directGet(ctx context.Context, nc *nats.Conn, stream string, req directGetRequest) ([]rawMsg, error) {
	if req.Batch <= 0 {
		return nil, nil
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	body, _ := json.Marshal(req)
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return nil, err
	}
	var out []rawMsg
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("pipeline: direct get on %s: %w", stream, err)
		}
		if status := m.Header.Get("Status"); status != "" {
			switch status {
			case "204", "404": // end of batch, or nothing matched
				return out, nil
			case "408":
				return out, nil
			}
			return nil, fmt.Errorf("pipeline: direct get on %s: status %s %s", stream, status, m.Header.Get("Description"))
		}
		var seq uint64
		_, _ = fmt.Sscan(m.Header.Get("Nats-Sequence"), &seq)
		t, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
		out = append(out, rawMsg{subject: m.Header.Get("Nats-Subject"), seq: seq, time: t, data: m.Data})
	}
}
