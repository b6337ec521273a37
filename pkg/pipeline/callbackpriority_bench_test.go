package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// BenchmarkCallbackBehindPolls measures how long a callback's decision
// takes while 3,000 launched web executions, whose users have not finished,
// are polled as fast as the tenant's retrieval limit (15/s, burst 10)
// allows: every poll is due at once, all the time. Each iteration completes
// one execution at the simulator and times the decision event from there.
// "lane" reserves RateLimits.CallbackShare of the retrieval rate for
// callbacks (the default); "one-queue" is the old behaviour, callbacks and
// polls in one queue; "no-polls" is the baseline (nothing polled). Run it
// with
//
//	go test -run '^$' -bench BenchmarkCallbackBehindPolls -benchtime 20x ./pkg/pipeline/
//
// (docs/BENCHMARKS.md has the figures).
func BenchmarkCallbackBehindPolls(b *testing.B) {
	for _, c := range []struct {
		name      string
		share     float64
		pollEvery time.Duration
	}{
		{"no-polls", pipeline.DefaultCallbackShare, time.Hour}, // the baseline: the same executions, never polled while measured
		{"lane", pipeline.DefaultCallbackShare, 50 * time.Millisecond},
		{"one-queue", -1, 50 * time.Millisecond},
	} {
		b.Run(c.name, func(b *testing.B) { benchCallbackBehindPolls(b, 3000, c.share, c.pollEvery) })
	}
}

func benchCallbackBehindPolls(b *testing.B, waiting int, share float64, pollEvery time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := localstack.Start(ctx, localstack.Options{DataDir: b.TempDir(), Workers: 0, Retrievers: 0})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	limits := pipeline.RateLimits{Retrieval: pipeline.Rate{PerSecond: 15, Burst: 10}, MaxWait: 20 * time.Second, CallbackShare: share}
	ls, err := pipeline.NewLimiters(ctx, s.JS, s.Topology, limits, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	clients, err := pipeline.NewClients(pipeline.JumioConfig{BaseURL: s.Sim.URL, Credentials: s.Sim.Credentials(),
		UserAgent: "kycpipe-bench/1.0", Limiters: ls}, nil)
	if err != nil {
		b.Fatal(err)
	}
	w, err := pipeline.NewWorker(ctx, s.JS, pipeline.WorkerConfig{Topology: s.Topology, Jumio: clients, Concurrency: 64,
		AccountConcurrency: 16, CallbackURL: s.IngestURL + "/v1/callbacks/jumio"})
	if err != nil {
		b.Fatal(err)
	}
	// Polls due all the time: pollEvery apart, for ever.
	r, err := pipeline.NewRetriever(ctx, s.JS, pipeline.RetrieverConfig{Topology: s.Topology, Jumio: clients, Concurrency: 16,
		Schedule: []time.Duration{pollEvery}, PollTailEvery: pollEvery})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{w.Run, r.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	events := pipelinetest.Events(b, s.JS, s.Topology.Subjects)
	decisions := pipelinetest.Decisions(b, s.JS, s.Topology.Subjects)

	for i := range waiting {
		job := map[string]any{"jobId": fmt.Sprintf("wait-%04d", i), "customerInternalReference": fmt.Sprintf("wait-%04d", i),
			"workflowDefinition": map[string]any{"key": 10164}, "channel": "WEB"}
		raw, _ := json.Marshal(job)
		if _, err := s.JS.Publish(ctx, s.Topology.Subjects.JobsSubmit(), raw); err != nil {
			b.Fatal(err)
		}
	}
	launched := events.WaitN(b, waiting, 5*time.Minute, func(m pipelinetest.Received[*messages.Event]) bool {
		return m.Value.Kind == messages.KindLaunched
	}, "every execution launched")
	// Let the polls saturate the retrieval limit.
	warm := time.NewTimer(3 * time.Second)
	<-warm.C

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := launched[i%len(launched)].Value
		start := time.Now()
		if err := s.Sim.CompleteWeb(ev.WorkflowExecutionID); err != nil {
			b.Fatal(err)
		}
		decisions.WaitN(b, 1, time.Minute, pipelinetest.ForJob[*messages.DecisionEvent](ev.JobID), "decision")
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
	b.ReportMetric(float64((time.Second / 15).Milliseconds()), "slot-ms")
}
