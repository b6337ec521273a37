package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// NotifierConfig configures a Notifier. Zero fields take their defaults;
// negative ones are refused by [NewNotifier].
type NotifierConfig struct {
	Topology Topology
	// Webhooks are the URL policy and the key of stored secrets, as ingest
	// has them.
	Webhooks WebhookSettings
	// Timeout bounds one attempt (KYCPIPE_WEBHOOK_TIMEOUT, default 15s).
	Timeout time.Duration
	// Schedule is the retry schedule (KYCPIPE_WEBHOOK_SCHEDULE); nil means
	// webhooks.DefaultSchedule.
	Schedule *webhooks.Schedule
	// Concurrency bounds the deliveries this process makes at once
	// (default 64).
	Concurrency int
	// EndpointConcurrency bounds the deliveries this process makes to one
	// endpoint at once (default 8). A delivery for an endpoint at its bound
	// waits briefly (at most 50ms) for a slot, then is handed back with a
	// delay, using no attempt, so an endpoint that hangs holds at most this
	// many of Concurrency.
	EndpointConcurrency int
	// BusyDelay is the shortest hand-back delay of a delivery for a busy
	// endpoint; it is twice the age of the endpoint's oldest attempt in
	// flight when that is longer, up to Timeout (default 250ms).
	BusyDelay time.Duration
	// MaxWait is the longest single redelivery delay: a longer wait of the
	// schedule is served in steps, each re-checked against Now (default 1h).
	MaxWait time.Duration
	// DelivererOptions adjust the HTTP client (TLS roots, dialer, user
	// agent); the timeout and clock are set from this configuration.
	DelivererOptions []webhooks.Option
	// SweepEvery is how often the notifier looks for deliveries JetStream
	// stopped delivering (notifier_sweep.go; default 1m).
	SweepEvery time.Duration
	// StrandedAfter is how long after its attempt was due a delivery whose
	// job is no longer stored counts as lost (default twice SweepEvery).
	StrandedAfter time.Duration
	// Backoff spaces retries after NATS trouble (default 1s doubling to 5m).
	Backoff Backoff
	// Delays are the stage's fixed retry waits.
	Delays        Delays
	ShutdownGrace time.Duration // default 20s
	Logger        *zap.Logger
	// Now is the clock of schedules, webhook-timestamp and the rotation
	// overlap (default time.Now); tests run the schedule on a fake clock.
	Now            func() time.Time
	Metrics        *Metrics
	WebhookMetrics *WebhookMetrics
	TracerProvider trace.TracerProvider
}

func (c NotifierConfig) withDefaults() NotifierConfig {
	c.Topology = c.Topology.WithDefaults()
	c.Timeout = cmp.Or(c.Timeout, webhooks.DefaultTimeout)
	if c.Schedule == nil {
		s := webhooks.DefaultSchedule()
		c.Schedule = &s
	}
	c.Concurrency = cmp.Or(c.Concurrency, 64)
	c.EndpointConcurrency = cmp.Or(c.EndpointConcurrency, 8)
	c.BusyDelay = cmp.Or(c.BusyDelay, 250*time.Millisecond)
	c.MaxWait = cmp.Or(c.MaxWait, time.Hour)
	c.SweepEvery = cmp.Or(c.SweepEvery, time.Minute)
	c.StrandedAfter = cmp.Or(c.StrandedAfter, 2*c.SweepEvery)
	c.Backoff = c.Backoff.WithDefaults()
	c.Delays = c.Delays.withDefaults()
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 20*time.Second)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c NotifierConfig) validate() error {
	var errs fieldErrors
	nonNegative(&errs, "Timeout", c.Timeout)
	nonNegative(&errs, "Concurrency", c.Concurrency)
	nonNegative(&errs, "EndpointConcurrency", c.EndpointConcurrency)
	nonNegative(&errs, "BusyDelay", c.BusyDelay)
	nonNegative(&errs, "MaxWait", c.MaxWait)
	nonNegative(&errs, "SweepEvery", c.SweepEvery)
	nonNegative(&errs, "StrandedAfter", c.StrandedAfter)
	nonNegative(&errs, "ShutdownGrace", c.ShutdownGrace)
	if k := c.Webhooks.SecretKey; k != nil && len(k) != WebhookSecretKeySize {
		errs.add("Webhooks.SecretKey", fmt.Sprintf("must be %d bytes", WebhookSecretKeySize))
	}
	c.Backoff.validate(&errs)
	c.Delays.validate(&errs)
	return errs.err("notifier")
}

// endpointSlotWait bounds how long a delivery waits for a slot of its busy
// endpoint before it is handed back.
const endpointSlotWait = 50 * time.Millisecond

// Notifier sends kycpipe's events to the registered webhook endpoints
// (DESIGN 3.8). It is stateless; run any number.
//
// Fan-out: for every lifecycle event and decision, and every enabled
// endpoint subscribed to its type, it publishes a delivery job on
// kyc.webhooks.deliver.<endpointId>.<jobId> with Nats-Msg-Id = the
// webhook-id, so a fan-out repeated after a crash adds nothing.
//
// Delivery: it reads the event from its stream, signs {type, timestamp,
// data} with the endpoint's secrets and POSTs it once; JetStream redelivery
// carries the retries on the schedule, counted in the attempts bucket. See
// notifier_deliver.go.
type Notifier struct {
	*stage
	cfg       NotifierConfig
	endpoints *WebhookEndpoints
	cache     *endpointCache
	deliverer *webhooks.Deliverer
	attempts  jetstream.KeyValue
	wm        *WebhookMetrics
	slots     *endpointSlots

	mu      sync.Mutex
	streams map[string]jetstream.Stream

	// stranded are the sequences of delivery jobs the last sweep found
	// below the consumer's acknowledgement floor (owned by the sweep).
	stranded map[uint64]bool
}

// NewNotifier opens the buckets it needs (they must exist: see Provision).
// It refuses a configuration that cannot work, with an error wrapping
// [ErrInvalidConfig].
func NewNotifier(ctx context.Context, js jetstream.JetStream, cfg NotifierConfig) (*Notifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	st, err := newStage(ctx, js, stageOptions{name: messages.StageNotifier, topo: cfg.Topology, log: cfg.Logger, now: cfg.Now,
		metrics: cfg.Metrics, tracing: cfg.TracerProvider, backoff: cfg.Backoff, delays: cfg.Delays, grace: cfg.ShutdownGrace})
	if err != nil {
		return nil, err
	}
	eps, err := NewWebhookEndpoints(ctx, js, cfg.Topology, cfg.Webhooks, cfg.Now)
	if err != nil {
		return nil, err
	}
	attempts, err := js.KeyValue(ctx, cfg.Topology.Subjects.BucketWebhookAttempts())
	if err != nil {
		return nil, fmt.Errorf("pipeline: notifier: attempts bucket: %w", err)
	}
	opts := append([]webhooks.Option{webhooks.WithTimeout(cfg.Timeout), webhooks.WithClock(cfg.Now)}, cfg.DelivererOptions...)
	d, err := webhooks.NewDeliverer(cfg.Webhooks.Policy, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: notifier: %w", ErrInvalidConfig, err)
	}
	n := &Notifier{stage: st, cfg: cfg, endpoints: eps, deliverer: d, attempts: attempts, wm: cfg.WebhookMetrics,
		slots: newEndpointSlots(cfg.EndpointConcurrency, min(cfg.BusyDelay, endpointSlotWait)), streams: map[string]jetstream.Stream{}}
	n.cache = newEndpointCache(eps, cfg.Logger, cfg.WebhookMetrics)
	return n, nil
}

// Run fans out and delivers until ctx is canceled, then shuts down
// gracefully (in-flight attempts finish within ShutdownGrace or are handed
// back without using an attempt).
func (n *Notifier) Run(ctx context.Context) error {
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan error, 1)
	go func() { watchDone <- n.cache.run(watchCtx) }()
	select {
	case <-n.cache.loaded:
	case err := <-watchDone:
		return fmt.Errorf("pipeline: notifier: watch endpoints: %w", err)
	case <-ctx.Done():
		return nil
	}
	s := n.subj
	fanoutEvents := n.runner(consumerSpec{stream: s.StreamEvents(), consumer: ConsumerNotifierEvents, concurrency: 4,
		ackWait: n.topo.NotifierAckWait, handle: n.fanout, log: n.log.With(zap.String("consumer", ConsumerNotifierEvents))})
	fanoutDecisions := n.runner(consumerSpec{stream: s.StreamDecisions(), consumer: ConsumerNotifierDecisions, concurrency: 4,
		ackWait: n.topo.NotifierAckWait, handle: n.fanout, log: n.log.With(zap.String("consumer", ConsumerNotifierDecisions))})
	deliveries := n.runner(consumerSpec{stream: s.StreamWebhooks(), consumer: ConsumerNotifierDelivery,
		concurrency: n.cfg.Concurrency, ackWait: n.topo.NotifierAckWait, handle: n.deliver})
	sweepDone := make(chan struct{})
	go func() { defer close(sweepDone); n.runSweeps(watchCtx) }()
	err := runAll(ctx, fanoutEvents, fanoutDecisions, deliveries)
	stopWatch()
	<-sweepDone
	n.deliverer.CloseIdleConnections()
	stopWatch()
	if werr := <-watchDone; werr != nil && !errors.Is(werr, context.Canceled) {
		err = errors.Join(err, werr)
	}
	return err
}

// Ready reports whether the notifier can work: the topology is present and
// the endpoint registry is loaded.
func (n *Notifier) Ready(ctx context.Context) error {
	select {
	case <-n.cache.loaded:
	default:
		return errors.New("loading webhook endpoints")
	}
	return n.stage.Ready(ctx)
}

// stream returns a stream handle, cached.
func (n *Notifier) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if st, ok := n.streams[name]; ok {
		return st, nil
	}
	st, err := n.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	n.streams[name] = st
	return st, nil
}
