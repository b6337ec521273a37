package jumiotest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// rawAccount builds a raw account body for 10011 with extra fields.
func rawAccount(extra map[string]any) map[string]any {
	body := map[string]any{"customerInternalReference": "ref-1", "workflowDefinition": map[string]any{"key": 10011}}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

func TestAccountRules(t *testing.T) {
	t.Parallel()
	lax := setup(t, Options{})
	strict := setup(t, Options{Switches: Switches{StrictCallbackURL: true}})
	wd := func(kv ...any) map[string]any {
		m := map[string]any{"key": 10011}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	idCred := func(kv ...any) map[string]any {
		m := map[string]any{"category": "ID", "country": map[string]any{"values": []string{"USA"}}, "type": map[string]any{"values": []string{"PASSPORT"}}}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		env    *tenv
		body   map[string]any
		detail string // "" = accepted
	}{
		// customerInternalReference: 1..100, no < > " / ; ` % { } |
		{"reference of 100 characters", lax, rawAccount(map[string]any{"customerInternalReference": strings.Repeat("é", 100)}), ""},
		{"reference of 101 characters", lax, rawAccount(map[string]any{"customerInternalReference": strings.Repeat("a", 101)}), "customerInternalReference must be at most 100"},
		{"blank reference", lax, rawAccount(map[string]any{"customerInternalReference": "  "}), "customerInternalReference is required"},
		{"reference with a backtick", lax, rawAccount(map[string]any{"customerInternalReference": "a`b"}), "customerInternalReference must not contain"},
		{"reference with a brace", lax, rawAccount(map[string]any{"customerInternalReference": "a{b"}), "customerInternalReference must not contain"},
		{"reference with a pipe", lax, rawAccount(map[string]any{"customerInternalReference": "a|b"}), "customerInternalReference must not contain"},
		{"reference with a slash", lax, rawAccount(map[string]any{"customerInternalReference": "a/b"}), "customerInternalReference must not contain"},
		// userReference: length only; base64 HMACs pass
		{"userReference with / + =", lax, rawAccount(map[string]any{"userReference": "t=1678904069,v1=q/8+Zx9=="}), ""},
		{"userReference with forbidden reference characters", lax, rawAccount(map[string]any{"userReference": `<>"/;%{}|` + "`"}), ""},
		{"empty userReference", lax, rawAccount(map[string]any{"userReference": ""}), "userReference must not be empty"},
		{"userReference of 101 characters", lax, rawAccount(map[string]any{"userReference": strings.Repeat("u", 101)}), "userReference must be at most 100"},
		{"10010 without userReference", lax, map[string]any{"customerInternalReference": "x", "workflowDefinition": map[string]any{"key": 10010}}, "userReference is required for workflow 10010"},
		{"10010 with userReference", lax, map[string]any{"customerInternalReference": "x", "userReference": "u", "workflowDefinition": map[string]any{"key": "10010"}}, ""},
		{"reportingCriteria of 256 characters", lax, rawAccount(map[string]any{"reportingCriteria": strings.Repeat("r", 256)}), "reportingCriteria must be at most 255"},
		// tokenLifetime: ^([+-]?\d+)([smhd]{1})$, 5m..60d
		{"tokenLifetime 5m", lax, rawAccount(map[string]any{"tokenLifetime": "5m"}), ""},
		{"tokenLifetime 300s", lax, rawAccount(map[string]any{"tokenLifetime": "300s"}), ""},
		{"tokenLifetime +60d", lax, rawAccount(map[string]any{"tokenLifetime": "+60d"}), ""},
		{"tokenLifetime 299s", lax, rawAccount(map[string]any{"tokenLifetime": "299s"}), "tokenLifetime must be between 5m and 60d"},
		{"tokenLifetime 61d", lax, rawAccount(map[string]any{"tokenLifetime": "61d"}), "tokenLifetime must be between 5m and 60d"},
		{"tokenLifetime -10m", lax, rawAccount(map[string]any{"tokenLifetime": "-10m"}), "tokenLifetime must be between"},
		{"tokenLifetime without unit", lax, rawAccount(map[string]any{"tokenLifetime": "30"}), "tokenLifetime must be an integer followed by"},
		{"tokenLifetime in weeks", lax, rawAccount(map[string]any{"tokenLifetime": "1w"}), "tokenLifetime must be an integer followed by"},
		{"tokenLifetime as Go duration", lax, rawAccount(map[string]any{"tokenLifetime": "1h30m"}), "tokenLifetime must be an integer followed by"},
		{"huge tokenLifetime", lax, rawAccount(map[string]any{"tokenLifetime": "99999999999999999999d"}), "tokenLifetime must be between"},
		// callbackUrl
		{"callback of 256 characters", lax, rawAccount(map[string]any{"callbackUrl": "https://example.com/" + strings.Repeat("a", 236)}), "callbackUrl must be at most 255"},
		{"callback with a fragment", lax, rawAccount(map[string]any{"callbackUrl": "http://127.0.0.1:9/cb#x"}), "callbackUrl must not contain a fragment"},
		{"empty callback", lax, rawAccount(map[string]any{"callbackUrl": ""}), "callbackUrl must not be empty"},
		{"lax: local http callback", lax, rawAccount(map[string]any{"callbackUrl": "http://127.0.0.1:8080/cb"}), ""},
		{"strict: http", strict, rawAccount(map[string]any{"callbackUrl": "http://hooks.example.com/cb"}), "callbackUrl must use https"},
		{"strict: IP host", strict, rawAccount(map[string]any{"callbackUrl": "https://192.0.2.7/cb"}), "callbackUrl must not use an IP address"},
		{"strict: IPv6 host", strict, rawAccount(map[string]any{"callbackUrl": "https://[2001:db8::1]/cb"}), "callbackUrl must not use an IP address"},
		{"strict: port", strict, rawAccount(map[string]any{"callbackUrl": "https://hooks.example.com:8443/cb"}), "callbackUrl must not specify a port"},
		{"strict: non-ASCII host", strict, rawAccount(map[string]any{"callbackUrl": "https://bücher.example/cb"}), "callbackUrl must be ASCII"},
		{"strict: punycode host", strict, rawAccount(map[string]any{"callbackUrl": "https://xn--bcher-kva.example/cb?t=1"}), ""},
		// web
		{"locale of 6 characters", lax, rawAccount(map[string]any{"web": map[string]any{"locale": "en-GBX"}}), "web.locale must be at most 5"},
		{"locale en-GB", lax, rawAccount(map[string]any{"web": map[string]any{"locale": "en-GB"}}), ""},
		{"relative successUrl", lax, rawAccount(map[string]any{"web": map[string]any{"successUrl": "/done"}}), "web.successUrl must be an absolute"},
		{"errorUrl of 256 characters", lax, rawAccount(map[string]any{"web": map[string]any{"errorUrl": "https://example.com/" + strings.Repeat("e", 236)}}), "web.errorUrl must be at most 255"},
		// workflowDefinition
		{"no workflowDefinition", lax, map[string]any{"customerInternalReference": "x"}, "workflowDefinition is required"},
		{"fractional key", lax, rawAccount(map[string]any{"workflowDefinition": map[string]any{"key": 10011.5}}), "workflowDefinition.key must be an integer"},
		{"boolean key", lax, rawAccount(map[string]any{"workflowDefinition": map[string]any{"key": true}}), "workflowDefinition.key must be a number or a string"},
		{"unknown key", lax, rawAccount(map[string]any{"workflowDefinition": map[string]any{"key": "abc"}}), "workflowDefinition.key invalid"},
		{"credential of unknown category", lax, rawAccount(map[string]any{"workflowDefinition": wd("credentials", []any{map[string]any{"category": "PHOTO"}})}), "credentials[0].category must be one of"},
		{"credential without category or id", lax, rawAccount(map[string]any{"workflowDefinition": wd("credentials", []any{map[string]any{}})}), "credentials[0].category is required"},
		{"ID credential with a FACEMAP type", lax, rawAccount(map[string]any{"workflowDefinition": wd("credentials", []any{idCred("type", map[string]any{"values": []string{"JUMIO_STANDARD"}})})}), "credentials[0].type.values[0] must be one of"},
		{"alpha-2 country", lax, rawAccount(map[string]any{"workflowDefinition": wd("credentials", []any{idCred("country", map[string]any{"values": []string{"US"}})})}), "credentials[0].country.values[0] must be an ISO 3166-1 alpha-3"},
		{"no country values", lax, rawAccount(map[string]any{"workflowDefinition": wd("credentials", []any{idCred("country", map[string]any{"predefinedType": "DEFINED"})})}), "credentials[0].country.values must list"},
		{"bad predefinedType", lax, rawAccount(map[string]any{"workflowDefinition": wd("credentials", []any{idCred("type", map[string]any{"predefinedType": "FIXED", "values": []string{"PASSPORT"}})})}), "credentials[0].type.predefinedType must be"},
		{"full ID credential", lax, rawAccount(map[string]any{"workflowDefinition": wd("credentials", []any{idCred("country", map[string]any{"predefinedType": "RECOMMENDED", "values": []string{"USA", "CAN"}})})}), ""},
		// userConsent form
		{"consent with a bad IP", lax, rawAccount(map[string]any{"userConsent": map[string]any{"userIp": "300.1.1.1"}}), "userConsent.userIp must be"},
		{"consent with an alpha-2 country", lax, rawAccount(map[string]any{"userConsent": map[string]any{"userLocation": map[string]any{"country": "US"}}}), "userConsent.userLocation.country must be"},
		{"consent with a bad time", lax, rawAccount(map[string]any{"userConsent": map[string]any{"consent": map[string]any{"obtained": "yes", "obtainedAt": "yesterday"}}}), "userConsent.consent.obtainedAt must be"},
		{"complete consent", lax, rawAccount(map[string]any{"userConsent": map[string]any{"userIp": "2001:db8::7", "userLocation": map[string]any{"country": "USA", "state": "IL"},
			"consent": map[string]any{"obtained": "yes", "obtainedAt": "2022-07-20T17:20:35.000Z"}}}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.env.postAccount(tt.env.token(), tt.body)
			if tt.detail == "" {
				mustOK(t, r, "account")
				return
			}
			if r.status != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", r.status, r.body)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", p.Detail, tt.detail)
			}
		})
	}
	if st := lax.s.Stats(); st.Refusals[RefusalValidation] == 0 || st.Refusals[RefusalValidation] != st.Responses["create_account"]["400"] {
		t.Errorf("refusals = %v, responses = %v", st.Refusals, st.Responses["create_account"])
	}
}

func TestPreparedDataRules(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	data := credOf(t, e.createAccount(tok, accountReq("pd-rules", jumio.WorkflowPreparedData)), jumio.CategoryData)
	tests := []struct {
		name   string
		body   map[string]any
		detail string
	}{
		{"plain", map[string]any{"firstName": "Ann-Marie", "lastName": "O'Neil", "email": "a@example.com", "phoneNumber": "+8009376310", "dateOfBirth": "1990-08-10"}, ""},
		{"forbidden in paternalSurname", map[string]any{"paternalSurname": "a;b"}, "paternalSurname must not contain"},
		{"forbidden in maternalSurname", map[string]any{"maternalSurname": `a"b`}, "maternalSurname must not contain"},
		{"forbidden in middleName", map[string]any{"middleName": "a%b"}, "middleName must not contain"},
		{"slash allowed outside the listed keys", map[string]any{"address": map[string]any{"line1": "12/3 Main St", "country": "US"}}, ""},
		{"phone without +", map[string]any{"phoneNumber": "8009376310"}, "phoneNumber must be in E.164"},
		{"phone with spaces", map[string]any{"phoneNumber2": "+1 800 937"}, "phoneNumber2 must be in E.164"},
		{"date of birth as US date", map[string]any{"dateOfBirth": "08/10/1990"}, "dateOfBirth must be a date"},
		{"expiry date", map[string]any{"id": map[string]any{"expiryDate": "2030-13-01"}}, "id.expiryDate must be a date"},
		{"document type", map[string]any{"id": map[string]any{"type": "LIBRARY_CARD"}}, "id.type must be one of"},
		{"DRIVER_LICENSE as in the quickstart", map[string]any{"id": map[string]any{"type": "DRIVER_LICENSE"}}, ""},
		{"country name", map[string]any{"address": map[string]any{"country": "Germany"}}, "address.country must be"},
		{"registration date", map[string]any{"kyc": map[string]any{"registrationDate": "yesterday"}}, "kyc.registrationDate must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.uploadPrepared(data, tt.body)
			if tt.detail == "" {
				mustOK(t, r, "prepared data")
				return
			}
			if r.status != http.StatusBadRequest {
				t.Fatalf("got %d %s, want 400", r.status, r.body)
			}
			if p := r.problem(t); !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", p.Detail, tt.detail)
			}
		})
	}
}

func TestSwitchesControl(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{Switches: Switches{OmitWebHref: true, BlockedUserAgents: []string{"curl/*"}}})
	var sw Switches
	r := e.ctl("GET", "switches", "")
	mustOK(t, r, "get switches")
	r.decode(t, &sw)
	if !sw.OmitWebHref || len(sw.BlockedUserAgents) != 1 || sw.AllowMissingConsent {
		t.Fatalf("switches = %+v", sw)
	}
	// Only the fields sent change.
	r = e.ctl("POST", "switches", `{"allowMissingConsent":true,"omitWebHref":false}`)
	mustOK(t, r, "post switches")
	r.decode(t, &sw)
	if sw.OmitWebHref || !sw.AllowMissingConsent || len(sw.BlockedUserAgents) != 1 || e.s.Switches().OmitWebHref {
		t.Errorf("after a partial update: %+v", sw)
	}
	for _, bad := range []string{`{"badClientStatus":418}`, `{"blockedUserAgents":["*"]}`, `{"typo":true}`, `[1]`} {
		if r := e.ctl("POST", "switches", bad); r.status != http.StatusBadRequest {
			t.Errorf("switches %s: %d", bad, r.status)
		}
	}
	if e.s.Switches().BadClientStatus != 0 {
		t.Error("an invalid update changed the switches")
	}
	if err := e.s.SetSwitches(Switches{BadClientStatus: 500}); err == nil {
		t.Error("SetSwitches accepted badClientStatus 500")
	}
	// The caller's slice is not shared.
	mine := []string{"x/1"}
	if err := e.s.SetSwitches(Switches{BlockedUserAgents: mine}); err != nil {
		t.Fatal(err)
	}
	mine[0] = "y/1"
	if got := e.s.Switches().BlockedUserAgents[0]; got != "x/1" {
		t.Errorf("blocked = %s", got)
	}
}

func TestUserAgentRules(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{Switches: Switches{BlockedUserAgents: []string{"Go-http-client/*", " Kycpipe/Dev "}}})
	get := func(ua string) int {
		return e.do(http.MethodGet, "/", nil, header("User-Agent", ua)).status
	}
	for ua, want := range map[string]int{
		"Go-http-client/1.1": 403, "go-http-client/2.0": 403, "kycpipe/dev": 403, "kycpipe/dev2": 200,
		"Example Corp Onboarding/1.0": 200, "": 403,
	} {
		if got := get(ua); got != want {
			t.Errorf("User-Agent %q: %d, want %d", ua, got, want)
		}
	}
	st := e.s.Stats()
	if st.Refusals[RefusalUserAgentBlocked] != 3 || st.Refusals[RefusalUserAgentMissing] != 1 {
		t.Errorf("refusals = %v", st.Refusals)
	}
	// Switchable at runtime.
	mustOK(t, e.ctl("POST", "switches", `{"allowMissingUserAgent":true,"blockedUserAgents":[]}`), "switches")
	if get("") != 200 || get("Go-http-client/1.1") != 200 {
		t.Error("switches did not apply")
	}
	mustOK(t, e.ctl("POST", "switches", `{"allowMissingUserAgent":false}`), "switches")
	if get("") != 403 {
		t.Error("missing User-Agent accepted again")
	}
	// The control API and the web page need none.
	if r := e.ctl("GET", "stats", ""); r.status != 200 {
		t.Errorf("control API without User-Agent: %d", r.status)
	}
}

// chunked wraps a body so the Go client cannot know its length and sends it
// with chunked transfer encoding.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestContentLengthRule(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("chunked", jumio.WorkflowIDSelfie))
	id, data := credOf(t, ar, jumio.CategoryID), credOf(t, ar, jumio.CategoryData)
	body, ct := multipartFile(t, "file", frontPNG())
	u, _ := id.API.PartURL(jumio.PartFront)
	r := e.do(http.MethodPost, u, chunked{body}, bearer(id.API.Token), header("Content-Type", ct))
	if r.status != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, "Content-Length") {
		t.Fatalf("chunked image: %d %s", r.status, r.body)
	}
	pu, _ := data.API.PartURL(jumio.PartPreparedData)
	r = e.do(http.MethodPost, pu, chunked{strings.NewReader(`{"email":"a@example.com"}`)}, bearer(id.API.Token), header("Content-Type", "application/json"))
	if r.status != http.StatusForbidden {
		t.Fatalf("chunked prepared data: %d %s", r.status, r.body)
	}
	// Other calls are counted, not refused.
	b, _ := json.Marshal(accountReq("chunked-2", jumio.WorkflowIDIV))
	mustOK(t, e.do(http.MethodPost, "/api/v1/accounts", chunked{bytes.NewReader(b)}, bearer(tok), header("Content-Type", "application/json")), "chunked account")

	st := e.s.Stats()
	if st.ChunkedRequests != 3 || st.ChunkedRequestsByRoute["upload_part"] != 1 || st.ChunkedRequestsByRoute["upload_prepared_data"] != 1 ||
		st.ChunkedRequestsByRoute["create_account"] != 1 || st.Refusals[RefusalContentLength] != 2 || st.Uploads != 0 {
		t.Errorf("stats = %+v", st)
	}
	// With the switch, chunked uploads pass (and are still counted).
	if err := e.s.SetSwitches(Switches{AllowChunkedUploads: true}); err != nil {
		t.Fatal(err)
	}
	body, ct = multipartFile(t, "file", frontPNG())
	mustOK(t, e.do(http.MethodPost, u, chunked{body}, bearer(id.API.Token), header("Content-Type", ct)), "chunked image allowed")
	if st := e.s.Stats(); st.ChunkedRequests != 4 || st.Uploads != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestConsentRule(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	noConsent := bareAccountReq("consent", jumio.WorkflowIDSelfie)
	noConsent.WorkflowDefinition.Credentials = []jumio.CredentialDefinition{idCountryAndType("USA", "PASSPORT")}
	ar := e.createAccount(tok, noConsent)
	id, selfie, data := credOf(t, ar, jumio.CategoryID), credOf(t, ar, jumio.CategorySelfie), credOf(t, ar, jumio.CategoryData)
	for _, up := range []struct {
		c   jumio.CredentialStart
		cls string
		img []byte
	}{{id, jumio.PartFront, frontPNG()}, {id, jumio.PartBack, backJPEG()}, {selfie, jumio.PartFace, faceJPEG()}} {
		r := e.upload(up.c, up.cls, up.img)
		if r.status != http.StatusForbidden || !strings.Contains(r.problem(t).Detail, "userConsent") {
			t.Errorf("%s without consent: %d %s", up.cls, r.status, r.body)
		}
	}
	// Prepared data is not ID or biometric data.
	mustOK(t, e.uploadPrepared(data, map[string]string{"firstName": "Ann"}), "prepared data without consent")

	// Incomplete consents are refused too.
	for name, c := range map[string]*jumio.UserConsent{
		"obtained no":        {UserIP: "192.0.2.1", UserLocation: &jumio.UserLocation{Country: "USA"}, Consent: &jumio.Consent{Obtained: "no", ObtainedAt: "2026-03-14T09:00:00Z"}},
		"without userIp":     {UserLocation: &jumio.UserLocation{Country: "USA"}, Consent: &jumio.Consent{Obtained: "yes", ObtainedAt: "2026-03-14T09:00:00Z"}},
		"without location":   {UserIP: "192.0.2.1", Consent: &jumio.Consent{Obtained: "yes", ObtainedAt: "2026-03-14T09:00:00Z"}},
		"without obtainedAt": {UserIP: "192.0.2.1", UserLocation: &jumio.UserLocation{Country: "USA"}, Consent: &jumio.Consent{Obtained: "yes"}},
	} {
		req := accountReq("consent-"+name, jumio.WorkflowIDIV)
		req.UserConsent = c
		x := e.createAccount(tok, req)
		if r := e.upload(credOf(t, x, jumio.CategoryID), jumio.PartFront, frontPNG()); r.status != http.StatusForbidden {
			t.Errorf("consent %s: %d", name, r.status)
		}
	}

	// A PUT that adds consent starts an execution that accepts the upload.
	withConsent := accountReq("consent", jumio.WorkflowIDSelfie)
	r := e.do(http.MethodPut, "/api/v1/accounts/"+ar.Account.ID, jsonBody(t, withConsent), bearer(tok), header("Content-Type", "application/json"))
	mustOK(t, r, "update with consent")
	var again jumio.AccountResponse
	r.decode(t, &again)
	mustOK(t, e.upload(credOf(t, again, jumio.CategoryID), jumio.PartFront, frontPNG()), "upload after the PUT")
	if r := e.upload(id, jumio.PartFront, frontPNG()); r.status != http.StatusForbidden {
		t.Errorf("the first execution still has no consent: %d", r.status)
	}
	st := e.s.Stats()
	if st.Refusals[RefusalConsent] != 8 || st.Uploads != 2 {
		t.Errorf("stats: refusals %v, uploads %d", st.Refusals, st.Uploads)
	}

	// The switch turns the rule off.
	if err := e.s.SetSwitches(Switches{AllowMissingConsent: true}); err != nil {
		t.Fatal(err)
	}
	mustOK(t, e.upload(id, jumio.PartFront, frontPNG()), "upload with AllowMissingConsent")
}

func TestCountryAndTypeRule(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	summary := func(d *jumio.WorkflowDetails) map[string]string {
		out := map[string]string{}
		for _, g := range d.Capabilities.All() {
			out[g.Name] = g.Decision.Type + "/" + g.Decision.Details.Label
		}
		for _, u := range d.Capabilities.Usability {
			out["usability/"+u.Credentials[0].Category] = u.Decision.Type + "/" + u.Decision.Details.Label
		}
		return out
	}

	req := accountReq("no-country", jumio.WorkflowIDIVScreening)
	req.WorkflowDefinition.Credentials = nil
	ar := e.createAccount(tok, req)
	e.completeAPI(ar)
	d := e.details(tok, ar)
	want := map[string]string{
		"usability/ID":       "NOT_EXECUTED/TECHNICAL_ERROR",
		"usability/SELFIE":   "PASSED/OK",
		"liveness":           "PASSED/OK",
		"similarity":         "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED",
		"imageChecks":        "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED",
		"extraction":         "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED",
		"dataChecks":         "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED",
		"watchlistScreening": "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED",
		"addressValidation":  "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED",
		"proofOfResidency":   "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED",
	}
	got := summary(d)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	if d.Decision.Type != jumio.DecisionRejected {
		t.Errorf("decision = %+v", d.Decision)
	}
	// Usability results name the credential they judged.
	for _, u := range d.Capabilities.Usability {
		if len(u.Credentials) != 1 || (u.Credentials[0].Category != "ID" && u.Credentials[0].Category != "SELFIE") || u.Credentials[0].ID == "" {
			t.Errorf("usability credentials = %+v", u.Credentials)
		}
	}

	// A credential with the country only is not enough.
	half := accountReq("country-only", jumio.WorkflowIDIV)
	half.WorkflowDefinition.Credentials = []jumio.CredentialDefinition{{Category: "ID", Country: &jumio.PredefinedValue{Values: []string{"USA"}}}}
	ar = e.createAccount(tok, half)
	e.completeAPI(ar)
	if got := summary(e.details(tok, ar))["usability/ID"]; got != "NOT_EXECUTED/TECHNICAL_ERROR" {
		t.Errorf("country only: %s", got)
	}

	// With the credential object the document is judged, and extraction
	// reports the country and type chosen.
	full := accountReq("fra-passport", jumio.WorkflowIDIV)
	full.WorkflowDefinition.Credentials = []jumio.CredentialDefinition{idCountryAndType("FRA", "PASSPORT")}
	ar = e.createAccount(tok, full)
	e.completeAPI(ar)
	d = e.details(tok, ar)
	if d.Decision.Type != jumio.DecisionPassed || summary(d)["usability/ID"] != "PASSED/OK" {
		t.Errorf("with country and type: %+v %v", d.Decision, summary(d))
	}
	if x := d.Capabilities.Extraction[0].Data; x.IssuingCountry != "FRA" || x.Type != "PASSPORT" {
		t.Errorf("extraction = %+v", x)
	}

	// Over the web, the user picks country and type in Jumio's UI.
	web := e.createAccount(tok, bareAccountReq("web-no-country", jumio.WorkflowIDIV))
	if err := e.s.CompleteWeb(web.WorkflowExecution.ID); err != nil {
		t.Fatal(err)
	}
	if d := e.details(tok, web); d.Decision.Type != jumio.DecisionPassed {
		t.Errorf("web flow: %+v", d.Decision)
	}

	// The switch turns the rule off.
	if err := e.s.SetSwitches(Switches{AllowMissingCountryAndType: true}); err != nil {
		t.Fatal(err)
	}
	ar = e.createAccount(tok, req)
	e.completeAPI(ar)
	if d := e.details(tok, ar); d.Decision.Type != jumio.DecisionPassed {
		t.Errorf("with AllowMissingCountryAndType: %+v %v", d.Decision, summary(d))
	}
}

func TestImageRules(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	ar := e.createAccount(tok, accountReq("images", jumio.WorkflowIDIV))
	face := credOf(t, ar, jumio.CategorySelfie)

	// Exactly 15,000,000 bytes (a JPEG with trailing bytes) is accepted;
	// one more byte is not.
	img := JPEG(640, 480)
	atLimit := append(bytes.Clone(img), make([]byte, DefaultMaxUploadSize-len(img))...)
	mustOK(t, e.upload(face, jumio.PartFace, atLimit), "15,000,000 bytes")
	body, ct := multipartFile(t, "file", append(atLimit, 0))
	r := e.do(http.MethodPut, mustPartURL(t, face, jumio.PartFace), body, bearer(face.API.Token), header("Content-Type", ct))
	if r.status != http.StatusBadRequest || !strings.Contains(r.problem(t).Detail, "15000000 bytes") {
		t.Errorf("15,000,001 bytes: %d %s", r.status, r.body)
	}
	for _, tt := range []struct {
		name   string
		data   []byte
		status int
	}{
		{"longest side 300", PNG(300, 300), 400},
		{"longest side 301", PNG(200, 301), 200},
		{"8000 px", PNG(8000, 50), 200},
		{"8001 px", PNG(50, 8001), 400},
		{"GIF", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00"), 400},
		{"truncated PNG", PNG(640, 400)[:20], 400},
	} {
		body, ct := multipartFile(t, "file", tt.data)
		r := e.do(http.MethodPut, mustPartURL(t, face, jumio.PartFace), body, bearer(face.API.Token), header("Content-Type", ct))
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
		} else if r.status != 200 {
			r.problem(t)
		}
	}
	if st := e.s.Stats(); st.Refusals[RefusalImage] != 5 {
		t.Errorf("image refusals = %d", st.Refusals[RefusalImage])
	}
}

func mustPartURL(t *testing.T, c jumio.CredentialStart, cls string) string {
	t.Helper()
	u, ok := c.API.PartURL(cls)
	if !ok {
		t.Fatalf("no %s part", cls)
	}
	return u
}

func TestOmitWebHref(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{Switches: Switches{OmitWebHref: true}})
	tok := e.token()
	req := accountReq("no-domain", jumio.WorkflowIDIV)
	req.Web = &jumio.WebSettings{SuccessURL: "https://shop.example.com/ok"}
	ar := e.createAccount(tok, req)
	if ar.Web == nil || ar.Web.Href != "" || ar.Web.SuccessURL != "https://shop.example.com/ok" || ar.SDK == nil || ar.SDK.Token == "" {
		t.Fatalf("web = %+v, sdk = %+v", ar.Web, ar.SDK)
	}
	r := e.postAccount(tok, accountReq("no-domain-2", jumio.WorkflowIDIV))
	if strings.Contains(string(r.body), `"web"`) {
		t.Errorf("an empty web object was sent: %s", r.body)
	}
	if info, _ := e.s.Execution(ar.WorkflowExecution.ID); info.WebHref != "" {
		t.Errorf("info.WebHref = %s", info.WebHref)
	}
	// The simulated user can still finish through the control API.
	if err := e.s.CompleteWeb(ar.WorkflowExecution.ID); err != nil {
		t.Fatal(err)
	}
	mustOK(t, e.ctl("POST", "switches", `{"omitWebHref":false}`), "switch")
	if ar := e.createAccount(tok, accountReq("domain", jumio.WorkflowIDIV)); ar.Web == nil || ar.Web.Href == "" {
		t.Errorf("web.href missing after the switch: %+v", ar.Web)
	}
}

func TestExecutionHrefForms(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{DefaultCallbackURL: rc.srv.URL})
	tok := e.token()
	short := e.createAccount(tok, accountReq("short", jumio.WorkflowIDIV))
	e.completeAPI(short)
	if got := rc.next(t).cb.WorkflowExecution.Href; got != e.s.URL+"/api/v1/workflow-executions/"+short.WorkflowExecution.ID {
		t.Errorf("default callback href = %s", got)
	}
	var st jumio.StatusResponse
	e.do(http.MethodGet, execPath(short)+"/status", nil, bearer(tok)).decode(t, &st)
	if st.WorkflowExecution.Href != e.s.URL+"/api/v1/workflow-executions/"+short.WorkflowExecution.ID {
		t.Errorf("status href = %s", st.WorkflowExecution.Href)
	}
	mustOK(t, e.ctl("POST", "switches", `{"longExecutionHref":true}`), "switch")
	long := e.createAccount(tok, accountReq("long", jumio.WorkflowIDIV))
	e.completeAPI(long)
	if got := rc.next(t).cb.WorkflowExecution.Href; got != e.s.URL+execPath(long) {
		t.Errorf("long callback href = %s", got)
	}
}

func TestPreparedDataSession(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	rc := newReceiver(t)
	e := setup(t, Options{Now: clock.Now, SweepInterval: -1, TokenTTL: 24 * time.Hour, DefaultCallbackURL: rc.srv.URL,
		Callbacks: CallbackOptions{Intermediate: true}})
	tok := e.token()

	// WEB/SDK workflow: prepared data goes in before the user starts.
	web := e.createAccount(tok, accountReq("pd-web", jumio.WorkflowIDSelfie))
	mustOK(t, e.uploadPrepared(credOf(t, web, jumio.CategoryData), map[string]string{"firstName": "Ann"}), "prepared data")
	if info, _ := e.s.Execution(web.WorkflowExecution.ID); info.Started {
		t.Fatal("a prepared-data upload started a web execution")
	}
	clock.Advance(30 * time.Minute) // the token lifetime, not a session, applies
	e.s.Sweep()
	if got := rc.next(t).cb.WorkflowExecution.Status; got != jumio.StatusTokenExpired {
		t.Fatalf("callback = %s, want TOKEN_EXPIRED (no ACQUISITION_STARTED)", got)
	}

	// API-only workflow: the prepared data is the acquisition.
	api := e.createAccount(tok, accountReq("pd-api", jumio.WorkflowEmailVerification))
	mustOK(t, e.uploadPrepared(credOf(t, api, jumio.CategoryData), map[string]string{"email": "a@example.com"}), "prepared data")
	if got := rc.next(t).cb.WorkflowExecution.Status; got != jumio.StatusAcquisitionStarted {
		t.Fatalf("callback = %s", got)
	}

	// The switch restores the old behaviour.
	if err := e.s.SetSwitches(Switches{PreparedDataStartsSession: true}); err != nil {
		t.Fatal(err)
	}
	old := e.createAccount(tok, accountReq("pd-web-old", jumio.WorkflowIDSelfie))
	mustOK(t, e.uploadPrepared(credOf(t, old, jumio.CategoryData), map[string]string{"firstName": "Ann"}), "prepared data")
	if info, _ := e.s.Execution(old.WorkflowExecution.ID); !info.Started {
		t.Error("PreparedDataStartsSession: not started")
	}
}

func TestStepNames(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{Workflows: map[jumio.WorkflowKey]WorkflowSpec{
		"20002": {Name: "custom data check", Credentials: []CredentialSpec{
			{Category: jumio.CategoryData, Channels: []string{"API"}, Parts: []string{"PREPARED_DATA"}},
		}, Capabilities: []string{"ssnVerification"}},
	}})
	tok := e.token()
	want := map[jumio.WorkflowKey]string{
		jumio.WorkflowIDIV:               "ID_IV",
		jumio.WorkflowIDIVScreening:      "ID_IV,SCREENING,ADDRESS_VERIFICATION",
		jumio.WorkflowWatchlistScreening: "SCREENING",
		jumio.WorkflowEmailVerification:  "SCREENING",
		jumio.WorkflowPhoneVerification:  "SCREENING",
		jumio.WorkflowPreparedData:       "SCREENING",
		"20002":                          "SCREENING",
	}
	for key, names := range want {
		ar := e.createAccount(tok, accountReq("steps-"+string(key), key))
		if ar.Web != nil {
			e.completeAPI(ar)
		} else {
			data := ar.WorkflowExecution.Credentials[0]
			mustOK(t, e.uploadPrepared(data, &jumio.PreparedData{FirstName: "A", LastName: "B", Email: "a@example.com", PhoneNumber: "+14155550100"}), "data")
			mustOK(t, e.finalize(data), "finalize")
		}
		var steps jumio.Steps
		e.do(http.MethodGet, execPath(ar)+"/steps", nil, bearer(tok)).decode(t, &steps)
		var got []string
		for _, s := range steps.Steps {
			if !slices.Contains(stepNames, s.Name) {
				t.Errorf("%s: step %s is not one of Jumio's", key, s.Name)
			}
			got = append(got, s.Name)
		}
		if strings.Join(got, ",") != names {
			t.Errorf("%s: steps %v, want %s", key, got, names)
		}
	}
}

func TestExpiredDetails(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	e := setup(t, Options{Now: clock.Now, SweepInterval: -1, TokenTTL: 240 * time.Hour})
	tok := e.token()
	labels := func(d *jumio.WorkflowDetails) map[string]string {
		out := map[string]string{}
		for _, g := range d.Capabilities.All() {
			out[g.Name] += g.Decision.Type + "/" + g.Decision.Details.Label + " "
		}
		return out
	}
	wantCaps := map[string]string{
		"usability":          "NOT_EXECUTED/NOT_UPLOADED NOT_EXECUTED/NOT_UPLOADED ",
		"similarity":         "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED ",
		"extraction":         "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED ",
		"watchlistScreening": "NOT_EXECUTED/PRECONDITION_NOT_FULFILLED ",
	}
	run := func(name string, mode2023 bool) {
		if err := e.s.SetSwitches(Switches{ExpiredAsRejected: mode2023}); err != nil {
			t.Fatal(err)
		}
		never := e.createAccount(tok, accountReq(name+"-token", jumio.WorkflowIDIVScreening))
		started := e.createAccount(tok, accountReq(name+"-session", jumio.WorkflowIDIVScreening))
		mustOK(t, e.upload(credOf(t, started, jumio.CategoryID), jumio.PartFront, frontPNG()), "front")
		clock.Advance(time.Hour)
		e.s.Sweep()
		for ar, status := range map[*jumio.AccountResponse]string{&never: jumio.StatusTokenExpired, &started: jumio.StatusSessionExpired} {
			d := e.details(tok, *ar)
			wantType, wantLabel, wantScore := jumio.DecisionNotExecuted, status, -1.0
			if mode2023 {
				wantType, wantLabel, wantScore = jumio.DecisionRejected, jumio.DecisionRejected, 100
			}
			if d.Workflow.Status != status || d.Decision.Type != wantType || d.Decision.Details.Label != wantLabel ||
				d.Decision.Risk == nil || d.Decision.Risk.Score != wantScore || d.CompletedAt == "" {
				t.Errorf("%s %s: %+v", name, status, d.Decision)
			}
			got := labels(d)
			for k, v := range wantCaps {
				if got[k] != v {
					t.Errorf("%s %s: %s = %q, want %q", name, status, k, got[k], v)
				}
			}
			var steps jumio.Steps
			e.do(http.MethodGet, execPath(*ar)+"/steps", nil, bearer(tok)).decode(t, &steps)
			if len(steps.Steps) != 0 {
				t.Errorf("%s %s: steps = %+v", name, status, steps)
			}
			if info, _ := e.s.Execution(ar.WorkflowExecution.ID); info.Decision == nil || info.Decision.Type != wantType {
				t.Errorf("%s %s: info decision = %+v", name, status, info.Decision)
			}
		}
	}
	run("documented", false)
	run("2023", true)
}

func TestAlertMarker(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	screen := func(ref, userRef string, pd *jumio.PreparedData) *jumio.WorkflowDetails {
		req := accountReq(ref, jumio.WorkflowWatchlistScreening)
		req.UserReference = userRef
		ar := e.createAccount(tok, req)
		data := ar.WorkflowExecution.Credentials[0]
		mustOK(t, e.uploadPrepared(data, pd), "prepared data")
		mustOK(t, e.finalize(data), "finalize")
		return e.details(tok, ar)
	}
	names := &jumio.PreparedData{FirstName: "Jane", LastName: "Doe"}
	for name, d := range map[string]*jumio.WorkflowDetails{
		"userReference": screen("wl-1", "u-1-alert", names),
		"reference":     screen("wl-2-ALERT", "u-2", names),
		"email":         screen("wl-3", "u-3", &jumio.PreparedData{FirstName: "Jane", LastName: "Doe", Email: "alert@example.com"}),
	} {
		w := d.Capabilities.WatchlistScreening
		if d.Decision.Type != jumio.DecisionPassed || d.Decision.Details.Label != jumio.DecisionPassed || d.Decision.Risk.Score != ScorePassed ||
			len(w) != 1 || w[0].Decision.Type != jumio.DecisionWarning || w[0].Decision.Details.Label != "ALERT" ||
			w[0].Data == nil || w[0].Data.SearchResults == nil || *w[0].Data.SearchResults < 1 {
			t.Errorf("%s: decision %+v, watchlist %+v", name, d.Decision, w)
		}
	}
	// Without names the screening cannot run: no alert.
	if d := screen("wl-4", "u-4-alert", &jumio.PreparedData{Email: "a@example.com"}); capSummary(d)["watchlistScreening"] != "NOT_EXECUTED/NOT_ENOUGH_DATA" ||
		d.Decision.Type != jumio.DecisionNotExecuted {
		t.Errorf("without names: %+v %v", d.Decision, capSummary(d))
	}
	// ID workflows with screening: the same alert under PASSED; without
	// screening the marker just passes.
	ar := e.createAccount(tok, accountReq("id-alert", jumio.WorkflowIDIVScreening))
	e.completeAPI(ar)
	if d := e.details(tok, ar); d.Decision.Type != jumio.DecisionPassed || capSummary(d)["watchlistScreening"] != "WARNING/ALERT" ||
		capSummary(d)["similarity"] != "PASSED/MATCH" {
		t.Errorf("10013: %+v %v", d.Decision, capSummary(d))
	}
	ar = e.createAccount(tok, accountReq("idiv-alert", jumio.WorkflowIDIV))
	e.completeAPI(ar)
	if d := e.details(tok, ar); d.Decision.Type != jumio.DecisionPassed {
		t.Errorf("10011: %+v", d.Decision)
	}
	// Scripted through the control API.
	mustOK(t, e.ctl("POST", "outcomes", `{"customerInternalReference":"scripted","outcome":{"watchlistAlert":true}}`), "outcome")
	if d := screen("scripted", "u-5", names); d.Decision.Type != jumio.DecisionPassed || capSummary(d)["watchlistScreening"] != "WARNING/ALERT" {
		t.Errorf("scripted: %+v %v", d.Decision, capSummary(d))
	}
}
