package pipeline

import (
	"context"
	"maps"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// newDecisionEvent normalizes a retrieval response into a messages.DecisionEvent.
// Jumio's own decision type, label and score are passed on, for expired
// executions too (jumio-api.md §10.9: their details carry a decision such as
// NOT_EXECUTED / TOKEN_EXPIRED / -1, or REJECTED / 100 in captured 2023
// responses). Only when Jumio reports no decision does an expired execution
// become type EXPIRED (label: the status), and a processed one NOT_EXECUTED.
// The event's alerts list every capability result worse than the overall
// decision. withExtraction copies the extracted document data (PII) into
// the event.
func newDecisionEvent(d *jumio.WorkflowDetails, withExtraction bool) *messages.DecisionEvent {
	ev := &messages.DecisionEvent{
		Schema:                    messages.SchemaDecision,
		AccountID:                 d.Account.ID,
		WorkflowExecutionID:       d.Workflow.ID,
		CustomerInternalReference: d.Workflow.CustomerInternalReference,
		UserReference:             d.Workflow.UserReference,
		WorkflowDefinitionKey:     d.Workflow.DefinitionKey,
		Status:                    d.Workflow.Status,
		CreatedAt:                 d.CreatedAt,
		StartedAt:                 d.StartedAt,
		CompletedAt:               d.CompletedAt,
	}
	ev.Decision = messages.DecisionSummary{Type: d.Decision.Type, Label: d.Decision.Details.Label}
	if d.Decision.Risk != nil {
		score := d.Decision.Risk.Score
		ev.Decision.RiskScore = &score
	}
	switch {
	case validDecisionType(ev.Decision.Type) && ev.Decision.Type != messages.DecisionExpired:
		// Jumio's own decision (EXPIRED is kycpipe's word, never Jumio's).
	case jumio.IsExpiredStatus(d.Workflow.Status):
		ev.Decision = expiredDecision(d.Workflow.Status)
	default:
		// Jumio gave no (or an unknown) decision for a processed workflow.
		ev.Decision.Type = messages.DecisionNotExecuted
	}
	ev.Capabilities = summarizeCapabilities(&d.Capabilities)
	ev.Alerts = alertsOf(ev.Decision.Type, ev.Capabilities)
	if withExtraction {
		for _, e := range d.Capabilities.Extraction {
			if e.Data != nil {
				ev.Extraction = append(ev.Extraction, *e.Data)
			}
		}
	}
	return ev
}

// expiredDecision is the decision of an expired execution for which Jumio
// reports none: type EXPIRED, the status (TOKEN_EXPIRED, SESSION_EXPIRED)
// as label, no score.
func expiredDecision(status string) messages.DecisionSummary {
	return messages.DecisionSummary{Type: messages.DecisionExpired, Label: status}
}

// severity ranks decisions for alerts: PASSED < WARNING < REJECTED. Other
// types (NOT_EXECUTED, EXPIRED, unknown ones) are not findings: -1.
func severity(t string) int {
	switch t {
	case messages.DecisionPassed:
		return 0
	case messages.DecisionWarning:
		return 1
	case messages.DecisionRejected:
		return 2
	}
	return -1
}

// alertsOf lists every capability result whose decision is worse than the
// overall one (DESIGN 3.2), by capability name. An overall decision that is
// not a finding (NOT_EXECUTED, EXPIRED) counts as PASSED, so every WARNING
// or REJECTED result under it is an alert; NOT_EXECUTED results never are.
func alertsOf(overall string, caps map[string][]messages.CapabilitySummary) []messages.Alert {
	base := max(severity(overall), 0)
	var out []messages.Alert
	for _, name := range slices.Sorted(maps.Keys(caps)) {
		for _, c := range caps[name] {
			if severity(c.Decision) > base {
				out = append(out, messages.Alert{Capability: name, Decision: c.Decision, Label: c.Label})
			}
		}
	}
	return out
}

// expiredEvent is the decision of an expired execution whose details Jumio
// does not return (404): built from the record and the status, in the
// shape of every other decision event.
func expiredEvent(rec *JobRecord, st *jumio.StatusResponse) *messages.DecisionEvent {
	return &messages.DecisionEvent{
		Schema:    messages.SchemaDecision,
		AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
		CustomerInternalReference: rec.CustomerInternalReference,
		WorkflowDefinitionKey:     st.WorkflowExecution.DefinitionKey, Status: st.WorkflowExecution.Status,
		Decision: expiredDecision(st.WorkflowExecution.Status),
	}
}

// publishDecision publishes ev on kyc.decisions.<TYPE>, deduplicated on
// the execution ID, with the Kyc-Alerts header naming its alerts.
func (r *Retriever) publishDecision(ctx context.Context, ev *messages.DecisionEvent, jobID string) (*jetstream.PubAck, error) {
	o, err := newOutMsg(r.subj.Decision(ev.Decision.Type), ev, messages.DecisionMsgID(ev.WorkflowExecutionID), jobID)
	if err != nil {
		return nil, err
	}
	if h := messages.AlertsHeader(ev.Alerts); h != "" {
		o.header = nats.Header{messages.HeaderAlerts: {h}}
	}
	return publish(ctx, r.js, o)
}

func validDecisionType(t string) bool {
	for _, d := range messages.DecisionTypes {
		if d == t {
			return true
		}
	}
	return false
}

func summarizeCapabilities(c *jumio.Capabilities) map[string][]messages.CapabilitySummary {
	out := map[string][]messages.CapabilitySummary{}
	add := func(name string, dec jumio.Decision, data *messages.CapabilityData) {
		out[name] = append(out[name], messages.CapabilitySummary{Decision: dec.Type, Label: dec.Details.Label, Data: data})
	}
	typed := map[string]bool{}
	// Usability has one result per credential: keep which one (ID, SELFIE,
	// …) each judged.
	for _, r := range c.Usability {
		s := messages.CapabilitySummary{Decision: r.Decision.Type, Label: r.Decision.Details.Label}
		if len(r.Credentials) > 0 {
			s.Credential = r.Credentials[0].Category
		}
		out["usability"] = append(out["usability"], s)
	}
	for _, r := range c.Similarity {
		var data *messages.CapabilityData
		if r.Data != nil && r.Data.Similarity != "" {
			data = &messages.CapabilityData{Similarity: r.Data.Similarity}
		}
		add("similarity", r.Decision, data)
	}
	for _, r := range c.Liveness {
		var data *messages.CapabilityData
		if r.Data != nil && r.Data.Type != "" {
			data = &messages.CapabilityData{LivenessType: r.Data.Type}
		}
		add("liveness", r.Decision, data)
	}
	for _, r := range c.ImageChecks {
		var data *messages.CapabilityData
		if r.Data != nil && r.Data.FaceSearchFindings != nil {
			f := r.Data.FaceSearchFindings
			data = &messages.CapabilityData{FaceSearchStatus: f.Status, FaceSearchFindings: f.Findings}
		}
		add("imageChecks", r.Decision, data)
	}
	for _, r := range c.EmailVerification {
		var data *messages.CapabilityData
		if e := r.Data; e != nil {
			data = &messages.CapabilityData{EmailStatus: e.EmailVerificationStatus, EmailExists: e.EmailExists, DomainRiskLevel: e.DomainRiskLevel, Advice: e.Advice}
		}
		add("emailVerification", r.Decision, data)
	}
	for _, r := range c.PhoneVerification {
		var data *messages.CapabilityData
		if p := r.Data; p != nil {
			data = &messages.CapabilityData{PhoneType: p.PhoneType, PhoneBlocked: p.Blocked}
			if p.RiskInsights != nil {
				data.PhoneRisk = p.RiskInsights.RelativeRisk
			}
		}
		add("phoneVerification", r.Decision, data)
	}
	for _, r := range c.WatchlistScreening {
		var data *messages.CapabilityData
		if w := r.Data; w != nil && (w.SearchStatus != "" || w.SearchResults != nil) {
			data = &messages.CapabilityData{WatchlistStatus: w.SearchStatus, WatchlistResults: w.SearchResults}
		}
		add("watchlistScreening", r.Decision, data)
	}
	for _, name := range []string{"usability", "similarity", "liveness", "imageChecks", "emailVerification", "phoneVerification", "watchlistScreening"} {
		typed[name] = true
	}
	// Every other capability (extraction included: its data is PII) is
	// summarized by decision only; unknown capabilities too.
	for _, r := range c.All() {
		if !typed[r.Name] {
			add(r.Name, r.Decision, nil)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
