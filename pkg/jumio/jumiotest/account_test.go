package jumiotest

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestAccountShapes(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	type cred struct {
		category string
		channels string
		parts    string // sorted lowercase keys, "" = no api block
	}
	idCreds := []cred{{"ID", "WEB,API,SDK", "back,front"}, {"SELFIE", "WEB,API,SDK", "face"}, {"FACEMAP", "WEB,SDK", ""}}
	data := cred{"DATA", "API", "prepared_data"}
	tests := []struct {
		key   jumio.WorkflowKey
		creds []cred
		web   bool
	}{
		{jumio.WorkflowIDIV, idCreds, true},
		{jumio.WorkflowIDIVScreening, idCreds, true},
		{jumio.WorkflowIDIVSupporting, append(idCreds[:3:3], data), true},
		{jumio.WorkflowIDSelfie, append(idCreds[:3:3], data), true},
		{jumio.WorkflowWatchlistScreening, []cred{data}, false},
		{jumio.WorkflowPhoneVerification, []cred{data}, false},
		{jumio.WorkflowEmailVerification, []cred{data}, false},
		{jumio.WorkflowPreparedData, []cred{data}, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.key), func(t *testing.T) {
			req := accountReq("shape-"+string(tt.key), tt.key)
			req.Web = &jumio.WebSettings{SuccessURL: "https://example.com/ok", ErrorURL: "https://example.com/err", Locale: "es"}
			r := e.postAccount(tok, req)
			mustOK(t, r, "create")
			var raw map[string]json.RawMessage
			r.decode(t, &raw)
			for _, k := range []string{"timestamp", "account", "workflowExecution"} {
				if raw[k] == nil {
					t.Errorf("response lacks %s", k)
				}
			}
			var ar jumio.AccountResponse
			r.decode(t, &ar)
			if _, ok := jumio.ParseTimestamp(ar.Timestamp); !ok || !strings.HasSuffix(ar.Timestamp, "Z") || len(ar.Timestamp) != 24 {
				t.Errorf("timestamp %q is not YYYY-MM-DDThh:mm:ss.SSSZ", ar.Timestamp)
			}
			if !uuidV4.MatchString(ar.Account.ID) || !uuidV4.MatchString(ar.WorkflowExecution.ID) {
				t.Errorf("IDs are not UUIDv4: %s %s", ar.Account.ID, ar.WorkflowExecution.ID)
			}
			if len(ar.WorkflowExecution.Credentials) != len(tt.creds) {
				t.Fatalf("credentials = %+v", ar.WorkflowExecution.Credentials)
			}
			var txToken string
			for i, want := range tt.creds {
				c := ar.WorkflowExecution.Credentials[i]
				if c.Category != want.category || strings.Join(c.AllowedChannels, ",") != want.channels || !uuidV4.MatchString(c.ID) {
					t.Errorf("credential %d = %+v, want %+v", i, c, want)
				}
				if want.parts == "" {
					if c.API != nil {
						t.Errorf("%s has an api block", c.Category)
					}
					continue
				}
				if c.API == nil {
					t.Fatalf("%s has no api block", c.Category)
				}
				for k, u := range c.API.Parts {
					wantURL := e.s.URL + "/link" + execPath(ar) + "/credentials/" + c.ID + "/parts/" + strings.ToUpper(k)
					if u != wantURL {
						t.Errorf("part %s URL = %s, want %s", k, u, wantURL)
					}
				}
				if got := strings.Join(slices.Sorted(maps.Keys(c.API.Parts)), ","); got != want.parts {
					t.Errorf("%s parts = %s, want %s", c.Category, got, want.parts)
				}
				if c.API.WorkflowExecution != e.s.URL+"/link"+execPath(ar) {
					t.Errorf("api.workflowExecution = %s", c.API.WorkflowExecution)
				}
				if txToken == "" {
					txToken = c.API.Token
				} else if c.API.Token != txToken {
					t.Error("credentials of one execution have different transaction tokens")
				}
				jwtClaims(t, c.API.Token)
			}
			if tt.web {
				if ar.Web == nil || ar.SDK == nil || ar.SDK.Token == "" {
					t.Fatalf("web/sdk missing: %s", r.body)
				}
				q := query(ar.Web.Href)
				if !strings.HasPrefix(ar.Web.Href, e.s.URL+"/web/v4/app?") || q.Get("authorizationToken") == "" || q.Get("locale") != "es" {
					t.Errorf("web.href = %s", ar.Web.Href)
				}
				if ar.Web.SuccessURL != "https://example.com/ok" || ar.Web.ErrorURL != "https://example.com/err" {
					t.Errorf("web = %+v", ar.Web)
				}
			} else if raw["web"] != nil || raw["sdk"] != nil {
				t.Errorf("data-only workflow returned web/sdk: %s", r.body)
			}
		})
	}
}

func TestAccountUpdate(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	tok := e.token()
	first := e.createAccount(tok, accountReq("returning", jumio.WorkflowIDIV))
	put := func(id string) response {
		return e.do(http.MethodPut, "/api/v1/accounts/"+id, jsonBody(t, accountReq("returning", jumio.WorkflowEmailVerification)),
			bearer(tok), header("Content-Type", "application/json"))
	}
	r := put(first.Account.ID)
	mustOK(t, r, "update")
	var second jumio.AccountResponse
	r.decode(t, &second)
	if second.Account.ID != first.Account.ID || second.WorkflowExecution.ID == first.WorkflowExecution.ID {
		t.Fatalf("update: account %s exec %s (first %s %s)", second.Account.ID, second.WorkflowExecution.ID,
			first.Account.ID, first.WorkflowExecution.ID)
	}
	if second.Web != nil || len(second.WorkflowExecution.Credentials) != 1 {
		t.Errorf("update response = %s", r.body)
	}
	if got := e.status(tok, first); got != jumio.StatusInitiated {
		t.Errorf("first execution status = %s", got)
	}

	if r := put(newUUID()); r.status != http.StatusNotFound {
		t.Fatalf("update of unknown account: %d", r.status)
	}
	mustOK(t, e.do(http.MethodDelete, "/api/v1/accounts/"+first.Account.ID, nil, bearer(tok)), "delete")
	if r := put(first.Account.ID); r.status != http.StatusNotFound {
		t.Fatalf("update of deleted account: %d", r.status)
	}
	st := e.s.Stats()
	if st.AccountsCreated != 1 || st.ExecutionsCreated != 2 || st.AccountsByReference["returning"] != 1 ||
		st.ExecutionsByReference["returning"] != 2 || st.Responses["update_account"]["404"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestAccountValidation(t *testing.T) {
	t.Parallel()
	strict := setup(t, Options{Switches: Switches{StrictCallbackURL: true}})
	lax := setup(t, Options{})
	secret := "s3cr3t-value"
	tests := []struct {
		name   string
		env    *tenv
		body   any
		ctype  string
		status int
		detail []string // substrings of detail
	}{
		{"forbidden characters", lax, map[string]any{"customerInternalReference": "a<" + secret, "workflowDefinition": map[string]any{"key": 10011}},
			"", 400, []string{"customerInternalReference must not contain"}},
		{"missing reference and key", lax, map[string]any{"workflowDefinition": map[string]any{}},
			"", 400, []string{"customerInternalReference is required", "workflowDefinition.key is required"}},
		{"unknown workflow", lax, map[string]any{"customerInternalReference": "x", "workflowDefinition": map[string]any{"key": 99999}},
			"", 400, []string{"workflowDefinition.key invalid"}},
		{"10010 without userReference", lax, map[string]any{"customerInternalReference": "x", "workflowDefinition": map[string]any{"key": "10010"}},
			"", 400, []string{"userReference is required"}},
		{"token lifetime too short", lax, map[string]any{"customerInternalReference": "x", "tokenLifetime": "1m", "workflowDefinition": map[string]any{"key": 10011}},
			"", 400, []string{"tokenLifetime"}},
		{"reference too long", lax, map[string]any{"customerInternalReference": strings.Repeat(secret, 20), "workflowDefinition": map[string]any{"key": 10011}},
			"", 400, []string{"at most 100 characters"}},
		{"key of wrong type", lax, map[string]any{"customerInternalReference": "x", "workflowDefinition": map[string]any{"key": []int{1}}},
			"", 400, nil},
		{"not JSON", lax, "{" + secret, "", 400, nil},
		{"wrong content type", lax, map[string]any{"customerInternalReference": "x", "workflowDefinition": map[string]any{"key": 10011}},
			"text/plain", 400, []string{"Content-Type"}},
		{"unknown fields tolerated", lax, map[string]any{"customerInternalReference": "x", "futureField": true, "workflowDefinition": map[string]any{"key": 10011}},
			"", 200, nil},
		{"local http callback accepted", lax, map[string]any{"customerInternalReference": "x", "callbackUrl": "http://127.0.0.1:8080/cb", "workflowDefinition": map[string]any{"key": 10011}},
			"", 200, nil},
		{"relative callback rejected", lax, map[string]any{"customerInternalReference": "x", "callbackUrl": "/cb", "workflowDefinition": map[string]any{"key": 10011}},
			"", 400, []string{"callbackUrl"}},
		{"strict: http callback", strict, map[string]any{"customerInternalReference": "x", "callbackUrl": "http://127.0.0.1:8080/" + secret, "workflowDefinition": map[string]any{"key": 10011}},
			"", 400, []string{"callbackUrl must use https"}},
		{"strict: https callback", strict, map[string]any{"customerInternalReference": "x", "callbackUrl": "https://hooks.example.com/jumio", "workflowDefinition": map[string]any{"key": 10011}},
			"", 200, nil},
		{"string key", lax, map[string]any{"customerInternalReference": "x", "workflowDefinition": map[string]any{"key": "10164"}},
			"", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if s, ok := tt.body.(string); ok {
				body = []byte(s)
			} else {
				body, _ = json.Marshal(tt.body)
			}
			ct := tt.ctype
			if ct == "" {
				ct = "application/json"
			}
			r := tt.env.do(http.MethodPost, "/api/v1/accounts", strings.NewReader(string(body)),
				bearer(tt.env.token()), header("Content-Type", ct))
			if r.status != tt.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.status)
			}
			if r.status == 200 {
				return
			}
			p := r.problem(t)
			for _, want := range tt.detail {
				if !strings.Contains(p.Detail, want) {
					t.Errorf("detail %q lacks %q", p.Detail, want)
				}
			}
			if strings.Contains(string(r.body), secret) {
				t.Errorf("error echoes a request value: %s", r.body)
			}
		})
	}
}
