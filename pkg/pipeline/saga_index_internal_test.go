package pipeline

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// indexWatchKV is the job-state bucket, noting in order when a job record
// naming an execution was written and when an execution's index entry was
// begun; with hold set, an index write waits until its context ends (a
// worker that dies during it).
type indexWatchKV struct {
	jetstream.KeyValue
	hold       atomic.Bool // hold index writes
	holdRecord atomic.Bool // hold writes of a record that names an execution

	mu     sync.Mutex
	events []string
}

func (kv *indexWatchKV) note(e string) {
	kv.mu.Lock()
	kv.events = append(kv.events, e)
	kv.mu.Unlock()
}

func (kv *indexWatchKV) seen(e string) int {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for i, x := range kv.events {
		if x == e {
			return i
		}
	}
	return -1
}

func (kv *indexWatchKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	var r struct {
		Exec string `json:"workflowExecutionId"`
	}
	names := strings.HasPrefix(key, "job.") && json.Unmarshal(value, &r) == nil && r.Exec != ""
	if names && kv.holdRecord.Load() {
		kv.note("recording " + r.Exec)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	rev, err := kv.KeyValue.Update(ctx, key, value, last)
	if err == nil && names {
		kv.note("recorded " + r.Exec)
	}
	return rev, err
}

func (kv *indexWatchKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if exec, ok := strings.CutPrefix(key, "exec."); ok {
		kv.note("indexing " + exec)
		if kv.hold.Load() {
			<-ctx.Done()
			return 0, ctx.Err()
		}
	}
	return kv.KeyValue.Put(ctx, key, value)
}

// indexBench is a worker on a Jumio simulator whose job-state bucket is
// an indexWatchKV, with a short acknowledgement wait.
type indexBench struct {
	js     jetstream.JetStream
	topo   Topology
	sim    *jumiotest.Server
	submit *Submitter
}

func newIndexBench(t *testing.T) *indexBench {
	t.Helper()
	_, _, js := pipelinetest.RunJetStream(t)
	topo := Topology{Storage: jetstream.MemoryStorage, WorkerAckWait: 2 * time.Second}.WithDefaults()
	if err := Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	sim, err := jumiotest.StartServer(jumiotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	submit, err := NewSubmitter(t.Context(), js, topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &indexBench{js: js, topo: topo, sim: sim, submit: submit}
}

// startWorker runs a worker whose bucket is kv until stop is called (or
// the test ends); stop returns once the worker has stopped.
func (b *indexBench) startWorker(t *testing.T, kv *indexWatchKV) (w *Worker, stop func()) {
	t.Helper()
	log := pipelinetest.Logger(t)
	clients, err := NewClients(JumioConfig{BaseURL: b.sim.URL, Credentials: b.sim.Credentials(), UserAgent: "kycpipe-test/1.0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err = NewWorker(ctx, b.js, WorkerConfig{Topology: b.topo, Jumio: clients, CallbackURL: "https://kycpipe.example/v1/callbacks/jumio",
		Backoff: Backoff{Initial: 50 * time.Millisecond, Max: time.Second}, Logger: log.Named("worker"), ShutdownGrace: 100 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if kv != nil {
		kv.KeyValue = w.store.kv
		w.store.kv = kv
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return w, stop
}

func (b *indexBench) submitEmailJob(t *testing.T, w *Worker, ref string) string {
	t.Helper()
	a := &acceptedBench{submit: b.submit, w: w}
	return a.submitJob(t, map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10066},
		"channel": "API", "preparedData": map[string]any{"email": "jane.doe@example.com"}})
}

// waitExecution waits until the job's record names an execution.
func waitExecution(t *testing.T, w *Worker, jobID string) string {
	t.Helper()
	var exec string
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		rec, _, err := w.store.getLatest(t.Context(), jobID)
		if err == nil {
			exec = rec.WorkflowExecutionID
		}
		return exec != ""
	}, "the record never named an execution")
	return exec
}

// The execution's index entry (which names the job) is written only once
// the job record names the execution: a worker that dies in between must
// not leave an entry that the job's erasure cannot find through the
// record. The soak of 2026-12-07 16:44 found one (both were written side
// by side, and the worker was SIGKILLed between the two).
func TestExecutionIndexedOnlyOnceRecorded(t *testing.T) {
	t.Parallel()
	b := newIndexBench(t)
	kv := &indexWatchKV{}
	w, _ := b.startWorker(t, kv)
	jobID := b.submitEmailJob(t, w, "index-order-1")
	exec := waitExecution(t, w, jobID)
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		got, err := w.store.jobForExecutionLatest(t.Context(), exec)
		return err == nil && got == jobID
	}, "the execution was never indexed")
	recorded, indexing := kv.seen("recorded "+exec), kv.seen("indexing "+exec)
	if recorded < 0 || indexing < recorded {
		kv.mu.Lock()
		t.Errorf("the index write began before the record named the execution: %q", kv.events)
		kv.mu.Unlock()
	}
}

// A worker that dies after recording the execution and before indexing it
// leaves the job to its redelivery, which indexes the execution (callbacks
// need the entry) and carries on without a second Jumio account.
func TestRedeliveryIndexesAnExecutionRecordedWithoutItsEntry(t *testing.T) {
	t.Parallel()
	b := newIndexBench(t)
	kv := &indexWatchKV{}
	kv.hold.Store(true)
	w1, stop := b.startWorker(t, kv)
	jobID := b.submitEmailJob(t, w1, "index-redelivery-1")
	exec := waitExecution(t, w1, jobID)
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool { return kv.seen("indexing "+exec) >= 0 },
		"the first worker never began the index write")
	stop() // dies with the write held

	w2, _ := b.startWorker(t, nil)
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		got, err := w2.store.jobForExecutionLatest(t.Context(), exec)
		return err == nil && got == jobID
	}, "the redelivery never indexed the execution")
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		rec, _, err := w2.store.getLatest(t.Context(), jobID)
		return err == nil && rec.Announced
	}, "the redelivery did not finish the job")
	rec, _, err := w2.store.getLatest(t.Context(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.WorkflowExecutionID != exec || rec.AmbiguousCreates != 0 {
		t.Errorf("record: execution %s (want %s), ambiguous creates %d", rec.WorkflowExecutionID, exec, rec.AmbiguousCreates)
	}
	if n := b.sim.Stats().AccountsByReference["index-redelivery-1"]; n != 1 {
		t.Errorf("%d Jumio accounts, want 1", n)
	}
}

// A worker that dies between Jumio's answer to the account call and the
// checkpoint leaves an account no record names. When the job's erasure is
// requested meanwhile, its redelivery finds the job being erased: it
// counts the ambiguous creation, so the tombstone (and the eraser's log)
// say that an account may be left at Jumio. The soak of 2026-12-07 16:44
// erased such a job saying nothing of it.
func TestRedeliveryOfAJobBeingErasedCountsAnUnrecordedAccount(t *testing.T) {
	t.Parallel()
	b := newIndexBench(t)
	kv := &indexWatchKV{}
	kv.holdRecord.Store(true)
	w1, stop := b.startWorker(t, kv)
	const ref = "erasing-unrecorded-1"
	jobID := b.submitEmailJob(t, w1, ref)
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool { return b.sim.Stats().AccountsByReference[ref] == 1 },
		"the account was never created")
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		kv.mu.Lock()
		defer kv.mu.Unlock()
		return len(kv.events) > 0
	}, "the account checkpoint never began")
	if _, err := RequestErasure(t.Context(), b.js, w1.store, b.topo.Subjects, ErasureRequest{JobID: jobID, Source: messages.ErasureRequest, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	stop() // dies with the checkpoint held

	w2, _ := b.startWorker(t, nil)
	var rec *JobRecord
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		r, _, err := w2.store.getLatest(t.Context(), jobID)
		rec = r
		return err == nil && r.Status == StatusErased
	}, "the job was never erased")
	if rec.AmbiguousCreates != 1 || rec.Erasure == nil || rec.Erasure.Jumio != messages.JumioNotCreated {
		t.Errorf("tombstone: ambiguous creates %d (want 1), erasure %+v", rec.AmbiguousCreates, rec.Erasure)
	}
}
