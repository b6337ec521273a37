package pipeline_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// indexWrites records the statuses of the job-index entries published for
// each job, in order (a core subscription sees every publish).
type indexWrites struct {
	mu    sync.Mutex
	byJob map[string][]string
}

func watchIndexWrites(t *testing.T, b *bundle) *indexWrites {
	t.Helper()
	w := &indexWrites{byJob: map[string][]string{}}
	sub, err := b.stack.NC.Subscribe(b.subj.IndexJobs("*", "*", "*"), func(m *nats.Msg) {
		var e pipeline.IndexEntry
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Errorf("index entry %s: %v", m.Data, err)
			return
		}
		w.mu.Lock()
		w.byJob[e.JobID] = append(w.byJob[e.JobID], e.Status)
		w.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := b.stack.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *indexWrites) of(jobID string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.byJob[jobID])
}

// indexEntriesOf returns the statuses of the entries the index holds for a
// job (after the worker's and retriever's purges).
func indexEntriesOf(t *testing.T, b *bundle, jobID string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := b.stack.JS.Stream(ctx, b.subj.StreamIndex())
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(b.subj.IndexJobs("X", "X", "X"), "X.X.X.*") // <prefix>.index.jobs.
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+"*.*.*."+jobID))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for subj := range info.State.Subjects {
		out = append(out, strings.Split(strings.TrimPrefix(subj, prefix), ".")[0])
	}
	return out
}

// A worker's run makes one index move from where the job stood when the
// run began to where it stands at its end: ACCEPTED (published when the
// record is created, before any wait for Jumio) to FINALIZED, never the
// ACCOUNT_CREATED in between.
func TestWorkerMovesTheIndexOncePerRun(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	writes := watchIndexWrites(t, b)
	jobID := b.submit(t, emailJob("index-hold-1"), http.StatusAccepted, nil)
	b.waitDecision(t, jobID)
	want := []string{pipeline.StatusAccepted, pipeline.StatusFinalized, pipeline.StatusDecided}
	pipelinetest.Eventually(t, waitLong, func() bool { return len(writes.of(jobID)) >= len(want) }, "index writes")
	if got := writes.of(jobID); !slices.Equal(got, want) {
		t.Errorf("index entries published = %v, want %v", got, want)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		got := indexEntriesOf(t, b, jobID)
		return slices.Equal(got, []string{pipeline.StatusDecided})
	}, "the index holds only the DECIDED entry")
}

// A run that stops on the way publishes where it stopped, and the next
// run moves on from there.
func TestWorkerRunStoppedOnTheWayPublishesWhereItStopped(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	writes := watchIndexWrites(t, b)
	b.sim.FailNext(jumiotest.RouteUploadPreparedData, 1, http.StatusServiceUnavailable)
	jobID := b.submit(t, emailJob("index-hold-2"), http.StatusAccepted, nil)
	b.waitDecision(t, jobID)
	want := []string{pipeline.StatusAccepted, pipeline.StatusAccountCreated, pipeline.StatusFinalized, pipeline.StatusDecided}
	pipelinetest.Eventually(t, waitLong, func() bool { return len(writes.of(jobID)) >= len(want) }, "index writes")
	if got := writes.of(jobID); !slices.Equal(got, want) {
		t.Errorf("index entries published = %v, want %v", got, want)
	}
	pipelinetest.Eventually(t, waitLong, func() bool {
		return slices.Equal(indexEntriesOf(t, b, jobID), []string{pipeline.StatusDecided})
	}, "the index holds only the DECIDED entry")
}
