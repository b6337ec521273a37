package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// handlerFunc handles one message and says what to do with it. ctx is
// canceled when the process must stop; the handler then returns quickly
// (the runner hands the message back).
type handlerFunc func(ctx context.Context, m jetstream.Msg) outcome

// Timings of the runner that are not settings.
const (
	// pullExpiry is how long one pull request waits for messages.
	pullExpiry = 10 * time.Second
	// handBackWait is how long the runner waits for each buffered message
	// it hands back at shutdown.
	handBackWait = 200 * time.Millisecond
	// minHeartbeat bounds how often InProgress heartbeats are sent.
	minHeartbeat = 100 * time.Millisecond
)

// reopenBackoff spaces the attempts to reopen a consumer that failed.
var reopenBackoff = Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// runner pulls messages from one durable consumer and runs a handler on
// each, with at most concurrency handlers at a time, on a fixed pool of
// goroutines. A message is only pulled when a handler is free, so messages do
// not wait in a client buffer while their AckWait runs; while a handler runs,
// the runner sends InProgress heartbeats every AckWait/3 so slow Jumio calls
// do not cause redeliveries.
type runner struct {
	name        string
	js          jetstream.JetStream
	stream      string
	consumer    string
	concurrency int
	ackWait     time.Duration
	grace       time.Duration // how long in-flight handlers may finish after ctx ends
	log         *zap.Logger
	handle      handlerFunc
	observe     func(stage string, o outcome, d time.Duration, redelivered bool)
	tracer      trace.Tracer
	panicRetry  time.Duration // how long a message whose handler panicked waits
	// gate, when set, stops the pulling while every region the stage
	// serves is paused for a configuration fault.
	gate *faultGate

	mu       sync.Mutex
	inflight map[jetstream.Msg]struct{}
	pulling  atomic.Bool
}

// run consumes until ctx is canceled, then stops pulling, lets in-flight
// handlers finish for up to r.grace (then cancels them: their messages are
// handed back) and hands back anything pulled but not started.
func (r *runner) run(ctx context.Context) error {
	r.inflight = map[jetstream.Msg]struct{}{}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	work := make(chan jetstream.Msg)
	slots := make(chan struct{}, r.concurrency)
	var wg sync.WaitGroup
	for i := 0; i < r.concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				r.process(workCtx, m)
				<-slots
			}
		}()
	}
	hbDone := make(chan struct{})
	go r.heartbeats(hbDone)

	err := r.dispatch(ctx, work, slots)
	close(work)

	// Let in-flight handlers finish within the grace period.
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(r.grace):
		r.log.Warn("shutdown grace period over, handing back in-flight messages", zap.Int("in_flight", r.inFlight()))
		cancelWork()
		<-finished
	}
	close(hbDone)
	return err
}

// dispatch pulls a message whenever a handler slot is free.
func (r *runner) dispatch(ctx context.Context, work chan<- jetstream.Msg, slots chan struct{}) error {
	var iter jetstream.MessagesContext
	defer func() {
		if iter != nil {
			r.handBackBuffered(iter)
		}
	}()
	failures := 0
	draining := false // the gate closed: the buffered messages are handled (held), nothing more is pulled
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		if iter != nil && !draining && r.blocked() {
			r.log.Warn("every region this process serves is paused by a configuration fault: no more pulling until a probe succeeds",
				zap.String("consumer", r.consumer))
			iter.Drain()
			draining = true
		}
		if iter == nil {
			if r.gate != nil && !r.gate.waitUnblocked(ctx) {
				<-slots
				return nil
			}
			var err error
			if iter, err = r.open(ctx); err != nil {
				<-slots
				if ctx.Err() != nil {
					return nil
				}
				failures++
				r.log.Warn("cannot open consumer, retrying", zap.String("consumer", r.consumer), zap.Error(err))
				if !ctxutil.Sleep(ctx, reopenBackoff.Delay(failures)) {
					return nil
				}
				continue
			}
			failures = 0
		}
		m, err := iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			if draining && errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				iter, draining = nil, false
				continue
			}
			failures++
			r.log.Warn("consumer iterator failed, reopening", zap.String("consumer", r.consumer), zap.Error(err))
			iter.Stop()
			iter = nil
			if !ctxutil.Sleep(ctx, reopenBackoff.Delay(failures)) {
				return nil
			}
			continue
		}
		failures = 0
		r.track(m, true)
		work <- m
	}
}

// blocked reports whether the gate stops the pulling.
func (r *runner) blocked() bool {
	return r.gate != nil && r.gate.clients != nil && r.gate.blocked(r.gate.clients.Regions())
}

func (r *runner) open(ctx context.Context) (jetstream.MessagesContext, error) {
	cons, err := r.js.Consumer(ctx, r.stream, r.consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s/%s: %w", r.stream, r.consumer, err)
	}
	// A small buffer: at most one message per handler waits client-side.
	// PullMaxMessages(1) can stall for the pull expiry (see JETSTREAM.md), so
	// the buffer is never below 2.
	return cons.Messages(jetstream.PullMaxMessages(max(2, r.concurrency)), jetstream.PullExpiry(pullExpiry))
}

// handBackBuffered returns messages pulled into the client buffer but never
// started, so another instance gets them now instead of after AckWait.
func (r *runner) handBackBuffered(iter jetstream.MessagesContext) {
	iter.Drain()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), handBackWait)
		m, err := iter.Next(jetstream.NextContext(ctx))
		cancel()
		if err != nil {
			return
		}
		_ = m.Nak()
	}
}

func (r *runner) process(ctx context.Context, m jetstream.Msg) {
	defer r.track(m, false)
	start := time.Now()
	var o outcome
	func() {
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("handler panicked; message will be redelivered", zap.Any("panic", p), zap.String("subject", m.Subject()))
				o = retry(cmp.Or(r.panicRetry, DefaultPanicRetry))
			}
		}()
		tracer := r.tracer
		if tracer == nil {
			tracer = tracerOf(nil)
		}
		hctx, span := tracer.Start(withTrace(ctx, m.Headers()), r.name+" "+r.consumer, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", m.Subject()),
				attribute.Int("messaging.delivery_count", deliveries(m))))
		defer func() { endSpan(span, o) }()
		o = r.handle(hctx, m)
	}()
	if ctx.Err() != nil && o.action == actRetry {
		o = handBack()
	}
	var err error
	switch o.action {
	case actAck:
		err = m.Ack()
	case actRetry:
		err = m.NakWithDelay(max(o.delay, 0))
	case actTerminate:
		err = m.TermWithReason(o.reason)
	case actHandBack:
		err = m.Nak()
	}
	if err != nil {
		r.log.Warn("settling message failed; it will be redelivered after AckWait", zap.String("outcome", o.String()), zap.Error(err))
	}
	if r.observe != nil {
		r.observe(r.name, o, time.Since(start), deliveries(m) > 1)
	}
}

func (r *runner) track(m jetstream.Msg, add bool) {
	r.mu.Lock()
	if add {
		r.inflight[m] = struct{}{}
	} else {
		delete(r.inflight, m)
	}
	r.mu.Unlock()
}

func (r *runner) inFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inflight)
}

// heartbeats sends InProgress for every in-flight message every AckWait/3.
func (r *runner) heartbeats(done <-chan struct{}) {
	t := time.NewTicker(max(r.ackWait/3, minHeartbeat))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			r.mu.Lock()
			msgs := make([]jetstream.Msg, 0, len(r.inflight))
			for m := range r.inflight {
				msgs = append(msgs, m)
			}
			r.mu.Unlock()
			for _, m := range msgs {
				_ = m.InProgress()
			}
		}
	}
}

// runAll runs runners until ctx ends and returns their errors.
func runAll(ctx context.Context, runners ...*runner) error {
	var wg sync.WaitGroup
	errs := make([]error, len(runners))
	for i, r := range runners {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.run(ctx) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliveries returns how many times m was delivered (1 on the first).
func deliveries(m jetstream.Msg) int {
	md, err := m.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}
