package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

type indexFixture struct {
	idx   *JobIndex
	store *JobStore
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	subj  messages.Subjects
}

func newIndexFixture(t *testing.T) *indexFixture {
	t.Helper()
	js, topo := provisioned(t)
	idx, err := NewJobIndex(t.Context(), js, topo)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), topo.Subjects.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	return &indexFixture{idx: idx, store: idx.Store(), js: js, kv: kv, subj: topo.Subjects}
}

// seed creates a job and moves it to status (with decision, for DECIDED).
func (f *indexFixture) seed(t *testing.T, id, status, region, decision, cref, uref string) *JobRecord {
	t.Helper()
	ctx := t.Context()
	rec, rev, err := f.store.Create(ctx, &JobRecord{JobID: id, Status: StatusAccepted, Region: region, Channel: messages.ChannelAPI,
		CustomerInternalReference: cref, UserReference: uref, CreatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if status == StatusAccepted {
		return rec
	}
	rec, _, err = f.store.Update(ctx, rec, rev, func(r *JobRecord) error {
		r.SetStatus(time.Now(), status, "")
		if decision != "" {
			r.Decision = &messages.DecisionSummary{Type: decision}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// waitIndexed waits until the index lists exactly want jobs.
func (f *indexFixture) waitIndexed(t *testing.T, want int) {
	t.Helper()
	pipelinetest.Eventually(t, 10*time.Second, func() bool {
		p, err := f.idx.List(t.Context(), JobQuery{Limit: 500})
		return err == nil && len(p.Jobs) == want
	}, "index lists %d jobs", want)
}

// countingIndex opens the index on a connection of its own and returns it
// with a count of the messages that connection sent so far: a listing's
// or a search's requests are the difference around it.
func (f *indexFixture) countingIndex(t *testing.T) (*JobIndex, func() uint64) {
	t.Helper()
	nc, js := pipelinetest.Connect(t, f.js.Conn().ConnectedUrl())
	idx, err := NewJobIndex(t.Context(), js, Topology{Storage: jetstream.MemoryStorage}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return idx, func() uint64 { return nc.Stats().OutMsgs }
}

// listAll pages through a listing and returns the job IDs in order.
func (f *indexFixture) listAll(t *testing.T, q JobQuery) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("listing does not end")
		}
		p, err := f.idx.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Jobs {
			ids = append(ids, r.JobID)
		}
		if p.Cursor == 0 {
			return ids
		}
		q.Before = p.Cursor
	}
}

var (
	seedStatuses = []struct{ status, decision string }{
		{StatusDecided, messages.DecisionPassed}, {StatusDecided, messages.DecisionRejected}, {StatusFailed, ""}, {StatusLaunched, ""},
	}
	seedRegions = []string{"amer-1", "emea-1", "apac-1"}
)

// TestJobIndexListFiltersAndPages lists seeded jobs newest first by every
// filter, page by page, and checks each listing against the seed.
func TestJobIndexListFiltersAndPages(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	type seeded struct{ id, status, region, decision string }
	var all []seeded
	for i := range 90 {
		s, region := seedStatuses[i%len(seedStatuses)], seedRegions[i%len(seedRegions)]
		id := fmt.Sprintf("job-%03d", i)
		f.seed(t, id, s.status, region, s.decision, "c-"+id, "u-"+id)
		all = append(all, seeded{id, s.status, region, s.decision})
	}
	f.waitIndexed(t, len(all))
	for _, q := range []JobQuery{
		{}, {Status: StatusDecided}, {Decision: messages.DecisionRejected}, {Region: "apac-1"},
		{Status: StatusFailed, Region: "emea-1"}, {Status: StatusDecided, Region: "amer-1", Decision: messages.DecisionPassed},
		{Status: StatusAccepted}, {Region: "nowhere"},
	} {
		t.Run(fmt.Sprintf("%s/%s/%s", q.Status, q.Region, q.Decision), func(t *testing.T) {
			var want []string
			for i := len(all) - 1; i >= 0; i-- {
				s := all[i]
				if (q.Status == "" || q.Status == s.status) && (q.Region == "" || q.Region == s.region) && (q.Decision == "" || q.Decision == s.decision) {
					want = append(want, s.id)
				}
			}
			for _, limit := range []int{7, 50} {
				q.Limit = limit
				if got := f.listAll(t, q); !slices.Equal(got, want) {
					t.Errorf("limit %d:\n got %v\nwant %v", limit, got, want)
				}
			}
		})
	}
}

// TestJobIndexTimeBounds: CreatedAfter keeps the jobs created since,
// ChangedBefore the ones whose record has not changed since (whether the
// change moved the entry or not), for List and Oldest.
func TestJobIndexTimeBounds(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	ctx := t.Context()
	var old []*JobRecord
	for i := range 6 {
		old = append(old, f.seed(t, fmt.Sprintf("old-%d", i), StatusLaunched, "amer-1", "", "", ""))
	}
	f.waitIndexed(t, 6)
	t0 := time.Now()
	for i := range 4 {
		f.seed(t, fmt.Sprintf("new-%d", i), StatusLaunched, "amer-1", "", "", "")
	}
	f.waitIndexed(t, 10)
	got := f.listAll(t, JobQuery{CreatedAfter: t0, Limit: 3})
	if want := []string{"new-3", "new-2", "new-1", "new-0"}; !slices.Equal(got, want) {
		t.Errorf("created after: %v, want %v", got, want)
	}

	// Two old jobs change: one moves to FINALIZED (a new entry), one only
	// records a poll (its entry stays where it was).
	t1 := time.Now()
	for i, moves := range []bool{true, false} {
		rec, rev, err := f.store.Get(ctx, old[i].JobID)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.store.Update(ctx, rec, rev, func(r *JobRecord) error {
			r.Polls++
			if moves {
				r.SetStatus(time.Now(), StatusFinalized, "")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	pipelinetest.Eventually(t, 10*time.Second, func() bool {
		p, err := f.idx.List(ctx, JobQuery{Status: StatusFinalized})
		return err == nil && len(p.Jobs) == 1
	}, "moved job indexed")
	got = f.listAll(t, JobQuery{ChangedBefore: t1, Limit: 4})
	if want := []string{"new-3", "new-2", "new-1", "new-0", "old-5", "old-4", "old-3", "old-2"}; !slices.Equal(got, want) {
		t.Errorf("changed before: %v, want %v", got, want)
	}
	recs, err := f.idx.Oldest(ctx, JobQuery{Status: StatusLaunched, ChangedBefore: t1, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ids := recordIDs(recs); !slices.Equal(ids, []string{"old-2", "old-3", "old-4"}) {
		t.Errorf("oldest: %v", ids)
	}
	recs, err = f.idx.Oldest(ctx, JobQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if ids := recordIDs(recs); len(ids) != 10 || ids[0] != "old-1" || ids[9] != "old-0" {
		t.Errorf("oldest, all (old-1 only polled keeps its place; old-0 moved last): %v", ids)
	}
}

func recordIDs(recs []*JobRecord) []string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.JobID)
	}
	return ids
}

// TestJobIndexSearch finds jobs by job ID, execution ID and either
// reference (compared exactly, whatever characters they hold).
func TestJobIndexSearch(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	ctx := t.Context()
	a := f.seed(t, "job-a", StatusDecided, "amer-1", messages.DecisionPassed, "order-1", `<script>alert(1)</script>`)
	f.seed(t, "job-b", StatusAccepted, "emea-1", "", "order-1", "")
	f.seed(t, "job-c", StatusFailed, "emea-1", "", "order-2", "")
	if err := f.store.IndexExecution(ctx, "6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1", a.JobID); err != nil {
		t.Fatal(err)
	}
	f.waitIndexed(t, 3)
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"job-c", []string{"job-c"}},
		{"6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1", []string{"job-a"}},
		{"order-1", []string{"job-b", "job-a"}},
		{`<script>alert(1)</script>`, []string{"job-a"}},
		{"order", nil},
		{"no such thing", nil},
	} {
		recs, err := f.idx.Search(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := recordIDs(recs); !slices.Equal(got, c.want) {
			t.Errorf("search %q: %v, want %v", c.q, got, c.want)
		}
	}
}

// TestJobIndexRepairsAndErases: an entry left behind by a write that did
// not maintain the index (as a replay's) is skipped, then purged by the
// listing that found it; an erasure removes every entry of the job, the
// ones under earlier statuses included.
func TestJobIndexRepairsAndErases(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	ctx := t.Context()
	later := func() time.Time { return time.Now().Add(time.Minute) }
	bare := NewJobStore(f.kv, later) // no index, and a minute ahead
	move := func(id, status string) *JobRecord {
		rec, rev, err := bare.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		rec, _, err = bare.Update(ctx, rec, rev, func(r *JobRecord) error { r.SetStatus(later(), status, ""); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	f.seed(t, "job-x", StatusFailed, "amer-1", "", "ref-x", "")
	f.seed(t, "job-y", StatusFailed, "amer-1", "", "ref-y", "user-y")
	f.waitIndexed(t, 2)
	move("job-x", StatusFinalized)
	y := move("job-y", StatusFinalized)
	failedX := f.subj.IndexJob(StatusFailed, "amer-1", "", "job-x")
	if p, err := f.idx.List(ctx, JobQuery{Status: StatusFailed}); err != nil || len(p.Jobs) != 0 {
		t.Fatalf("stale FAILED entries listed: %v %v", p, err)
	}
	pipelinetest.Eventually(t, 10*time.Second, func() bool { return !f.hasSubject(t, failedX) }, "stale entry purged")
	// The bare store never published job-x's FINALIZED entry (as a writer
	// killed before its asynchronous publish would not): the repair put
	// the record's entry in the stale one's place.
	if !f.hasSubject(t, f.subj.IndexJob(StatusFinalized, "amer-1", "", "job-x")) {
		t.Error("the repair did not restore the record's entry")
	}
	if p, err := f.idx.List(ctx, JobQuery{Status: StatusFinalized}); err != nil || len(p.Jobs) != 2 {
		t.Errorf("FINALIZED listing after the repair: %v %v, want job-x and job-y", p, err)
	}

	// job-y's stale FAILED entry was purged by the listing too; put one
	// back, as a lost purge would leave it, then erase the job.
	if _, err := f.js.Publish(ctx, f.subj.IndexJob(StatusFailed, "amer-1", "", "job-y"), []byte(`{"jobId":"job-y"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := eraseIndex(ctx, f.js, f.subj, y); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{f.subj.IndexJob(StatusFailed, "amer-1", "", "job-y"), f.subj.IndexRef("c", messages.RefHash("ref-y"), "job-y"), f.subj.IndexRef("u", messages.RefHash("user-y"), "job-y")} {
		if f.hasSubject(t, s) {
			t.Errorf("%s survived the erasure", s)
		}
	}
	if ids, err := f.idx.FindByReference(ctx, "c", "ref-y"); err != nil || len(ids) != 0 {
		t.Errorf("reference still found: %v %v", ids, err)
	}
}

// jobEntries counts the job entries (not the reference entries) in the index.
func (f *indexFixture) jobEntries(t *testing.T) uint64 {
	t.Helper()
	st, err := f.js.Stream(t.Context(), f.subj.StreamIndex())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(f.subj.IndexJobs("*", "*", "*")))
	if err != nil {
		t.Fatal(err)
	}
	return uint64(len(info.State.Subjects))
}

func (f *indexFixture) hasSubject(t *testing.T, subject string) bool {
	t.Helper()
	st, err := f.js.Stream(t.Context(), f.subj.StreamIndex())
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.GetLastMsgForSubject(t.Context(), subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestJobIndexCount counts entries by attribute.
func TestJobIndexCount(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	for i := range 12 {
		s := seedStatuses[i%len(seedStatuses)]
		f.seed(t, fmt.Sprintf("job-%d", i), s.status, seedRegions[i%len(seedRegions)], s.decision, "", "")
	}
	f.waitIndexed(t, 12)
	for _, c := range []struct {
		status, region, decision string
		want                     uint64
	}{
		{"", "", "", 12}, {StatusDecided, "", "", 6}, {StatusDecided, "", messages.DecisionRejected, 3},
		{StatusFailed, "", "", 3}, {"", "apac-1", "", 4}, {StatusAccepted, "", "", 0},
	} {
		// Entries a job left when it moved are purged shortly after.
		var n uint64
		pipelinetest.Eventually(t, 10*time.Second, func() bool {
			var err error
			n, err = f.idx.Count(t.Context(), c.status, c.region, c.decision)
			return err == nil && n == c.want
		}, "count %s/%s/%s = %d, want %d", c.status, c.region, c.decision, n, c.want)
	}
}

// TestNextListWindow: after a window that found jobs, the next one is
// sized from their density to hold what the page still needs and a
// quarter more; while nothing was found it grows fourfold; always within
// [need, maxListWindow].
func TestNextListWindow(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		last, scanned, found uint64
		need                 int
		want                 uint64
	}{
		{last: 200, scanned: 200, found: 0, need: 50, want: 800},
		{last: 1 << 15, scanned: 1 << 16, found: 0, need: 50, want: maxListWindow},
		{last: 200, scanned: 200, found: 2, need: 48, want: 48*200*5/4/2 + 1}, // one job per 100 sequences: 6,001
		{last: 800, scanned: 1000, found: 40, need: 10, want: 10*1000*5/4/40 + 1},
		{last: 200, scanned: 200, found: 66, need: 1, want: 4},
		{last: 200, scanned: 200, found: 200, need: 30, want: 38},
		{last: 200, scanned: 3000, found: 1, need: 49, want: maxListWindow},
	} {
		if got := nextListWindow(c.last, c.scanned, c.found, c.need); got != c.want {
			t.Errorf("nextListWindow(%d, %d, %d, %d) = %d, want %d", c.last, c.scanned, c.found, c.need, got, c.want)
		}
	}
}

// TestJobIndexSparseListing lists a state that one job in a hundred is
// in, page by page: every page is right, and a page reads about the
// entries it shows (a window four times larger than the last, as before,
// read 170 entries and checked 50 for a page of 50 here).
func TestJobIndexSparseListing(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	ctx := t.Context()
	const jobs, every = 20000, 100
	var want []string // FINALIZED, newest first
	now := time.Now().UTC()
	for i := range jobs {
		status := StatusDecided
		if i%every == every-1 {
			status = StatusFinalized
		}
		rec := &JobRecord{JobID: fmt.Sprintf("job-%05d", i), Status: status, Region: "apac-1", Channel: messages.ChannelAPI, CreatedAt: now, UpdatedAt: now}
		if status == StatusDecided {
			rec.Decision = &messages.DecisionSummary{Type: messages.DecisionPassed}
		} else {
			want = append([]string{rec.JobID}, want...)
		}
		b, _ := json.Marshal(rec)
		if _, err := f.js.PublishAsync("$KV."+f.kv.Bucket()+"."+jobKey(rec.JobID), b); err != nil {
			t.Fatal(err)
		}
		e, _ := json.Marshal(indexEntryOf(rec))
		if _, err := f.js.PublishAsync(indexSubject(f.subj, rec), e); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-f.js.PublishAsyncComplete():
	case <-time.After(pipelinetest.DefaultTimeout):
		t.Fatal("seeding did not complete")
	}

	// The listing on a connection of its own, to count its requests.
	idx, sent := f.countingIndex(t)
	before := sent()
	p, err := idx.List(ctx, JobQuery{Status: StatusFinalized, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	requests := sent() - before
	t.Logf("the first page of 50 took %d requests", requests)
	if got := recordIDs(p.Jobs); !slices.Equal(got, want[:50]) {
		t.Errorf("first page:\n got %v\nwant %v", got, want[:50])
	}
	// One stream info, the entries read (50, a quarter more, one per part
	// and window), 50 record reads: 170 entries read would be 221.
	if requests > 150 {
		t.Errorf("the first page took %d requests", requests)
	}
	if got := f.listAll(t, JobQuery{Status: StatusFinalized, Limit: 7}); !slices.Equal(got, want) {
		t.Errorf("pages of 7:\n got %v\nwant %v", got, want)
	}
}

// With Summaries a decided job's entry stands for its record (one request
// fewer per decided row), other entries are still checked, and a decided
// job being erased leaves the listing once its ERASING entry replaced the
// decided one.
func TestJobIndexSummariesOfDecidedJobs(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	ctx := t.Context()
	d1 := f.seed(t, "job-d1", StatusDecided, "apac-1", messages.DecisionPassed, "ref-d1", "")
	f.seed(t, "job-d2", StatusDecided, "apac-1", messages.DecisionPassed, "ref-d2", "")
	f.seed(t, "job-f", StatusFailed, "apac-1", "", "ref-f", "")
	f.waitIndexed(t, 3)
	// And the seeding's ACCEPTED entries purged (indexPurgeDelay): a stale
	// one found by a counted listing would add its repair's requests.
	pipelinetest.Eventually(t, 10*time.Second, func() bool { return f.jobEntries(t) == 3 }, "the ACCEPTED entries purged")

	// Counted on a connection of its own, after a first listing (which
	// looks the stream up).
	idx, sent := f.countingIndex(t)
	list := func(q JobQuery) ([]*JobRecord, uint64) {
		t.Helper()
		before := sent()
		p, err := idx.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return p.Jobs, sent() - before
	}
	list(JobQuery{})
	full, nFull := list(JobQuery{Region: "apac-1"})
	sum, nSum := list(JobQuery{Region: "apac-1", Summaries: true})
	if !slices.Equal(recordIDs(full), recordIDs(sum)) || len(sum) != 3 {
		t.Fatalf("listed %v with summaries, %v without", recordIDs(sum), recordIDs(full))
	}
	if nFull-nSum != 2 {
		t.Errorf("%d requests with summaries, %d without: want the two decided records not read", nSum, nFull)
	}
	for _, r := range sum {
		if r.JobID == "job-d1" && (r.Status != StatusDecided || r.Decision == nil || r.Decision.Type != messages.DecisionPassed ||
			r.Region != "apac-1" || r.Channel != messages.ChannelAPI || !r.CreatedAt.Equal(d1.CreatedAt) || !r.UpdatedAt.Equal(d1.UpdatedAt)) {
			t.Errorf("job-d1's summary %+v, record %+v", r, d1)
		}
		if r.JobID == "job-f" && r.CustomerInternalReference != "ref-f" {
			t.Errorf("job-f was not read from its record: %+v", r)
		}
	}
	// With ChangedBefore every entry is checked against its record.
	cut := time.Now().Add(time.Hour)
	if _, n := list(JobQuery{Region: "apac-1", Summaries: true, ChangedBefore: cut}); n != nFull+1 {
		t.Errorf("%d requests with ChangedBefore, want %d (its time's lookup and every record read)", n, nFull+1)
	}

	// An erasure accepted: the ERASING entry replaces the decided one.
	rec, rev, err := f.store.Get(ctx, "job-d2")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.Update(ctx, rec, rev, func(r *JobRecord) error {
		r.Erasure = &Erasure{RequestedAt: time.Now(), Source: messages.ErasureRequest}
		r.SetStatus(time.Now(), StatusErasing, "erasure requested")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, 10*time.Second, func() bool {
		got, _ := list(JobQuery{Status: StatusDecided, Summaries: true})
		return slices.Equal(recordIDs(got), []string{"job-d1"})
	}, "the erasing job is still listed as decided")
}

// TestJobIndexSearchRequests: a search asks once for the record of the
// text as a job ID, once for the execution index and once per kind of
// reference (the index stream's handle is looked up by the first search
// only), all at once.
func TestJobIndexSearchRequests(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	ctx := t.Context()
	f.seed(t, "job-s", StatusFailed, "amer-1", "", "order-s", "user-s")
	f.waitIndexed(t, 1)
	idx, sent := f.countingIndex(t)
	for i, text := range []string{"job-s", "job-s", "order-s"} {
		before := sent()
		recs, err := idx.Search(ctx, text)
		if err != nil {
			t.Fatal(err)
		}
		if ids := recordIDs(recs); !slices.Equal(ids, []string{"job-s"}) {
			t.Errorf("search %q: %v", text, ids)
		}
		// The record, the execution index, two reference lookups; "order-s"
		// is a valid job ID too: its record is confirmed missing by the
		// leader, then job-s's is read.
		want := map[int]uint64{1: 4, 2: 6}[i]
		if n := sent() - before; i > 0 && n != want {
			t.Errorf("search %d (%q) took %d requests, want %d", i, text, n, want)
		}
	}
}

// Moves held during a worker's run: released, they make one move from the
// run's first record to its last; discarded (an erasure, another delivery
// that got further), none.
func TestIndexHoldReleaseAndDiscard(t *testing.T) {
	t.Parallel()
	f := newIndexFixture(t)
	sub, err := f.js.Conn().SubscribeSync(f.subj.IndexJobs("*", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := f.js.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	published := func() []string {
		var out []string
		for {
			m, err := sub.NextMsg(200 * time.Millisecond)
			if errors.Is(err, nats.ErrTimeout) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			var e IndexEntry
			if err := json.Unmarshal(m.Data, &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e.JobID+" "+e.Status)
		}
	}
	run := func(id string, discard bool) {
		rec, rev, err := f.store.Create(t.Context(), &JobRecord{JobID: id, Status: StatusAccepted, Region: "amer-1", CreatedAt: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, moves := withIndexHold(t.Context(), false)
		for _, st := range []string{StatusAccountCreated, StatusFinalized} {
			if rec, rev, err = f.store.Update(ctx, rec, rev, func(r *JobRecord) error { r.SetStatus(time.Now(), st, ""); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if discard {
			discardHeldMoves(ctx)
		}
		moves.release(f.store.index)
	}
	run("held-1", false)
	if got, want := published(), []string{"held-1 ACCEPTED", "held-1 FINALIZED"}; !slices.Equal(got, want) {
		t.Errorf("released: published %v, want %v", got, want)
	}
	run("held-2", true)
	if got, want := published(), []string{"held-2 ACCEPTED"}; !slices.Equal(got, want) {
		t.Errorf("discarded: published %v, want %v", got, want)
	}

	// A run killed after its first move (never released) leaves the
	// ACCEPTED entry; the redelivered run starts from ACCOUNT_CREATED, and
	// its release (sweep) purges ACCEPTED's subject too.
	rec, rev, err := f.store.Create(t.Context(), &JobRecord{JobID: "held-3", Status: StatusAccepted, Region: "amer-1", CreatedAt: time.Now().UTC(),
		Timeline: []TimelineEntry{{At: time.Now().UTC(), Status: StatusAccepted}}}) // as newJobRecord writes it
	if err != nil {
		t.Fatal(err)
	}
	killed, _ := withIndexHold(t.Context(), false)
	if rec, rev, err = f.store.Update(killed, rec, rev, func(r *JobRecord) error { r.SetStatus(time.Now(), StatusAccountCreated, ""); return nil }); err != nil {
		t.Fatal(err)
	}
	ctx, moves := withIndexHold(t.Context(), true)
	if _, _, err = f.store.Update(ctx, rec, rev, func(r *JobRecord) error { r.SetStatus(time.Now(), StatusFinalized, ""); return nil }); err != nil {
		t.Fatal(err)
	}
	moves.release(f.store.index)
	if got, want := published(), []string{"held-3 ACCEPTED", "held-3 FINALIZED"}; !slices.Equal(got, want) {
		t.Errorf("swept: published %v, want %v", got, want)
	}
	pipelinetest.Eventually(t, 10*time.Second, func() bool {
		info, err := f.idx.entrySubjects(t, "held-3")
		return err == nil && len(info) == 1 && info[0] == f.subj.IndexJob(StatusFinalized, "amer-1", "", "held-3")
	}, "the index holds only held-3's FINALIZED entry")
}

// entrySubjects lists the index subjects holding an entry of jobID.
func (x *JobIndex) entrySubjects(t *testing.T, jobID string) ([]string, error) {
	t.Helper()
	st, err := x.stream(t.Context())
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(x.subj.IndexJobs("X", "X", "X"), "X.X.X.*")
	info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(prefix+"*.*.*."+jobID))
	if err != nil {
		return nil, err
	}
	var out []string
	for s := range info.State.Subjects {
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}
