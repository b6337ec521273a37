package upgrade

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// acceptedJob is a submission ingest answered 2xx.
type acceptedJob struct {
	ref     string
	kind    string // api, web, images, existing (a new execution on an existing account)
	phase   string // the run's phase when it was submitted
	ingest  string // release of the ingest that accepted it
	account string // existing: the account it ran on
	owner   string // existing: the job that created that account
}

// loader submits jobs through the load balancer at an even pace, each
// retried with the same Idempotency-Key until an ingest accepts it.
type loader struct {
	url, apiKey string
	client      *http.Client
	logf        func(string, ...any)

	rngMu sync.Mutex
	rng   *rand.Rand

	mu        sync.Mutex
	phase     string
	accepted  map[string]*acceptedJob // job ID → job
	refused   map[string]int          // 4xx answers by status and release: a compatibility failure
	submitted int
	notAcc    int
	accounts  []accountOwner // accounts created by decided jobs, for existing-account jobs
}

type accountOwner struct{ account, job string }

func newLoader(url, apiKey string, seed uint64, logf func(string, ...any)) *loader {
	return &loader{url: url, apiKey: apiKey, logf: logf, client: &http.Client{Timeout: 15 * time.Second},
		rng: rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d)), accepted: map[string]*acceptedJob{}, refused: map[string]int{}}
}

func (l *loader) intn(n int) int {
	l.rngMu.Lock()
	defer l.rngMu.Unlock()
	return l.rng.IntN(n)
}

func (l *loader) setPhase(p string) {
	l.mu.Lock()
	l.phase = p
	l.mu.Unlock()
}

// addAccount makes an account created by a decided job available to later
// existing-account jobs.
func (l *loader) addAccount(account, job string) {
	l.mu.Lock()
	l.accounts = append(l.accounts, accountOwner{account, job})
	l.mu.Unlock()
}

var smallPNG = jumiotest.PNG(400, 320)

// body is job n: API prepared data, web (completed by the simulator's
// end user), API with images (with the consent and ID type both releases'
// door rules ask for), and new executions on accounts earlier jobs
// created. A few end WARNING, REJECTED or with a watchlist alert.
func (l *loader) body(n int) (*acceptedJob, []byte) {
	ref := fmt.Sprintf("upg-%06d", n)
	switch r := l.intn(100); {
	case r < 5:
		ref += "-warn"
	case r < 8:
		ref += "-reject"
	case r < 10:
		ref += "-alert"
	}
	j := &acceptedJob{ref: ref}
	var job map[string]any
	k := l.intn(100)
	if k >= 90 {
		l.mu.Lock()
		if len(l.accounts) > 0 {
			a := l.accounts[l.intn(len(l.accounts))]
			j.kind, j.account, j.owner = "existing", a.account, a.job
		}
		l.mu.Unlock()
	}
	switch {
	case j.kind == "existing":
		job = map[string]any{"customerInternalReference": ref, "accountId": j.account, "workflowDefinition": map[string]any{"key": 10066},
			"channel": "API", "preparedData": map[string]any{"email": "user" + strconv.Itoa(n) + "@example.com"}}
	case k < 65 || k >= 90:
		j.kind = "api"
		job = map[string]any{"customerInternalReference": ref, "userReference": "u-" + ref, "workflowDefinition": map[string]any{"key": 10066},
			"channel": "API", "preparedData": map[string]any{"email": "user" + strconv.Itoa(n) + "@example.com"}}
	case k < 80:
		j.kind = "web"
		job = map[string]any{"customerInternalReference": ref, "userReference": "u-" + ref, "workflowDefinition": map[string]any{"key": 10164},
			"channel": "WEB", "web": map[string]any{"locale": "en"}}
	default:
		j.kind = "images"
		job = map[string]any{"customerInternalReference": ref, "channel": "API",
			"workflowDefinition": map[string]any{"key": 10011, "credentials": []any{map[string]any{"category": "ID",
				"country": map[string]any{"values": []string{"USA"}}, "type": map[string]any{"values": []string{"DRIVING_LICENSE"}}}}},
			"userConsent": map[string]any{"userIp": "203.0.113.7", "userLocation": map[string]any{"country": "USA"},
				"consent": map[string]any{"obtained": "yes", "obtainedAt": "2026-11-01T10:00:00Z"}},
			"parts": []map[string]any{
				{"classifier": "FRONT", "data": base64.StdEncoding.EncodeToString(smallPNG)},
				{"classifier": "FACE", "data": base64.StdEncoding.EncodeToString(smallPNG)},
			}}
	}
	b, _ := json.Marshal(job)
	return j, b
}

// run submits rate jobs per second until loadCtx ends. Submissions being
// retried then go on (bounded by ctx), like clients that keep retrying.
func (l *loader) run(ctx, loadCtx context.Context, rate float64, first int) int {
	interval := time.Duration(float64(time.Second) / rate)
	work := make(chan int)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
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
	n := first
loop:
	for {
		select {
		case <-loadCtx.Done():
			break loop
		case work <- n:
			n++
		}
		select {
		case <-loadCtx.Done():
			break loop
		case <-tick.C:
		}
	}
	close(work)
	wg.Wait()
	return n
}

// submit sends job n, retrying transport errors and 5xx answers (ingest
// answers 503 while NATS is unavailable; the balancer 502 for a backend
// that died) for up to two minutes.
func (l *loader) submit(ctx context.Context, n int) {
	j, body := l.body(n)
	l.mu.Lock()
	l.submitted++
	j.phase = l.phase
	l.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	backoff := 100 * time.Millisecond
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/v1/verifications", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+l.apiKey)
		req.Header.Set("Idempotency-Key", j.ref)
		resp, err := l.client.Do(req)
		if err == nil {
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			release := ""
			if _, r, ok := strings.Cut(resp.Header.Get(HeaderBackend), " "); ok {
				release = r
			}
			if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK {
				var out struct{ JobID string }
				if err := json.Unmarshal(rb, &out); err == nil && out.JobID != "" {
					j.ingest = release
					l.mu.Lock()
					if prev, ok := l.accepted[out.JobID]; ok && prev.ingest != "" {
						j.ingest = prev.ingest // a repeat: the first answer's ingest stored it
					}
					l.accepted[out.JobID] = j
					l.mu.Unlock()
					return
				}
			}
			if resp.StatusCode >= 400 && resp.StatusCode < 500 {
				l.mu.Lock()
				l.refused[fmt.Sprintf("%d from %s", resp.StatusCode, release)]++
				l.mu.Unlock()
				l.logf("submission %s refused with %d by %s: %s", j.ref, resp.StatusCode, release, tail(string(rb), 300))
				break
			}
		}
		if !ctxutil.Sleep(ctx, backoff) {
			break
		}
		backoff = min(backoff*2, 3*time.Second)
	}
	l.mu.Lock()
	l.notAcc++
	l.mu.Unlock()
}

// snapshot returns the accepted jobs (a copy of the map).
func (l *loader) snapshot() map[string]*acceptedJob {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*acceptedJob, len(l.accepted))
	for k, v := range l.accepted {
		out[k] = v
	}
	return out
}

// job returns the accepted job with that ID, or nil.
func (l *loader) job(id string) *acceptedJob {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted[id]
}
