package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// lossyJS stores what is published through it but loses every
// acknowledgement, as a node loss or a partition does: the accepted event
// is stored, and neither its publish nor confirm's republishes (for all of
// confirmFor) learn its sequence.
type lossyJS struct {
	jetstream.JetStream
	stored atomic.Int32 // publishes stored (their acknowledgement lost)
	lost   atomic.Int32 // acknowledgements lost
}

func (l *lossyJS) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f := &lostAckFuture{msg: m, ok: make(chan *jetstream.PubAck), err: make(chan error, 1)}
	if _, err := l.JetStream.PublishMsg(context.Background(), m); err != nil {
		return nil, err
	}
	l.stored.Add(1)
	l.lost.Add(1)
	f.err <- nats.ErrTimeout
	return f, nil
}

func (l *lossyJS) PublishMsg(ctx context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	l.lost.Add(1)
	return nil, nats.ErrTimeout // the republish gets no answer either
}

type lostAckFuture struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *lostAckFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *lostAckFuture) Err() <-chan error            { return f.err }
func (f *lostAckFuture) Msg() *nats.Msg               { return f.msg }

// acceptedBench is a worker on an embedded JetStream and the Jumio
// simulator whose accepted events lose their acknowledgements.
type acceptedBench struct {
	js     jetstream.JetStream
	topo   Topology
	w      *Worker
	lossy  *lossyJS
	submit *Submitter
}

// newAcceptedBench starts the worker; afterCheckpoint (may be nil) hears
// its checkpoints with the worker itself.
func newAcceptedBench(t *testing.T, afterCheckpoint func(w *Worker, step string)) *acceptedBench {
	t.Helper()
	js, topo := provisioned(t)
	sim, err := jumiotest.StartServer(jumiotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	log := pipelinetest.Logger(t)
	clients, err := NewClients(JumioConfig{BaseURL: sim.URL, Credentials: sim.Credentials(), UserAgent: "kycpipe-test/1.0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	b := &acceptedBench{js: js, topo: topo, lossy: &lossyJS{JetStream: js}}
	ctx, cancel := context.WithCancel(context.Background())
	var hook func(string)
	if afterCheckpoint != nil {
		hook = func(step string) { afterCheckpoint(b.w, step) }
	}
	b.w, err = NewWorker(ctx, js, WorkerConfig{Topology: topo, Jumio: clients, CallbackURL: "https://kycpipe.example/v1/callbacks/jumio",
		Backoff: Backoff{Initial: 50 * time.Millisecond, Max: time.Second}, Logger: log.Named("worker"), AfterCheckpoint: hook})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	b.w.acceptedJS = b.lossy
	if b.submit, err = NewSubmitter(ctx, js, topo, nil); err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.w.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return b
}

// submitJob submits a job given as its JSON body and returns its ID.
func (b *acceptedBench) submitJob(t *testing.T, body map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var req messages.VerificationRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	PrepareRequest(&req, "", b.w.cfg.Jumio.DefaultRegion(), time.Now())
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := b.submit.Submit(t.Context(), &req, "test")
	if err != nil {
		t.Fatal(err)
	}
	return res.JobID
}

// record reads the job's record from the bucket stream's leader.
func (b *acceptedBench) record(t *testing.T, jobID string) *JobRecord {
	t.Helper()
	rec, _, err := b.w.store.getLatest(t.Context(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// waitRecord waits until the job's record satisfies cond.
func (b *acceptedBench) waitRecord(t *testing.T, jobID string, timeout time.Duration, cond func(*JobRecord) bool, what string) *JobRecord {
	t.Helper()
	var rec *JobRecord
	pipelinetest.Eventually(t, timeout, func() bool {
		r, _, err := b.w.store.getLatest(t.Context(), jobID)
		if err != nil {
			return false
		}
		rec = r
		return cond(r)
	}, "%s", what)
	return rec
}

// erase requests the job's erasure and waits until it is done.
func (b *acceptedBench) erase(t *testing.T, jobID string) {
	t.Helper()
	if _, err := RequestErasure(t.Context(), b.js, b.w.store, b.topo.Subjects, ErasureRequest{JobID: jobID, Source: messages.ErasureRequest, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	b.waitRecord(t, jobID, pipelinetest.DefaultTimeout, func(r *JobRecord) bool { return r.Status == StatusErased }, "the job erased")
}

// eventsAbout returns the messages of the events stream that name the
// job, except its erased event (which DESIGN 3.7 keeps).
func (b *acceptedBench) eventsAbout(t *testing.T, jobID string) []pipelinetest.StoredMessage {
	t.Helper()
	var out []pipelinetest.StoredMessage
	for _, m := range pipelinetest.AllMessages(t, b.js) {
		if m.Stream == b.topo.Subjects.StreamEvents() && m.Contains(jobID) && m.Subject != b.topo.Subjects.Event(messages.KindErased) {
			out = append(out, m)
		}
	}
	return out
}

// acceptedRefs returns the record's references to accepted events.
func acceptedRefs(rec *JobRecord) []MessageRef {
	var out []MessageRef
	for _, m := range rec.Messages {
		if m.Kind == EventMessageKind(messages.KindAccepted) {
			out = append(out, m)
		}
	}
	return out
}

func webJobBody(ref string) map[string]any {
	return map[string]any{
		"customerInternalReference": ref,
		"userReference":             "user-" + ref,
		"workflowDefinition":        map[string]any{"key": 10164},
		"channel":                   "WEB",
		"web":                       map[string]any{"locale": "en"},
		"userConsent":               pipelinetest.Consent(),
	}
}

// The chaos soak's lost event (issue 15): the accepted event is stored but
// its acknowledgement stays lost for longer than confirm repeats it. The
// job goes on; its record says the event is unconfirmed, and the job's
// next checkpoint (the launch's announce) publishes it again within the
// duplicate window: JetStream answers with the stored copy's sequence,
// which the record then lists, and nothing is stored twice. The erasure
// then leaves no message about the job in KYC_EVENTS but its erased event.
func TestAcceptedEventWhoseAckWasLostIsRecordedAndErased(t *testing.T) {
	t.Parallel()
	b := newAcceptedBench(t, nil)
	const marker = "acc-lost-ack-web"
	jobID := b.submitJob(t, webJobBody(marker))
	rec := b.waitRecord(t, jobID, confirmFor+pipelinetest.DefaultTimeout, func(r *JobRecord) bool { return r.Announced },
		"the job launched after its accepted event's acknowledgement was lost")
	if b.lossy.stored.Load() != 1 || b.lossy.lost.Load() < 2 {
		t.Fatalf("the accepted event was stored %d times with %d acknowledgements lost; want once, and confirm's republishes lost too",
			b.lossy.stored.Load(), b.lossy.lost.Load())
	}
	stored := b.eventsAbout(t, jobID)
	var accepted []pipelinetest.StoredMessage
	for _, m := range stored {
		if m.Subject == b.topo.Subjects.Event(messages.KindAccepted) {
			accepted = append(accepted, m)
		}
	}
	if len(accepted) != 1 {
		t.Fatalf("%d accepted events of the job in the stream, want 1 (no second copy)", len(accepted))
	}
	refs := acceptedRefs(rec)
	if len(refs) != 1 || refs[0].Seq != accepted[0].Seq || refs[0].Stream != b.topo.Subjects.StreamEvents() {
		t.Fatalf("the record lists accepted events %+v; want the stored one, %s/%d", refs, b.topo.Subjects.StreamEvents(), accepted[0].Seq)
	}
	if !rec.AcceptedUnconfirmed.IsZero() {
		t.Errorf("the record still says the accepted event is unconfirmed (%v)", rec.AcceptedUnconfirmed)
	}

	b.erase(t, jobID)
	for _, m := range b.eventsAbout(t, jobID) {
		t.Errorf("a message about the erased job remains: %s/%d %s", m.Stream, m.Seq, m.Subject)
	}
	for _, m := range pipelinetest.AllMessages(t, b.js) {
		if m.Contains(marker) {
			t.Errorf("the job's reference survives in %s/%d (%s)", m.Stream, m.Seq, m.Subject)
		}
	}
}

// A job erased before any checkpoint after its account (its saga stops at
// the next erasure check) still has its unconfirmed accepted event: the
// eraser finds it from the recorded time, records it, and deletes it with
// the job's messages.
func TestErasureFindsTheUnconfirmedAcceptedEvent(t *testing.T) {
	t.Parallel()
	var once sync.Once
	erasing := make(chan error, 1)
	var jobID atomic.Value
	b := newAcceptedBench(t, func(w *Worker, step string) {
		if step != "account" {
			return
		}
		once.Do(func() {
			id, _ := jobID.Load().(string)
			_, err := RequestErasure(context.Background(), w.js, w.store, w.subj, ErasureRequest{JobID: id, Source: messages.ErasureRequest, Actor: "test"})
			erasing <- err
		})
	})
	const marker = "acc-lost-ack-api"
	body := map[string]any{
		"customerInternalReference": marker,
		"workflowDefinition":        map[string]any{"key": 10066},
		"channel":                   "API",
		"preparedData":              map[string]any{"email": "jane.doe@example.com"},
		"userConsent":               pipelinetest.Consent(),
	}
	// The job ID is known before the worker can reach its account.
	raw, _ := json.Marshal(body)
	var req messages.VerificationRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	PrepareRequest(&req, "", b.w.cfg.Jumio.DefaultRegion(), time.Now())
	jobID.Store(req.JobID)
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.submit.Submit(t.Context(), &req, "test"); err != nil {
		t.Fatal(err)
	}
	if err := pipelinetest.WaitFor(t, erasing, confirmFor+pipelinetest.DefaultTimeout, "the erasure requested after the account"); err != nil {
		t.Fatal(err)
	}
	b.waitRecord(t, req.JobID, pipelinetest.DefaultTimeout, func(r *JobRecord) bool { return r.Status == StatusErased }, "the job erased")
	if b.lossy.stored.Load() != 1 {
		t.Fatalf("the accepted event was stored %d times, want 1", b.lossy.stored.Load())
	}
	if got := b.record(t, req.JobID); got.Uploaded != nil || got.Finalized {
		t.Errorf("the saga went on after the erasure: %+v", got)
	}
	for _, m := range b.eventsAbout(t, req.JobID) {
		t.Errorf("a message about the erased job remains: %s/%d %s", m.Stream, m.Seq, m.Subject)
	}
	for _, m := range pipelinetest.AllMessages(t, b.js) {
		if m.Contains(marker) {
			t.Errorf("the job's reference survives in %s/%d (%s)", m.Stream, m.Seq, m.Subject)
		}
	}
}

// reconfirmAccepted, at the edges: an accepted event that never reached
// the stream is stored once by the first republish (later ones are
// duplicates of it); past the duplicate window (less its margin) nothing
// is published, since a new copy would be a second event for subscribers
// and would not find the first.
func TestReconfirmAcceptedWithinTheDuplicateWindowOnly(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	s := &stage{js: js, topo: topo, subj: topo.Subjects, log: pipelinetest.Logger(t), now: func() time.Time { return time.Unix(0, clock.Load()) }}
	rec := &JobRecord{JobID: "job-reconfirm-1", Region: "amer-1", CustomerInternalReference: "ref-reconfirm-1"}

	if ref, err := s.reconfirmAccepted(ctx, rec); err != nil || ref.Seq != 0 {
		t.Fatalf("nothing unconfirmed: %+v, %v; want no publish", ref, err)
	}
	rec.AcceptedUnconfirmed = now.Add(-time.Minute)
	first, err := s.reconfirmAccepted(ctx, rec)
	if err != nil || first.Seq == 0 || first.Kind != EventMessageKind(messages.KindAccepted) {
		t.Fatalf("first republish: %+v, %v", first, err)
	}
	again, err := s.reconfirmAccepted(ctx, rec)
	if err != nil || again != first {
		t.Fatalf("second republish: %+v, %v; want the first copy %+v", again, err, first)
	}
	s.noteAccepted(rec, rec.AcceptedUnconfirmed, again, nil)
	if !rec.AcceptedUnconfirmed.IsZero() || len(acceptedRefs(rec)) != 1 {
		t.Fatalf("after the answer the record has %+v, unconfirmed %v", rec.Messages, rec.AcceptedUnconfirmed)
	}
	st, err := js.Stream(ctx, topo.Subjects.StreamEvents())
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, first.Seq)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := messages.DecodeEvent(m.Data)
	if err != nil || ev.Kind != messages.KindAccepted || ev.JobID != rec.JobID || !ev.At.Equal(now.Add(-time.Minute)) {
		t.Errorf("stored event %+v (%v); want the accepted event of its original time", ev, err)
	}

	late := &JobRecord{JobID: "job-reconfirm-2", AcceptedUnconfirmed: now.Add(-topo.DuplicateWindow * 4 / 5)}
	if ref, err := s.reconfirmAccepted(ctx, late); !errors.Is(err, errAcceptedTooOld) || ref.Seq != 0 {
		t.Errorf("past the window less its margin: %+v, %v; want errAcceptedTooOld", ref, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("the events stream holds %d messages, want 1", info.State.Msgs)
	}

	// A lost acknowledgement marks the event unconfirmed; an answer
	// learned within the window clears the mark, one learned past it
	// (another copy) is recorded but keeps it.
	r := &JobRecord{JobID: "job-reconfirm-3"}
	s.noteAccepted(r, now, MessageRef{}, nats.ErrTimeout)
	if !r.AcceptedUnconfirmed.Equal(now) {
		t.Fatalf("lost acknowledgement: unconfirmed %v, want %v", r.AcceptedUnconfirmed, now)
	}
	s.noteAccepted(r, now, MessageRef{}, &jetstream.APIError{Code: 503, ErrorCode: 10077})
	clock.Store(now.Add(topo.DuplicateWindow).UnixNano())
	s.noteAccepted(r, now, acceptedRef(topo.Subjects.StreamEvents(), 7, now), nil)
	if !r.AcceptedUnconfirmed.Equal(now) || len(acceptedRefs(r)) != 1 {
		t.Errorf("a copy learned past the window: unconfirmed %v, refs %+v; want both kept", r.AcceptedUnconfirmed, r.Messages)
	}
}

// A worker whose accepted event's acknowledgement was lost, and whose job
// was erased before it could record the outcome (the tombstone refuses
// the write), searches for the event from its time and deletes what it
// finds; it never publishes the event, which would store a copy never
// stored before (found by the 60-minute soak: a worker cut off from NATS
// during the account step).
func TestForgetAcceptedOfAnErasedJob(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	now := time.Now().UTC()
	s := &stage{js: js, topo: topo, subj: topo.Subjects, log: pipelinetest.Logger(t), now: time.Now}
	events, err := js.Stream(ctx, topo.Subjects.StreamEvents())
	if err != nil {
		t.Fatal(err)
	}
	state := func() jetstream.StreamState {
		t.Helper()
		info, err := events.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State
	}

	other := publishAccepted(t, s, "job-forget-0", now)
	stored := &JobRecord{JobID: "job-forget-1", Region: "amer-1", CustomerInternalReference: "ref-forget-1"}
	publishAccepted(t, s, stored.JobID, now) // stored; its answer "lost"
	s.forgetAccepted(ctx, stored, now, nats.ErrTimeout)
	if st := state(); st.Msgs != 1 {
		t.Errorf("after forgetting a stored accepted event the events stream holds %d messages, want 1 (another job's)", st.Msgs)
	}
	if _, err := events.GetMsg(ctx, other.Seq); err != nil {
		t.Errorf("another job's accepted event: %v", err)
	}

	never := &JobRecord{JobID: "job-forget-2", Region: "amer-1", CustomerInternalReference: "ref-forget-2"}
	s.forgetAccepted(ctx, never, now, nats.ErrTimeout)
	s.forgetAccepted(ctx, never, now, &jetstream.APIError{Code: 503, ErrorCode: 10077}) // an answer: nothing lost
	if st := state(); st.LastSeq != 2 || st.Msgs != 1 {
		t.Errorf("events stream: last sequence %d, %d messages; want 2 and 1 (the search publishes nothing)", st.LastSeq, st.Msgs)
	}
}

// publishAccepted publishes jobID's accepted event of time at, as the
// worker does, and returns where it is.
func publishAccepted(t *testing.T, s *stage, jobID string, at time.Time) MessageRef {
	t.Helper()
	o, err := acceptedMsg(s.subj, &JobRecord{JobID: jobID, Region: "amer-1", CustomerInternalReference: "ref-" + jobID}, at)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := publish(t.Context(), s.js, o)
	if err != nil {
		t.Fatal(err)
	}
	return acceptedRef(ack.Stream, ack.Sequence, at)
}

// findAccepted searches from the accepted event's time (less the clock
// skew allowed) to the end of its duplicate window: it finds the job's
// event among others', not one stored before the time, and nothing for a
// job whose event was never stored.
func TestFindAcceptedSearchesFromTheRecordedTime(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	s := &stage{js: js, topo: topo, subj: topo.Subjects, log: pipelinetest.Logger(t), now: time.Now}
	now := time.Now().UTC()
	for i := range 300 {
		publishAccepted(t, s, fmt.Sprintf("job-find-other-%d", i), now)
	}
	want := publishAccepted(t, s, "job-find-1", now)
	for i := range 300 {
		publishAccepted(t, s, fmt.Sprintf("job-find-later-%d", i), now)
	}
	if got, err := s.findAccepted(ctx, "job-find-1", now); err != nil || len(got) != 1 || got[0] != want {
		t.Errorf("findAccepted: %+v, %v; want [%+v]", got, err, want)
	}
	if got, err := s.findAccepted(ctx, "job-find-1", time.Now().Add(time.Minute)); err != nil || len(got) != 0 {
		t.Errorf("from a time after the event was stored: %+v, %v; want nothing", got, err)
	}
	if got, err := s.findAccepted(ctx, "job-find-never", now); err != nil || len(got) != 0 {
		t.Errorf("an event never stored: %+v, %v; want nothing", got, err)
	}
}

// The 60-minute soak of 2026-12-07 02:38: a worker published a job's
// accepted event and was killed before any checkpoint recorded it; the
// job was erased before its redelivery. The record the first delivery
// created says when the event was to be published (written ahead), and
// the eraser finds the event from that time and deletes it. A job whose
// event was never published gets none from the erasure.
func TestErasureFindsAnAcceptedEventNoCheckpointRecorded(t *testing.T) {
	t.Parallel()
	b := newAcceptedBench(t, nil)
	ctx := t.Context()
	s := b.w.stage
	at := time.Now().UTC()
	create := func(jobID string) {
		t.Helper()
		req := &messages.VerificationRequest{JobID: jobID, CustomerInternalReference: "ref-" + jobID, Region: "amer-1"}
		rec := acceptedRecord(req, "hash-"+jobID, 0, "test", at)
		rec.AcceptedUnconfirmed = at
		if _, _, err := b.w.store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	create("job-killed-1")
	publishAccepted(t, s, "job-killed-1", at) // the worker died here
	other := publishAccepted(t, s, "job-other-1", at)
	create("job-killed-2") // died before the publish

	b.erase(t, "job-killed-1")
	b.erase(t, "job-killed-2")
	for _, id := range []string{"job-killed-1", "job-killed-2"} {
		for _, m := range b.eventsAbout(t, id) {
			t.Errorf("a message about the erased job %s remains: %s/%d %s", id, m.Stream, m.Seq, m.Subject)
		}
	}
	events, err := b.js.Stream(ctx, b.topo.Subjects.StreamEvents())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.GetMsg(ctx, other.Seq); err != nil {
		t.Errorf("another job's accepted event: %v", err)
	}
	info, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.LastSeq != 4 { // two accepted events, two erased events
		t.Errorf("events stored: %d, want 4 (the erasure published no accepted event)", info.State.LastSeq)
	}
}

// The first delivery of a job writes its accepted event ahead in the
// record it creates, and the event goes out with that time: an erasure
// knows from when on to search.
func TestAcceptedEventIsWrittenAhead(t *testing.T) {
	t.Parallel()
	b := newAcceptedBench(t, nil)
	ahead := &recordAtPublishJS{JetStream: b.js, store: b.w.store, seen: make(chan time.Time, 4)}
	b.w.acceptedJS = ahead
	jobID := b.submitJob(t, webJobBody("acc-ahead"))
	rec := b.waitRecord(t, jobID, pipelinetest.DefaultTimeout, func(r *JobRecord) bool { return len(acceptedRefs(r)) == 1 }, "the accepted event recorded")
	if !rec.AcceptedUnconfirmed.IsZero() {
		t.Errorf("the acknowledged accepted event is still marked unconfirmed (%v)", rec.AcceptedUnconfirmed)
	}
	written := pipelinetest.WaitFor(t, ahead.seen, time.Second, "the record read at the publish")
	events, err := b.js.Stream(t.Context(), b.topo.Subjects.StreamEvents())
	if err != nil {
		t.Fatal(err)
	}
	m, err := events.GetMsg(t.Context(), acceptedRefs(rec)[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := messages.DecodeEvent(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if written.IsZero() || !ev.At.Equal(written) {
		t.Errorf("when the event was published the record said %v, the event says %v; want the same time", written, ev.At)
	}
}

// recordAtPublishJS reads the job's record from the bucket stream's
// leader whenever an accepted event is published, and reports its
// AcceptedUnconfirmed.
type recordAtPublishJS struct {
	jetstream.JetStream
	store *JobStore
	seen  chan time.Time
}

func (j *recordAtPublishJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if rec, _, err := j.store.getLatest(context.Background(), m.Header.Get(messages.HeaderJobID)); err == nil {
		j.seen <- rec.AcceptedUnconfirmed
	}
	return j.JetStream.PublishMsgAsync(m, opts...)
}

// silentJS stores what is published through it asynchronously but never
// answers: the future resolves neither way, as nats.go's does for a publish
// that reached a server just as the stream's leader was lost (no reply
// ever, and no timeout unless the JetStream context sets one). Synchronous
// publishes (confirm's) go through.
type silentJS struct {
	jetstream.JetStream
	silenced atomic.Int32
}

func (s *silentJS) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if _, err := s.JetStream.PublishMsg(context.Background(), m); err != nil {
		return nil, err
	}
	s.silenced.Add(1)
	return &lostAckFuture{msg: m, ok: make(chan *jetstream.PubAck), err: make(chan error)}, nil
}

// The 60-minute soak of 2026-12-07 (docs/RELIABILITY.md): a worker waited
// for the accepted event's acknowledgement for good, holding its job, which
// never moved again. The wait now gives up after asyncAckTimeout and
// publishes again (confirm): JetStream answers with the stored copy's
// sequence, the record lists it, and the job goes on.
func TestAcceptedEventNeverAnsweredDoesNotHoldTheJob(t *testing.T) {
	t.Parallel()
	b := newAcceptedBench(t, nil)
	silent := &silentJS{JetStream: b.js}
	b.w.acceptedJS = silent
	jobID := b.submitJob(t, webJobBody("acc-never-answered"))
	rec := b.waitRecord(t, jobID, asyncAckTimeout+pipelinetest.DefaultTimeout, func(r *JobRecord) bool { return r.Announced },
		"the job launched although its accepted event's publish was never answered")
	if silent.silenced.Load() != 1 {
		t.Fatalf("%d accepted events published asynchronously, want 1", silent.silenced.Load())
	}
	var accepted []pipelinetest.StoredMessage
	for _, m := range b.eventsAbout(t, jobID) {
		if m.Subject == b.topo.Subjects.Event(messages.KindAccepted) {
			accepted = append(accepted, m)
		}
	}
	if len(accepted) != 1 {
		t.Fatalf("%d accepted events of the job in the stream, want 1 (the republish is a duplicate)", len(accepted))
	}
	if refs := acceptedRefs(rec); len(refs) != 1 || refs[0].Seq != accepted[0].Seq {
		t.Errorf("the record lists accepted events %+v; want the stored one at %d", refs, accepted[0].Seq)
	}
}

// awaitAck gives up on a future that never resolves, with an error that is
// not JetStream's answer (so a message with an ID is published again).
func TestAwaitAckGivesUpOnSilence(t *testing.T) {
	t.Parallel()
	f := &lostAckFuture{ok: make(chan *jetstream.PubAck), err: make(chan error)}
	_, err := awaitAck(t.Context(), f)
	if !errors.Is(err, errNoAck) || answered(err) || !unconfirmed(t.Context(), outMsg{msgID: "m"}, err) {
		t.Fatalf("awaitAck = %v, want errNoAck, a publish to repeat", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := awaitAck(ctx, f); !errors.Is(err, context.Canceled) {
		t.Errorf("awaitAck with a canceled context = %v", err)
	}
}
