package soak

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
)

// The personal fields of a soak job carry its reference, so that the marker
// scan finds every copy of them: userReference is "ur-<ref>" and the
// prepared data's email "em-<ref>@example.com".

// UserReference is the userReference of the job with customerInternalReference ref.
func UserReference(ref string) string { return "ur-" + ref }

// Email is the prepared-data email of the job with customerInternalReference ref.
func Email(ref string) string { return "em-" + ref + "@example.com" }

// When an erasure is requested, relative to the job's life.
const (
	MomentPending = "pending"  // right after the 202 of the submission
	MomentSaga    = "mid-saga" // 0.1–1.5 s later, while the worker runs the saga
	MomentDecided = "decided"  // once the job is DECIDED or FAILED
)

// Erasure is one erasure the load requested with DELETE
// /v1/verifications/{jobId}.
type Erasure struct {
	JobID, Ref string
	// Moment is when it was planned (Moment*); StatusBefore is the job's
	// status read just before the DELETE.
	Moment, StatusBefore string
	// Requested is when the first DELETE was sent; Accepted when the first
	// 2xx answer arrived (zero: never accepted).
	Requested, Accepted time.Time
	// Attempts counts the DELETEs sent; Status is the last answer's status
	// (0: no answer).
	Attempts, Status int
}

// Eraser requests the erasure of a share of the accepted jobs, each at a
// random moment of its life, through ingest's API with a key that has the
// erase scope, retrying (same request, honouring Retry-After) until a 2xx
// answer or for up to three minutes.
type Eraser struct {
	url, key string
	rate     float64
	client   *http.Client
	logf     func(string, ...any)

	rngMu sync.Mutex
	rng   *rand.Rand

	wg   sync.WaitGroup
	mu   sync.Mutex
	list []*Erasure
}

// NewEraser returns an Eraser for the ingest at url (base URL) using the
// API key key (scopes erase and read), erasing a share rate (0 to 1) of the
// jobs it is told about.
func NewEraser(url, key string, rate float64, seed uint64, logf func(string, ...any)) *Eraser {
	return &Eraser{url: url, key: key, rate: rate, client: &http.Client{Timeout: 30 * time.Second}, logf: logf,
		rng: rand.New(rand.NewPCG(seed, seed^0x6a09e667f3bcc908))}
}

func (e *Eraser) intn(n int) int {
	e.rngMu.Lock()
	defer e.rngMu.Unlock()
	return e.rng.IntN(n)
}

// Consider is called for every accepted job: with the Eraser's rate it
// schedules the job's erasure (in the background; ctx bounds it).
func (e *Eraser) Consider(ctx context.Context, jobID, ref string) {
	if e == nil || e.rate <= 0 || float64(e.intn(1_000_000)) >= e.rate*1_000_000 {
		return
	}
	moment := []string{MomentPending, MomentSaga, MomentDecided}[e.intn(3)]
	delay := time.Duration(100+e.intn(1400)) * time.Millisecond
	extra := time.Duration(e.intn(5000)) * time.Millisecond
	er := &Erasure{JobID: jobID, Ref: ref, Moment: moment}
	e.mu.Lock()
	e.list = append(e.list, er)
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		switch moment {
		case MomentSaga:
			ctxutil.Sleep(ctx, delay)
		case MomentDecided:
			e.waitEnded(ctx, jobID, 2*time.Minute)
			ctxutil.Sleep(ctx, extra)
		}
		before := e.status(ctx, jobID)
		e.mu.Lock()
		er.StatusBefore = before
		e.mu.Unlock()
		e.erase(ctx, er)
	}()
}

// Wait waits for every scheduled erasure to be answered or given up.
func (e *Eraser) Wait() {
	if e != nil {
		e.wg.Wait()
	}
}

// Erasures returns the erasures requested so far, by job ID.
func (e *Eraser) Erasures() []Erasure {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Erasure, 0, len(e.list))
	for _, er := range e.list {
		out = append(out, *er)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JobID < out[j].JobID })
	return out
}

// status is the job's status as GET /v1/verifications/{id} says ("" when
// it cannot be read).
func (e *Eraser) status(ctx context.Context, jobID string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/verifications/"+jobID, nil)
	if err != nil {
		return ""
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	resp, err := e.client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct{ Status string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v) != nil {
		return ""
	}
	return v.Status
}

// waitEnded polls the job until it is DECIDED or FAILED (or timeout).
func (e *Eraser) waitEnded(ctx context.Context, jobID string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		switch e.status(ctx, jobID) {
		case "DECIDED", "FAILED":
			return
		}
		if !ctxutil.Sleep(ctx, time.Second) {
			return
		}
	}
}

// erase sends the DELETE until it is answered 2xx.
func (e *Eraser) erase(ctx context.Context, er *Erasure) {
	deadline := time.Now().Add(3 * time.Minute)
	backoff := 200 * time.Millisecond
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, e.url+"/v1/verifications/"+er.JobID, nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+e.key)
		sent := time.Now()
		resp, err := e.client.Do(req)
		answered := time.Now()
		e.mu.Lock()
		if er.Requested.IsZero() {
			er.Requested = sent
		}
		er.Attempts++
		er.Status = 0
		if err == nil {
			er.Status = resp.StatusCode
			if resp.StatusCode/100 == 2 && er.Accepted.IsZero() {
				er.Accepted = answered
			}
		}
		done := er.Status/100 == 2 || (er.Status >= 400 && er.Status < 500)
		e.mu.Unlock()
		wait := backoff
		if err == nil {
			if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 1 {
				wait = time.Duration(s) * time.Second
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		if done {
			if er.Status/100 != 2 && e.logf != nil {
				e.logf("erasure of %s refused with %d", er.JobID, er.Status)
			}
			return
		}
		backoff = min(backoff*2, 3*time.Second)
		if !ctxutil.Sleep(ctx, wait) {
			return
		}
	}
}
