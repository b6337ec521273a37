package jumiotest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func TestDeriveOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    Execution
		want Outcome
	}{
		{"plain", Execution{CustomerInternalReference: "order-1"}, Outcome{Decision: "PASSED", Score: 10}},
		{"reject in reference", Execution{CustomerInternalReference: "order-REJECT"}, Outcome{Decision: "REJECTED", Score: 90}},
		{"warn in user reference", Execution{CustomerInternalReference: "x", UserReference: "Warning-user"}, Outcome{Decision: "WARNING", Score: 50}},
		{"notexec wins", Execution{CustomerInternalReference: "reject-notexec"}, Outcome{Decision: "NOT_EXECUTED", Score: -1}},
		{"reject wins over warn", Execution{CustomerInternalReference: "warn", UserReference: "reject"}, Outcome{Decision: "REJECTED", Score: 90}},
		{"email marker", Execution{CustomerInternalReference: "x", PreparedData: &jumio.PreparedData{Email: "reject@example.com"}}, Outcome{Decision: "REJECTED", Score: 90}},
		{"alert", Execution{CustomerInternalReference: "x", UserReference: "u-ALERT"}, Outcome{Decision: "PASSED", Score: 10, WatchlistAlert: true}},
		{"alert in the email", Execution{CustomerInternalReference: "x", PreparedData: &jumio.PreparedData{Email: "alert@example.com"}}, Outcome{Decision: "PASSED", Score: 10, WatchlistAlert: true}},
		{"warn wins over alert", Execution{CustomerInternalReference: "alert-warn"}, Outcome{Decision: "WARNING", Score: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeriveOutcome(tt.e); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("DeriveOutcome = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// capSummary maps capability name → "TYPE/LABEL" of its first result.
func capSummary(d *jumio.WorkflowDetails) map[string]string {
	out := map[string]string{}
	for _, g := range d.Capabilities.All() {
		if _, ok := out[g.Name]; !ok {
			out[g.Name] = g.Decision.Type + "/" + g.Decision.Details.Label
		}
	}
	return out
}

func TestOutcomesByMarker(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	tests := []struct {
		name   string
		key    jumio.WorkflowKey
		ref    string
		data   *jumio.PreparedData
		typ    string
		score  float64
		checks map[string]string
	}{
		{"ID pass", jumio.WorkflowIDIV, "id-ok", nil, "PASSED", 10, map[string]string{"similarity": "PASSED/MATCH", "imageChecks": "PASSED/OK"}},
		{"ID reject", jumio.WorkflowIDIV, "id-reject", nil, "REJECTED", 90, map[string]string{"similarity": "REJECTED/NO_MATCH", "extraction": "PASSED/OK"}},
		{"ID warn", jumio.WorkflowIDIV, "id-warn", nil, "WARNING", 50, map[string]string{"imageChecks": "WARNING/REPEATED_FACE", "extraction": "PASSED/OK"}},
		{"ID notexec", jumio.WorkflowIDIV, "id-notexec", nil, "NOT_EXECUTED", -1, map[string]string{"usability": "NOT_EXECUTED/TECHNICAL_ERROR", "similarity": "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED"}},
		{"screening pass", jumio.WorkflowIDIVScreening, "scr-ok", nil, "PASSED", 10, map[string]string{"watchlistScreening": "PASSED/OK", "addressValidation": "PASSED/OK", "proofOfResidency": "PASSED/OK"}},
		{"email reject", jumio.WorkflowEmailVerification, "em", &jumio.PreparedData{Email: "reject@jumio.com"}, "REJECTED", 90, map[string]string{"emailVerification": "REJECTED/HIGH_RISK"}},
		{"email warn", jumio.WorkflowEmailVerification, "em-warn", &jumio.PreparedData{Email: "a@example.com"}, "WARNING", 50, map[string]string{"emailVerification": "WARNING/MEDIUM_RISK"}},
		{"phone pass", jumio.WorkflowPhoneVerification, "ph", &jumio.PreparedData{PhoneNumber: "+14155550100"}, "PASSED", 10, map[string]string{"phoneVerification": "PASSED/LOW_RISK"}},
		{"risk signals partial data", jumio.WorkflowPreparedData, "rs", &jumio.PreparedData{Email: "a@example.com"}, "PASSED", 10, map[string]string{"emailVerification": "PASSED/LOW_RISK", "phoneVerification": "NOT_EXECUTED/NOT_ENOUGH_DATA"}},
		{"watchlist reject", jumio.WorkflowWatchlistScreening, "wl-reject", &jumio.PreparedData{FirstName: "Jane", LastName: "Doe"}, "REJECTED", 90, map[string]string{"watchlistScreening": "WARNING/ALERT"}},
		{"watchlist without names", jumio.WorkflowWatchlistScreening, "wl", &jumio.PreparedData{Email: "a@example.com"}, "NOT_EXECUTED", -1, map[string]string{"watchlistScreening": "NOT_EXECUTED/NOT_ENOUGH_DATA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ar := e.createAccount(tok, accountReq(tt.ref, tt.key))
			if tt.data != nil {
				mustOK(t, e.uploadPrepared(credOf(t, ar, jumio.CategoryData), tt.data), "prepared data")
				mustOK(t, e.finalize(ar.WorkflowExecution.Credentials[0]), "finalize")
			} else {
				e.completeAPI(ar)
			}
			d := e.details(tok, ar)
			if d.Decision.Type != tt.typ || d.Decision.Risk.Score != tt.score || d.Decision.Details.Label != tt.typ {
				t.Errorf("decision = %+v", d.Decision)
			}
			got := capSummary(d)
			for name, want := range tt.checks {
				if got[name] != want {
					t.Errorf("%s = %s, want %s", name, got[name], want)
				}
			}
		})
	}
}

func TestCapabilityData(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()

	warn := e.createAccount(tok, accountReq("data-warn", jumio.WorkflowIDSelfie))
	mustOK(t, e.uploadPrepared(credOf(t, warn, jumio.CategoryData), &jumio.PreparedData{
		FirstName: "Jane", LastName: "Doe", DateOfBirth: "1990-08-10",
		Address: &jumio.PreparedAddress{Line1: "1302 Fayette drive", City: "Fort Wayne", Subdivision: "IN", PostalCode: "46816", Country: "USA"},
		ID:      &jumio.PreparedDocument{IDNumber: "N1244572", Type: "PASSPORT"},
	}), "supporting data")
	e.completeAPI(warn)
	d := e.details(tok, warn)
	ext := d.Capabilities.Extraction[0].Data
	if ext.FirstName != "JANE" || ext.LastName != "DOE" || ext.DateOfBirth != "1990-08-10" || ext.DocumentNumber != "N1244572" ||
		ext.Type != "PASSPORT" || ext.Address == nil || ext.Address.City != "FORT WAYNE" {
		t.Errorf("extraction = %+v", ext)
	}
	fs := d.Capabilities.ImageChecks[0].Data.FaceSearchFindings
	if fs.Status != "DONE" || len(fs.Findings) < 2 || !uuidV4.MatchString(fs.Findings[0]) {
		t.Errorf("face search findings = %+v", fs)
	}
	if len(d.Credentials) != 3 { // ID, SELFIE, DATA
		t.Errorf("credentials = %+v", d.Credentials)
	}

	email := e.createAccount(tok, accountReq("data-email-reject", jumio.WorkflowEmailVerification))
	mustOK(t, e.uploadPrepared(email.WorkflowExecution.Credentials[0], &jumio.PreparedData{Email: "Jane@Jumio.com"}), "email")
	mustOK(t, e.finalize(email.WorkflowExecution.Credentials[0]), "finalize")
	ev := e.details(tok, email).Capabilities.EmailVerification[0]
	if ev.Data == nil || ev.Data.EmailVerificationStatus != "EmailInexistent" || ev.Data.EmailExists == nil || *ev.Data.EmailExists ||
		ev.Data.DomainName != "jumio.com" || ev.Data.DomainCompany != "Jumio" || ev.Data.Advice != "DATA_REVIEW" {
		t.Errorf("email data = %+v", ev.Data)
	}

	wl := e.createAccount(tok, accountReq("data-wl-warn", jumio.WorkflowWatchlistScreening))
	mustOK(t, e.uploadPrepared(wl.WorkflowExecution.Credentials[0], &jumio.PreparedData{FirstName: "A", LastName: "B"}), "names")
	mustOK(t, e.finalize(wl.WorkflowExecution.Credentials[0]), "finalize")
	w := e.details(tok, wl)
	if r := w.Capabilities.WatchlistScreening[0]; r.Data == nil || r.Data.SearchResults == nil || *r.Data.SearchResults < 1 || r.Data.SearchStatus != "DONE" {
		t.Errorf("watchlist = %+v", r)
	}
	if w.Workflow.UserReference != "user-data-wl-warn" {
		t.Errorf("userReference = %q", w.Workflow.UserReference)
	}
}

func TestScriptedOutcomes(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	e := setup(t, Options{Decide: func(x Execution) Outcome {
		calls.Add(1)
		if x.Channel != jumio.ChannelAPI || len(x.Parts) != 3 || x.WorkflowKey != jumio.WorkflowIDIV {
			return Outcome{Decision: jumio.DecisionNotExecuted}
		}
		return Outcome{Decision: jumio.DecisionWarning, Label: "TXN_WARNING", Score: 42}
	}})
	tok := e.token()

	byDecider := e.createAccount(tok, accountReq("decider-reject", jumio.WorkflowIDIV))
	e.completeAPI(byDecider)
	d := e.details(tok, byDecider)
	if d.Decision.Type != "WARNING" || d.Decision.Details.Label != "TXN_WARNING" || d.Decision.Risk.Score != 42 {
		t.Errorf("decider: %+v", d.Decision)
	}

	e.s.SetOutcome("scripted", Outcome{Decision: "REJECTED", Score: 5, Capabilities: map[string]jumio.Decision{
		"usability": {Type: "REJECTED", Details: jumio.DecisionDetails{Label: "BLURRED"}},
	}})
	scripted := e.createAccount(tok, accountReq("scripted", jumio.WorkflowIDIV))
	e.completeAPI(scripted)
	d = e.details(tok, scripted)
	got := capSummary(d)
	if d.Decision.Type != "REJECTED" || d.Decision.Risk.Score != 90 || got["usability"] != "REJECTED/BLURRED" ||
		got["similarity"] != "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED" || got["extraction"] != "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED" {
		t.Errorf("scripted: %+v %v", d.Decision, got)
	}
	if d.Capabilities.Similarity[0].Data != nil {
		t.Errorf("not-executed similarity has data")
	}

	// A capability override makes a PASSED outcome consistent.
	e.s.SetOutcome("override-warn", Outcome{Capabilities: map[string]jumio.Decision{"liveness": {Type: "WARNING"}}})
	ow := e.createAccount(tok, accountReq("override-warn", jumio.WorkflowIDIV))
	e.completeAPI(ow)
	d = e.details(tok, ow)
	if d.Decision.Type != "WARNING" || d.Decision.Risk.Score != 50 || capSummary(d)["liveness"] != "WARNING/AGE_DIFFERENCE" {
		t.Errorf("override: %+v %v", d.Decision, capSummary(d))
	}

	e.s.SetDecider(nil) // back to DeriveOutcome
	plain := e.createAccount(tok, accountReq("plain", jumio.WorkflowIDIV))
	e.completeAPI(plain)
	if d := e.details(tok, plain); d.Decision.Type != "PASSED" {
		t.Errorf("after SetDecider(nil): %+v", d.Decision)
	}
	if calls.Load() != 1 {
		t.Errorf("decider calls = %d, want 1", calls.Load())
	}
}
