package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

func limiters(t *testing.T, n int, limits pipeline.RateLimits) []*pipeline.SharedLimiter {
	t.Helper()
	_, _, js := pipelinetest.RunJetStream(t)
	topo := pipeline.Topology{}
	if err := pipeline.Provision(t.Context(), js, topo); err != nil {
		t.Fatal(err)
	}
	var out []*pipeline.SharedLimiter
	for i := 0; i < n; i++ {
		// Each replica has its own Limiters, sharing only the bucket.
		ls, err := pipeline.NewLimiters(t.Context(), js, topo, limits, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ls.For(jumio.RegionAMER))
	}
	return out
}

// Three replicas together stay within one tenant's rate: the admission
// times conform to rate and burst, whatever the interleaving.
func TestSharedLimiterAcrossReplicas(t *testing.T) {
	t.Parallel()
	const rate, burst, perReplica = 40.0, 3, 20
	ls := limiters(t, 3, pipeline.RateLimits{Account: pipeline.Rate{PerSecond: rate, Burst: burst}, MaxWait: 10 * time.Second})
	var mu sync.Mutex
	var times []time.Time
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for _, l := range ls {
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-begin
				for i := 0; i < perReplica/2; i++ {
					if err := l.Wait(context.Background(), jumio.ClassAccount); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					times = append(times, time.Now())
					mu.Unlock()
				}
			}()
		}
	}
	start := time.Now()
	close(begin)
	wg.Wait()
	elapsed := time.Since(start)
	if len(times) != 3*perReplica {
		t.Fatalf("%d admissions", len(times))
	}
	// GCRA reserves slots at least 1/rate apart beyond the burst, and a
	// caller never proceeds before its slot: N admissions need at least
	// (N - 2·burst)/rate, however the replicas interleave. (Scheduling delays
	// only make the run longer.)
	if min := time.Duration(float64(len(times)-2*burst) / rate * float64(time.Second)); elapsed < min {
		t.Fatalf("%d admissions in %v; the shared limit allows them only over %v", len(times), elapsed, min)
	}
}

func TestSharedLimiterThrottlesFarOffSlots(t *testing.T) {
	t.Parallel()
	ls := limiters(t, 2, pipeline.RateLimits{Account: pipeline.Rate{PerSecond: 1, Burst: 1}, MaxWait: 1500 * time.Millisecond})
	// Six callers at once on two replicas: slots are 0s, 1s, 2s, …; those
	// more than MaxWait away are throttled instead of waiting.
	errs := make([]error, 6)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = ls[i%2].Wait(context.Background(), jumio.ClassAccount) }()
	}
	wg.Wait()
	var ok, throttled int
	for _, err := range errs {
		var th *jumio.ThrottledError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &th) && th.Delay > 0 && jumio.IsRetryable(err):
			throttled++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok < 1 || ok > 2 || throttled != len(errs)-ok {
		t.Errorf("%d admitted, %d throttled; want 1-2 admitted (slots 0s and 1s) and the rest throttled", ok, throttled)
	}
	// Unlimited classes never wait.
	if err := ls[0].Wait(context.Background(), jumio.ClassCredential); err != nil {
		t.Errorf("credential class: %v", err)
	}
}

func TestSharedLimiterSlowsDownAfter429(t *testing.T) {
	t.Parallel()
	ls := limiters(t, 2, pipeline.RateLimits{Retrieval: pipeline.Rate{PerSecond: 100, Burst: 5}, MaxWait: 50 * time.Millisecond})
	ctx := context.Background()
	if err := ls[0].Wait(ctx, jumio.ClassRetrieval); err != nil {
		t.Fatal(err)
	}
	// Replica 0 sees a 429 with Retry-After 30s: replica 1 must hold off too.
	ls[0].Observe(jumio.CallInfo{Class: jumio.ClassRetrieval, StatusCode: 429,
		Err: &jumio.APIError{StatusCode: 429, RetryAfter: 30 * time.Second}})
	err := ls[1].Wait(ctx, jumio.ClassRetrieval)
	var th *jumio.ThrottledError
	if !errors.As(err, &th) || th.Delay < 20*time.Second {
		t.Fatalf("after a 429 with Retry-After 30s another replica got %v", err)
	}
}

// Three workers, each with its own Jumio clients and limiter (as separate
// replicas), against a simulator enforcing a tenant limit: every job
// finishes and Jumio answers no 429.
func TestWorkersShareJumioRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *localstack.Options) {
		o.Workers = 0
		o.Sim.RateLimits = &jumiotest.RateLimits{AccountPerSecond: 10, AccountBurst: 3, RetrievalPerSecond: 100, RetrievalBurst: 50, TokenPerSecond: 100, TokenBurst: 50}
	})
	ctx := context.Background()
	limits := pipeline.RateLimits{Account: pipeline.Rate{PerSecond: 10, Burst: 2}, MaxWait: 5 * time.Second}
	for i := 0; i < 3; i++ {
		ls, err := pipeline.NewLimiters(ctx, b.stack.JS, b.stack.Topology, limits, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		clients, err := pipeline.NewClients(pipeline.JumioConfig{BaseURL: b.sim.URL, Credentials: b.sim.Credentials(), Limiters: ls}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.stack.AddWorker(ctx, func(c *pipeline.WorkerConfig) { c.Jumio = clients }); err != nil {
			t.Fatal(err)
		}
	}
	const jobs = 30
	for i := 0; i < jobs; i++ {
		b.submit(t, emailJob(fmt.Sprintf("order-rl-%d", i)), 202, nil)
	}
	b.decisions.WaitN(t, jobs, waitLong, func(pipelinetest.Received[*messages.DecisionEvent]) bool { return true }, "decisions")
	st := b.sim.Stats()
	if st.AccountsCreated != jobs {
		t.Errorf("accounts = %d", st.AccountsCreated)
	}
	if st.RateLimitedByRoute["create_account"] != 0 {
		t.Errorf("Jumio answered %d 429s to account calls; the shared limiter should prevent them", st.RateLimitedByRoute["create_account"])
	}
}
