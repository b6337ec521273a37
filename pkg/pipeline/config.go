package pipeline

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Delays are the waits of the stages' own retries, the ones no backoff
// policy computes. Zero fields take the defaults.
type Delays struct {
	// GiveUpRetry is how long a message waits before it is tried again when
	// its dead letter, or its job's failure, could not be stored (NATS
	// trouble): it must not disappear without a trace. Default 10s.
	GiveUpRetry time.Duration
	// SweepRetry is how long an advisory waits when the dead-letter sweeper
	// cannot read or dead-letter the message it names. Default 5s.
	SweepRetry time.Duration
	// PanicRetry is how long a message whose handler panicked waits before
	// it is redelivered. Default 1m.
	PanicRetry time.Duration
}

// Default delays.
const (
	DefaultGiveUpRetry = 10 * time.Second
	DefaultSweepRetry  = 5 * time.Second
	DefaultPanicRetry  = time.Minute
)

func (d Delays) withDefaults() Delays {
	d.GiveUpRetry = cmp.Or(d.GiveUpRetry, DefaultGiveUpRetry)
	d.SweepRetry = cmp.Or(d.SweepRetry, DefaultSweepRetry)
	d.PanicRetry = cmp.Or(d.PanicRetry, DefaultPanicRetry)
	return d
}

func (d Delays) validate(errs *fieldErrors) {
	nonNegative(errs, "Delays.GiveUpRetry", d.GiveUpRetry)
	nonNegative(errs, "Delays.SweepRetry", d.SweepRetry)
	nonNegative(errs, "Delays.PanicRetry", d.PanicRetry)
}

// WorkerConfig configures a Worker. Zero fields take their defaults;
// negative ones are refused by [NewWorker].
type WorkerConfig struct {
	Topology Topology
	// Jumio hands out the per-region clients (required).
	Jumio *Clients
	// CallbackURL is sent to Jumio as callbackUrl for jobs that do not
	// override it (KYCPIPE_CALLBACK_URL). Empty: Jumio uses the portal's URL.
	CallbackURL string
	// Concurrency bounds the jobs this process runs at once (default 32).
	Concurrency int
	// AccountConcurrency bounds the account calls (create or update) this
	// process has in flight at once (default 2). Jumio's account API has no
	// idempotency key: a process killed while an account call is in flight
	// may leave an account nobody knows; this bounds how many per crash.
	// Jumio admits about one account initiation per second anyway.
	AccountConcurrency int
	// RetryBudget is how many retryable failures (Jumio 5xx, timeouts) a job
	// may have before it fails (default 10). Rate limiting does not count.
	RetryBudget int
	// Backoff spaces the retries (default 1s doubling to 5m, ±20%).
	Backoff Backoff
	// Delays are the stage's fixed retry waits.
	Delays Delays
	// ShutdownGrace is how long in-flight jobs may finish after shutdown
	// starts before they are handed back (default 20s).
	ShutdownGrace time.Duration
	// ProcessingGrace is added to the token lifetime (web/SDK) or used alone
	// (API) to bound how long the retriever polls an execution (default 1h).
	ProcessingGrace time.Duration
	// FaultProbeEvery is how often a region paused by a configuration fault
	// is probed (KYCPIPE_FAULT_PROBE_EVERY, default 30s).
	FaultProbeEvery time.Duration
	Logger          *zap.Logger
	Now             func() time.Time
	Metrics         *Metrics
	// TracerProvider records spans (default: none; the trace context is
	// still propagated).
	TracerProvider trace.TracerProvider
	// Retention erases every job that ended (DECIDED, FAILED) longer ago
	// than this, with source RETENTION (KYCPIPE_RETENTION; 0: keep).
	Retention time.Duration
	// RetentionKeepAtJumio leaves the data of jobs erased by retention at
	// Jumio, whose own retention Jumio configures
	// (KYCPIPE_RETENTION_JUMIO=false).
	RetentionKeepAtJumio bool
	// RetentionEvery is how often the retention sweep runs (default 1m);
	// RetentionBatch bounds the erasures one sweep queues (default 500).
	RetentionEvery time.Duration
	RetentionBatch int
	// AfterCheckpoint, when set, is called after each saga checkpoint with
	// its step: "account", "prepared_data", "part:FRONT" (BACK, FACE),
	// "finalize", "announce"; and, in the eraser, "erasure:data_removed"
	// after each pass removed a job's data (before its tombstone). Tests
	// use it to crash a worker at an exact step boundary.
	AfterCheckpoint func(step string)
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	c.Topology = c.Topology.WithDefaults()
	c.Concurrency = cmp.Or(c.Concurrency, 32)
	c.RetryBudget = cmp.Or(c.RetryBudget, 10)
	c.AccountConcurrency = cmp.Or(c.AccountConcurrency, 2)
	c.Backoff = c.Backoff.WithDefaults()
	c.Delays = c.Delays.withDefaults()
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 20*time.Second)
	c.ProcessingGrace = cmp.Or(c.ProcessingGrace, time.Hour)
	c.RetentionEvery = cmp.Or(c.RetentionEvery, time.Minute)
	c.RetentionBatch = cmp.Or(c.RetentionBatch, 500)
	c.FaultProbeEvery = cmp.Or(c.FaultProbeEvery, DefaultFaultProbeEvery)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate refuses settings that cannot work. Call it on the config as
// given (before withDefaults), so a negative value is not mistaken for a
// default.
func (c WorkerConfig) validate() error {
	var errs fieldErrors
	if c.Jumio == nil {
		errs.add("Jumio", "is required")
	}
	nonNegative(&errs, "Concurrency", c.Concurrency)
	nonNegative(&errs, "AccountConcurrency", c.AccountConcurrency)
	nonNegative(&errs, "RetryBudget", c.RetryBudget)
	nonNegative(&errs, "ShutdownGrace", c.ShutdownGrace)
	nonNegative(&errs, "ProcessingGrace", c.ProcessingGrace)
	nonNegative(&errs, "Retention", c.Retention)
	nonNegative(&errs, "RetentionEvery", c.RetentionEvery)
	nonNegative(&errs, "RetentionBatch", c.RetentionBatch)
	nonNegative(&errs, "FaultProbeEvery", c.FaultProbeEvery)
	c.Backoff.validate(&errs)
	c.Delays.validate(&errs)
	return errs.err("worker")
}

// RetrieverConfig configures a Retriever. Zero fields take their defaults;
// negative ones are refused by [NewRetriever].
type RetrieverConfig struct {
	Topology Topology
	// Jumio hands out the per-region clients (required).
	Jumio *Clients
	// Concurrency bounds the retrievals this process runs at once, for
	// callbacks and for polls each (default 16).
	Concurrency int
	// Schedule is when to poll an execution that has not reached a terminal
	// status, as cumulative offsets from the first attempt. Default: Jumio's
	// recommended 40s, 60s, 100s, …, 940s.
	Schedule []time.Duration
	// PollTailEvery is how often an execution is polled after the
	// schedule, until the job's deadline (KYCPIPE_POLL_TAIL_EVERY, default
	// 20m): Jumio allows 10 attempts after a callback (jumio-api.md §10.8),
	// and short intervals spend the tenant's retrieval budget.
	PollTailEvery time.Duration
	// FaultProbeEvery is how often a region paused by a configuration fault
	// is probed (KYCPIPE_FAULT_PROBE_EVERY, default 30s).
	FaultProbeEvery time.Duration
	// IncludeExtraction copies the extracted document data (PII) into
	// decision events. Off by default.
	IncludeExtraction bool
	// RetryBudget is how many failed retrieval calls (Jumio 5xx, timeouts) a
	// job may have before it fails (default 20).
	RetryBudget int
	Backoff     Backoff
	// Delays are the stage's fixed retry waits.
	Delays Delays
	// TracerProvider records spans (default: none).
	TracerProvider trace.TracerProvider
	ShutdownGrace  time.Duration // default 20s
	Logger         *zap.Logger
	Now            func() time.Time
	Metrics        *Metrics
	// BeforeDecision, when set, is called with the job ID after the
	// retriever found the job not being erased and before it publishes the
	// job's decision. Tests use it to accept an erasure in that window.
	BeforeDecision func(jobID string)
}

func (c RetrieverConfig) withDefaults() RetrieverConfig {
	c.Topology = c.Topology.WithDefaults()
	c.Concurrency = cmp.Or(c.Concurrency, 16)
	if len(c.Schedule) == 0 {
		c.Schedule = JumioRetrievalSchedule
	}
	c.RetryBudget = cmp.Or(c.RetryBudget, 20)
	c.PollTailEvery = cmp.Or(c.PollTailEvery, DefaultPollTailEvery)
	c.FaultProbeEvery = cmp.Or(c.FaultProbeEvery, DefaultFaultProbeEvery)
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

// validate refuses settings that cannot work (see WorkerConfig.validate).
func (c RetrieverConfig) validate() error {
	var errs fieldErrors
	if c.Jumio == nil {
		errs.add("Jumio", "is required")
	}
	nonNegative(&errs, "Concurrency", c.Concurrency)
	nonNegative(&errs, "RetryBudget", c.RetryBudget)
	nonNegative(&errs, "ShutdownGrace", c.ShutdownGrace)
	nonNegative(&errs, "PollTailEvery", c.PollTailEvery)
	nonNegative(&errs, "FaultProbeEvery", c.FaultProbeEvery)
	var last time.Duration
	for i, d := range c.Schedule {
		if d <= last {
			errs.add(fmt.Sprintf("Schedule[%d]", i), "must be positive and greater than the offset before it")
			break
		}
		last = d
	}
	c.Backoff.validate(&errs)
	c.Delays.validate(&errs)
	return errs.err("retriever")
}

// IngestConfig configures the ingest HTTP API. Zero fields take their
// defaults; negative ones are refused by [NewIngest].
type IngestConfig struct {
	Topology Topology
	// APIKeys accepted as bearer tokens. Required unless InsecureNoAuth.
	APIKeys        *APIKeys
	InsecureNoAuth bool
	// MaxBodyBytes bounds JSON bodies (default 1 MiB); larger is 413.
	MaxBodyBytes int64
	// MaxImageBytes bounds each multipart image (default 15,000,000 bytes,
	// Jumio's "15 MB").
	MaxImageBytes int64
	// DefaultRegion is used for jobs that name none (default amer-1).
	DefaultRegion jumio.Region
	// RetryAfter is suggested with 503 answers (default 5s).
	RetryAfter time.Duration
	// PublishTimeout bounds each JetStream call of a request (default 5s).
	PublishTimeout time.Duration
	// Callbacks configures the Jumio callback route's defenses.
	Callbacks CallbackConfig
	// Webhooks are the URL policy and secret key of the webhook endpoint
	// routes (KYCPIPE_WEBHOOK_ALLOW_INSECURE, _ALLOW_PRIVATE, _SECRET_KEY).
	Webhooks WebhookSettings
	// TracerProvider records a span per request (default: none).
	TracerProvider trace.TracerProvider
	// MetricsHandler serves GET /metrics (optional).
	MetricsHandler http.Handler
	// Console, when set, serves everything under /console/ (the operator
	// console, DESIGN 3.9) with its own headers and sign-in; the API's
	// bearer authentication does not apply there. If it has a
	// SetDraining(bool) method, Ingest.SetDraining calls it.
	Console http.Handler
	Logger  *zap.Logger
	Now     func() time.Time
	Metrics *Metrics
}

func (c IngestConfig) withDefaults() IngestConfig {
	c.Topology = c.Topology.WithDefaults()
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, messages.MaxRequestJSONSize)
	c.MaxImageBytes = cmp.Or(c.MaxImageBytes, messages.MaxImageSize)
	c.DefaultRegion = cmp.Or(c.DefaultRegion, jumio.DefaultRegion)
	c.RetryAfter = cmp.Or(c.RetryAfter, 5*time.Second)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, 5*time.Second)
	c.Callbacks.RatePerSecond = cmp.Or(c.Callbacks.RatePerSecond, 100)
	c.Callbacks.Burst = cmp.Or(c.Callbacks.Burst, 200)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// validate refuses settings that cannot work (see WorkerConfig.validate).
func (c IngestConfig) validate() error {
	var errs fieldErrors
	if c.APIKeys == nil && !c.InsecureNoAuth {
		errs.add("APIKeys", "is required unless InsecureNoAuth")
	}
	nonNegative(&errs, "MaxBodyBytes", c.MaxBodyBytes)
	nonNegative(&errs, "MaxImageBytes", c.MaxImageBytes)
	nonNegative(&errs, "RetryAfter", c.RetryAfter)
	nonNegative(&errs, "PublishTimeout", c.PublishTimeout)
	nonNegative(&errs, "Callbacks.RatePerSecond", c.Callbacks.RatePerSecond)
	nonNegative(&errs, "Callbacks.Burst", c.Callbacks.Burst)
	if c.DefaultRegion != "" && !c.DefaultRegion.Valid() {
		errs.add("DefaultRegion", "must be amer-1, emea-1 or apac-1")
	}
	return errs.err("ingest")
}

// ErrInvalidConfig is wrapped by the errors of NewWorker, NewRetriever and
// NewIngest for settings that cannot work.
var ErrInvalidConfig = errors.New("pipeline: invalid configuration")

// fieldErrors collects configuration faults, each naming its field.
type fieldErrors []string

func (e *fieldErrors) add(field, msg string) { *e = append(*e, field+" "+msg) }

func (e *fieldErrors) err(what string) error {
	if len(*e) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, what, strings.Join(*e, "; "))
}

// nonNegative records field as a fault when v is negative.
func nonNegative[T int | int64 | float64 | time.Duration](e *fieldErrors, field string, v T) {
	if v < 0 {
		e.add(field, "must not be negative")
	}
}
