package pipeline

import (
	"bytes"
	"encoding/json"
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

	expired := newDecisionEvent(loadDetails(t, "details_session_expired.json"), false)
	if expired.Decision.Type != messages.DecisionExpired || expired.Decision.Label != jumio.StatusSessionExpired {
		t.Errorf("expired decision = %+v", expired.Decision)
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
