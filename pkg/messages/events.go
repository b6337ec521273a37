package messages

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Event is a lifecycle event of a job, published on kyc.events.<kind>:
// accepted (the worker took the job), launched (web.href / sdk.token ready for
// the end user), finalized (API-channel data handed to Jumio) or failed.
type Event struct {
	Schema                    string     `json:"schema"`
	Kind                      string     `json:"kind"`
	JobID                     string     `json:"jobId"`
	Region                    string     `json:"region,omitempty"`
	AccountID                 string     `json:"accountId,omitempty"`
	WorkflowExecutionID       string     `json:"workflowExecutionId,omitempty"`
	CustomerInternalReference string     `json:"customerInternalReference,omitempty"`
	Web                       *WebLink   `json:"web,omitempty"`
	SDK                       *SDKToken  `json:"sdk,omitempty"`
	Error                     *ErrorInfo `json:"error,omitempty"`
	At                        time.Time  `json:"at"`
}

// WebLink is the hosted web flow's URL for the end user.
type WebLink struct {
	Href string `json:"href"`
}

// SDKToken initializes Jumio's mobile SDK for the end user.
type SDKToken struct {
	Token string `json:"token"`
}

// ErrorInfo describes why a job failed. Status is Jumio's HTTP status when
// the failure came from Jumio. Message never contains PII or secrets.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"status,omitempty"`
}

// Error codes in ErrorInfo.Code.
const (
	ErrCodeJumioRejected = "jumio_rejected" // Jumio answered a terminal 4xx
	ErrCodeInvalidJob    = "invalid_job"    // the job fails validation or cannot be decoded
	ErrCodeRetryBudget   = "retry_budget"   // too many retryable failures
	ErrCodeMaxDeliveries = "max_deliveries" // JetStream stopped redelivering
	ErrCodeDeadline      = "deadline"       // no terminal status before the deadline
	ErrCodeImageMissing  = "image_missing"  // an image is no longer in the store
	ErrCodeInternal      = "internal"       // a bug or an unexpected state
	// ErrCodeJumioConfiguration is recorded on a job that waits because
	// Jumio refuses kycpipe's configuration (credentials, a permission, the
	// portal's web domain): the job is not failed, it resumes by itself.
	ErrCodeJumioConfiguration = "jumio_configuration"
)

// CallbackReceived is a Jumio callback as ingest received it, published on
// kyc.callbacks.<region>. It only triggers a retrieval: the decision always
// comes from Jumio's authenticated retrieval API.
type CallbackReceived struct {
	Schema     string    `json:"schema"`
	Region     string    `json:"region"`
	JobID      string    `json:"jobId,omitempty"` // from the callback URL, when the pipeline set one
	ReceivedAt time.Time `json:"receivedAt"`
	SourceIP   string    `json:"sourceIp,omitempty"`
	Callback   Callback  `json:"callback"`
}

// DecisionEvent is the one normalized decision of a workflow execution,
// published on kyc.decisions.<TYPE> with Nats-Msg-Id = the execution ID.
// Extraction is PII and is present only when the pipeline is configured to
// include it.
type DecisionEvent struct {
	Schema                    string                         `json:"schema"`
	JobID                     string                         `json:"jobId"`
	Region                    string                         `json:"region"`
	AccountID                 string                         `json:"accountId"`
	WorkflowExecutionID       string                         `json:"workflowExecutionId"`
	CustomerInternalReference string                         `json:"customerInternalReference,omitempty"`
	UserReference             string                         `json:"userReference,omitempty"`
	WorkflowDefinitionKey     string                         `json:"workflowDefinitionKey,omitempty"`
	Status                    string                         `json:"status"`
	Decision                  DecisionSummary                `json:"decision"`
	Capabilities              map[string][]CapabilitySummary `json:"capabilities,omitempty"`
	Alerts                    []Alert                        `json:"alerts,omitempty"`
	Extraction                []ExtractionData               `json:"extraction,omitempty"`
	CreatedAt                 string                         `json:"createdAt,omitempty"`
	StartedAt                 string                         `json:"startedAt,omitempty"`
	CompletedAt               string                         `json:"completedAt,omitempty"`
	DecidedAt                 time.Time                      `json:"decidedAt"`
}

// DecisionSummary is the overall decision: Type is PASSED, REJECTED,
// WARNING, NOT_EXECUTED or EXPIRED; Label is Jumio's label (for EXPIRED, the
// expiry status); RiskScore is Jumio's score when it gave one.
type DecisionSummary struct {
	Type      string   `json:"type"`
	Label     string   `json:"label,omitempty"`
	RiskScore *float64 `json:"riskScore,omitempty"`
}

// CapabilitySummary is one capability result without PII. Credential is
// the category of the credential the result judged (ID, SELFIE, …) when
// Jumio names one: usability has one result per credential.
type CapabilitySummary struct {
	Decision   string          `json:"decision"`
	Label      string          `json:"label,omitempty"`
	Credential string          `json:"credential,omitempty"`
	Data       *CapabilityData `json:"data,omitempty"`
}

// Alert is a capability result whose decision is worse than the overall
// decision (DESIGN 3.2): a watchlistScreening WARNING/ALERT under an overall
// PASSED, say. Severity runs PASSED < WARNING < REJECTED; NOT_EXECUTED
// results are not alerts (nothing was found), and an overall NOT_EXECUTED
// or EXPIRED counts as PASSED. Every alert is also named in the decision
// message's Kyc-Alerts header.
type Alert struct {
	Capability string `json:"capability"`
	Decision   string `json:"decision"`
	Label      string `json:"label,omitempty"`
}

// HeaderAlerts names a decision event's alerts as capability:LABEL (the
// decision when the result has no label), comma-separated, sorted:
// "watchlistScreening:ALERT". Absent when the event has no alerts.
const HeaderAlerts = "Kyc-Alerts"

// HeaderRequeueOf marks a message a stage published again because it was
// held for a paused region (a configuration fault) close to its consumer's
// MaxDeliver: the value is the original's stream and sequence
// ("KYC_JOBS:42"). The copy keeps the original's body and Kyc-Job-Id, and
// carries Nats-Msg-Id "requeue:<stream>:<seq>".
const HeaderRequeueOf = "Kyc-Requeue-Of"

// AlertsHeader returns the Kyc-Alerts header value for alerts ("" for none).
func AlertsHeader(alerts []Alert) string {
	var parts []string
	seen := map[string]bool{}
	for _, a := range alerts {
		what := a.Label
		if what == "" {
			what = a.Decision
		}
		v := a.Capability + ":" + what
		if !seen[v] {
			seen[v] = true
			parts = append(parts, v)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// CapabilityData is the non-PII data of a capability result worth acting on
// downstream.
type CapabilityData struct {
	Similarity         string   `json:"similarity,omitempty"`         // similarity: MATCH, NOT_MATCH, NOT_POSSIBLE
	LivenessType       string   `json:"livenessType,omitempty"`       // liveness: JUMIO_STANDARD, IPROOV_…
	FaceSearchStatus   string   `json:"faceSearchStatus,omitempty"`   // imageChecks: DONE, PENDING, ERROR
	FaceSearchFindings []string `json:"faceSearchFindings,omitempty"` // imageChecks: other workflow execution IDs with the same face
	EmailStatus        string   `json:"emailStatus,omitempty"`        // emailVerification
	EmailExists        *bool    `json:"emailExists,omitempty"`
	DomainRiskLevel    string   `json:"domainRiskLevel,omitempty"`
	Advice             string   `json:"advice,omitempty"`
	PhoneType          string   `json:"phoneType,omitempty"` // phoneVerification
	PhoneBlocked       *bool    `json:"phoneBlocked,omitempty"`
	PhoneRisk          []string `json:"phoneRisk,omitempty"`
	WatchlistStatus    string   `json:"watchlistStatus,omitempty"` // watchlistScreening
	WatchlistResults   *int     `json:"watchlistResults,omitempty"`
}

// DecodeEvent decodes a lifecycle event, tolerating unknown fields.
func DecodeEvent(b []byte) (*Event, error) {
	var e Event
	if err := tolerantDecode(b, &e, SchemaEvent, &e.Schema); err != nil {
		return nil, err
	}
	if e.JobID == "" || e.Kind == "" {
		return nil, inputError(ErrMalformed, "event without jobId or kind")
	}
	return &e, nil
}

// DecodeCallback decodes a received callback, tolerating unknown fields,
// and checks the Jumio callback inside it.
func DecodeCallback(b []byte) (*CallbackReceived, error) {
	var c CallbackReceived
	if err := tolerantDecode(b, &c, SchemaCallback, &c.Schema); err != nil {
		return nil, err
	}
	if err := c.Callback.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if c.JobID != "" && !ValidJobID(c.JobID) {
		return nil, inputError(ErrMalformed, "malformed jobId")
	}
	return &c, nil
}

// DecodeDecision decodes a decision event, tolerating unknown fields.
func DecodeDecision(b []byte) (*DecisionEvent, error) {
	var d DecisionEvent
	if err := tolerantDecode(b, &d, SchemaDecision, &d.Schema); err != nil {
		return nil, err
	}
	if d.WorkflowExecutionID == "" || d.Decision.Type == "" {
		return nil, inputError(ErrMalformed, "decision without workflowExecutionId or type")
	}
	return &d, nil
}

// tolerantDecode decodes JSON that may carry fields this version does not
// know, and checks the schema (an empty schema is read as want).
func tolerantDecode(b []byte, v any, want string, schema *string) error {
	if err := json.Unmarshal(b, v); err != nil {
		return inputError(ErrMalformed, DescribeJSONError(err))
	}
	if *schema == "" {
		*schema = want
	}
	if *schema != want {
		return inputError(ErrUnsupportedSchema, fmt.Sprintf("%q (want %s)", truncate(*schema, 64), want))
	}
	return nil
}
