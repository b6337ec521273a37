package pipeline

import (
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// newDecisionEvent normalizes a retrieval response into a messages.DecisionEvent.
// Expired workflows (TOKEN_EXPIRED, SESSION_EXPIRED) become type EXPIRED
// with the status as label, whatever Jumio's decision says. withExtraction
// copies the extracted document data (PII) into the event.
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
	case jumio.IsExpiredStatus(d.Workflow.Status):
		ev.Decision.Type, ev.Decision.Label = messages.DecisionExpired, d.Workflow.Status
	case !validDecisionType(ev.Decision.Type):
		// Jumio gave no (or an unknown) decision for a processed workflow.
		ev.Decision.Type = messages.DecisionNotExecuted
	}
	ev.Capabilities = summarizeCapabilities(&d.Capabilities)
	if withExtraction {
		for _, e := range d.Capabilities.Extraction {
			if e.Data != nil {
				ev.Extraction = append(ev.Extraction, *e.Data)
			}
		}
	}
	return ev
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
	for _, name := range []string{"similarity", "liveness", "imageChecks", "emailVerification", "phoneVerification", "watchlistScreening"} {
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
