package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

func loadDetails(t *testing.T, name string) *jumio.WorkflowDetails {
	t.Helper()
	b, err := os.ReadFile("../jumio/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := jumio.DecodeWorkflowDetails(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestNewDecisionEvent(t *testing.T) {
	t.Parallel()
	d := loadDetails(t, "details_id_selfie.json")
	ev := newDecisionEvent(d, false)
	if ev.Decision.Type != messages.DecisionWarning || ev.Decision.RiskScore == nil || *ev.Decision.RiskScore != 50 {
		t.Errorf("decision = %+v", ev.Decision)
	}
	if ev.Extraction != nil {
		t.Error("extraction included without being asked for")
	}
	if got := ev.Capabilities["imageChecks"]; len(got) != 1 || got[0].Label != "REPEATED_FACE" || len(got[0].Data.FaceSearchFindings) != 4 {
		t.Errorf("imageChecks = %+v", got)
	}
	if got := ev.Capabilities["extraction"]; len(got) != 1 || got[0].Data != nil {
		t.Errorf("extraction summary must carry no data: %+v", got)
	}
	if len(ev.Capabilities["usability"]) != 3 {
		t.Errorf("usability = %+v", ev.Capabilities["usability"])
	}
	b, _ := json.Marshal(ev)
	for _, pii := range []string{"JOHN JACOB", "N1234567", "1969-01-18"} {
		if bytes.Contains(b, []byte(pii)) {
			t.Errorf("decision event without extraction contains PII %q", pii)
		}
	}
	withPII := newDecisionEvent(d, true)
	if len(withPII.Extraction) != 1 || withPII.Extraction[0].DocumentNumber != "N1234567" {
		t.Errorf("extraction = %+v", withPII.Extraction)
	}

	// A captured 2023 response: SESSION_EXPIRED with Jumio's own decision
	// REJECTED / 100, passed on as Jumio gave it (jumio-api.md §10.9).
	expired := newDecisionEvent(loadDetails(t, "details_session_expired.json"), false)
	if expired.Decision.Type != messages.DecisionRejected || expired.Decision.Label != "REJECTED" ||
		expired.Decision.RiskScore == nil || *expired.Decision.RiskScore != 100 || expired.Status != jumio.StatusSessionExpired {
		t.Errorf("expired decision = %+v (status %s)", expired.Decision, expired.Status)
	}
	// Without a decision from Jumio, an expired execution is EXPIRED.
	bare := loadDetails(t, "details_session_expired.json")
	bare.Decision = jumio.Decision{}
	if ev := newDecisionEvent(bare, false); ev.Decision.Type != messages.DecisionExpired || ev.Decision.Label != jumio.StatusSessionExpired || ev.Decision.RiskScore != nil {
		t.Errorf("expired without Jumio's decision = %+v", ev.Decision)
	}
	for _, u := range ev.Capabilities["usability"] {
		if u.Credential == "" {
			t.Errorf("usability result without its credential: %+v", ev.Capabilities["usability"])
		}
	}

	future := newDecisionEvent(loadDetails(t, "details_future_fields.json"), false)
	if got := future.Capabilities["deviceRisk"]; len(got) != 1 || got[0].Label != "LOW_RISK" {
		t.Errorf("unknown capability not summarized: %+v", future.Capabilities)
	}
	if got := future.Capabilities["emailVerification"]; len(got) != 1 || got[0].Data == nil || got[0].Data.DomainRiskLevel != "LOW" {
		t.Errorf("email summary = %+v", got)
	}
	if got := future.Capabilities["phoneVerification"]; len(got) != 1 || got[0].Data.PhoneType != "MOBILE" {
		t.Errorf("phone summary = %+v", got)
	}
}

// Alerts list every capability result worse than the overall decision
// (DESIGN 3.2); NOT_EXECUTED results are not findings.
func TestAlerts(t *testing.T) {
	t.Parallel()
	caps := map[string][]messages.CapabilitySummary{
		"watchlistScreening": {{Decision: "WARNING", Label: "ALERT"}},
		"usability":          {{Decision: "PASSED", Label: "OK", Credential: "ID"}, {Decision: "NOT_EXECUTED", Label: "NOT_UPLOADED", Credential: "SELFIE"}},
		"imageChecks":        {{Decision: "REJECTED", Label: "REPEATED_FACE"}},
	}
	cases := []struct {
		overall string
		want    []string
	}{
		{"PASSED", []string{"imageChecks:REJECTED", "watchlistScreening:WARNING"}},
		{"WARNING", []string{"imageChecks:REJECTED"}},
		{"REJECTED", nil},
		{"NOT_EXECUTED", []string{"imageChecks:REJECTED", "watchlistScreening:WARNING"}},
		{"EXPIRED", []string{"imageChecks:REJECTED", "watchlistScreening:WARNING"}},
	}
	for _, c := range cases {
		var got []string
		for _, a := range alertsOf(c.overall, caps) {
			got = append(got, a.Capability+":"+a.Decision)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("overall %s: alerts %v, want %v", c.overall, got, c.want)
		}
	}
}
