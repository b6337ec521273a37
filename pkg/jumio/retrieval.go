package jumio

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
)

// Workflow execution statuses.
const (
	StatusInitiated          = "INITIATED"
	StatusAcquisitionStarted = "ACQUISITION_STARTED" // intermediate callbacks only
	StatusAcquired           = "ACQUIRED"
	StatusProcessed          = "PROCESSED"
	StatusSessionExpired     = "SESSION_EXPIRED"
	StatusTokenExpired       = "TOKEN_EXPIRED"
)

// IsTerminalStatus reports whether a workflow in status s will not change
// any more: PROCESSED, SESSION_EXPIRED or TOKEN_EXPIRED.
func IsTerminalStatus(s string) bool {
	return s == StatusProcessed || s == StatusSessionExpired || s == StatusTokenExpired
}

// IsExpiredStatus reports whether s is SESSION_EXPIRED or TOKEN_EXPIRED.
func IsExpiredStatus(s string) bool {
	return s == StatusSessionExpired || s == StatusTokenExpired
}

// Decision types (top-level and per capability).
const (
	DecisionPassed      = "PASSED"
	DecisionRejected    = "REJECTED"
	DecisionWarning     = "WARNING"
	DecisionNotExecuted = "NOT_EXECUTED"
)

// StatusResponse is the answer of the workflow status endpoint.
//
// Jumio API docs: https://documentation.jumio.ai/developer-resources/api/retrieval
type StatusResponse struct {
	Account           Ref            `json:"account"`
	WorkflowExecution WorkflowStatus `json:"workflowExecution"`
}

// WorkflowDetails is the full retrieval response of one workflow execution:
// its status, the credentials acquired, the overall decision and every
// capability's result. Extraction data is PII: never log a WorkflowDetails.
//
// Jumio API docs: https://documentation.jumio.ai/developer-resources/api/retrieval
type WorkflowDetails struct {
	Workflow     WorkflowInfo               `json:"workflow"`
	Account      Ref                        `json:"account"`
	CreatedAt    string                     `json:"createdAt,omitempty"`
	StartedAt    string                     `json:"startedAt,omitempty"`
	CompletedAt  string                     `json:"completedAt,omitempty"`
	WipedOutAt   string                     `json:"wipedOutAt,omitempty"`
	Credentials  []RetrievedCredential      `json:"credentials,omitempty"`
	Decision     Decision                   `json:"decision"`
	Consent      *Consent                   `json:"consent,omitempty"`
	Steps        *Link                      `json:"steps,omitempty"`
	Capabilities Capabilities               `json:"capabilities"`
	Other        map[string]json.RawMessage `json:"-"` // top-level fields this model does not know, kept verbatim
}

// WorkflowInfo identifies the workflow of a [WorkflowDetails].
type WorkflowInfo struct {
	ID                        string `json:"id"`
	Status                    string `json:"status"`
	DefinitionKey             string `json:"definitionKey,omitempty"`
	UserReference             string `json:"userReference,omitempty"`
	CustomerInternalReference string `json:"customerInternalReference,omitempty"`
}

// Link is an object holding a URL.
type Link struct {
	Href string `json:"href,omitempty"`
}

// RetrievedCredential is a credential as acquired, with its parts.
type RetrievedCredential struct {
	ID       string             `json:"id"`
	Category string             `json:"category"`
	Parts    []RetrievedPart    `json:"parts"`
	Consent  *CredentialConsent `json:"consent,omitempty"`
	ClientIP string             `json:"clientIp,omitempty"`
}

// RetrievedPart is one acquired part (an image, a facemap, prepared data).
type RetrievedPart struct {
	Classifier  string `json:"classifier"`
	Href        string `json:"href,omitempty"`
	CaptureType string `json:"captureType,omitempty"`
}

// CredentialConsent is the consent recorded for a credential.
type CredentialConsent struct {
	DecisionAccepted *bool  `json:"decisionAccepted,omitempty"`
	CollectedBy      string `json:"collectedBy,omitempty"`
}

// Decision is the overall decision, or one capability's decision.
type Decision struct {
	Type    string          `json:"type"`
	Details DecisionDetails `json:"details"`
	Risk    *Risk           `json:"risk,omitempty"`
}

// DecisionDetails carries the decision label (PASSED, TXN_REJECTED, MATCH,
// REPEATED_FACE, …).
type DecisionDetails struct {
	Label string `json:"label"`
}

// Risk is the risk score: -1 (not executed) to 100 (highest risk).
type Risk struct {
	Score float64 `json:"score"`
}

// CredentialRef names a credential a capability used.
type CredentialRef struct {
	ID       string `json:"id"`
	Category string `json:"category,omitempty"`
}

// Result is one result of a capability whose data has type D.
type Result[D any] struct {
	ID                            string          `json:"id,omitempty"`
	Credentials                   []CredentialRef `json:"credentials,omitempty"`
	Decision                      Decision        `json:"decision"`
	Data                          *D              `json:"data,omitempty"`
	ValidFaceMapForAuthentication string          `json:"validFaceMapForAuthentication,omitempty"`
}

// RawResult is a capability result whose data this model does not type.
type RawResult = Result[json.RawMessage]

// Capabilities holds every capability's results. Capabilities this model
// does not know (new ones Jumio adds) are kept verbatim in Other, so they
// survive decoding and re-encoding; so is a known capability whose payload
// does not match the typed model (DecodeErrors says which).
type Capabilities struct {
	Extraction                 []Result[ExtractionData]        `json:"extraction,omitempty"`
	Similarity                 []Result[SimilarityData]        `json:"similarity,omitempty"`
	Liveness                   []Result[LivenessData]          `json:"liveness,omitempty"`
	Authentication             []RawResult                     `json:"authentication,omitempty"`
	DataChecks                 []RawResult                     `json:"dataChecks,omitempty"`
	ImageChecks                []Result[ImageChecksData]       `json:"imageChecks,omitempty"`
	Usability                  []RawResult                     `json:"usability,omitempty"`
	WatchlistScreening         []Result[WatchlistData]         `json:"watchlistScreening,omitempty"`
	EmailVerification          []Result[EmailVerificationData] `json:"emailVerification,omitempty"`
	PhoneVerification          []Result[PhoneVerificationData] `json:"phoneVerification,omitempty"`
	AddressValidation          []RawResult                     `json:"addressValidation,omitempty"`
	ProofOfResidency           []RawResult                     `json:"proofOfResidency,omitempty"`
	DrivingLicenseVerification []RawResult                     `json:"drivingLicenseVerification,omitempty"`
	BraCpfValidation           []RawResult                     `json:"braCpfValidation,omitempty"`
	BiometricVerification      []RawResult                     `json:"biometricVerification,omitempty"`

	// Other holds capabilities the model does not know, by name, verbatim.
	Other map[string]json.RawMessage `json:"-"`
	// DecodeErrors names known capabilities whose payload did not match the
	// typed model; their raw payload is in Other. It is never encoded.
	DecodeErrors map[string]string `json:"-"`
}

// SimilarityData says whether the selfie matches the document's photo:
// MATCH, NOT_MATCH or NOT_POSSIBLE.
type SimilarityData struct {
	Similarity string `json:"similarity,omitempty"`
}

// LivenessData describes the liveness check performed.
type LivenessData struct {
	Type               string   `json:"type,omitempty"`
	PredictedAge       *float64 `json:"predictedAge,omitempty"`
	AgeConfidenceRange string   `json:"ageConfidenceRange,omitempty"`
}

// ImageChecksData carries face-search findings: other workflow executions
// in which the same face appeared.
type ImageChecksData struct {
	FaceSearchFindings *FaceSearchFindings `json:"faceSearchFindings,omitempty"`
}

// FaceSearchFindings lists workflow execution IDs with the same face.
type FaceSearchFindings struct {
	Status   string   `json:"status,omitempty"`
	Findings []string `json:"findings,omitempty"`
}

// WatchlistData describes a watchlist screening search.
type WatchlistData struct {
	SearchDate      string `json:"searchDate,omitempty"`
	SearchStatus    string `json:"searchStatus,omitempty"`
	SearchID        string `json:"searchId,omitempty"`
	SearchReference string `json:"searchReference,omitempty"`
	SearchResultURL string `json:"searchResultUrl,omitempty"`
	SearchResults   *int   `json:"searchResults,omitempty"`
}

// EmailVerificationData is the email risk signal's data.
type EmailVerificationData struct {
	EmailVerificationStatus string `json:"emailVerificationStatus,omitempty"`
	FirstVerifiedAt         string `json:"firstVerifiedAt,omitempty"`
	TotalHits               string `json:"totalHits,omitempty"`
	EmailExists             *bool  `json:"emailExists,omitempty"`
	DomainExists            *bool  `json:"domainExists,omitempty"`
	DomainName              string `json:"domainName,omitempty"`
	DomainCompany           string `json:"domainCompany,omitempty"`
	DomainRiskLevel         string `json:"domainRiskLevel,omitempty"`
	DomainCreationDate      string `json:"domainCreationDate,omitempty"`
	Advice                  string `json:"advice,omitempty"`
	DomainCountry           string `json:"domainCountry,omitempty"`
	DomainCategory          string `json:"domainCategory,omitempty"`
	DomainCorporate         *bool  `json:"domainCorporate,omitempty"`
}

// PhoneVerificationData is the phone risk signal's data.
type PhoneVerificationData struct {
	PhoneType    string             `json:"phoneType,omitempty"`
	Carrier      string             `json:"carrier,omitempty"`
	Blocked      *bool              `json:"blocked,omitempty"`
	RiskInsights *PhoneRiskInsights `json:"riskInsights,omitempty"`
}

// PhoneRiskInsights are the risk indicators of a phone number.
type PhoneRiskInsights struct {
	RelativeRisk               []string `json:"relativeRisk,omitempty"`
	ApplicationToPersonTraffic []string `json:"applicationToPersonTraffic,omitempty"`
	PersonToPersonTraffic      []string `json:"personToPersonTraffic,omitempty"`
}

// capabilityCodec decodes, encodes and summarizes one typed capability field.
type capabilityCodec struct {
	name string
	dec  func(c *Capabilities, raw json.RawMessage) error
	enc  func(c *Capabilities) (any, bool)
	gen  func(c *Capabilities) []GenericResult
}

// knownCapabilities lists each typed capability's JSON name with its codec.
var knownCapabilities = []capabilityCodec{
	capField("extraction", func(c *Capabilities) *[]Result[ExtractionData] { return &c.Extraction }),
	capField("similarity", func(c *Capabilities) *[]Result[SimilarityData] { return &c.Similarity }),
	capField("liveness", func(c *Capabilities) *[]Result[LivenessData] { return &c.Liveness }),
	capField("authentication", func(c *Capabilities) *[]RawResult { return &c.Authentication }),
	capField("dataChecks", func(c *Capabilities) *[]RawResult { return &c.DataChecks }),
	capField("imageChecks", func(c *Capabilities) *[]Result[ImageChecksData] { return &c.ImageChecks }),
	capField("usability", func(c *Capabilities) *[]RawResult { return &c.Usability }),
	capField("watchlistScreening", func(c *Capabilities) *[]Result[WatchlistData] { return &c.WatchlistScreening }),
	capField("emailVerification", func(c *Capabilities) *[]Result[EmailVerificationData] { return &c.EmailVerification }),
	capField("phoneVerification", func(c *Capabilities) *[]Result[PhoneVerificationData] { return &c.PhoneVerification }),
	capField("addressValidation", func(c *Capabilities) *[]RawResult { return &c.AddressValidation }),
	capField("proofOfResidency", func(c *Capabilities) *[]RawResult { return &c.ProofOfResidency }),
	capField("drivingLicenseVerification", func(c *Capabilities) *[]RawResult { return &c.DrivingLicenseVerification }),
	capField("braCpfValidation", func(c *Capabilities) *[]RawResult { return &c.BraCpfValidation }),
	capField("biometricVerification", func(c *Capabilities) *[]RawResult { return &c.BiometricVerification }),
}

func capField[D any](name string, field func(*Capabilities) *[]Result[D]) capabilityCodec {
	return capabilityCodec{
		name: name,
		dec: func(c *Capabilities, raw json.RawMessage) error {
			var v []Result[D]
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		enc: func(c *Capabilities) (any, bool) {
			v := *field(c)
			return v, v != nil
		},
		gen: func(c *Capabilities) []GenericResult {
			v := *field(c)
			out := make([]GenericResult, 0, len(v))
			for _, r := range v {
				out = append(out, GenericResult{Name: name, ID: r.ID, Decision: r.Decision})
			}
			return out
		},
	}
}

// UnmarshalJSON decodes the typed capabilities and keeps unknown ones (and
// known ones that do not match the model) verbatim in Other.
func (c *Capabilities) UnmarshalJSON(b []byte) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*c = Capabilities{}
	for _, k := range knownCapabilities {
		raw, ok := all[k.name]
		if !ok {
			continue
		}
		delete(all, k.name)
		if err := k.dec(c, raw); err != nil {
			if c.DecodeErrors == nil {
				c.DecodeErrors = map[string]string{}
			}
			c.DecodeErrors[k.name] = err.Error()
			if c.Other == nil {
				c.Other = map[string]json.RawMessage{}
			}
			c.Other[k.name] = raw
		}
	}
	for name, raw := range all {
		if c.Other == nil {
			c.Other = map[string]json.RawMessage{}
		}
		c.Other[name] = raw
	}
	return nil
}

// MarshalJSON encodes typed and unknown capabilities together.
func (c Capabilities) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(knownCapabilities)+len(c.Other))
	for _, k := range knownCapabilities {
		if v, ok := k.enc(&c); ok {
			out[k.name] = v
		}
	}
	for name, raw := range c.Other {
		if _, typed := out[name]; !typed {
			out[name] = raw
		}
	}
	return json.Marshal(out)
}

// GenericResult is the part every capability result shares: its name, ID and
// decision.
type GenericResult struct {
	Name     string
	ID       string
	Decision Decision
}

// All returns the name, ID and decision of every capability result, typed or
// not, sorted by capability name. Results of unknown capabilities whose
// payload has no recognizable decision are returned with an empty decision.
func (c *Capabilities) All() []GenericResult {
	var out []GenericResult
	for _, k := range knownCapabilities {
		out = append(out, k.gen(c)...)
	}
	for name, raw := range c.Other {
		var rs []RawResult
		if err := json.Unmarshal(raw, &rs); err != nil {
			out = append(out, GenericResult{Name: name})
			continue
		}
		for _, r := range rs {
			out = append(out, GenericResult{Name: name, ID: r.ID, Decision: r.Decision})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// workflowDetailsFields is WorkflowDetails without its methods, for decoding.
type workflowDetailsFields WorkflowDetails

var detailsKnownFields = map[string]bool{
	"workflow": true, "account": true, "createdAt": true, "startedAt": true, "completedAt": true,
	"wipedOutAt": true, "credentials": true, "decision": true, "consent": true, "steps": true,
	"capabilities": true,
}

// UnmarshalJSON decodes the details and keeps top-level fields the model
// does not know in Other. It reads the documents Jumio sends with a
// hand-written fast path (retrieval_json.go) and everything else with
// encoding/json; the result is the same either way.
func (d *WorkflowDetails) UnmarshalJSON(b []byte) error {
	var f WorkflowDetails
	if decodeDetailsFast(b, &f) {
		*d = f
		return nil
	}
	return decodeDetailsSlow(b, d)
}

// decodeDetailsSlow decodes the details with encoding/json: the reference
// the fast path agrees with, and its fallback.
func decodeDetailsSlow(b []byte, d *WorkflowDetails) error {
	var f workflowDetailsFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	// Unknown top-level fields are kept. Looking for them by decoding the
	// whole body again (capabilities are most of it) doubled the cost of
	// every retrieval, so the keys are scanned first.
	if allKnown(b, detailsKnownFields) {
		*d = WorkflowDetails(f)
		return nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k := range all {
		if detailsKnownFields[k] {
			delete(all, k)
		}
	}
	if len(all) > 0 {
		f.Other = all
	}
	*d = WorkflowDetails(f)
	return nil
}

// allKnown reports whether every key of the JSON object b is in known. It
// answers false when unsure (escaped keys, anything unexpected), which only
// costs the full decode.
func allKnown(b []byte, known map[string]bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		if b[i] != '"' {
			return false
		}
		end := stringEnd(b, i)
		if end < 0 {
			return false
		}
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 || !known[string(key)] {
			return false
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		if i = valueEnd(b, skipSpace(b, i+1)); i < 0 {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return true
		case ',':
			i = skipSpace(b, i+1)
		default:
			return false
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string that
// starts at b[i], or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index after the JSON value that starts at b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = stringEnd(b, j); j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

// MarshalJSON encodes the details, including unknown top-level fields.
func (d WorkflowDetails) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(workflowDetailsFields(d))
	if err != nil || len(d.Other) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range d.Other {
		if _, known := all[k]; !known {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

// DecodeWorkflowDetails decodes a retrieval details payload. It tolerates
// unknown fields and capabilities; it fails only on malformed JSON or when
// the payload has no workflow ID.
func DecodeWorkflowDetails(r io.Reader) (*WorkflowDetails, error) {
	dec := json.NewDecoder(r)
	var d WorkflowDetails
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("jumio: decode workflow details: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("jumio: decode workflow details: trailing data after JSON object")
	}
	if d.Workflow.ID == "" {
		return nil, fmt.Errorf("jumio: decode workflow details: %w: missing workflow.id", ErrInvalidResponse)
	}
	return &d, nil
}

// Steps is the answer of the steps endpoint.
type Steps struct {
	Steps []Step `json:"steps"`
}

// Step is one step of a workflow (ID_IV, SCREENING, …).
type Step struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	CapabilityIDs []string `json:"capabilityIds,omitempty"`
	Decision      Decision `json:"decision"`
}

func (c *Client) executionURL(accountID, executionID string) string {
	return c.retrievalURL + "/api/v1/accounts/" + url.PathEscape(accountID) +
		"/workflow-executions/" + url.PathEscape(executionID)
}

func checkIDs(op string, ids ...string) error {
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("jumio: %s: %w: empty ID", op, ErrInvalidArgument)
		}
	}
	return nil
}

// WorkflowStatus reads a workflow execution's status with the OAuth token.
//
// Jumio API docs: https://documentation.jumio.ai/developer-resources/api/retrieval
func (c *Client) WorkflowStatus(ctx context.Context, accountID, executionID string) (*StatusResponse, error) {
	if err := checkIDs(opWorkflowStatus, accountID, executionID); err != nil {
		return nil, err
	}
	var out StatusResponse
	if err := c.doOAuth(ctx, opWorkflowStatus, http.MethodGet, c.executionURL(accountID, executionID)+"/status", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WorkflowDetails retrieves a workflow execution's full result. Call it once
// the status is terminal; before that Jumio may answer 404 or partial data.
//
// Jumio API docs: https://documentation.jumio.ai/developer-resources/api/retrieval
func (c *Client) WorkflowDetails(ctx context.Context, accountID, executionID string) (*WorkflowDetails, error) {
	if err := checkIDs(opWorkflowDetails, accountID, executionID); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := c.doOAuth(ctx, opWorkflowDetails, http.MethodGet, c.executionURL(accountID, executionID), nil, &raw); err != nil {
		return nil, err
	}
	d, err := decodeDetailsValue(raw)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// decodeDetailsValue decodes raw as DecodeWorkflowDetails(bytes.NewReader(raw))
// does, when raw is what json.Unmarshal leaves in a json.RawMessage (nothing,
// or one JSON value without space around it): a json.Decoder would add a
// pass over the bytes to find the value and another to skip it, each
// costing as much as decoding them on the fast path.
func decodeDetailsValue(raw []byte) (*WorkflowDetails, error) {
	if len(raw) == 0 { // an empty body: the decoder's error
		return DecodeWorkflowDetails(bytes.NewReader(raw))
	}
	var d WorkflowDetails
	if err := d.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("jumio: decode workflow details: %w", err)
	}
	if d.Workflow.ID == "" {
		return nil, fmt.Errorf("jumio: decode workflow details: %w: missing workflow.id", ErrInvalidResponse)
	}
	return &d, nil
}

// WorkflowSteps retrieves the steps of a workflow execution.
//
// Jumio API docs: https://documentation.jumio.ai/developer-resources/api/retrieval
func (c *Client) WorkflowSteps(ctx context.Context, accountID, executionID string) (*Steps, error) {
	if err := checkIDs(opWorkflowSteps, accountID, executionID); err != nil {
		return nil, err
	}
	var out Steps
	if err := c.doOAuth(ctx, opWorkflowSteps, http.MethodGet, c.executionURL(accountID, executionID)+"/steps", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteAccount deletes an account and all its workflow executions. Deletion
// is immediate and irreversible.
//
// Jumio API docs: https://jumio.github.io/kyx/integration-guide.html (Deleting an Account)
func (c *Client) DeleteAccount(ctx context.Context, accountID string) error {
	if err := checkIDs(opDeleteAccount, accountID); err != nil {
		return err
	}
	u := c.retrievalURL + "/api/v1/accounts/" + url.PathEscape(accountID)
	return c.doOAuth(ctx, opDeleteAccount, http.MethodDelete, u, nil, nil)
}

// DeleteWorkflowExecution deletes one workflow execution and its data.
//
// Jumio API docs: https://jumio.github.io/kyx/integration-guide.html (Deleting a Workflow Execution)
func (c *Client) DeleteWorkflowExecution(ctx context.Context, accountID, executionID string) error {
	if err := checkIDs(opDeleteExecution, accountID, executionID); err != nil {
		return err
	}
	return c.doOAuth(ctx, opDeleteExecution, http.MethodDelete, c.executionURL(accountID, executionID), nil, nil)
}
