package messages

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "kyc"

// Lifecycle event kinds (the last token of kyc.events.<kind>).
const (
	KindAccepted  = "accepted"
	KindLaunched  = "launched"
	KindFinalized = "finalized"
	KindFailed    = "failed"
	KindErased    = "erased" // the job's data was erased: IDs and time only
)

// Decision types (the last token of kyc.decisions.<TYPE>): Jumio's four,
// plus EXPIRED for workflows that ended in TOKEN_EXPIRED or SESSION_EXPIRED.
const (
	DecisionPassed      = "PASSED"
	DecisionRejected    = "REJECTED"
	DecisionWarning     = "WARNING"
	DecisionNotExecuted = "NOT_EXECUTED"
	DecisionExpired     = "EXPIRED"
)

// DecisionTypes lists every decision type.
var DecisionTypes = []string{DecisionPassed, DecisionRejected, DecisionWarning, DecisionNotExecuted, DecisionExpired}

// Pipeline stages, as used in dead-letter subjects (kyc.dlq.<stage>) and
// headers.
const (
	StageIngest    = "ingest"
	StageWorker    = "worker"
	StageRetriever = "retriever"
	StageNotifier  = "notifier"
)

// Headers every message the pipeline publishes carries, and the headers of
// dead letters. Nats-Msg-Id is JetStream's deduplication header.
const (
	HeaderMsgID            = "Nats-Msg-Id"
	HeaderJobID            = "Kyc-Job-Id"
	HeaderStage            = "Kyc-Stage"
	HeaderReason           = "Kyc-Reason"
	HeaderError            = "Kyc-Error"
	HeaderDeliveries       = "Kyc-Deliveries"
	HeaderOriginalSubject  = "Kyc-Original-Subject"
	HeaderOriginalStream   = "Kyc-Original-Stream"
	HeaderOriginalSequence = "Kyc-Original-Sequence"
	HeaderReplayOf         = "Kyc-Replay-Of"
	HeaderTraceParent      = "traceparent"
	HeaderTraceState       = "tracestate"
)

// Dead-letter reasons (the Kyc-Reason header).
const (
	ReasonTerminal      = "terminal"       // a Jumio error no retry can fix (400, 403, 404, …)
	ReasonPoison        = "poison"         // the message cannot be decoded or is invalid
	ReasonMaxDeliveries = "max_deliveries" // JetStream gave up redelivering
	ReasonRetryBudget   = "retry_budget"   // too many retryable failures
	ReasonDeadline      = "deadline"       // the workflow never reached a terminal status in time
	ReasonUnknown       = "unknown_execution"
)

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Subjects names every subject and stream of one pipeline. Build it with
// [NewSubjects]; the zero value is not usable.
type Subjects struct {
	prefix string
	stream string
}

// NewSubjects returns the names for a subject prefix (default "kyc"). Stream
// names are the prefix in upper case with dots as underscores (KYC_JOBS, …).
func NewSubjects(prefix string) (Subjects, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(prefix) {
		return Subjects{}, fmt.Errorf("messages: invalid subject prefix %q: use letters, digits, '-', '_' and dots between tokens", prefix)
	}
	return Subjects{prefix: prefix, stream: strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(prefix))}, nil
}

// MustSubjects is NewSubjects that panics on an invalid prefix, for
// constants and tests.
func MustSubjects(prefix string) Subjects {
	s, err := NewSubjects(prefix)
	if err != nil {
		panic(err)
	}
	return s
}

// Prefix returns the subject prefix.
func (s Subjects) Prefix() string { return s.prefix }

// JobsSubmit is where jobs are submitted: kyc.jobs.submit.
func (s Subjects) JobsSubmit() string { return s.prefix + ".jobs.submit" }

// Callback is where received Jumio callbacks go: kyc.callbacks.<region>.
func (s Subjects) Callback(region string) string { return s.prefix + ".callbacks." + region }

// Callbacks matches every callback subject.
func (s Subjects) Callbacks() string { return s.prefix + ".callbacks.*" }

// Event is the subject of a lifecycle event: kyc.events.<kind>.
func (s Subjects) Event(kind string) string { return s.prefix + ".events." + kind }

// Events matches every lifecycle event.
func (s Subjects) Events() string { return s.prefix + ".events.*" }

// Decision is the subject of a decision event: kyc.decisions.<TYPE>.
func (s Subjects) Decision(typ string) string { return s.prefix + ".decisions." + typ }

// Decisions matches every decision event.
func (s Subjects) Decisions() string { return s.prefix + ".decisions.*" }

// DLQ is the dead-letter subject of a stage: kyc.dlq.<stage>.
func (s Subjects) DLQ(stage string) string { return s.prefix + ".dlq." + stage }

// DLQs matches every dead letter.
func (s Subjects) DLQs() string { return s.prefix + ".dlq.*" }

// JobSubmit is the per-job subject ingest publishes a job on:
// kyc.jobs.submit.<jobId>. The jobs stream takes it beside kyc.jobs.submit
// (which every upstream publisher keeps using), so a job's pending message
// can be found, and erased, without a scan.
func (s Subjects) JobSubmit(jobID string) string { return s.prefix + ".jobs.submit." + jobID }

// JobsSubmitPerJob matches every per-job submission subject.
func (s Subjects) JobsSubmitPerJob() string { return s.prefix + ".jobs.submit.*" }

// Erasure is the internal subject of a job's erasure task:
// kyc.erasures.<jobId>.
func (s Subjects) Erasure(jobID string) string { return s.prefix + ".erasures." + jobID }

// Erasures matches every erasure task.
func (s Subjects) Erasures() string { return s.prefix + ".erasures.*" }

// Audit is the subject of an audit record: kyc.audit.<action>.
func (s Subjects) Audit(action string) string { return s.prefix + ".audit." + action }

// Audits matches every audit record.
func (s Subjects) Audits() string { return s.prefix + ".audit.*" }

// IndexJob is the subject of a job's index entry:
// kyc.index.jobs.<status>.<region>.<decision>.<jobId> ("-" for no
// decision). Each job has one entry, under its current attributes.
func (s Subjects) IndexJob(status, region, decision, jobID string) string {
	if decision == "" {
		decision = "-"
	}
	if region == "" {
		region = "-"
	}
	return s.prefix + ".index.jobs." + status + "." + region + "." + decision + "." + jobID
}

// IndexJobs matches index entries by status, region and decision ("*" for
// any).
func (s Subjects) IndexJobs(status, region, decision string) string {
	return s.prefix + ".index.jobs." + status + "." + region + "." + decision + ".*"
}

// IndexRef is the subject of a reference's index entry:
// kyc.index.refs.<kind>.<hash>.<jobId>, kind "c" for customerInternalReference
// and "u" for userReference; hash is [RefHash] of the reference.
func (s Subjects) IndexRef(kind, hash, jobID string) string {
	return s.prefix + ".index.refs." + kind + "." + hash + "." + jobID
}

// IndexRefs matches the entries of one reference.
func (s Subjects) IndexRefs(kind, hash string) string {
	return s.prefix + ".index.refs." + kind + "." + hash + ".*"
}

// IndexAll matches every index subject.
func (s Subjects) IndexAll() string { return s.prefix + ".index.>" }

// Retrieve is the internal subject of retrieval (poll) tasks:
// kyc.retrieve.<region>.
func (s Subjects) Retrieve(region string) string { return s.prefix + ".retrieve." + region }

// Retrieves matches every retrieval task.
func (s Subjects) Retrieves() string { return s.prefix + ".retrieve.*" }

// WebhookDelivery is the internal subject of one webhook delivery job:
// kyc.webhooks.deliver.<endpointId>.<jobId>. The job ID is in the subject so
// that erasing a job can purge its pending deliveries by subject.
func (s Subjects) WebhookDelivery(endpointID, jobID string) string {
	return s.prefix + ".webhooks.deliver." + endpointID + "." + jobID
}

// WebhookDeliveries matches every webhook delivery job.
func (s Subjects) WebhookDeliveries() string { return s.prefix + ".webhooks.deliver.*.*" }

// WebhookDeliveriesOfEndpoint matches the delivery jobs of one endpoint.
func (s Subjects) WebhookDeliveriesOfEndpoint(endpointID string) string {
	return s.prefix + ".webhooks.deliver." + endpointID + ".*"
}

// WebhookDeliveriesOfJob matches the delivery jobs of one verification job.
func (s Subjects) WebhookDeliveriesOfJob(jobID string) string {
	return s.prefix + ".webhooks.deliver.*." + jobID
}

// WebhookLog is the subject of the delivery log entries of one endpoint and
// job: kyc.webhooks.log.<endpointId>.<jobId>.
func (s Subjects) WebhookLog(endpointID, jobID string) string {
	return s.prefix + ".webhooks.log." + endpointID + "." + jobID
}

// WebhookLogs matches every delivery log entry.
func (s Subjects) WebhookLogs() string { return s.prefix + ".webhooks.log.*.*" }

// WebhookLogsOfEndpoint matches the delivery log of one endpoint.
func (s Subjects) WebhookLogsOfEndpoint(endpointID string) string {
	return s.prefix + ".webhooks.log." + endpointID + ".*"
}

// WebhookLogsOfJob matches the delivery log entries of one verification job.
func (s Subjects) WebhookLogsOfJob(jobID string) string {
	return s.prefix + ".webhooks.log.*." + jobID
}

// Stream names.

// StreamJobs holds submitted jobs (work queue): KYC_JOBS.
func (s Subjects) StreamJobs() string { return s.stream + "_JOBS" }

// StreamCallbacks holds received callbacks (work queue): KYC_CALLBACKS.
func (s Subjects) StreamCallbacks() string { return s.stream + "_CALLBACKS" }

// StreamRetrieve holds retrieval tasks (work queue): KYC_RETRIEVE.
func (s Subjects) StreamRetrieve() string { return s.stream + "_RETRIEVE" }

// StreamEvents holds lifecycle events (limits): KYC_EVENTS.
func (s Subjects) StreamEvents() string { return s.stream + "_EVENTS" }

// StreamDecisions holds decision events (limits): KYC_DECISIONS.
func (s Subjects) StreamDecisions() string { return s.stream + "_DECISIONS" }

// StreamDLQ holds dead letters (limits): KYC_DLQ.
func (s Subjects) StreamDLQ() string { return s.stream + "_DLQ" }

// StreamAdvisories captures JetStream's max-deliveries and terminated
// advisories for the pipeline's work-queue streams: KYC_ADVISORIES.
func (s Subjects) StreamAdvisories() string { return s.stream + "_ADVISORIES" }

// StreamErasures holds erasure tasks (work queue): KYC_ERASURES.
func (s Subjects) StreamErasures() string { return s.stream + "_ERASURES" }

// StreamAudit holds audit records (limits, long retention): KYC_AUDIT.
func (s Subjects) StreamAudit() string { return s.stream + "_AUDIT" }

// StreamIndex holds the job index (limits, one entry per subject):
// KYC_INDEX.
func (s Subjects) StreamIndex() string { return s.stream + "_INDEX" }

// StreamWebhooks holds pending webhook delivery jobs (work queue):
// KYC_WEBHOOKS.
func (s Subjects) StreamWebhooks() string { return s.stream + "_WEBHOOKS" }

// StreamWebhookLog holds the recent webhook delivery attempts (limits):
// KYC_WEBHOOK_LOG.
func (s Subjects) StreamWebhookLog() string { return s.stream + "_WEBHOOK_LOG" }

// BucketWebhookEndpoints is the key-value bucket of registered webhook
// endpoints: KYC_WEBHOOK_ENDPOINTS.
func (s Subjects) BucketWebhookEndpoints() string { return s.stream + "_WEBHOOK_ENDPOINTS" }

// BucketWebhookAttempts is the key-value bucket of failed-attempt counters
// of pending webhook deliveries: KYC_WEBHOOK_ATTEMPTS.
func (s Subjects) BucketWebhookAttempts() string { return s.stream + "_WEBHOOK_ATTEMPTS" }

// BucketJobs is the key-value bucket of job state: KYC_JOBS_STATE.
func (s Subjects) BucketJobs() string { return s.stream + "_JOBS_STATE" }

// BucketImages is the object store of API-channel images: KYC_IMAGES.
func (s Subjects) BucketImages() string { return s.stream + "_IMAGES" }

// BucketLimits is the key-value bucket of shared rate-limit state:
// KYC_RATE_LIMITS.
func (s Subjects) BucketLimits() string { return s.stream + "_RATE_LIMITS" }

// WorkStreams lists the work-queue streams whose advisories are captured.
func (s Subjects) WorkStreams() []string {
	return []string{s.StreamJobs(), s.StreamCallbacks(), s.StreamRetrieve(), s.StreamErasures(), s.StreamWebhooks()}
}

// StageOf returns the stage that consumes a work-queue stream.
func (s Subjects) StageOf(stream string) string {
	switch stream {
	case s.StreamJobs(), s.StreamErasures():
		return StageWorker
	case s.StreamCallbacks(), s.StreamRetrieve():
		return StageRetriever
	case s.StreamWebhooks():
		return StageNotifier
	}
	return ""
}
