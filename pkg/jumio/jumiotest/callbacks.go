package jumiotest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// cbJob is one callback to deliver (with its duplicates).
type cbJob struct {
	status string
	url    string
	body   []byte
	opts   CallbackOptions
}

// SetCallbackOptions replaces the callback options for callbacks emitted
// from now on (DropFirst counts from here). Out-of-range values are
// clamped; a zero Timeout means 5s.
func (s *Server) SetCallbackOptions(o CallbackOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cbOpts = o.normalized()
	s.cbSeq = 0
}

func (s *Server) callbackOptions() CallbackOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cbOpts
}

// notifyLocked emits the callback of e reaching status: it applies the
// drop options and queues the delivery, which happens in the background,
// one callback at a time per execution. s.mu must be held.
func (s *Server) notifyLocked(e *execution, status string) {
	opts := s.cbOpts
	intermediate := !jumio.IsTerminalStatus(status)
	if intermediate && !opts.Intermediate {
		return
	}
	target := e.callbackURL
	if target == "" {
		target = s.opts.DefaultCallbackURL
	}
	if target == "" {
		return
	}
	s.cbSeq++
	if s.cbSeq <= opts.DropFirst || (opts.DropRate > 0 && s.rng.Float64() < opts.DropRate) {
		e.cbDropped++
		s.stat(func(st *Stats) { st.CallbacksDropped++ })
		s.log.Info("callback dropped", zap.String("workflow_execution_id", e.id), zap.String("status", status))
		return
	}
	body, err := s.callbackBodyLocked(e, status, s.now())
	if err != nil {
		return
	}
	job := cbJob{status: status, url: target, body: body, opts: opts}
	jobs := []cbJob{job}
	if opts.Reorder {
		if intermediate {
			e.cbHeld = append(e.cbHeld, job)
			return
		}
		held := slices.Clone(e.cbHeld)
		slices.Reverse(held)
		jobs = append(jobs, held...)
		e.cbHeld = nil
	}
	e.cbQueue = append(e.cbQueue, jobs...)
	if !e.cbRunning {
		e.cbRunning = s.goLocked(func() { s.runCallbacks(e) })
	}
}

// runCallbacks delivers e's queued callbacks in order.
func (s *Server) runCallbacks(e *execution) {
	for {
		s.mu.Lock()
		if len(e.cbQueue) == 0 || s.closed {
			e.cbRunning = false
			s.mu.Unlock()
			return
		}
		job := e.cbQueue[0]
		e.cbQueue = e.cbQueue[1:]
		s.mu.Unlock()
		if !s.deliver(e, job) {
			return // closing
		}
	}
}

// deliver sends job and its duplicates. It returns false if the server
// closed.
func (s *Server) deliver(e *execution, job cbJob) bool {
	for range 1 + job.opts.Duplicates {
		if !s.sleep(job.opts.Delay + s.latencyFor(RouteCallback)) {
			return false
		}
		ok := false
		for attempt := 0; attempt <= job.opts.Retries && !ok; attempt++ {
			if attempt > 0 && !s.sleep(min(time.Duration(attempt)*50*time.Millisecond, time.Second)) {
				return false
			}
			ok = s.attempt(e, job)
		}
		if !ok {
			if s.ctx.Err() != nil {
				return false
			}
			s.stat(func(st *Stats) { st.CallbacksFailed++ })
			s.log.Info("callback delivery failed", zap.String("workflow_execution_id", e.id), zap.String("status", job.status))
		}
	}
	return true
}

// attempt makes one delivery attempt and reports whether the receiver
// answered 2xx.
func (s *Server) attempt(e *execution, job cbJob) bool {
	s.stat(func(st *Stats) { st.Requests[string(RouteCallback)]++ })
	if f, ok := s.takeFault(RouteCallback); ok {
		s.stat(func(st *Stats) { st.InjectedFaults++ })
		code := "error"
		if !f.CloseConnection && f.Status != 0 {
			code = strconv.Itoa(f.Status)
		}
		s.countResponse(RouteCallback, code)
		return false
	}
	client := job.opts.HTTPClient
	if client == nil {
		client = s.cbClient
	}
	ctx, cancel := context.WithTimeout(s.ctx, job.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.url, bytes.NewReader(job.body))
	if err != nil {
		s.countResponse(RouteCallback, "error")
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", CallbackUserAgent)
	s.stat(func(st *Stats) { st.CallbacksSent++ })
	resp, err := client.Do(req)
	if err != nil {
		s.countResponse(RouteCallback, "error")
		s.log.Debug("callback attempt failed", zap.String("workflow_execution_id", e.id), zap.String("status", job.status))
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	s.countResponse(RouteCallback, strconv.Itoa(resp.StatusCode))
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok {
		s.mu.Lock()
		e.cbDelivered = append(e.cbDelivered, job.status)
		s.mu.Unlock()
		s.log.Info("callback delivered", zap.String("workflow_execution_id", e.id), zap.String("status", job.status))
	}
	return ok
}
