package jumio_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// generic decodes JSON into maps and slices for structural comparison.
func generic(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode generic: %v", err)
	}
	return v
}

// TestFixturesRoundTrip decodes every fixture into its typed model, encodes
// it again and checks that nothing was lost or added.
func TestFixturesRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		into func() any
	}{
		{"details_id_selfie.json", func() any { return new(jumio.WorkflowDetails) }},
		{"details_email_risk.json", func() any { return new(jumio.WorkflowDetails) }},
		{"details_session_expired.json", func() any { return new(jumio.WorkflowDetails) }},
		{"details_future_fields.json", func() any { return new(jumio.WorkflowDetails) }},
		{"account_response_10164.json", func() any { return new(jumio.AccountResponse) }},
		{"account_response_10148.json", func() any { return new(jumio.AccountResponse) }},
		{"upload_response_prepared_data.json", func() any { return new(jumio.UploadResponse) }},
		{"finalize_response.json", func() any { return new(jumio.FinalizeResponse) }},
		{"callback_processed.json", func() any { return new(jumio.Callback) }},
		{"callback_token_expired.json", func() any { return new(jumio.Callback) }},
		{"status_response.json", func() any { return new(jumio.StatusResponse) }},
		{"steps_response.json", func() any { return new(jumio.Steps) }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			raw := readFixture(t, tt.file)
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			v := tt.into()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("strict decode (a field is missing from the model?): %v", err)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := generic(t, out), generic(t, raw); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the payload\n got: %s\nwant: %s", out, bytes.TrimSpace(raw))
			}
		})
	}
}

func TestWorkflowDetailsTyped(t *testing.T) {
	t.Parallel()
	d, err := jumio.DecodeWorkflowDetails(bytes.NewReader(readFixture(t, "details_id_selfie.json")))
	if err != nil {
		t.Fatal(err)
	}
	if d.Workflow.Status != jumio.StatusProcessed || jumio.WorkflowKey(d.Workflow.DefinitionKey) != jumio.WorkflowIDIV {
		t.Errorf("workflow = %+v", d.Workflow)
	}
	if d.Decision.Type != jumio.DecisionWarning || d.Decision.Risk == nil || d.Decision.Risk.Score != 50 {
		t.Errorf("decision = %+v", d.Decision)
	}
	c := d.Capabilities
	if len(c.Extraction) != 1 || c.Extraction[0].Data.DocumentNumber != "N1234567" {
		t.Errorf("extraction = %+v", c.Extraction)
	}
	if len(c.Similarity) != 1 || c.Similarity[0].Data.Similarity != "MATCH" {
		t.Errorf("similarity = %+v", c.Similarity)
	}
	if len(c.Liveness) != 1 || c.Liveness[0].Data.PredictedAge == nil || *c.Liveness[0].Data.PredictedAge != 44 {
		t.Errorf("liveness = %+v", c.Liveness)
	}
	if f := c.ImageChecks[0].Data.FaceSearchFindings; f == nil || len(f.Findings) != 4 {
		t.Errorf("face search findings = %+v", f)
	}
	if len(c.Usability) != 3 || len(c.Other) != 0 || len(c.DecodeErrors) != 0 {
		t.Errorf("usability=%d other=%v decodeErrors=%v", len(c.Usability), c.Other, c.DecodeErrors)
	}
	all := c.All()
	if len(all) != 8 {
		t.Fatalf("All() returned %d results, want 8", len(all))
	}
	if all[0].Name != "dataChecks" || all[len(all)-1].Name != "usability" {
		t.Errorf("All() not sorted by name: first %q last %q", all[0].Name, all[len(all)-1].Name)
	}
}

func TestUnknownCapabilitiesSurvive(t *testing.T) {
	t.Parallel()
	d, err := jumio.DecodeWorkflowDetails(bytes.NewReader(readFixture(t, "details_future_fields.json")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Capabilities.Other["deviceRisk"]; !ok {
		t.Fatalf("unknown capability deviceRisk was dropped; Other = %v", d.Capabilities.Other)
	}
	if _, ok := d.Other["feedback"]; !ok {
		t.Errorf("unknown top-level field feedback was dropped; Other = %v", d.Other)
	}
	var found bool
	for _, r := range d.Capabilities.All() {
		if r.Name == "deviceRisk" {
			found = r.Decision.Type == jumio.DecisionPassed && r.Decision.Details.Label == "LOW_RISK"
		}
	}
	if !found {
		t.Error("All() does not report the unknown capability's decision")
	}
	if p := d.Capabilities.PhoneVerification; len(p) != 1 || p[0].Data.RiskInsights == nil || p[0].Data.Carrier != "Example Telecom" {
		t.Errorf("phoneVerification = %+v", p)
	}
	if w := d.Capabilities.WatchlistScreening; len(w) != 1 || w[0].Data.SearchResults == nil || *w[0].Data.SearchResults != 2 {
		t.Errorf("watchlistScreening = %+v", w)
	}
}

// A known capability whose payload does not fit the typed model must not
// break decoding: it is kept raw and reported.
func TestMismatchedKnownCapabilityKeptRaw(t *testing.T) {
	t.Parallel()
	raw := `{"workflow":{"id":"w-1","status":"PROCESSED"},"account":{"id":"a-1"},"decision":{"type":"PASSED","details":{"label":"PASSED"}},
	"capabilities":{"similarity":[{"id":"s","decision":{"type":"PASSED","details":{"label":"MATCH"}},"data":{"similarity":42}}],
	"liveness":[{"id":"l","decision":{"type":"PASSED","details":{"label":"OK"}}}]}}`
	d, err := jumio.DecodeWorkflowDetails(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if _, ok := d.Capabilities.DecodeErrors["similarity"]; !ok {
		t.Errorf("DecodeErrors = %v, want similarity", d.Capabilities.DecodeErrors)
	}
	if len(d.Capabilities.Liveness) != 1 {
		t.Errorf("liveness lost: %+v", d.Capabilities.Liveness)
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"similarity":42`)) {
		t.Errorf("raw similarity not re-encoded: %s", out)
	}
}

func TestDecodeWorkflowDetailsErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, in string }{
		{"not json", "nope"},
		{"array", "[]"},
		{"no workflow id", `{"workflow":{},"account":{"id":"a"},"decision":{"type":"PASSED","details":{"label":"x"}},"capabilities":{}}`},
		{"trailing", `{"workflow":{"id":"w"}} {}`},
		{"capabilities not object", `{"workflow":{"id":"w"},"capabilities":[]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := jumio.DecodeWorkflowDetails(strings.NewReader(tt.in)); err == nil {
				t.Error("want error")
			}
		})
	}
}

func TestWorkflowKeyJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want jumio.WorkflowKey
		out  string
	}{
		{`10164`, "10164", `10164`},
		{`"10164"`, "10164", `10164`},
		{`"custom-key"`, "custom-key", `"custom-key"`},
		{`"00"`, "00", `"00"`}, // not a canonical number: stays a string (found by fuzzing)
		{`0`, "0", `0`},
	} {
		var k jumio.WorkflowKey
		if err := json.Unmarshal([]byte(tt.in), &k); err != nil || k != tt.want {
			t.Errorf("unmarshal %s = %q, %v", tt.in, k, err)
		}
		b, _ := json.Marshal(k)
		if string(b) != tt.out {
			t.Errorf("marshal %q = %s, want %s", k, b, tt.out)
		}
	}
	for _, bad := range []string{`1.5`, `-3`, `true`, `{}`} {
		var k jumio.WorkflowKey
		if err := json.Unmarshal([]byte(bad), &k); err == nil {
			t.Errorf("unmarshal %s: want error", bad)
		}
	}
}

func TestParseRegion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]jumio.Region{
		"amer-1": jumio.RegionAMER, "US": jumio.RegionAMER, "us": jumio.RegionAMER,
		"emea-1": jumio.RegionEMEA, "EU": jumio.RegionEMEA,
		"apac-1": jumio.RegionAPAC, "SG": jumio.RegionAPAC, " sg ": jumio.RegionAPAC,
	} {
		got, err := jumio.ParseRegion(in)
		if err != nil || got != want {
			t.Errorf("ParseRegion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := jumio.ParseRegion("mars-1"); err == nil {
		t.Error("ParseRegion(mars-1): want error")
	}
	if got := jumio.RegionEMEA.BaseURL(jumio.ServiceRetrieval); got != "https://retrieval.emea-1.jumio.ai" {
		t.Errorf("BaseURL = %q", got)
	}
	if len(jumio.RegionAPAC.CallbackSourceIPs()) == 0 {
		t.Error("no callback source IPs for apac-1")
	}
}

func TestParseCallback(t *testing.T) {
	t.Parallel()
	cb, err := jumio.ParseCallback(bytes.NewReader(readFixture(t, "callback_token_expired.json")))
	if err != nil {
		t.Fatal(err)
	}
	if cb.WorkflowExecution.Status != jumio.StatusTokenExpired || cb.Account.ID == "" || cb.WorkflowExecution.DefinitionKey != "10013" {
		t.Errorf("callback = %+v", cb)
	}
	for _, tt := range []struct{ name, body string }{
		{"empty", ``},
		{"not json", `hello`},
		{"no execution", `{"account":{"id":"a"},"workflowExecution":{"status":"PROCESSED"}}`},
		{"no account", `{"workflowExecution":{"id":"w","status":"PROCESSED"}}`},
		{"bad id", `{"account":{"id":"a"},"workflowExecution":{"id":"../../x","status":"PROCESSED"}}`},
		{"bad status", `{"account":{"id":"a"},"workflowExecution":{"id":"w","status":"processed; drop"}}`},
		{"too big", `{"x":"` + strings.Repeat("a", jumio.MaxCallbackSize) + `"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jumio.ParseCallback(strings.NewReader(tt.body))
			if err == nil {
				t.Fatal("want error")
			}
			if !strings.Contains(err.Error(), "invalid callback") {
				t.Errorf("error %q does not wrap ErrInvalidCallback", err)
			}
			if len(tt.body) > 10 && strings.Contains(err.Error(), tt.body) {
				t.Error("error echoes the body")
			}
		})
	}
}

func TestCapabilitiesAllUnknownWithoutDecision(t *testing.T) {
	t.Parallel()
	var c jumio.Capabilities
	if err := json.Unmarshal([]byte(`{"weird":{"not":"a list"}}`), &c); err != nil {
		t.Fatal(err)
	}
	all := c.All()
	if len(all) != 1 || all[0].Name != "weird" || all[0].Decision.Type != "" {
		t.Errorf("All() = %+v", all)
	}
}
