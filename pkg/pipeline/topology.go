package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Topology describes the JetStream resources of one pipeline: streams,
// consumers, the job-state bucket and the image store, with their limits.
// The zero value (plus a prefix) is usable: WithDefaults fills the rest.
type Topology struct {
	Subjects messages.Subjects

	// Replicas for every stream, bucket and consumer (1 for a single node, 3
	// on a cluster). Default 1.
	Replicas int

	// JobsMaxMsgs and JobsMaxBytes bound the jobs stream. When it is full,
	// new submissions are refused (ingest answers 503 with Retry-After) rather
	// than old jobs being discarded. Defaults: 1,000,000 messages, 1 GiB.
	JobsMaxMsgs  int64
	JobsMaxBytes int64
	// CallbacksMaxMsgs bounds the callbacks stream (default 1,000,000).
	CallbacksMaxMsgs int64

	// Byte limits of every other stream and bucket. Each defaults to a share
	// of JobsMaxBytes (KYCPIPE_JOBS_MAX_BYTES), so that one setting sizes
	// the whole store: about 13 times JobsMaxBytes in all (13 GiB by
	// default, plus WebhookLogMaxBytes), which the NATS server's max_file_store must hold.
	// docs/OPERATIONS.md says what happens when each is full.
	CallbacksMaxBytes  int64 // KYC_CALLBACKS, discard new: JobsMaxBytes/8
	RetrieveMaxBytes   int64 // KYC_RETRIEVE, discard new: JobsMaxBytes/4
	EventsMaxBytes     int64 // KYC_EVENTS, discard old: JobsMaxBytes
	DecisionsMaxBytes  int64 // KYC_DECISIONS, discard new: 2 × JobsMaxBytes
	DLQMaxBytes        int64 // KYC_DLQ, discard new: JobsMaxBytes/2
	AdvisoriesMaxBytes int64 // KYC_ADVISORIES, discard old: JobsMaxBytes/16
	JobStateMaxBytes   int64 // KYC_JOBS_STATE bucket: 4 × JobsMaxBytes
	LimitsMaxBytes     int64 // KYC_RATE_LIMITS bucket: JobsMaxBytes/64
	ImagesMaxBytes     int64 // KYC_IMAGES object store: 2 × JobsMaxBytes
	ErasuresMaxBytes   int64 // KYC_ERASURES, discard new: JobsMaxBytes/64
	AuditMaxBytes      int64 // KYC_AUDIT, discard new: JobsMaxBytes/4
	IndexMaxBytes      int64 // KYC_INDEX, discard new: JobsMaxBytes
	WebhooksMaxBytes   int64 // KYC_WEBHOOKS, discard new: JobsMaxBytes/2

	// DuplicateWindow is how long JetStream remembers message IDs to drop
	// duplicate jobs, callbacks and retrieval tasks (default 10m).
	DuplicateWindow time.Duration
	// DecisionDuplicateWindow is the same for decision events: a decision
	// republished within it after a crash is dropped (default 30m).
	DecisionDuplicateWindow time.Duration

	// EventsMaxAge, DecisionsMaxAge and DLQMaxAge bound the retention of the
	// limits streams (defaults 7 days, 30 days, 30 days).
	EventsMaxAge    time.Duration
	DecisionsMaxAge time.Duration
	DLQMaxAge       time.Duration

	// JobStateTTL is how long job records (and erasure tombstones) are kept
	// (default 30 days).
	JobStateTTL time.Duration
	// Retention, when set (KYCPIPE_RETENTION), bounds every stream's MaxAge
	// (events, decisions, dead letters, images, index) so that nothing
	// outlives the retention period even if a job record is lost, and sets
	// the job-state TTL to Retention + RetentionGrace: the retention sweep
	// erases a job (at Jumio too) before its record can expire.
	Retention      time.Duration
	RetentionGrace time.Duration // default 1h
	// SecureErase makes erasures overwrite the bytes of every message they
	// delete on disk (JetStream's secure delete; about 10 ms of server time
	// a message). Without it, deleted messages leave the stream at once but
	// their bytes stay in the file store until it compacts the block: run
	// NATS with encryption at rest (KYCPIPE_ERASE_SECURE).
	SecureErase bool
	// AuditMaxAge is how long audit records are kept (default 10 years:
	// auditors ask for proof of erasures long after the data is gone).
	AuditMaxAge time.Duration
	// ImageTTL bounds how long an uploaded image stays in the object store
	// if its job dies before finalize deletes it (default 24h).
	ImageTTL time.Duration

	// Storage is file (default) or memory.
	Storage jetstream.StorageType

	// Consumer settings.
	WorkerAckWait       time.Duration // default 30s; in-flight work sends InProgress heartbeats
	RetrieverAckWait    time.Duration // default 30s
	WorkerMaxDeliver    int           // default 200: a backstop; the worker's own retry budget ends jobs first
	RetrieverMaxDeliver int           // default 20000: polls of long web flows are redeliveries
	WorkerMaxAckPending int           // in flight across all worker replicas, default 4096

	// Webhooks (cmd/notifier).
	NotifierAckWait time.Duration // default: WorkerAckWait; deliveries send InProgress heartbeats
	// WebhooksMaxMsgs bounds the pending delivery jobs. When it is full the
	// notifier's fan-out waits (back-pressure) rather than dropping
	// deliveries. Default 1,000,000.
	WebhooksMaxMsgs int64
	// WebhookLogMaxAge and WebhookLogMaxBytes bound the delivery log
	// (defaults 7 days, 512 MiB; the oldest entries go first).
	WebhookLogMaxAge   time.Duration
	WebhookLogMaxBytes int64
	// WebhookAttemptsTTL is how long a pending delivery's failed-attempt
	// counter is kept after its last write (default 8 days: longer than any
	// retry schedule step).
	WebhookAttemptsTTL time.Duration
}

// JetStream advisory subject prefixes (followed by <stream>.<consumer>).
const (
	AdvisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."
	AdvisoryTerminated    = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."
)

// Durable consumer names.
const (
	ConsumerWorker            = "worker"
	ConsumerRetrieverCallback = "retriever-callbacks"
	ConsumerRetrieverPoll     = "retriever-polls"
	ConsumerDLQSweeper        = "dlq-sweeper"
	ConsumerEraser            = "eraser"
	ConsumerNotifierEvents    = "notifier-events"
	ConsumerNotifierDecisions = "notifier-decisions"
	ConsumerNotifierDelivery  = "notifier-deliveries"
)

// WithDefaults returns a copy of t with every unset field defaulted.
func (t Topology) WithDefaults() Topology {
	if t.Subjects == (messages.Subjects{}) {
		t.Subjects = messages.MustSubjects("")
	}
	t.Replicas = cmp.Or(t.Replicas, 1)
	t.JobsMaxMsgs = cmp.Or(t.JobsMaxMsgs, 1_000_000)
	t.JobsMaxBytes = cmp.Or(t.JobsMaxBytes, 1<<30)
	t.CallbacksMaxMsgs = cmp.Or(t.CallbacksMaxMsgs, 1_000_000)
	share := func(num, den int64, floor int64) int64 { return max(t.JobsMaxBytes/den*num, floor) }
	t.CallbacksMaxBytes = cmp.Or(t.CallbacksMaxBytes, share(1, 8, 1<<20))
	t.RetrieveMaxBytes = cmp.Or(t.RetrieveMaxBytes, share(1, 4, 1<<20))
	t.EventsMaxBytes = cmp.Or(t.EventsMaxBytes, share(1, 1, 1<<20))
	t.DecisionsMaxBytes = cmp.Or(t.DecisionsMaxBytes, share(2, 1, 1<<20))
	t.DLQMaxBytes = cmp.Or(t.DLQMaxBytes, share(1, 2, 4<<20))
	t.AdvisoriesMaxBytes = cmp.Or(t.AdvisoriesMaxBytes, share(1, 16, 1<<20))
	t.JobStateMaxBytes = cmp.Or(t.JobStateMaxBytes, share(4, 1, 4<<20))
	t.LimitsMaxBytes = cmp.Or(t.LimitsMaxBytes, share(1, 64, 1<<20))
	// At least room for one submission's three largest images.
	t.ImagesMaxBytes = cmp.Or(t.ImagesMaxBytes, share(2, 1, 3*messages.MaxImageSize+16<<20))
	t.ErasuresMaxBytes = cmp.Or(t.ErasuresMaxBytes, share(1, 64, 1<<20))
	t.AuditMaxBytes = cmp.Or(t.AuditMaxBytes, share(1, 4, 4<<20))
	t.IndexMaxBytes = cmp.Or(t.IndexMaxBytes, share(1, 1, 4<<20))
	t.WebhooksMaxBytes = cmp.Or(t.WebhooksMaxBytes, share(1, 2, 4<<20))
	t.DuplicateWindow = cmp.Or(t.DuplicateWindow, 10*time.Minute)
	t.DecisionDuplicateWindow = cmp.Or(t.DecisionDuplicateWindow, 30*time.Minute)
	t.EventsMaxAge = cmp.Or(t.EventsMaxAge, 7*24*time.Hour)
	t.DecisionsMaxAge = cmp.Or(t.DecisionsMaxAge, 30*24*time.Hour)
	t.DLQMaxAge = cmp.Or(t.DLQMaxAge, 30*24*time.Hour)
	t.JobStateTTL = cmp.Or(t.JobStateTTL, 30*24*time.Hour)
	t.AuditMaxAge = cmp.Or(t.AuditMaxAge, 10*365*24*time.Hour)
	t.RetentionGrace = cmp.Or(t.RetentionGrace, time.Hour)
	if t.Retention > 0 {
		t.EventsMaxAge = min(t.EventsMaxAge, t.Retention)
		t.DecisionsMaxAge = min(t.DecisionsMaxAge, t.Retention)
		t.DLQMaxAge = min(t.DLQMaxAge, t.Retention)
		t.ImageTTL = min(t.ImageTTL, t.Retention)
		t.JobStateTTL = t.Retention + t.RetentionGrace
	}
	t.ImageTTL = cmp.Or(t.ImageTTL, 24*time.Hour)
	t.WorkerAckWait = cmp.Or(t.WorkerAckWait, 30*time.Second)
	t.RetrieverAckWait = cmp.Or(t.RetrieverAckWait, 30*time.Second)
	t.WorkerMaxDeliver = cmp.Or(t.WorkerMaxDeliver, 200)
	t.RetrieverMaxDeliver = cmp.Or(t.RetrieverMaxDeliver, 20000)
	t.WorkerMaxAckPending = cmp.Or(t.WorkerMaxAckPending, 4096)
	t.NotifierAckWait = cmp.Or(t.NotifierAckWait, t.WorkerAckWait)
	t.WebhooksMaxMsgs = cmp.Or(t.WebhooksMaxMsgs, 1_000_000)
	t.WebhookLogMaxAge = cmp.Or(t.WebhookLogMaxAge, 7*24*time.Hour)
	t.WebhookLogMaxBytes = cmp.Or(t.WebhookLogMaxBytes, 512<<20)
	t.WebhookAttemptsTTL = cmp.Or(t.WebhookAttemptsTTL, 8*24*time.Hour)
	return t
}

// Validate reports settings that cannot work.
func (t Topology) Validate() error {
	var errs []error
	if t.Replicas < 1 || t.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas must be between 1 and 5, got %d", t.Replicas))
	}
	if t.DuplicateWindow > t.EventsMaxAge {
		errs = append(errs, errors.New("duplicate window must not exceed the events' max age"))
	}
	if t.WorkerAckWait < time.Second || t.RetrieverAckWait < time.Second || t.NotifierAckWait < time.Second {
		errs = append(errs, errors.New("ack waits must be at least 1s"))
	}
	for name, v := range map[string]int64{"jobs": t.JobsMaxBytes, "callbacks": t.CallbacksMaxBytes, "retrieve": t.RetrieveMaxBytes,
		"events": t.EventsMaxBytes, "decisions": t.DecisionsMaxBytes, "dead letters": t.DLQMaxBytes, "advisories": t.AdvisoriesMaxBytes,
		"job state": t.JobStateMaxBytes, "rate limits": t.LimitsMaxBytes, "images": t.ImagesMaxBytes,
		"erasures": t.ErasuresMaxBytes, "audit": t.AuditMaxBytes, "index": t.IndexMaxBytes, "webhooks": t.WebhooksMaxBytes,
		"webhook log": t.WebhookLogMaxBytes} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("the %s byte limit must be positive, got %d", name, v))
		}
	}
	return errors.Join(errs...)
}

func (t Topology) streamConfigs() []jetstream.StreamConfig {
	s := t.Subjects
	base := func(name, desc string, subjects ...string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Description: desc, Subjects: subjects,
			Storage: t.Storage, Replicas: t.Replicas, Duplicates: t.DuplicateWindow,
		}
	}
	jobs := base(s.StreamJobs(), "kycpipe: submitted verification jobs (work queue)", s.JobsSubmit(), s.JobsSubmitPerJob())
	jobs.Retention = jetstream.WorkQueuePolicy
	jobs.MaxMsgs, jobs.MaxBytes, jobs.Discard = t.JobsMaxMsgs, t.JobsMaxBytes, jetstream.DiscardNew
	jobs.MaxMsgSize = messages.MaxRequestJSONSize + 64<<10

	callbacks := base(s.StreamCallbacks(), "kycpipe: Jumio callbacks as received (work queue)", s.Callbacks())
	callbacks.Retention = jetstream.WorkQueuePolicy
	callbacks.MaxMsgs, callbacks.MaxBytes, callbacks.Discard = t.CallbacksMaxMsgs, t.CallbacksMaxBytes, jetstream.DiscardNew
	// An 8 KiB callback re-encodes to at most three times its size (invalid
	// UTF-8 becomes U+FFFD), plus its envelope.
	callbacks.MaxMsgSize = 3*messages.MaxCallbackSize + 8<<10

	retrieve := base(s.StreamRetrieve(), "kycpipe: retrieval poll tasks (work queue, internal)", s.Retrieves())
	retrieve.Retention = jetstream.WorkQueuePolicy
	retrieve.MaxBytes, retrieve.Discard = t.RetrieveMaxBytes, jetstream.DiscardNew
	retrieve.MaxMsgSize = 16 << 10

	events := base(s.StreamEvents(), "kycpipe: job lifecycle events", s.Events())
	events.MaxAge, events.MaxBytes = t.EventsMaxAge, t.EventsMaxBytes // discard old: the oldest events go first

	decisions := base(s.StreamDecisions(), "kycpipe: one decision event per workflow execution", s.Decisions())
	decisions.MaxAge, decisions.Duplicates = t.DecisionsMaxAge, t.DecisionDuplicateWindow
	decisions.MaxBytes, decisions.Discard = t.DecisionsMaxBytes, jetstream.DiscardNew // never drop a decision

	dlq := base(s.StreamDLQ(), "kycpipe: dead letters with the original payload", s.DLQs())
	dlq.MaxAge, dlq.MaxBytes, dlq.Discard = t.DLQMaxAge, t.DLQMaxBytes, jetstream.DiscardNew // never drop a dead letter

	var advSubjects []string
	for _, ws := range s.WorkStreams() {
		advSubjects = append(advSubjects, AdvisoryMaxDeliveries+ws+".*", AdvisoryTerminated+ws+".*")
	}
	adv := base(s.StreamAdvisories(), "kycpipe: JetStream advisories of messages the pipeline gave up on", advSubjects...)
	adv.Retention = jetstream.WorkQueuePolicy
	adv.MaxAge, adv.MaxBytes = t.DLQMaxAge, t.AdvisoriesMaxBytes

	erasures := base(s.StreamErasures(), "kycpipe: erasure tasks (work queue, internal)", s.Erasures())
	erasures.Retention = jetstream.WorkQueuePolicy
	erasures.MaxMsgSize = 4 << 10
	erasures.MaxBytes, erasures.Discard = t.ErasuresMaxBytes, jetstream.DiscardNew // a refused erasure is retried by its caller

	audit := base(s.StreamAudit(), "kycpipe: audit trail (erasures, reveals); no personal data", s.Audits())
	audit.MaxAge = t.AuditMaxAge
	audit.MaxBytes, audit.Discard = t.AuditMaxBytes, jetstream.DiscardNew // never drop an audit record

	index := base(s.StreamIndex(), "kycpipe: job index (status, region, decision; reference hashes)", s.IndexAll())
	index.MaxMsgsPerSubject = 1
	index.AllowDirect = true
	index.MaxAge = t.JobStateTTL
	index.MaxMsgSize = 4 << 10
	index.MaxBytes, index.Discard = t.IndexMaxBytes, jetstream.DiscardNew
	return append([]jetstream.StreamConfig{jobs, callbacks, retrieve, events, decisions, dlq, adv, erasures, audit, index}, t.webhookStreamConfigs()...)
}

// ConsumerConfigs returns the durable consumers by stream.
func (t Topology) consumerConfigs() map[string]jetstream.ConsumerConfig {
	s := t.Subjects
	return map[string]jetstream.ConsumerConfig{
		s.StreamJobs(): {
			Durable: ConsumerWorker, Description: "kycpipe workers: run the Jumio saga",
			FilterSubjects: []string{s.JobsSubmit(), s.JobsSubmitPerJob()}, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: t.WorkerAckWait, MaxDeliver: t.WorkerMaxDeliver, MaxAckPending: t.WorkerMaxAckPending,
			Replicas: t.Replicas,
		},
		s.StreamErasures(): {
			Durable: ConsumerEraser, Description: "kycpipe workers: erase jobs (here and at Jumio)",
			FilterSubject: s.Erasures(), AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: t.WorkerAckWait, MaxDeliver: -1, Replicas: t.Replicas,
		},
		s.StreamCallbacks(): {
			Durable: ConsumerRetrieverCallback, Description: "kycpipe retrievers: callbacks trigger retrievals",
			FilterSubject: s.Callbacks(), AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: t.RetrieverAckWait, MaxDeliver: t.RetrieverMaxDeliver, MaxAckPending: -1,
			Replicas: t.Replicas,
		},
		s.StreamRetrieve(): {
			Durable: ConsumerRetrieverPoll, Description: "kycpipe retrievers: poll executions until a terminal status",
			FilterSubject: s.Retrieves(), AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: t.RetrieverAckWait, MaxDeliver: t.RetrieverMaxDeliver, MaxAckPending: -1,
			Replicas: t.Replicas,
		},
		s.StreamAdvisories(): {
			Durable: ConsumerDLQSweeper, Description: "kycpipe: dead-letter messages JetStream gave up on",
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1,
			Replicas: t.Replicas,
		},
	}
}

// consumerList returns every durable consumer as (stream, config) pairs:
// those of consumerConfigs plus the notifier's (two of which share no
// stream with the others).
func (t Topology) consumerList() []streamConsumer {
	var out []streamConsumer
	for stream, cc := range t.consumerConfigs() {
		out = append(out, streamConsumer{stream, cc})
	}
	return append(out, t.webhookConsumerConfigs()...)
}

func (t Topology) kvConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket: t.Subjects.BucketJobs(), Description: "kycpipe: job state and workflow-execution index",
		History: 1, TTL: t.JobStateTTL, Storage: t.Storage, Replicas: t.Replicas, MaxBytes: t.JobStateMaxBytes,
	}
}

func (t Topology) limitsConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket: t.Subjects.BucketLimits(), Description: "kycpipe: Jumio rate-limit state shared by all replicas",
		History: 1, TTL: 24 * time.Hour, Storage: t.Storage, Replicas: t.Replicas, MaxBytes: t.LimitsMaxBytes,
	}
}

func (t Topology) objectConfig() jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket: t.Subjects.BucketImages(), Description: "kycpipe: API-channel images until finalize",
		TTL: t.ImageTTL, Storage: t.Storage, Replicas: t.Replicas, MaxBytes: t.ImagesMaxBytes,
	}
}

// Provision creates or updates every stream, consumer, bucket and object
// store of the topology. It is idempotent: running it again with the same
// topology changes nothing, and with new limits updates them in place.
func Provision(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return fmt.Errorf("pipeline: provision: %w", err)
	}
	for _, sc := range t.streamConfigs() {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("pipeline: provision stream %s: %w", sc.Name, err)
		}
	}
	for _, sc := range t.consumerList() {
		stream, cc := sc.stream, sc.cfg
		if _, err := js.CreateOrUpdateConsumer(ctx, stream, cc); err != nil {
			return fmt.Errorf("pipeline: provision consumer %s on %s: %w", cc.Durable, stream, err)
		}
	}
	for _, kc := range []jetstream.KeyValueConfig{t.kvConfig(), t.limitsConfig()} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("pipeline: provision bucket %s: %w", kc.Bucket, err)
		}
		if err := denyRollups(ctx, js, "KV_"+kc.Bucket); err != nil {
			return fmt.Errorf("pipeline: provision bucket %s: %w", kc.Bucket, err)
		}
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, t.objectConfig()); err != nil {
		return fmt.Errorf("pipeline: provision object store %s: %w", t.Subjects.BucketImages(), err)
	}
	for _, kc := range t.webhookKVConfigs() {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("pipeline: provision bucket %s: %w", kc.Bucket, err)
		}
		if err := denyRollups(ctx, js, "KV_"+kc.Bucket); err != nil {
			return fmt.Errorf("pipeline: provision bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// Check verifies that every resource of the topology exists, for readiness
// probes and for services that run without permission to provision.
func Check(ctx context.Context, js jetstream.JetStream, t Topology) error {
	t = t.WithDefaults()
	for _, sc := range t.streamConfigs() {
		if _, err := js.Stream(ctx, sc.Name); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	for _, sc := range t.consumerList() {
		stream, cc := sc.stream, sc.cfg
		if _, err := js.Consumer(ctx, stream, cc.Durable); err != nil {
			return fmt.Errorf("consumer %s/%s: %w", stream, cc.Durable, err)
		}
	}
	if _, err := js.KeyValue(ctx, t.Subjects.BucketJobs()); err != nil {
		return fmt.Errorf("bucket %s: %w", t.Subjects.BucketJobs(), err)
	}
	if _, err := js.KeyValue(ctx, t.Subjects.BucketLimits()); err != nil {
		return fmt.Errorf("bucket %s: %w", t.Subjects.BucketLimits(), err)
	}
	if _, err := js.ObjectStore(ctx, t.Subjects.BucketImages()); err != nil {
		return fmt.Errorf("object store %s: %w", t.Subjects.BucketImages(), err)
	}
	for _, kc := range t.webhookKVConfigs() {
		if _, err := js.KeyValue(ctx, kc.Bucket); err != nil {
			return fmt.Errorf("bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// denyRollups turns off roll-up headers on a bucket's stream. nats.go
// creates buckets with roll-ups allowed (kv.Purge uses them), and a
// roll-up cannot be restricted by subject permissions: any user who may
// write one key could send Nats-Rollup: all and purge the whole bucket
// (Security II, finding 5). kycpipe never purges a key. The object store
// needs roll-ups for its metadata, so they stay on there.
func denyRollups(ctx context.Context, js jetstream.JetStream, stream string) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowRollup {
		return nil
	}
	cfg.AllowRollup = false
	_, err = js.UpdateStream(ctx, cfg)
	return err
}
