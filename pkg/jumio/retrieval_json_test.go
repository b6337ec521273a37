package jumio_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// detailsDoc is a workflow details document and how it came about.
type detailsDoc struct {
	name string
	body []byte
}

// customWorkflow is a workflow the simulator is given for the tests: the
// capabilities no built-in workflow reports, known to the model
// (authentication, drivingLicenseVerification, braCpfValidation,
// biometricVerification) and not (deviceRisk, governmentDatabaseCheck).
const customWorkflow jumio.WorkflowKey = "20001"

// simulatorDetails runs workflows through the simulator, for every
// outcome and every kind of capability it reports, and returns the
// details documents it serves, byte for byte as the client receives them.
func simulatorDetails(t testing.TB) []detailsDoc {
	t.Helper()
	clock := jumiotest.NewClock(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	web := []string{jumio.ChannelWeb, jumio.ChannelSDK}
	sim, err := jumiotest.StartServer(jumiotest.Options{Now: clock.Now, Seed: 7,
		Workflows: map[jumio.WorkflowKey]jumiotest.WorkflowSpec{customWorkflow: {
			Name: "custom capabilities",
			Credentials: []jumiotest.CredentialSpec{{Category: jumio.CategoryID, Channels: web},
				{Category: jumio.CategorySelfie, Channels: web}, {Category: jumio.CategoryFacemap, Channels: web}},
			Capabilities: []string{"usability", "authentication", "drivingLicenseVerification", "braCpfValidation",
				"biometricVerification", "deviceRisk", "governmentDatabaseCheck"},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	c, err := jumio.New(sim.Credentials(), jumio.WithBaseURL(sim.URL), jumio.WithUserAgent("kycpipe-test/1.0"), jumio.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	create := func(key jumio.WorkflowKey, ref, userRef, lifetime string) *jumio.AccountResponse {
		t.Helper()
		req := &jumio.AccountRequest{CustomerInternalReference: ref, UserReference: userRef,
			WorkflowDefinition: jumio.WorkflowDefinition{Key: key}, TokenLifetime: lifetime}
		if strings.HasPrefix(ref, "sup-") {
			// With the end user's consent: the details carry it, and each
			// image credential its own.
			req.UserConsent = &jumio.UserConsent{UserIP: "192.0.2.7", UserLocation: &jumio.UserLocation{Country: "DEU"},
				Consent: &jumio.Consent{Obtained: "yes", ObtainedAt: jumio.FormatTimestamp(clock.Now())}}
		}
		acct, err := c.CreateAccount(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		return acct
	}
	uploadData := func(acct *jumio.AccountResponse, pd *jumio.PreparedData, finalize bool) {
		t.Helper()
		for _, cred := range acct.WorkflowExecution.Credentials {
			if cred.Category != jumio.CategoryData {
				continue
			}
			part, _ := cred.API.PartURL(jumio.PartPreparedData)
			if _, err := c.UploadPreparedData(ctx, part, cred.API.Token, pd); err != nil {
				t.Fatal(err)
			}
			if finalize {
				if _, err := c.Finalize(ctx, cred.API.WorkflowExecution, cred.API.Token); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var docs []detailsDoc
	fetch := func(name string, acct *jumio.AccountResponse) {
		t.Helper()
		docs = append(docs, detailsDoc{name, rawDetails(t, c, sim.URL, acct.Account.ID, acct.WorkflowExecution.ID)})
	}
	completeWeb := func(acct *jumio.AccountResponse) {
		t.Helper()
		if err := sim.CompleteWeb(acct.WorkflowExecution.ID); err != nil {
			t.Fatal(err)
		}
	}

	// ID workflows through the web flow, one per outcome (the simulator's
	// markers in the reference decide it).
	for _, w := range []struct {
		name string
		key  jumio.WorkflowKey
		ref  string
	}{
		{"ID passed", jumio.WorkflowIDIV, "id-ok"},
		{"ID warning", jumio.WorkflowIDIV, "id-warn"},
		{"ID rejected", jumio.WorkflowIDIV, "id-reject"},
		{"ID not executed", jumio.WorkflowIDIV, "id-notexec"},
		{"ID and screening, watchlist alert", jumio.WorkflowIDIVScreening, "scr-alert"},
		{"ID and screening rejected", jumio.WorkflowIDIVScreening, "scr-reject"},
		{"ID and selfie passed", jumio.WorkflowIDSelfie, "sup-ok"},
		{"custom capabilities", customWorkflow, "custom-warn"},
	} {
		acct := create(w.key, w.ref, "", "")
		completeWeb(acct)
		fetch(w.name, acct)
	}
	// Usability rejected: its dependants are NOT_EXECUTED.
	sim.SetOutcome("usability-blurred", jumiotest.Outcome{Capabilities: map[string]jumio.Decision{
		"usability": {Type: jumio.DecisionRejected, Details: jumio.DecisionDetails{Label: "BLURRED"}}}})
	acct := create(jumio.WorkflowIDIV, "usability-blurred", "", "")
	completeWeb(acct)
	fetch("usability rejected", acct)
	// Supporting data with non-ASCII names: the extraction carries them.
	acct = create(jumio.WorkflowIDIVSupporting, "sup-unicode", "usr-1", "")
	uploadData(acct, &jumio.PreparedData{FirstName: "Zoë", MiddleName: "Ærin", LastName: "Østergård-Ñúñez", DateOfBirth: "1990-08-10",
		Address: &jumio.PreparedAddress{Line1: "Große Straße 1", City: "Köln", PostalCode: "50667", Country: "DEU"}}, false)
	completeWeb(acct)
	fetch("ID with supporting data, unicode", acct)

	// Prepared-data workflows over the API.
	for _, w := range []struct {
		name string
		key  jumio.WorkflowKey
		ref  string
		pd   *jumio.PreparedData
	}{
		{"email passed", jumio.WorkflowEmailVerification, "em-ok", &jumio.PreparedData{Email: "jane@example.com"}},
		{"email rejected", jumio.WorkflowEmailVerification, "em-reject", &jumio.PreparedData{Email: "jane@example.com"}},
		{"phone warning", jumio.WorkflowPhoneVerification, "ph-warn", &jumio.PreparedData{PhoneNumber: "+14155550100"}},
		{"risk signals, phone missing", jumio.WorkflowPreparedData, "rs-ok", &jumio.PreparedData{Email: "jane@example.com"}},
		{"risk signals rejected", jumio.WorkflowPreparedData, "rs-reject", &jumio.PreparedData{Email: "jane@example.com", PhoneNumber: "+14155550100"}},
		{"watchlist alert", jumio.WorkflowWatchlistScreening, "wl-alert", &jumio.PreparedData{FirstName: "Jane", LastName: "Doe"}},
		{"watchlist passed", jumio.WorkflowWatchlistScreening, "wl-ok", &jumio.PreparedData{FirstName: "Jane", LastName: "Doe"}},
		{"watchlist without names", jumio.WorkflowWatchlistScreening, "wl-none", &jumio.PreparedData{Email: "jane@example.com"}},
	} {
		acct := create(w.key, w.ref, "user-"+w.ref, "")
		uploadData(acct, w.pd, true)
		fetch(w.name, acct)
	}

	// Expired executions (the clock moves: these come last).
	tokenExpired := create(jumio.WorkflowIDIV, "expire-token", "", "5m")
	sessionExpired := create(jumio.WorkflowIDIV, "expire-session", "", "2h")
	if err := sim.StartAcquisition(sessionExpired.WorkflowExecution.ID); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Minute)
	sim.Sweep()
	fetch("token expired", tokenExpired)
	fetch("session expired", sessionExpired)
	sw := sim.Switches()
	sw.ExpiredAsRejected = true
	if err := sim.SetSwitches(sw); err != nil {
		t.Fatal(err)
	}
	rejected := create(jumio.WorkflowEmailVerification, "expire-2023", "", "5m")
	clock.Advance(10 * time.Minute)
	sim.Sweep()
	fetch("token expired, 2023 mode", rejected)
	return docs
}

// rawDetails GETs an execution's details as the client does, returning the
// body untouched.
func rawDetails(t testing.TB, c *jumio.Client, base, accountID, executionID string) []byte {
	t.Helper()
	tok, err := c.AccessToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		base+"/api/v1/accounts/"+accountID+"/workflow-executions/"+executionID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", "kycpipe-test/1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("details of %s: %d %v", executionID, resp.StatusCode, err)
	}
	return body
}

// The fast path takes every details document the simulator serves, for
// every outcome and capability, and decodes it as encoding/json does: it
// cannot be silently falling back to the slow path.
func TestDetailsFastPathTakesSimulatorDocuments(t *testing.T) {
	t.Parallel()
	decisions, capabilities := map[string]bool{}, map[string]bool{}
	var unknownCapabilities, consents int
	for _, doc := range simulatorDetails(t) {
		var fast, slow jumio.WorkflowDetails
		if !jumio.DecodeDetailsFast(doc.body, &fast) {
			t.Errorf("%s: the fast path gives up on the simulator's document:\n%s", doc.name, doc.body)
			continue
		}
		if err := jumio.DecodeDetailsSlow(doc.body, &slow); err != nil {
			t.Fatalf("%s: encoding/json: %v", doc.name, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s: fast path decoded\n%#v\nencoding/json\n%#v", doc.name, fast, slow)
		}
		decisions[fast.Decision.Type] = true
		for _, r := range fast.Capabilities.All() {
			capabilities[r.Name+" "+r.Decision.Type] = true
			capabilities[r.Name] = true
		}
		unknownCapabilities += len(fast.Capabilities.Other)
		if fast.Consent != nil {
			consents++
		}
	}
	if consents == 0 {
		t.Error("no document with the end user's consent")
	}
	for _, want := range []string{jumio.DecisionPassed, jumio.DecisionWarning, jumio.DecisionRejected, jumio.DecisionNotExecuted} {
		if !decisions[want] {
			t.Errorf("no document with decision %s", want)
		}
	}
	for _, want := range []string{"usability", "extraction", "similarity", "liveness", "dataChecks", "imageChecks",
		"authentication", "watchlistScreening", "addressValidation", "proofOfResidency", "drivingLicenseVerification",
		"braCpfValidation", "biometricVerification", "emailVerification", "phoneVerification", "deviceRisk",
		"similarity REJECTED", "imageChecks WARNING", "watchlistScreening WARNING", "emailVerification REJECTED",
		"phoneVerification WARNING", "usability REJECTED", "extraction NOT_EXECUTED"} {
		if !capabilities[want] {
			t.Errorf("no document with capability result %q", want)
		}
	}
	if unknownCapabilities == 0 {
		t.Error("no document with a capability the model does not know")
	}
}

// fullDetails is a WorkflowDetails with every field set, as reflection
// finds them (so a field added to the model is set too), unknown fields
// and capabilities included. Strings need escapes (encoding/json writes <
// as \u003c) and carry non-ASCII characters.
func fullDetails() *jumio.WorkflowDetails {
	var d jumio.WorkflowDetails
	fillValue(reflect.ValueOf(&d).Elem())
	d.Capabilities.DecodeErrors = nil // never encoded
	return &d
}

var rawType = reflect.TypeFor[json.RawMessage]()

func fillValue(v reflect.Value) {
	if v.Type() == rawType {
		v.SetBytes([]byte(`{"k":[1,"x",null,{"deep":true}]}`))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x<" + v.Type().Name() + ">é & \u2028")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int:
		v.SetInt(7)
	case reflect.Float64:
		v.SetFloat(12.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fillValue(s.Index(0))
		fillValue(s.Index(1))
		v.Set(s)
	case reflect.Map:
		if v.Type().Elem() != rawType {
			return // DecodeErrors
		}
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.ValueOf("futureField"), reflect.ValueOf(json.RawMessage(`[{"id":"f","decision":{"type":"PASSED"}}]`)))
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(v.Field(i))
			}
		}
	default:
		panic("fillValue: no value for " + v.Type().String())
	}
}

// The fast path reads every field of the model: a document written from
// details with all of them set (every capability, unknown fields at the
// top and among the capabilities) takes it and decodes to the same value.
// A field added to the model without a case in the fast path fails here
// (the fast path gives up on its key): details would still decode, but
// slowly.
func TestDetailsFastPathCoversEveryField(t *testing.T) {
	t.Parallel()
	want := fullDetails()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var fast, slow jumio.WorkflowDetails
	if !jumio.DecodeDetailsFast(b, &fast) {
		t.Fatalf("the fast path gives up on a full document (a field without a case in retrieval_json.go?):\n%s", b)
	}
	if !reflect.DeepEqual(&fast, want) {
		t.Errorf("fast path decoded\n%#v\nwant\n%#v", fast, *want)
	}
	if err := jumio.DecodeDetailsSlow(b, &slow); err != nil || !reflect.DeepEqual(fast, slow) {
		t.Errorf("encoding/json decoded (%v)\n%#v\nthe fast path\n%#v", err, slow, fast)
	}
	for _, name := range []string{"extraction", "usability", "biometricVerification", "futureField"} {
		if !bytes.Contains(b, []byte(`"`+name+`"`)) {
			t.Errorf("the full document has no %s", name)
		}
	}
}

// details is a small document around the given capabilities (a JSON
// object's members) and extra top-level members.
func details(top, caps string) string {
	if top != "" {
		top = "," + top
	}
	return `{"workflow":{"id":"w-1","status":"PROCESSED"},"account":{"id":"a-1"},` +
		`"decision":{"type":"PASSED","details":{"label":"PASSED"},"risk":{"score":10}},"capabilities":{` + caps + `}` + top + `}`
}

// detailsCases are documents at the edges of what the fast path takes,
// with whether it takes them. Every one decodes as encoding/json does.
var detailsCases = []struct {
	name string
	in   string
	fast bool
}{
	{"minimal", `{"workflow":{"id":"w"}}`, true},
	{"empty object", `{}`, true},
	{"whitespace", " {\n\t\"workflow\" : { \"id\" : \"w\" } ,\r\n \"capabilities\" : { \"usability\" : [ ] } } \n", true},
	{"nulls for every top-level field", `{"workflow":null,"account":null,"createdAt":null,"startedAt":null,"completedAt":null,` +
		`"wipedOutAt":null,"credentials":null,"decision":null,"consent":null,"steps":null,"capabilities":null}`, true},
	{"nulls in results", details("", `"extraction":null,"similarity":[null],"liveness":[{"id":null,"credentials":null,`+
		`"decision":{"type":null,"details":null,"risk":null},"data":null}],"usability":[{"data":null}],`+
		`"dataChecks":[{"data":{"a":null}}],"imageChecks":[{"data":{"faceSearchFindings":null}}]`), true},
	{"nulls in data", details("", `"liveness":[{"data":{"type":null,"predictedAge":null}}],`+
		`"watchlistScreening":[{"data":{"searchResults":null}}],"emailVerification":[{"data":{"emailExists":null}}],`+
		`"phoneVerification":[{"data":{"blocked":null,"riskInsights":{"relativeRisk":null}}}],`+
		`"extraction":[{"data":{"address":null,"dateOfBirthParts":null,"mrz":null}}]`), true},
	{"empty arrays and objects", `{"credentials":[],"capabilities":{"usability":[],"imageChecks":[{"credentials":[],` +
		`"data":{"faceSearchFindings":{"findings":[]}}}],"extraction":[{"data":{}}]},"consent":{},"steps":{}}`, true},
	{"credentials with consent", `{"credentials":[{"id":"c","category":"ID","parts":[{"classifier":"FRONT","href":"h",` +
		`"captureType":"x"}],"consent":{"decisionAccepted":false,"collectedBy":"CUSTOMER"},"clientIp":"192.0.2.1"},null]}`, true},
	{"raw data kept byte for byte", details("", `"usability":[{"data":{ "b" : [1, 2.50, -0, 1e3] ,"a":"\u00e9"}}],`+
		`"extraction":[{"data":{"mrz":{"line1":"P<USA",  "line2" : null}}}]`), true},
	{"unknown nested fields are ignored", `{"workflow":{"id":"w","future":{"x":[1,{"y":null}]}},"decision":{"type":"PASSED",` +
		`"details":{"label":"OK","reason":"r"},"risk":{"score":1,"band":"LOW"}},"capabilities":{"extraction":[{"id":"e",` +
		`"future":1,"data":{"type":"PASSPORT","visualZone":{"a":"b"},"dateOfBirthParts":{"year":"1990","era":"CE"}}}]}}`, true},
	{"unknown top-level fields are kept", details(`"feedback":{"status":"NONE"},"captureClient":"WEB","other":null,"-":1,"Other":[]`, ""), true},
	{"unknown capabilities are kept", details("", `"deviceRisk":[{"id":"d","decision":{"type":"PASSED"}}],"x":null,`+
		`"Extraction":[],"y":"s","z":{"a":[1,2]}`), true},
	{"escaped and unicode strings", `{"workflow":{"id":"w\u00e9\n\"\\\/\t","status":"Zoë 😀 \u2028"},"account":{"id":"\u0041"}}`, true},
	{"negative zero and exponents", details("", `"liveness":[{"data":{"predictedAge":-0}}],"watchlistScreening":[{"data":{"searchResults":-0}}]`), true},
	{"decision with exponent score", `{"decision":{"risk":{"score":1.5E+1}}}`, true},

	{"top-level null", `null`, false},
	{"top-level array", `[]`, false},
	{"top-level string", `"x"`, false},
	{"empty input", ``, false},
	{"trailing data", `{"workflow":{"id":"w"}} x`, false},
	{"second value", `{"workflow":{"id":"w"}} {}`, false},
	{"truncated", `{"workflow":{"id":"w"}`, false},
	{"top-level key in another case", `{"Workflow":{"id":"w"}}`, false},
	{"top-level unknown key in another case", `{"CAPABILITIES":{}}`, false},
	{"nested key in another case", `{"workflow":{"ID":"w"}}`, false},
	{"unknown nested key in another case", `{"capabilities":{"extraction":[{"data":{"DocumentNumber":"x"}}]}}`, false},
	{"escaped key", `{"workflow":{"\u0069d":"w"}}`, false},
	{"escaped capability name", details("", `"extr\u0061ction":[]`), false},
	{"escaped top-level key", `{"feed\u0062ack":1}`, false},
	{"non-ASCII key", `{"workflow":{"ſtatus":"x"}}`, false},
	{"repeated key", `{"workflow":{"id":"a"},"workflow":{"status":"b"}}`, false},
	{"repeated capability", details("", `"usability":[],"usability":[{}]`), false},
	{"repeated unknown key", `{"feedback":1,"feedback":2}`, false},
	{"escaped surrogate", `{"workflow":{"id":"\ud83d\ude00"}}`, false},
	{"invalid UTF-8", "{\"workflow\":{\"id\":\"\xff\"}}", false},
	{"invalid UTF-8 in raw data", details("", "\"usability\":[{\"data\":\"\xff\"}]"), false},
	{"control character", "{\"workflow\":{\"id\":\"a\nb\"}}", false},
	{"mismatched capability", details("", `"similarity":[{"data":{"similarity":42}}]`), false},
	{"capability not an array", details("", `"liveness":{}`), false},
	{"capabilities not an object", `{"capabilities":[]}`, false},
	{"score as string", `{"decision":{"risk":{"score":"10"}}}`, false},
	{"score out of range", `{"decision":{"risk":{"score":1e400}}}`, false},
	{"search results not an integer", details("", `"watchlistScreening":[{"data":{"searchResults":1.5}}]`), false},
	{"search results out of range", details("", `"watchlistScreening":[{"data":{"searchResults":1e30}}]`), false},
	{"bool for a string", `{"workflow":{"id":true}}`, false},
	{"string for a bool", `{"credentials":[{"consent":{"decisionAccepted":"yes"}}]}`, false},
	{"null finding", details("", `"imageChecks":[{"data":{"faceSearchFindings":{"findings":[null]}}}]`), false},
	{"leading zero", `{"decision":{"risk":{"score":01}}}`, false},
	{"too deep in an unknown field", `{"feedback":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, false},
	{"too deep in raw data", details("", `"usability":[{"data":`+strings.Repeat(`{"a":`, 9997)+`1`+strings.Repeat(`}`, 9997)+`}]`), false},
}

// TestDetailsDecodeCases checks the fast path on documents at its edges:
// whether it takes them, and that UnmarshalJSON always decodes them as
// encoding/json does.
func TestDetailsDecodeCases(t *testing.T) {
	t.Parallel()
	for _, tt := range detailsCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var fast jumio.WorkflowDetails
			if took := jumio.DecodeDetailsFast([]byte(tt.in), &fast); took != tt.fast {
				t.Errorf("fast path took the document: %v, want %v", took, tt.fast)
			}
			checkSameAsSlow(t, []byte(tt.in))
		})
	}
}

// priorDetails is the value UnmarshalJSON decodes over in the comparisons:
// decoding replaces it whole, or leaves it on error.
func priorDetails() jumio.WorkflowDetails {
	return jumio.WorkflowDetails{CreatedAt: "prior", Other: map[string]json.RawMessage{"prior": json.RawMessage(`1`)},
		Capabilities: jumio.Capabilities{DecodeErrors: map[string]string{"prior": "x"}}}
}

// checkSameAsSlow fails unless UnmarshalJSON decodes b as the encoding/json
// decoder does: the same value (reflect.DeepEqual, raw messages byte for
// byte) and an error exactly when it has one.
func checkSameAsSlow(t *testing.T, b []byte) {
	t.Helper()
	got, want := priorDetails(), priorDetails()
	gotErr := got.UnmarshalJSON(b)
	wantErr := jumio.DecodeDetailsSlow(b, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("UnmarshalJSON(%.300q) error %v, encoding/json %v", b, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("UnmarshalJSON(%.300q) decoded\n%#v\nencoding/json\n%#v", b, got, want)
	}
}

// addDetailsSeeds seeds f with the simulator's documents, the fixtures, a
// full document and the edge cases.
func addDetailsSeeds(f *testing.F) {
	f.Helper()
	for _, doc := range simulatorDetails(f) {
		f.Add(doc.body)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "details_*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no details fixtures: %v", err)
	}
	for _, file := range files {
		f.Add(readFixture(f, filepath.Base(file)))
	}
	full, err := json.Marshal(fullDetails())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	for _, tt := range detailsCases {
		if len(tt.in) < 4096 {
			f.Add([]byte(tt.in))
		}
	}
}

// FuzzWorkflowDetailsDecode checks UnmarshalJSON (the fast path, else
// encoding/json) against the encoding/json decoder alone, for any input:
// the same value and the same error-ness.
func FuzzWorkflowDetailsDecode(f *testing.F) {
	addDetailsSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSameAsSlow(t, b)
	})
}

// checkValueAsDecoder fails unless Client.WorkflowDetails's decoding of a
// body (raw, as json.Unmarshal leaves it in a json.RawMessage) gives what
// DecodeWorkflowDetails gives for it: the same details, the same error.
func checkValueAsDecoder(t *testing.T, raw []byte) {
	t.Helper()
	got, gotErr := jumio.DecodeDetailsValue(raw)
	want, wantErr := jumio.DecodeWorkflowDetails(bytes.NewReader(raw))
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) ||
		errors.Is(gotErr, jumio.ErrInvalidResponse) != errors.Is(wantErr, jumio.ErrInvalidResponse) {
		t.Fatalf("body %.300q: error %v, DecodeWorkflowDetails %v", raw, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body %.300q decoded\n%#v\nDecodeWorkflowDetails\n%#v", raw, got, want)
	}
}

// Client.WorkflowDetails decodes the body it has read as
// DecodeWorkflowDetails does, without a json.Decoder.
func TestDetailsValueDecodesAsDecoder(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `null`, `[]`, `"x"`, `1`, `true`, `{}`, `{"workflow":{"id":"w"}}`, `{"workflow":{"id":""}}`,
		`{"workflow":{"id":"w"},"decision":{"risk":{"score":"x"}}}`, `{"Workflow":{"id":"w"}}`} {
		checkValueAsDecoder(t, []byte(in))
	}
	for _, doc := range simulatorDetails(t) {
		checkValueAsDecoder(t, doc.body)
	}
}

// FuzzDetailsValueDecode checks Client.WorkflowDetails's decoding of a
// body against DecodeWorkflowDetails for any body json.Unmarshal accepts
// into a json.RawMessage (what the client reads the body into).
func FuzzDetailsValueDecode(f *testing.F) {
	addDetailsSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var raw json.RawMessage
		if json.Unmarshal(b, &raw) != nil {
			return
		}
		checkValueAsDecoder(t, raw)
	})
}

// benchmarkDocs are realistic documents: the simulator's details of an ID
// workflow with screening (compact, as the retriever reads them in the
// end-to-end benchmark) and Jumio's documented ID and selfie example
// (indented).
func benchmarkDocs(b *testing.B) []detailsDoc {
	b.Helper()
	var sim []byte
	for _, doc := range simulatorDetails(b) {
		if doc.name == "ID and screening, watchlist alert" {
			sim = doc.body
		}
	}
	docs := []detailsDoc{{"sim-id-screening", sim}, {"fixture-id-selfie", readFixture(b, "details_id_selfie.json")}}
	for _, doc := range docs {
		var check jumio.WorkflowDetails
		if !jumio.DecodeDetailsFast(doc.body, &check) {
			b.Fatalf("%s: the fast path gives up", doc.name)
		}
	}
	return docs
}

// BenchmarkWorkflowDetailsDecode compares the encoding/json decoder
// (impl=slow, the former UnmarshalJSON) with UnmarshalJSON (impl=fast).
func BenchmarkWorkflowDetailsDecode(b *testing.B) {
	for _, doc := range benchmarkDocs(b) {
		b.Run("doc="+doc.name+"/impl=slow", func(b *testing.B) {
			b.SetBytes(int64(len(doc.body)))
			b.ReportAllocs()
			for b.Loop() {
				var d jumio.WorkflowDetails
				if err := jumio.DecodeDetailsSlow(doc.body, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("doc="+doc.name+"/impl=fast", func(b *testing.B) {
			b.SetBytes(int64(len(doc.body)))
			b.ReportAllocs()
			for b.Loop() {
				var d jumio.WorkflowDetails
				if err := d.UnmarshalJSON(doc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWorkflowDetailsBody compares the two ways of decoding a body the
// client has read: DecodeWorkflowDetails, a json.Decoder around
// UnmarshalJSON (impl=decoder, what Client.WorkflowDetails did), and
// decodeDetailsValue (impl=value, what it does).
func BenchmarkWorkflowDetailsBody(b *testing.B) {
	for _, doc := range benchmarkDocs(b) {
		b.Run("doc="+doc.name+"/impl=decoder", func(b *testing.B) {
			b.SetBytes(int64(len(doc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jumio.DecodeWorkflowDetails(bytes.NewReader(doc.body)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("doc="+doc.name+"/impl=value", func(b *testing.B) {
			b.SetBytes(int64(len(doc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jumio.DecodeDetailsValue(doc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
