package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// This file reproduces, in one process, what a network partition does to
// the job-state bucket's reads (docs/RELIABILITY.md, "Findings"): a replica
// that was cut off keeps answering direct gets with what it had.

// laggingReplica stands in for a replica of the job-state bucket that
// stopped replicating at one point: a sealed mirror of the bucket's stream,
// frozen as the stream was when it was made. While it serves, it alone
// answers direct gets (as a cut-off replica answers the clients of its
// server); the bucket's own stream answers only requests to its leader
// ($JS.API.STREAM.MSG.GET). Handles opened before keep using direct gets.
type laggingReplica struct {
	t      *testing.T
	js     jetstream.JetStream
	origin string // KV_<bucket>, or another stream
	mirror jetstream.StreamConfig
}

// freezeReplica makes the lagging replica from the bucket's stream as it is
// now (it waits until the mirror has every message the stream has).
//
// nats-server makes a mirror answer direct gets (mirror_direct) whenever its
// origin allows them, at creation and at every update of the mirror: the
// origin's direct gets are off while the mirror is made, updated, or meant
// to be the only one answering.
func freezeReplica(t *testing.T, js jetstream.JetStream, bucket string) *laggingReplica {
	t.Helper()
	return freezeStreamReplica(t, js, "KV_"+bucket, bucket)
}

// freezeStreamReplica is freezeReplica of any stream (an object store's
// OBJ_<bucket>); name names the mirror (LAGGING_<name>).
func freezeStreamReplica(t *testing.T, js jetstream.JetStream, stream, name string) *laggingReplica {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	l := &laggingReplica{t: t, js: js, origin: stream}
	origin, err := js.Stream(ctx, l.origin)
	if err != nil {
		t.Fatal(err)
	}
	last := origin.CachedInfo().State.LastSeq
	l.originDirect(false)
	l.mirror = jetstream.StreamConfig{Name: "LAGGING_" + name, Mirror: &jetstream.StreamSource{Name: l.origin},
		MaxBytes: 64 << 20, Storage: jetstream.FileStorage}
	m, err := js.CreateStream(ctx, l.mirror)
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		info, err := m.Info(ctx)
		return err == nil && info.State.LastSeq >= last
	}, "the mirror never caught up with the bucket")
	l.mirror.Sealed = true
	sealed, err := js.UpdateStream(ctx, l.mirror)
	if err != nil {
		t.Fatalf("seal the mirror: %v", err)
	}
	l.mirror = sealed.CachedInfo().Config // sealing denies deletes and purges
	l.originDirect(true)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), l.mirror.Name) })
	return l
}

// serve makes the frozen copy answer every direct get of the bucket.
func (l *laggingReplica) serve() {
	l.t.Helper()
	l.mirror.MirrorDirect = true
	l.updateMirror()
	l.originDirect(false)
}

// stop lets the bucket's stream answer direct gets again.
func (l *laggingReplica) stop() {
	l.t.Helper()
	l.mirror.MirrorDirect = false
	l.updateMirror() // while the origin's are off
	l.originDirect(true)
}

func (l *laggingReplica) updateMirror() {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := l.js.UpdateStream(ctx, l.mirror); err != nil {
		l.t.Fatalf("mirror: %v", err)
	}
}

func (l *laggingReplica) originDirect(on bool) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := l.js.Stream(ctx, l.origin)
	if err != nil {
		l.t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.AllowDirect = on
	if _, err := l.js.UpdateStream(ctx, cfg); err != nil {
		l.t.Fatalf("bucket stream: %v", err)
	}
}

// jumioGate sits in front of the simulator and holds requests of one kind
// until the test lets them through, so that a test decides the order in
// which concurrent deliveries reach Jumio.
type jumioGate struct {
	srv   *httptest.Server
	mu    sync.Mutex
	gates map[string]*gate // "METHOD path-prefix"
}

type gate struct {
	answered bool          // the request reaches Jumio; its answer is held
	arrived  chan struct{} // one value per held request
	release  chan struct{} // one value lets one request through
	open     bool          // everything goes through
	closeCh  chan struct{} // closed when opened for good
	held     int
}

func newJumioGate(t *testing.T, sim *jumiotest.Server) *jumioGate {
	t.Helper()
	u, err := url.Parse(sim.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	g := &jumioGate{gates: map[string]*gate{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gt := g.match(r); gt != nil && gt.answered {
			// Jumio has done the call; only its answer is held.
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			if !gt.wait(r) {
				return
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		if gt := g.match(r); gt != nil {
			select {
			case gt.arrived <- struct{}{}:
			case <-r.Context().Done():
				return
			}
			select {
			case <-gt.release:
			case <-gt.closeCh:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		g.mu.Lock()
		for _, gt := range g.gates {
			if !gt.open {
				gt.open = true
				close(gt.closeCh)
			}
		}
		g.mu.Unlock()
		g.srv.Close()
	})
	return g
}

// hold holds every request whose method and path start as given.
func (g *jumioGate) hold(method, pathPrefix string) *gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	gt := &gate{arrived: make(chan struct{}, 16), release: make(chan struct{}, 16), closeCh: make(chan struct{})}
	g.gates[method+" "+pathPrefix] = gt
	return gt
}

func (g *jumioGate) match(r *http.Request) *gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, gt := range g.gates {
		method, prefix, _ := strings.Cut(k, " ")
		if r.Method == method && strings.HasPrefix(r.URL.Path, prefix) && !gt.open {
			return gt
		}
	}
	return nil
}

// holdAnswers lets every request whose method and path start as given reach
// Jumio, and holds its answer.
func (g *jumioGate) holdAnswers(method, pathPrefix string) *gate {
	gt := g.hold(method, pathPrefix)
	g.mu.Lock()
	defer g.mu.Unlock()
	gt.answered = true
	return gt
}

// wait reports a held request and waits until it may go on (false: the
// client gave up).
func (gt *gate) wait(r *http.Request) bool {
	select {
	case gt.arrived <- struct{}{}:
	case <-r.Context().Done():
		return false
	}
	select {
	case <-gt.release:
	case <-gt.closeCh:
	case <-r.Context().Done():
		return false
	}
	return true
}

// await waits until n requests are held.
func (gt *gate) await(t *testing.T, n int, what string) {
	t.Helper()
	for gt.held < n {
		pipelinetest.WaitFor(t, gt.arrived, waitLong, what)
		gt.held++
	}
}

// let lets one held request through.
func (gt *gate) let() { gt.release <- struct{}{} }

// openUp lets every request through, held or to come.
func (g *jumioGate) openUp(gt *gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !gt.open {
		gt.open = true
		close(gt.closeCh)
	}
}

// gatedBundle is a pipeline whose Jumio calls pass a gate, with its own
// metrics registry.
type gatedBundle struct {
	*bundle
	gate *jumioGate
	reg  *prometheus.Registry
}

func setupGated(t *testing.T, mutate func(*localstack.Options)) *gatedBundle {
	t.Helper()
	sim, err := jumiotest.StartServer(jumiotest.Options{Logger: pipelinetest.Logger(t).Named("jumiosim")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	g := newJumioGate(t, sim)
	reg := prometheus.NewRegistry()
	b := setup(t, func(o *localstack.Options) {
		o.JumioBaseURL, o.JumioCredentials, o.Registry = g.srv.URL, sim.Credentials(), reg
		if mutate != nil {
			mutate(o)
		}
	})
	b.sim = sim
	return &gatedBundle{bundle: b, gate: g, reg: reg}
}

// counter reads a counter of the pipeline's metrics.
func (b *gatedBundle) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// decisionNoDeadLetter waits for the job's decision, failing the test as
// soon as anything is dead-lettered.
func (b *bundle) decisionNoDeadLetter(t *testing.T, jobID string) *messages.DecisionEvent {
	t.Helper()
	var dec *messages.DecisionEvent
	pipelinetest.Eventually(t, waitLong, func() bool {
		if dls := b.dlq.All(); len(dls) != 0 {
			t.Fatalf("%d dead letters, the first (%s): %s", len(dls), dls[0].Header.Get(messages.HeaderReason), dls[0].Header.Get(messages.HeaderError))
		}
		if got := b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](jobID)); len(got) > 0 {
			dec = got[0].Value
			return true
		}
		return false
	}, "no decision for %s", jobID)
	return dec
}

// jobRecord reads a job's record as the bucket's own stream has it (never
// from the lagging copy: a stream handle opened while the copy serves reads
// from the leader, because the bucket's direct gets are off).
func jobRecord(t *testing.T, js jetstream.JetStream, subj messages.Subjects, jobID string) (*pipeline.JobRecord, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := js.Stream(ctx, "KV_"+subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, "$KV."+subj.BucketJobs()+".job."+jobID)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// No worker has picked the job up yet: it has no record (an empty
		// one, revision 0, for the callers' polls).
		return &pipeline.JobRecord{}, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var rec pipeline.JobRecord
	if err := json.Unmarshal(raw.Data, &rec); err != nil {
		t.Fatal(err)
	}
	return &rec, raw.Sequence
}

// TestStaleJobRecordsAfterAPartition: while a replica that lags answers the
// job-state reads (the record as ingest created it: no account, no
// execution, no index entry), the job still runs to one decision and
// nothing is dead-lettered. Before, the poll task called Jumio with empty
// IDs ("jumio: invalid argument: empty ID": dead letter, job FAILED) and
// ingest dropped the job's callbacks as unknown executions.
func TestStaleJobRecordsAfterAPartition(t *testing.T) {
	t.Parallel()
	b := setupGated(t, nil)
	accounts := b.gate.hold(http.MethodPost, "/api/v1/accounts")
	jobID := b.submit(t, emailJob("order-stale-1"), 202, nil)
	accounts.await(t, 1, "the worker's account call")
	// The record is as ingest created it, and stays so on the replica.
	replica := freezeReplica(t, b.stack.JS, b.subj.BucketJobs())
	replica.serve()
	b.gate.openUp(accounts)

	dec := b.decisionNoDeadLetter(t, jobID)
	// The retriever records the decision after it has published it.
	var rec *pipeline.JobRecord
	pipelinetest.Eventually(t, waitLong, func() bool {
		rec, _ = jobRecord(t, b.stack.JS, b.subj, jobID)
		return rec.Status == pipeline.StatusDecided
	}, "the record never decided")
	if rec.WorkflowExecutionID != dec.WorkflowExecutionID {
		t.Fatalf("record %s on execution %s, decision on %s", rec.Status, rec.WorkflowExecutionID, dec.WorkflowExecutionID)
	}
	// Ingest stored the callbacks (its lookup of the execution went to the
	// leader when the replica did not know it) instead of dropping them.
	if n := b.counter(t, "kycpipe_callbacks_total", map[string]string{"result": "unknown_execution"}); n != 0 {
		t.Errorf("%v callbacks dropped as unknown executions", n)
	}
	if n := b.counter(t, "kycpipe_callbacks_total", map[string]string{"result": "published"}); n == 0 {
		t.Errorf("no callback stored")
	}
	replica.stop()
	if got := b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](jobID)); len(got) != 1 {
		t.Errorf("%d decisions", len(got))
	}
	if st := b.sim.Stats(); st.AccountsByReference["order-stale-1"] != 1 {
		t.Errorf("accounts %v", st.AccountsByReference)
	}
}

// TestPollTaskReadsPastALaggingReplica: the poll task alone (callbacks are
// lost) decides a job whose record, on the replica that answers direct
// gets, names no execution. Before: "jumio: invalid argument: empty ID",
// dead letter, job FAILED.
func TestPollTaskReadsPastALaggingReplica(t *testing.T) {
	t.Parallel()
	b := setupGated(t, nil)
	b.sim.SetCallbackOptions(jumiotest.CallbackOptions{DropRate: 1})
	accounts := b.gate.hold(http.MethodPost, "/api/v1/accounts")
	jobID := b.submit(t, emailJob("order-stale-poll-1"), 202, nil)
	accounts.await(t, 1, "the worker's account call")
	replica := freezeReplica(t, b.stack.JS, b.subj.BucketJobs())
	replica.serve()
	b.gate.openUp(accounts)

	dec := b.decisionNoDeadLetter(t, jobID)
	// The poll counts its result after publishing the decision.
	decidedByPolls := func() float64 {
		return b.counter(t, "kycpipe_retrieval_polls_total", map[string]string{"trigger": "poll", "result": "decided"})
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return decidedByPolls() >= 1 }, "no poll counted the decision")
	if n := decidedByPolls(); n != 1 {
		t.Errorf("decided by polls: %v, want 1", n)
	}
	replica.stop()
	rec, _ := jobRecord(t, b.stack.JS, b.subj, jobID)
	if rec.Status != pipeline.StatusDecided || rec.WorkflowExecutionID != dec.WorkflowExecutionID {
		t.Fatalf("record %s on execution %s, decision on %s", rec.Status, rec.WorkflowExecutionID, dec.WorkflowExecutionID)
	}
}

// TestPollTaskWaitsForItsExecution: a poll task whose job record names no
// execution even on the leader (what a deposed leader answers during a
// partition) is retried, never given up on and never used to call Jumio,
// until the record names the task's execution; then it decides the job.
func TestPollTaskWaitsForItsExecution(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	b := setup(t, func(o *localstack.Options) {
		o.Retrievers, o.Registry = 0, reg
		o.Sim.Callbacks = jumiotest.CallbackOptions{DropRate: 1}
	})
	g := &gatedBundle{bundle: b, reg: reg}
	jobID := b.submit(t, emailJob("order-stale-wait-1"), 202, nil)
	var rec *pipeline.JobRecord
	var rev uint64
	pipelinetest.Eventually(t, waitLong, func() bool {
		rec, rev = jobRecord(t, b.stack.JS, b.subj, jobID)
		return rec.Announced
	}, "the job was never announced")
	ctx := context.Background()
	kv, err := b.stack.JS.KeyValue(ctx, b.subj.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	account, execution := rec.AccountID, rec.WorkflowExecutionID
	put := func(r *pipeline.JobRecord, rev uint64) uint64 {
		raw, _ := json.Marshal(r)
		next, err := kv.Update(ctx, "job."+jobID, raw, rev)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	rec.AccountID, rec.WorkflowExecutionID = "", ""
	rev = put(rec, rev)
	if _, err := b.stack.AddRetriever(ctx, nil); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		if dls := b.dlq.All(); len(dls) != 0 {
			t.Fatalf("dead-lettered: %s", dls[0].Header.Get(messages.HeaderError))
		}
		return g.counter(t, "kycpipe_retrieval_polls_total", map[string]string{"trigger": "poll", "result": "stale_record"}) >= 2
	}, "the poll task never found the record stale twice")
	if st := b.sim.Stats(); st.Requests["status"] != 0 {
		t.Errorf("%d status requests while the record named no execution", st.Requests["status"])
	}
	// The record catches up.
	rec, rev = jobRecord(t, b.stack.JS, b.subj, jobID)
	rec.AccountID, rec.WorkflowExecutionID = account, execution
	put(rec, rev)
	dec := b.waitDecision(t, jobID)
	if dec.WorkflowExecutionID != execution {
		t.Errorf("decision for %s, want %s", dec.WorkflowExecutionID, execution)
	}
	if dls := b.dlq.All(); len(dls) != 0 {
		t.Fatalf("dead-lettered: %s", dls[0].Header.Get(messages.HeaderError))
	}
}

// TestRaceLoserContinuesFromTheWinnersRecord: two deliveries of one job
// race to create its Jumio account. The winner records its account and
// finishes the job; the loser finds the winner's execution recorded,
// deletes its own account at Jumio, reads the record again from the
// bucket's leader (a replica that lags still shows the record as ingest
// created it) and, the job being announced, acks. Before, the loser went on
// with the stale record and gave up: "terminal: the workflow has no
// credential that accepts prepared data" (dead letter, job FAILED, although
// the winner had finalized it).
func TestRaceLoserContinuesFromTheWinnersRecord(t *testing.T) {
	t.Parallel()
	b := setupGated(t, nil)
	accounts := b.gate.hold(http.MethodPost, "/api/v1/accounts")
	deletes := b.gate.hold(http.MethodDelete, "/api/v1/accounts/")
	const jobID, ref = "race-1", "order-race-1"
	job := emailJob(ref)
	job["jobId"] = jobID
	body, _ := json.Marshal(job)
	// Two messages of the same job (as an upstream that published it twice,
	// or a redelivery while the first delivery is cut off from NATS).
	for range 2 {
		if err := b.stack.NC.Publish(b.subj.JobsSubmit(), body); err != nil {
			t.Fatal(err)
		}
	}
	accounts.await(t, 2, "both deliveries' account calls")
	replica := freezeReplica(t, b.stack.JS, b.subj.BucketJobs())

	accounts.let() // the winner
	pipelinetest.Eventually(t, waitLong, func() bool {
		rec, _ := jobRecord(t, b.stack.JS, b.subj, jobID)
		return rec.Announced
	}, "the winner never announced the job")
	winner, _ := jobRecord(t, b.stack.JS, b.subj, jobID)

	accounts.let() // the loser: it finds the winner's execution and deletes its own account
	deletes.await(t, 1, "the loser deleting its account")
	replica.serve()
	b.gate.openUp(deletes)
	pipelinetest.Eventually(t, waitLong, func() bool {
		if dls := b.dlq.All(); len(dls) != 0 {
			t.Fatalf("dead-lettered (%s): %s", dls[0].Header.Get(messages.HeaderReason), dls[0].Header.Get(messages.HeaderError))
		}
		return consumerIdle(t, b.bundle, b.subj.StreamJobs(), pipeline.ConsumerWorker)
	}, "the deliveries were not both acked")
	replica.stop()

	dec := b.decisionNoDeadLetter(t, jobID)
	rec, _ := jobRecord(t, b.stack.JS, b.subj, jobID)
	if rec.Status != pipeline.StatusDecided || dec.WorkflowExecutionID != winner.WorkflowExecutionID || rec.WorkflowExecutionID != winner.WorkflowExecutionID {
		t.Errorf("record %s on %s, decision on %s, winner's execution %s", rec.Status, rec.WorkflowExecutionID, dec.WorkflowExecutionID, winner.WorkflowExecutionID)
	}
	st := b.sim.Stats()
	if st.AccountsByReference[ref] != 2 || st.Requests["delete_account"] != 1 || st.FinalizesByExecution[winner.WorkflowExecutionID] != 1 || st.Finalizes != 1 {
		t.Errorf("accounts %d, deletes %d, finalizes %v", st.AccountsByReference[ref], st.Requests["delete_account"], st.FinalizesByExecution)
	}
	if rec.AmbiguousCreates != 0 {
		t.Errorf("ambiguous creates %d: the race was not a crash", rec.AmbiguousCreates)
	}
	if got := b.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](jobID)); len(got) != 1 {
		t.Errorf("%d decisions", len(got))
	}
	// Only the winner's execution is indexed: the loser's entry, which no
	// erasure of the job would find, was removed with its account.
	var indexed []string
	for _, k := range pipelinetest.KVKeys(t, b.stack.JS, b.subj.BucketJobs()) {
		if strings.HasPrefix(k, "exec.") {
			indexed = append(indexed, k)
		}
	}
	if len(indexed) != 1 || indexed[0] != "exec."+winner.WorkflowExecutionID {
		t.Errorf("execution index %v, want only the winner's %s", indexed, winner.WorkflowExecutionID)
	}
}

// A decision can be published before the worker records its finalize: the
// simulator (like Jumio, quickly) processes the execution and calls back
// while the finalize answer is on its way. The worker's checkpoint then
// must not move the record back from DECIDED to FINALIZED (it did: the
// status API showed FINALIZED after the decision, and the poll task
// decided the job a second time; seen by TestDocumentedCommands).
func TestFinalizeAfterTheDecisionKeepsDecided(t *testing.T) {
	t.Parallel()
	b := setupGated(t, nil)
	finalize := b.gate.holdAnswers(http.MethodPut, "/link/api/v1/accounts/")
	jobID := b.submit(t, emailJob("order-late-finalize"), 202, nil)
	finalize.await(t, 1, "the finalize call")
	if dec := b.decisionNoDeadLetter(t, jobID); dec.Decision.Type != messages.DecisionPassed {
		t.Fatalf("decision %+v", dec.Decision)
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, jobID).Status == pipeline.StatusDecided }, "the record never DECIDED")
	finalize.let()
	pipelinetest.Eventually(t, waitLong, func() bool {
		rec, _ := jobRecord(t, b.stack.JS, b.subj, jobID)
		return rec.Announced
	}, "the worker never announced the job")
	rec, _ := jobRecord(t, b.stack.JS, b.subj, jobID)
	if rec.Status != pipeline.StatusDecided {
		t.Errorf("status %s after the late finalize answer, want DECIDED", rec.Status)
	}
	decided := false
	for _, e := range rec.Timeline {
		if decided && e.Status != pipeline.StatusDecided {
			t.Errorf("the timeline leaves DECIDED for %s: %+v", e.Status, rec.Timeline)
		}
		decided = decided || e.Status == pipeline.StatusDecided
	}
}

// A worker whose replica of the image store has not applied an image yet
// (a follower answers the direct get of the image's meta entry with "not
// found") asks the leader, retries, and decides the job once the replica
// has it, instead of failing it as "image no longer in the image store".
func TestImageNotYetOnAReplicaIsRetried(t *testing.T) {
	t.Parallel()
	b := setupGated(t, nil)
	replica := freezeStreamReplica(t, b.stack.JS, "OBJ_"+b.subj.BucketImages(), "images")
	replica.serve()
	ct, body := multipartBody(t, imageJobWith("order-lagging-image-1", nil),
		map[string][]byte{"FRONT": jumiotest.PNG(640, 400), "FACE": jumiotest.JPEG(480, 640)}, "FRONT", "FACE")
	r := b.do(t, http.MethodPost, "/v1/verifications", ct, body, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("multipart: %d %s", r.status, r.body)
	}
	var sub struct{ JobID string }
	r.json(t, &sub)
	retries := func() float64 {
		return b.counter(t, "kycpipe_messages_total", map[string]string{"stage": messages.StageWorker, "outcome": "retry"})
	}
	deadLetters := func() float64 {
		return b.counter(t, "kycpipe_dead_letters_total", map[string]string{"stage": messages.StageWorker})
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return retries() > 0 || deadLetters() > 0 }, "the worker neither retried nor failed the job")
	if n := deadLetters(); n != 0 {
		t.Fatalf("%v worker dead letters while the replica lagged, want 0 (a retry)", n)
	}
	if st := b.sim.Stats(); st.Uploads != 0 {
		t.Fatalf("%d parts uploaded while the replica lagged", st.Uploads)
	}
	replica.stop()
	d := b.waitDecision(t, sub.JobID)
	if d.Decision.Type == "" {
		t.Errorf("decision %+v", d)
	}
	if n := deadLetters(); n != 0 {
		t.Errorf("%v worker dead letters, want 0", n)
	}
}
