package soak

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// job kinds of the load: API prepared data, web, API with images.
func (h *harness) jobBody(n int) (string, []byte) {
	ref := fmt.Sprintf("soak-%06d", n)
	switch r := h.intn(100); {
	case r < 5:
		ref += "-warn"
	case r < 8:
		ref += "-reject"
	}
	var job map[string]any
	switch k := h.intn(100); {
	case k < 70:
		job = map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10066},
			"channel": "API", "preparedData": map[string]any{"email": Email(ref)}}
	case k < 90:
		job = map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10164}, "channel": "WEB"}
	default:
		// Jumio's rules for API images: consent, the ID's country and type.
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
	// Every personal field carries the reference (the erasure check's
	// marker scan looks for it).
	job["userReference"] = UserReference(ref)
	b, _ := json.Marshal(job)
	return ref, b
}

var smallPNG = jumiotest.PNG(400, 320)

// load submits the jobs at an even pace until loadCtx ends (the load
// phase); each submission is retried with the same Idempotency-Key until
// ingest accepts it (ingest answers 503 while NATS restarts). The retries
// are bounded by ctx (the run), not by loadCtx: a submission still being
// retried when the load phase ends goes on, like a client that keeps
// retrying.
func (h *harness) load(ctx, loadCtx context.Context) {
	interval := h.o.Duration / time.Duration(h.o.Jobs)
	work := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 15 * time.Second}
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				h.submit(ctx, client, n)
			}
		}()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// Job n goes out at n*interval, so the last one leaves before the load
	// phase ends and all Jobs are submitted.
	for n := 0; n < h.o.Jobs; n++ {
		if n > 0 {
			select {
			case <-loadCtx.Done():
				n = h.o.Jobs
				continue
			case <-tick.C:
			}
		}
		select {
		case work <- n:
			h.report.Submitted++
		case <-loadCtx.Done():
		}
		if n%500 == 499 {
			h.acceptedMu.Lock()
			a := len(h.accepted)
			h.acceptedMu.Unlock()
			h.logf("submitted %d, accepted %d, kills %d, NATS restarts %d", n+1, a, h.kills.Load(), h.natsRe.Load())
		}
	}
	close(work)
	wg.Wait()
}

// submit sends job n, retrying with backoff on transport errors and 5xx
// answers for up to two minutes or until ctx ends; a job not accepted by
// then counts as never accepted.
func (h *harness) submit(ctx context.Context, client *http.Client, n int) {
	ref, body := h.jobBody(n)
	// Submissions outlive the load phase by up to two minutes, like a client
	// that keeps retrying.
	deadline := time.Now().Add(2 * time.Minute)
	backoff := 100 * time.Millisecond
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodPost, h.ingestURL+"/v1/verifications", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+h.apiKey)
		req.Header.Set("Idempotency-Key", ref)
		resp, err := client.Do(req)
		if err == nil {
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 202 || resp.StatusCode == 200 {
				var out struct{ JobID string }
				_ = json.Unmarshal(rb, &out)
				h.acceptedMu.Lock()
				h.accepted[out.JobID] = ref
				h.refs[ref] = out.JobID
				h.acceptedMu.Unlock()
				h.eraser.Consider(ctx, out.JobID, ref)
				return
			}
			if resp.StatusCode < 500 {
				h.logf("submission %s refused with %d: %s", ref, resp.StatusCode, rb)
				break
			}
		}
		if !ctxutil.Sleep(ctx, backoff) {
			break
		}
		backoff = min(backoff*2, 3*time.Second)
	}
	h.acceptedMu.Lock()
	h.notAcc++
	h.acceptedMu.Unlock()
}
