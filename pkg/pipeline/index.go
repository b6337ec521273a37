package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
// it (a stale entry is skipped, and replaced by the record's when the record
// changed after it was written: see JobIndex.repair), so a lost index write
// delays a listing's accuracy, never a job. A decided job's entry may stand
// for its record (JobQuery.Summaries).
//
// An entry's stream time is when the job's attributes last changed (it is
// published right after the record write that changed them), and that is
// never before the job was created: so a listing of jobs created after T
// stops at the first entry older than T, and a listing of jobs unchanged
// since T starts at the first entry written at T (found by time, not by
// reading).

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

// summary is the part of a job's record its entry holds (JobQuery.Summaries).
func (e IndexEntry) summary() *JobRecord {
	r := &JobRecord{JobID: e.JobID, Status: e.Status, Region: e.Region, Channel: e.Channel,
		WorkflowExecutionID: e.WorkflowExecutionID, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
	if e.Decision != "" {
		r.Decision = &messages.DecisionSummary{Type: e.Decision}
	}
	return r
}

// indexEntryMsg is r's entry, under its subject.
func indexEntryMsg(subj messages.Subjects, r *JobRecord) *nats.Msg {
	b, _ := json.Marshal(indexEntryOf(r))
	return &nats.Msg{Subject: indexSubject(subj, r), Data: b}
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
}

// withIndex makes the store maintain the job index.
func (s *JobStore) withIndex(js jetstream.JetStream, subj messages.Subjects, log *zap.Logger) *JobStore {
	if log == nil {
		log = zap.NewNop()
	}
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
		if _, err := x.js.PublishMsgAsync(indexEntryMsg(x.subj, next)); err != nil {
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
		x.purgeLater(oldSubj)
	}
}

// move is update for a record write made under ctx: within a worker's run
// of a job (withIndexHold), the move waits for the run's end.
func (x *jobIndexer) move(ctx context.Context, prev, next *JobRecord) {
	if h := heldMoves(ctx); h != nil && x != nil && prev != nil {
		h.hold(prev, next)
		return
	}
	x.update(prev, next)
}

// An index hold keeps a job's index moves during one run of the worker's
// saga and makes one at its end: from the entry the job had when the run
// began to the one it has when it ends. The steps in between (ACCOUNT_CREATED
// on the way from ACCEPTED to FINALIZED, a few hundred milliseconds at
// Jumio's pace) cost no entry and no purge; a run that stops on the way
// (an error, a retry later) publishes where it stopped. The new record
// entry of a job (its creation, with its reference entries) is published
// at once, before any wait for Jumio's rate limits. A worker killed
// mid-run leaves the entry of the run's start until the job's next run,
// whose release (a redelivery: sweep) purges it with the subjects of every
// other status of the job's timeline; readers check entries against the
// record meanwhile. A run stopped by an erasure, or by another delivery
// that got further, publishes nothing. An entry written at a run's end
// carries the stream time of the run's end, which lags the record's change
// by the run's last steps.
type indexHold struct {
	mu       sync.Mutex
	from, to *JobRecord // the record before the run's first move, and after its last
	// sweep: the run may follow one that was killed mid-run, whose held
	// move never happened, so the job's entry may be older than from's.
	// Its release then purges every other status's subject as well.
	sweep bool
}

type indexHoldKey struct{}

// withIndexHold returns ctx carrying a new index hold; sweep: see
// indexHold.
func withIndexHold(ctx context.Context, sweep bool) (context.Context, *indexHold) {
	h := &indexHold{sweep: sweep}
	return context.WithValue(ctx, indexHoldKey{}, h), h
}

// heldMoves returns the index hold ctx carries, or nil.
func heldMoves(ctx context.Context) *indexHold {
	h, _ := ctx.Value(indexHoldKey{}).(*indexHold)
	return h
}

func (h *indexHold) hold(prev, next *JobRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.to == nil {
		from := *prev
		h.from = &from
	}
	to := *next // the fields an entry takes are never changed in place; a copy makes sure
	h.to = &to
}

// discardHeldMoves drops the moves held under ctx: the run stops because the
// job is being erased (the eraser publishes its entry and removes the
// others) or because another delivery of the job got further (its entries
// are newer than this run's).
func discardHeldMoves(ctx context.Context) {
	if h := heldMoves(ctx); h != nil {
		h.take()
	}
}

// take returns the move held and forgets it.
func (h *indexHold) take() (from, to *JobRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	from, to = h.from, h.to
	h.from, h.to = nil, nil
	return from, to
}

// release makes the move the run held, unless the job is being erased (the
// eraser publishes its entry and removes the others).
func (h *indexHold) release(x *jobIndexer) {
	from, to := h.take()
	if to == nil || to.Erasing() {
		return
	}
	x.update(from, to)
	if h.sweep && x != nil {
		// Exact subjects, not a wildcard: a wildcard purge makes the server
		// look through every block of the index.
		keep := []string{indexSubject(x.subj, to), indexSubject(x.subj, from)} // from's: update purges it
		var stale []string
		for _, s := range jobStatusSubjects(x.subj, to) {
			if !slices.Contains(keep, s) {
				stale = append(stale, s)
			}
		}
		x.purgeLater(stale...)
	}
}

// indexPurgeDelay is how long after a job's entry moved its old one is
// purged. Until then listings skip it (it no longer matches the record).
const indexPurgeDelay = 500 * time.Millisecond

// purgeLater purges subjects (exact ones) indexPurgeDelay from now, not
// at once: an old entry may still be on its way (an asynchronous publish of
// this process), and a purge that overtook it would leave it behind.
func (x *jobIndexer) purgeLater(subjects ...string) {
	if len(subjects) == 0 {
		return
	}
	time.AfterFunc(indexPurgeDelay, func() {
		for _, s := range subjects {
			x.purge(s)
		}
	})
}

// purge removes the entries under one exact subject.
func (x *jobIndexer) purge(subject string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := purgeIndexSubject(ctx, x.js, x.subj.StreamIndex(), subject); err != nil {
		x.log.Debug("stale index entry not purged; readers skip it", zap.Error(err))
	}
}

// purgeIndexSubject removes every message of one subject from a stream.
// It talks to the JetStream API directly: one request, without the stream
// lookup (a full stream info) the client library would make first; the
// index pays it for every move of every job.
func purgeIndexSubject(ctx context.Context, js jetstream.JetStream, stream, subject string) error {
	req, _ := json.Marshal(struct {
		Filter string `json:"filter"`
	}{subject})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	m, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+stream, req)
	if err != nil {
		return fmt.Errorf("pipeline: purge %s: %w", subject, err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return fmt.Errorf("pipeline: purge %s: %w", subject, err)
	}
	if !resp.Success {
		desc := "not purged"
		if resp.Error != nil {
			desc = fmt.Sprintf("JetStream error %d: %s", resp.Error.Code, resp.Error.Description)
		}
		return fmt.Errorf("pipeline: purge %s: %s", subject, desc)
	}
	return nil
}

// jobIndexSubjects lists every subject a job may have an entry under: its
// current one, and one per status of its timeline (with and without its
// decision), so that an entry left behind by a writer that did not
// maintain the index (a replay resets FAILED with a bare store) is found
// too; and its references'.
func jobIndexSubjects(subj messages.Subjects, r *JobRecord) []string {
	out := jobStatusSubjects(subj, r)
	for _, ref := range []struct{ kind, value string }{{"c", r.CustomerInternalReference}, {"u", r.UserReference}} {
		if ref.value != "" {
			out = append(out, subj.IndexRef(ref.kind, messages.RefHash(ref.value), r.JobID))
		}
	}
	return out
}

// jobStatusSubjects lists the subjects of jobIndexSubjects but for the
// references': the job's current one and one per status of its timeline.
func jobStatusSubjects(subj messages.Subjects, r *JobRecord) []string {
	decisions := []string{""}
	if r.Decision != nil && r.Decision.Type != "" {
		decisions = append(decisions, r.Decision.Type)
	}
	statuses := []string{r.Status}
	for _, t := range r.Timeline {
		if !slices.Contains(statuses, t.Status) && t.Status != "" {
			statuses = append(statuses, t.Status)
		}
	}
	var out []string
	for _, st := range statuses {
		for _, d := range decisions {
			if s := subj.IndexJob(st, r.Region, d, r.JobID); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// eraseIndex removes a job's entries (the one under its current attributes,
// any it may have left under earlier ones, and its references') and waits
// until they are gone.
func eraseIndex(ctx context.Context, js jetstream.JetStream, subj messages.Subjects, r *JobRecord) (int, error) {
	subjects := jobIndexSubjects(subj, r)
	var errs []error
	for _, s := range subjects {
		errs = append(errs, purgeIndexSubject(ctx, js, subj.StreamIndex(), s))
	}
	return len(subjects), errors.Join(errs...)
}

// JobIndex answers listings and searches of jobs from the index, checking
// each entry against the job's record. It is safe for concurrent use.
type JobIndex struct {
	js    jetstream.JetStream
	subj  messages.Subjects
	store *JobStore
	log   *zap.Logger

	mu     sync.Mutex
	handle jetstream.Stream // the index stream, once looked up
}

// NewJobIndex opens the index and the job-state bucket (see Provision). The
// store it reads records with ([JobIndex.Store]) maintains the index on
// every write, like the stages' own.
func NewJobIndex(ctx context.Context, js jetstream.JetStream, t Topology) (*JobIndex, error) {
	t = t.WithDefaults()
	kv, err := js.KeyValue(ctx, t.Subjects.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("pipeline: job-state bucket: %w", err)
	}
	log := zap.NewNop()
	store := NewJobStore(kv, nil).withIndex(js, t.Subjects, log).withLeaderReads(js)
	return &JobIndex{js: js, subj: t.Subjects, store: store, log: log}, nil
}

// Store returns the job store the index checks entries against. Its
// writes keep the index up to date (use it for RequestErasure), and its
// GetConfirmed and RequestErasure's reads confirm "unknown" with the
// bucket stream's leader.
func (x *JobIndex) Store() *JobStore { return x.store }

// JobQuery selects jobs. Empty fields match everything.
type JobQuery struct {
	Status, Region, Decision string
	// CreatedAfter keeps jobs created at or after it.
	CreatedAfter time.Time
	// ChangedBefore keeps jobs whose record last changed before it (their
	// UpdatedAt, or CreatedAt for a record no stage wrote yet): jobs that
	// have not moved since.
	ChangedBefore time.Time
	// Before is a page cursor: the Cursor of the previous page (0: the
	// newest jobs).
	Before uint64
	Limit  int // default 50, at most 500
	// Summaries tells List that the caller reads only what an index entry
	// holds (a record's JobID, Status, Region, Decision.Type, Channel,
	// WorkflowExecutionID, CreatedAt and UpdatedAt, as in the console's
	// rows): a DECIDED job's entry then stands for its record, which is not
	// read. A decided job changes only by its erasure, whose ERASING entry
	// replaces the DECIDED one within indexPurgeDelay and which purges
	// every entry of the job when it completes (and again in its late
	// pass). Every other entry is still checked against its record, and
	// with ChangedBefore every entry is (a record may have changed since
	// its entry was written without moving it). It saves a read of a
	// record, usually in a cold block at scale, per decided row.
	Summaries bool
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

// Bounds of List's backward reads: the first window is a few times the page
// size; the next ones are sized by nextListWindow, up to maxListWindow
// sequences.
const maxListWindow = 1 << 16

// nextListWindow sizes the next window of a listing that still needs need
// jobs, after found jobs in the scanned sequences before: as many
// sequences as need jobs take at the density seen so far, and a quarter
// more, so that one more window fills the page most of the time without
// reading far past it (the server walks every sequence of a window, and
// every entry in it that matches is read and checked). While nothing was
// found, four times the last window.
func nextListWindow(last, scanned, found uint64, need int) uint64 {
	if found == 0 {
		return min(last*4, maxListWindow)
	}
	w := uint64(need)*scanned*5/4/found + 1
	return min(max(w, uint64(need)), maxListWindow)
}

// listReaders is how many parts of a window List reads at once.
const listReaders = 4

// minListPart is the smallest part of a window read on its own.
const minListPart = 64

// indexClockSlack covers the difference between the clock that stamps a
// record's UpdatedAt (the writer's) and the one that stamps its index entry
// (the NATS server's).
const indexClockSlack = 2 * time.Second

func (q JobQuery) filter(subj messages.Subjects) string {
	return subj.IndexJobs(orStar(q.Status), orStar(q.Region), orStar(q.Decision))
}

// lastChange is when a record last changed.
func lastChange(r *JobRecord) time.Time {
	if r.UpdatedAt.IsZero() {
		return r.CreatedAt
	}
	return r.UpdatedAt
}

// List returns the jobs matching q, most recently changed first (by the
// last change of their status, region or decision). A page costs the
// entries it shows plus the index windows it reads past, never the whole
// stream: windows grow from a few times the page size, and a CreatedAfter
// or ChangedBefore bound ends or starts the read by time.
func (x *JobIndex) List(ctx context.Context, q JobQuery) (*JobPage, error) {
	limit := min(cmp.Or(max(q.Limit, 0), 50), 500)
	filter := q.filter(x.subj)
	first, last, err := x.bounds(ctx)
	if err != nil {
		return nil, err
	}
	page := &JobPage{}
	if last == 0 {
		return page, nil
	}
	end := last + 1
	if q.Before > 0 && q.Before < end {
		end = q.Before
	}
	if !q.ChangedBefore.IsZero() {
		// Entries written after ChangedBefore belong to jobs that changed
		// since: start below the first of them. (A job whose record changed
		// an instant before ChangedBefore and whose entry was stored an
		// instant after, the time of an asynchronous publish, is missed
		// until the next listing: reading the entries written in a margin
		// after the cut would cost a request each.)
		if seq, ok, err := x.seqFrom(ctx, filter, q.ChangedBefore); err != nil {
			return nil, err
		} else if ok && seq < end {
			end = seq
		}
	}
	window := uint64(4 * limit)
	var scanned, found uint64
	exhausted := false
	for end > first && len(page.Jobs) < limit && !exhausted {
		start := first
		if end-first > window {
			start = end - window
		}
		msgs, err := x.read(ctx, filter, start, end)
		if err != nil {
			return nil, err
		}
		// Newest first; an entry older than CreatedAfter ends the listing
		// (its job, and every older entry's, was created before).
		cands := make([]rawMsg, 0, len(msgs))
		for i := len(msgs) - 1; i >= 0; i-- {
			if !q.CreatedAfter.IsZero() && msgs[i].time.Before(q.CreatedAfter) {
				exhausted = true
				break
			}
			cands = append(cands, msgs[i])
		}
		recs, seqs := x.checkAll(ctx, cands, q, limit-len(page.Jobs))
		page.Jobs = append(page.Jobs, recs...)
		if len(seqs) > 0 {
			page.Cursor = seqs[len(seqs)-1]
		}
		scanned += end - start
		found += uint64(len(recs))
		end = start
		window = nextListWindow(window, scanned, found, limit-len(page.Jobs))
	}
	if len(page.Jobs) < limit || page.Cursor <= first {
		page.Cursor = 0
	}
	return page, nil
}

// Oldest returns the jobs matching q that changed least recently first (by
// the last change of their status, region or decision), at most q.Limit of
// them (0: all). q.Before is ignored. It reads the index forward and stops
// at the limit, or with ChangedBefore at the first entry written after it.
func (x *JobIndex) Oldest(ctx context.Context, q JobQuery) ([]*JobRecord, error) {
	filter := q.filter(x.subj)
	var out []*JobRecord
	seq := uint64(1)
	for q.Limit <= 0 || len(out) < q.Limit {
		// A run of entries, checked together.
		var cands []rawMsg
		done := false
		for len(cands) < 64 {
			m, ok, err := x.next(ctx, filter, seq)
			if err != nil {
				return nil, err
			}
			if !ok || !q.ChangedBefore.IsZero() && !m.time.Before(q.ChangedBefore) {
				done = true
				break
			}
			cands = append(cands, m)
			seq = m.seq + 1
		}
		need := len(cands)
		if q.Limit > 0 {
			need = min(need, q.Limit-len(out))
		}
		recs, _ := x.checkAll(ctx, cands, q, need)
		out = append(out, recs...)
		if done {
			break
		}
	}
	return out, nil
}

// Search finds the jobs whose job ID, workflow execution ID,
// customerInternalReference or userReference is text (exactly), newest
// first. Jobs being erased (or erased) are found by their IDs only (their
// references are gone). The text's own record (as a job ID) is read at
// once, beside the lookups of the other three; the records those find
// after.
func (x *JobIndex) Search(ctx context.Context, text string) ([]*JobRecord, error) {
	if text == "" {
		return nil, nil
	}
	var (
		mu    sync.Mutex
		found []string
		recs  = map[string]*JobRecord{}
		errs  []error
		wg    sync.WaitGroup
	)
	add := func(ids []string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && !errors.Is(err, ErrJobNotFound) {
			errs = append(errs, err)
		}
		for _, id := range ids {
			if !slices.Contains(found, id) {
				found = append(found, id)
			}
		}
	}
	read := func(id string) {
		rec, _, err := x.store.GetConfirmed(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && !errors.Is(err, ErrJobNotFound) {
			errs = append(errs, err)
		}
		recs[id] = rec
	}
	if messages.ValidJobID(text) {
		found = append(found, text)
		wg.Go(func() { read(text) })
		wg.Go(func() {
			id, err := x.store.JobForExecution(ctx, text)
			if err != nil {
				add(nil, err)
				return
			}
			add([]string{id}, nil)
		})
	}
	for _, kind := range []string{"c", "u"} {
		wg.Go(func() { add(x.FindByReference(ctx, kind, text)) })
	}
	wg.Wait()
	var unread []string
	for _, id := range found {
		if _, done := recs[id]; !done {
			unread = append(unread, id)
		}
	}
	for _, id := range unread {
		wg.Go(func() { read(id) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []*JobRecord
	for _, id := range found {
		if r := recs[id]; r != nil {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b *JobRecord) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// Count returns how many index entries match status, region and decision
// ("" for any). It counts entries, not records: an entry left behind by a
// lost write counts until a listing repairs it. The server counts from its
// subject index (no message is read); it is still proportional to the
// number of jobs matched, so callers cache it.
func (x *JobIndex) Count(ctx context.Context, status, region, decision string) (uint64, error) {
	cons, err := x.js.CreateConsumer(ctx, x.subj.StreamIndex(), jetstream.ConsumerConfig{
		FilterSubject: x.subj.IndexJobs(orStar(status), orStar(region), orStar(decision)),
		AckPolicy:     jetstream.AckNonePolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		InactiveThreshold: 30 * time.Second, MemoryStorage: true, Replicas: 1,
	})
	if err != nil {
		return 0, fmt.Errorf("pipeline: count index entries: %w", err)
	}
	info := cons.CachedInfo()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	_ = x.js.DeleteConsumer(dctx, x.subj.StreamIndex(), info.Name)
	cancel()
	return info.NumPending, nil
}

// bounds returns the index's first and last sequences.
func (x *JobIndex) bounds(ctx context.Context) (first, last uint64, err error) {
	st, err := x.js.Stream(ctx, x.subj.StreamIndex())
	if err != nil {
		return 0, 0, err
	}
	info := st.CachedInfo()
	if info.State.LastSeq == 0 {
		// CachedInfo is the answer of the lookup above: fresh.
		return 0, 0, nil
	}
	return max(info.State.FirstSeq, 1), info.State.LastSeq, nil
}

// seqFrom returns the sequence of the first entry matching filter written
// at or after t (false when there is none).
func (x *JobIndex) seqFrom(ctx context.Context, filter string, t time.Time) (uint64, bool, error) {
	req, _ := json.Marshal(struct {
		StartTime time.Time `json:"start_time"`
		NextFor   string    `json:"next_by_subj"`
	}{t.UTC(), filter})
	m, err := x.js.Conn().RequestWithContext(ctx, "$JS.API.DIRECT.GET."+x.subj.StreamIndex(), req)
	if err != nil {
		return 0, false, fmt.Errorf("pipeline: direct get on %s: %w", x.subj.StreamIndex(), err)
	}
	switch m.Header.Get("Status") {
	case "":
	case "404":
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("pipeline: direct get on %s: status %s %s", x.subj.StreamIndex(), m.Header.Get("Status"), m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("pipeline: direct get on %s: no sequence", x.subj.StreamIndex())
	}
	return seq, true, nil
}

// read returns the entries matching filter in [start, end), in stream
// order, one direct get each (plus one that finds the end of each part).
// A batched direct get would need fewer requests, but the server answers
// each batch by first counting every entry that matches the filter from
// where it starts (for a stream of one message per subject, across its
// subject index: a million entries for an unfiltered listing of a million
// jobs), while a single get only walks the blocks from start to the next
// match. The range is read in up to listReaders parts at once, so that the
// requests of one part wait for the server while another's answers travel
// (the server walks the stream for them one after the other all the same:
// it answers the direct gets of one connection in order).
func (x *JobIndex) read(ctx context.Context, filter string, start, end uint64) ([]rawMsg, error) {
	n := min(uint64(listReaders), max((end-start)/minListPart, 1))
	if n == 1 {
		return x.readPart(ctx, filter, start, end)
	}
	parts := make([][]rawMsg, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		from, to := start+(end-start)*i/n, start+(end-start)*(i+1)/n
		wg.Go(func() { parts[i], errs[i] = x.readPart(ctx, filter, from, to) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Concat(parts...), nil
}

// readPart is read for one part, one direct get after the other.
func (x *JobIndex) readPart(ctx context.Context, filter string, start, end uint64) ([]rawMsg, error) {
	var out []rawMsg
	for seq := start; seq < end; {
		m, ok, err := x.next(ctx, filter, seq)
		if err != nil {
			return nil, err
		}
		if !ok || m.seq >= end {
			break
		}
		out = append(out, m)
		seq = m.seq + 1
	}
	return out, nil
}

// next returns the first entry matching filter at or after seq.
func (x *JobIndex) next(ctx context.Context, filter string, seq uint64) (rawMsg, bool, error) {
	req, _ := json.Marshal(directGetRequest{Seq: seq, NextFor: filter})
	m, err := x.js.Conn().RequestWithContext(ctx, "$JS.API.DIRECT.GET."+x.subj.StreamIndex(), req)
	if err != nil {
		return rawMsg{}, false, fmt.Errorf("pipeline: direct get on %s: %w", x.subj.StreamIndex(), err)
	}
	switch m.Header.Get("Status") {
	case "":
	case "404":
		return rawMsg{}, false, nil
	default:
		return rawMsg{}, false, fmt.Errorf("pipeline: direct get on %s: status %s %s", x.subj.StreamIndex(), m.Header.Get("Status"), m.Header.Get("Description"))
	}
	s, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	t, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
	return rawMsg{subject: m.Header.Get("Nats-Subject"), seq: s, time: t, data: m.Data}, true, nil
}

// checkConcurrency bounds the records one listing reads at once.
const checkConcurrency = 16

// checkAll checks candidate entries in order against their records and
// returns up to need of those that pass, in order, with the index
// sequences of every entry examined up to the last one returned (the
// listing's cursor is the last of them). Records are read concurrently.
func (x *JobIndex) checkAll(ctx context.Context, cands []rawMsg, q JobQuery, need int) ([]*JobRecord, []uint64) {
	var recs []*JobRecord
	var seqs []uint64
	for len(cands) > 0 && len(recs) < need {
		n := min(len(cands), max(need-len(recs), 8), 64)
		batch := make([]*JobRecord, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, checkConcurrency)
		for i := range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				batch[i] = x.check(ctx, cands[i], q)
			})
		}
		wg.Wait()
		for i, rec := range batch {
			if len(recs) == need {
				break
			}
			seqs = append(seqs, cands[i].seq)
			if rec != nil {
				recs = append(recs, rec)
			}
		}
		cands = cands[n:]
	}
	return recs, seqs
}

// check returns the record an entry stands for, if the entry is current
// and matches q; a stale entry (the job moved on, or was erased) is
// skipped, and replaced by the record's entry when the record changed after
// it was written (an entry newer than the record read is not: the record
// read may lag).
func (x *JobIndex) check(ctx context.Context, m rawMsg, q JobQuery) *JobRecord {
	var e IndexEntry
	if err := json.Unmarshal(m.data, &e); err != nil || !messages.ValidJobID(e.JobID) {
		return nil
	}
	if !q.CreatedAfter.IsZero() && e.CreatedAt.Before(q.CreatedAfter) {
		return nil
	}
	// The record changed at least when the entry was written.
	if changed := cmp.Or(e.UpdatedAt, e.CreatedAt); !q.ChangedBefore.IsZero() && !changed.IsZero() && !changed.Before(q.ChangedBefore) {
		return nil
	}
	if q.Summaries && q.ChangedBefore.IsZero() && e.Status == StatusDecided && e.Decision != "" &&
		m.subject == x.subj.IndexJob(e.Status, e.Region, e.Decision, e.JobID) {
		return e.summary()
	}
	rec, _, err := x.store.Get(ctx, e.JobID)
	if err != nil {
		return nil
	}
	if indexSubject(x.subj, rec) != m.subject {
		if rec.Status == StatusErased || (!m.time.IsZero() && m.time.Before(lastChange(rec).Add(-indexClockSlack))) {
			go x.repair(m.subject, rec)
		}
		return nil
	}
	if rec.Erasing() && q.Status != StatusErasing {
		return nil
	}
	if !q.CreatedAfter.IsZero() && rec.CreatedAt.Before(q.CreatedAfter) {
		return nil
	}
	if !q.ChangedBefore.IsZero() && !lastChange(rec).Before(q.ChangedBefore) {
		return nil
	}
	return rec
}

// repair replaces a stale entry with rec's: it publishes rec's entry
// unless the job is being erased or already has one (a writer killed
// between its record write and its asynchronous index publish left the job
// with only the stale entry, which alone would drop it from every
// listing), then purges the stale subject. The entry it publishes carries
// the repair's stream time, later than the job's change, so "unchanged
// since" listings see the job once that time is older than their cut.
func (x *JobIndex) repair(subject string, rec *JobRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rec != nil && rec.Status != "" && !rec.Erasing() {
		m := indexEntryMsg(x.subj, rec)
		m.Header = nats.Header{jetstream.ExpectedLastSubjSeqHeader: {"0"}}
		if _, err := x.js.PublishMsg(ctx, m); err != nil && !subjectHoldsMessage(err) {
			x.log.Debug("index entry not restored", jobField(rec.JobID), zap.Error(err))
		}
	}
	if err := purgeIndexSubject(ctx, x.js, x.subj.StreamIndex(), subject); err != nil {
		x.log.Debug("stale index entry not purged", zap.Error(err))
	}
}

// FindByReference returns the IDs of the jobs whose customerInternalReference
// (kind "c") or userReference (kind "u") is ref, at most 100, in no
// particular order. It asks JetStream for the subjects under the
// reference's hash (one request, answered from the subject index), not for
// the entries: reading those would walk the stream's blocks from the first
// match to the last.
func (x *JobIndex) FindByReference(ctx context.Context, kind, ref string) ([]string, error) {
	st, err := x.stream(ctx)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(x.subj.IndexRefs(kind, messages.RefHash(ref))))
	if err != nil {
		return nil, err
	}
	var ids []string
	for subject := range info.State.Subjects {
		if i := lastDot(subject); i >= 0 && messages.ValidJobID(subject[i+1:]) {
			ids = append(ids, subject[i+1:])
		}
	}
	slices.Sort(ids)
	return ids[:min(len(ids), 100)], nil
}

// stream returns a handle of the index stream, looked up once: a search
// then asks for its reference subjects with one stream-info request, not
// two.
func (x *JobIndex) stream(ctx context.Context) (jetstream.Stream, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.handle != nil {
		return x.handle, nil
	}
	st, err := x.js.Stream(ctx, x.subj.StreamIndex())
	if err != nil {
		return nil, err
	}
	x.handle = st
	return st, nil
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
		filter := x.subj.IndexJobs(status, "*", "*")
		for seq := uint64(1); len(out) < limit; {
			m, ok, err := x.next(ctx, filter, seq)
			if err != nil {
				return nil, err
			}
			if !ok || m.time.After(cutoff) {
				break
			}
			seq = m.seq + 1
			if rec := x.check(ctx, m, JobQuery{}); rec != nil && rec.UpdatedAt.Before(cutoff) {
				out = append(out, rec)
			}
		}
	}
	return out, nil
}

// directGetRequest is JetStream's direct-get request (batch form).
type directGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"` // 0: one message, no end-of-batch
}

type rawMsg struct {
	subject string
	seq     uint64
	time    time.Time
	data    []byte
}

// directGet runs a batched direct get on a stream (AllowDirect) and returns
// the messages in stream order, and how many more match after them.
func directGet(ctx context.Context, nc *nats.Conn, stream string, req directGetRequest) ([]rawMsg, uint64, error) {
	if req.Batch <= 0 {
		return nil, 0, nil
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	body, _ := json.Marshal(req)
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, body); err != nil {
		return nil, 0, err
	}
	var out []rawMsg
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("pipeline: direct get on %s: %w", stream, err)
		}
		if status := m.Header.Get("Status"); status != "" {
			switch status {
			case "204": // end of batch
				pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				return out, pending, nil
			case "404": // nothing matched
				return out, 0, nil
			case "408":
				return nil, 0, fmt.Errorf("pipeline: direct get on %s: bad request %s", stream, m.Header.Get("Description"))
			}
			return nil, 0, fmt.Errorf("pipeline: direct get on %s: status %s %s", stream, status, m.Header.Get("Description"))
		}
		var seq uint64
		_, _ = fmt.Sscan(m.Header.Get("Nats-Sequence"), &seq)
		t, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
		out = append(out, rawMsg{subject: m.Header.Get("Nats-Subject"), seq: seq, time: t, data: m.Data})
	}
}
