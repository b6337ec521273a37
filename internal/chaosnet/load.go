package chaosnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/internal/soak"
)

// attempt is one HTTP submission as the client saw it.
type attempt struct {
	start      time.Time
	dur        time.Duration
	status     int    // 0: no answer
	retryAfter bool   // a Retry-After header of whole seconds ≥ 1
	failure    string // no answer: "timeout" (past the client's timeout) or "connection"
}

// loader submits jobs at a steady rate, each retried with the same
// Idempotency-Key until ingest accepts it (honouring Retry-After), and
// records every attempt.
type loader struct {
	url, apiKey string
	client      *http.Client
	rate        float64
	retryFor    time.Duration           // how long a submission is retried
	onAccept    func(jobID, ref string) // called once per accepted job (nil: nothing)

	rngMu sync.Mutex
	rng   *rand.Rand

	mu          sync.Mutex
	attempts    []attempt
	accepted    map[string]string // job ID → reference
	submitted   int
	notAccepted int
}

func newLoader(url, apiKey string, rate float64, timeout time.Duration, seed uint64) *loader {
	return &loader{url: url, apiKey: apiKey, rate: rate, retryFor: 3 * time.Minute,
		client:   &http.Client{Timeout: timeout},
		rng:      rand.New(rand.NewPCG(seed, seed^0x5bd1e995)),
		accepted: map[string]string{}}
}

func (l *loader) intn(n int) int {
	l.rngMu.Lock()
	defer l.rngMu.Unlock()
	return l.rng.IntN(n)
}

// body is job n: API prepared-data jobs, some web jobs (completed by the
// simulator), a few ending WARNING or REJECTED.
func (l *loader) body(n int) (string, []byte) {
	ref := fmt.Sprintf("cn-%06d", n)
	switch r := l.intn(100); {
	case r < 5:
		ref += "-warn"
	case r < 8:
		ref += "-reject"
	}
	job := map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10066},
		"channel": "API", "preparedData": map[string]any{"email": soak.Email(ref)}}
	if l.intn(100) < 15 {
		job = map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10164}, "channel": "WEB"}
	}
	// Every personal field carries the reference (the erasure check's
	// marker scan looks for it).
	job["userReference"] = soak.UserReference(ref)
	b, _ := json.Marshal(job)
	return ref, b
}

// run submits until loadCtx ends; submissions still being retried then go
// on (bounded by ctx and retryFor), like clients that keep retrying.
func (l *loader) run(ctx, loadCtx context.Context) {
	interval := time.Duration(float64(time.Second) / l.rate)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				l.submit(ctx, n)
			}
		}()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-loadCtx.Done():
			close(work)
			wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case work <- n:
			l.mu.Lock()
			l.submitted++
			l.mu.Unlock()
		case <-loadCtx.Done():
		}
	}
}

func (l *loader) submit(ctx context.Context, n int) {
	ref, body := l.body(n)
	deadline := time.Now().Add(l.retryFor)
	backoff := 200 * time.Millisecond
	for time.Now().Before(deadline) {
		a, jobID, wait := l.once(ctx, ref, body)
		l.mu.Lock()
		l.attempts = append(l.attempts, a)
		_, seen := l.accepted[jobID]
		if jobID != "" {
			l.accepted[jobID] = ref
		}
		l.mu.Unlock()
		if jobID != "" {
			if !seen && l.onAccept != nil {
				l.onAccept(jobID, ref)
			}
			return
		}
		if a.status >= 400 && a.status < 500 {
			break // refused for good: counted as never accepted
		}
		if wait <= 0 {
			wait, backoff = backoff, min(backoff*2, 3*time.Second)
		}
		if !ctxutil.Sleep(ctx, wait) {
			break
		}
	}
	l.mu.Lock()
	l.notAccepted++
	l.mu.Unlock()
}

// once sends one attempt; it returns the job ID when accepted, and the
// Retry-After wait of a 503.
func (l *loader) once(ctx context.Context, ref string, body []byte) (attempt, string, time.Duration) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/v1/verifications", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.apiKey)
	req.Header.Set("Idempotency-Key", ref)
	a := attempt{start: time.Now()}
	resp, err := l.client.Do(req)
	a.dur = time.Since(a.start)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			a.failure = "timeout"
		} else {
			a.failure = "connection"
		}
		return a, "", 0
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.status = resp.StatusCode
	var wait time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 1 {
		a.retryAfter, wait = true, time.Duration(s)*time.Second
	}
	if a.status == http.StatusAccepted || a.status == http.StatusOK {
		var out struct{ JobID string }
		if json.Unmarshal(rb, &out) == nil && out.JobID != "" {
			return a, out.JobID, 0
		}
	}
	return a, "", wait
}

// snapshot returns the attempts and accepted jobs so far.
func (l *loader) snapshot() ([]attempt, map[string]string, int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acc := make(map[string]string, len(l.accepted))
	for k, v := range l.accepted {
		acc[k] = v
	}
	return append([]attempt(nil), l.attempts...), acc, l.submitted, l.notAccepted
}
