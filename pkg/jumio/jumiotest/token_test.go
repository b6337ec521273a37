package jumiotest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func TestTokenIssueAndReuse(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	e := setup(t, Options{Now: clock.Now})

	r := e.tokenFor(DefaultClientID, DefaultClientSecret)
	mustOK(t, r, "token")
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var tr tokenResponse
	r.decode(t, &tr)
	if tr.ExpiresIn != 3600 || tr.TokenType != "Bearer" || tr.AccessToken == "" {
		t.Fatalf("token response = %+v", tr)
	}
	claims := jwtClaims(t, tr.AccessToken)
	if claims["sub"] != DefaultClientID || claims["jti"] == "" {
		t.Errorf("claims = %v", claims)
	}
	iat, exp := claims["iat"].(float64), claims["exp"].(float64)
	if int64(iat) != t0.Unix() || exp-iat != 3600 {
		t.Errorf("iat=%v exp=%v, want iat=%d and a 3600s lifetime", iat, exp, t0.Unix())
	}

	// Within the reuse window the same token comes back with expires_in 3600.
	clock.Advance(49 * time.Minute)
	var again tokenResponse
	e.tokenFor(DefaultClientID, DefaultClientSecret).decode(t, &again)
	if again.AccessToken != tr.AccessToken || again.ExpiresIn != 3600 {
		t.Fatalf("token not reused after 49m")
	}
	// With less than TokenReuseMin (10m) left, a new one is minted.
	clock.Advance(2 * time.Minute)
	var fresh tokenResponse
	e.tokenFor(DefaultClientID, DefaultClientSecret).decode(t, &fresh)
	if fresh.AccessToken == tr.AccessToken {
		t.Fatal("token reused with 9m left")
	}
	if got := jwtClaims(t, fresh.AccessToken)["exp"].(float64); int64(got) != clock.Now().Add(time.Hour).Unix() {
		t.Errorf("fresh exp = %v", got)
	}
	// The old token still works until its exp, then answers 401.
	if r := e.do(http.MethodGet, "/api/v1/accounts/x/workflow-executions/y/status", nil, bearer(tr.AccessToken)); r.status != http.StatusNotFound {
		t.Fatalf("old token before its exp: %d %s, want 404 (authorized, unknown execution)", r.status, r.body)
	}
	clock.Advance(10 * time.Minute)
	r = e.do(http.MethodGet, "/api/v1/accounts/x/workflow-executions/y/status", nil, bearer(tr.AccessToken))
	if r.status != http.StatusUnauthorized || !strings.Contains(r.problem(t).Detail, "expired") {
		t.Fatalf("expired token: %d %s", r.status, r.body)
	}

	st := e.s.Stats()
	if st.TokenRequests != 3 || st.TokensIssued != 2 || st.Requests["token"] != 3 {
		t.Errorf("stats: TokenRequests=%d TokensIssued=%d", st.TokenRequests, st.TokensIssued)
	}
}

func TestTokenAlwaysNew(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{TokenReuseMin: -1, TokenTTL: 10 * time.Minute})
	a, b := e.token(), e.token()
	if a == b {
		t.Fatal("TokenReuseMin < 0 reused a token")
	}
	var tr tokenResponse
	e.tokenFor(DefaultClientID, DefaultClientSecret).decode(t, &tr)
	if tr.ExpiresIn != 600 {
		t.Errorf("expires_in = %d, want 600", tr.ExpiresIn)
	}
	if st := e.s.Stats(); st.TokensIssued != 3 {
		t.Errorf("TokensIssued = %d", st.TokensIssued)
	}
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name   string
		body   string
		opts   []reqOpt
		status int
		error  string
	}{
		// Jumio documents 400 or 403 for bad client credentials; 400 by default.
		{"no auth", "grant_type=client_credentials", []reqOpt{header("Content-Type", form)}, 400, "invalid_client"},
		{"wrong secret", "grant_type=client_credentials", []reqOpt{header("Content-Type", form), basic(DefaultClientID, "nope")}, 400, "invalid_client"},
		{"unknown client", "grant_type=client_credentials", []reqOpt{header("Content-Type", form), basic("who", DefaultClientSecret)}, 400, "invalid_client"},
		{"another region's client", "grant_type=client_credentials", []reqOpt{header("Content-Type", form), basic(DefaultClientID+"-emea-1", DefaultClientSecret+"-emea-1")}, 400, "invalid_client"},
		{"wrong grant", "grant_type=password", []reqOpt{header("Content-Type", form), basic(DefaultClientID, DefaultClientSecret)}, 400, "unsupported_grant_type"},
		{"missing grant", "", []reqOpt{header("Content-Type", form), basic(DefaultClientID, DefaultClientSecret)}, 400, "unsupported_grant_type"},
		{"JSON body", `{"grant_type":"client_credentials"}`, []reqOpt{header("Content-Type", "application/json"), basic(DefaultClientID, DefaultClientSecret)}, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/oauth2/token", strings.NewReader(tt.body), tt.opts...)
			var oe oauthError
			r.decode(t, &oe)
			if r.status != tt.status || oe.Error != tt.error {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tt.status, tt.error)
			}
			if strings.Contains(string(r.body), "nope") {
				t.Error("error echoes the secret")
			}
		})
	}
	if st := e.s.Stats(); st.TokensIssued != 0 || st.TokenRequests != len(tests) || st.Responses["token"]["400"] != len(tests) ||
		st.Refusals[RefusalBadClient] != 4 {
		t.Errorf("stats = %+v", st)
	}
	// The status is switchable: 403 (also documented) or 401 (RFC 6749).
	for _, status := range []int{403, 401} {
		if err := e.s.SetSwitches(Switches{BadClientStatus: status}); err != nil {
			t.Fatal(err)
		}
		r := e.tokenFor(DefaultClientID, "nope")
		if r.status != status || (status == 401) != (r.header.Get("WWW-Authenticate") != "") {
			t.Errorf("BadClientStatus %d: %d %v", status, r.status, r.header)
		}
	}
}

func TestBearerChecks(t *testing.T) {
	t.Parallel()
	clock := NewClock(t0)
	e := setup(t, Options{Now: clock.Now, Clients: []ClientCredentials{
		{ID: "full", Secret: "s1"},
		{ID: "retrieve-only", Secret: "s2", DenyInitiate: true, DenyDelete: true},
		{ID: "initiate-only", Secret: "s3", DenyRetrieve: true},
	}})
	tok := func(id, secret string) string {
		var tr tokenResponse
		e.tokenFor(id, secret).decode(t, &tr)
		return tr.AccessToken
	}
	full, retrieveOnly, initiateOnly := tok("full", "s1"), tok("retrieve-only", "s2"), tok("initiate-only", "s3")
	ar := e.createAccount(full, accountReq("bearer", jumio.WorkflowIDIV))
	spare := e.createAccount(full, accountReq("bearer-spare", jumio.WorkflowIDIV))
	txToken := ar.WorkflowExecution.Credentials[0].API.Token
	accountBody := func() []reqOpt { return []reqOpt{header("Content-Type", "application/json")} }

	tests := []struct {
		name   string
		method string
		path   string
		opts   []reqOpt
		status int
	}{
		{"account without token", "POST", "/api/v1/accounts", accountBody(), 401},
		{"account with unknown token", "POST", "/api/v1/accounts", append(accountBody(), bearer("forged")), 401},
		{"account with transaction token", "POST", "/api/v1/accounts", append(accountBody(), bearer(txToken)), 401},
		{"account without initiate permission", "POST", "/api/v1/accounts", append(accountBody(), bearer(retrieveOnly)), 403},
		{"update without initiate permission", "PUT", "/api/v1/accounts/" + ar.Account.ID, append(accountBody(), bearer(retrieveOnly)), 403},
		{"status without token", "GET", execPath(ar) + "/status", nil, 401},
		{"status without retrieve permission", "GET", execPath(ar) + "/status", []reqOpt{bearer(initiateOnly)}, 403},
		{"details without retrieve permission", "GET", execPath(ar), []reqOpt{bearer(initiateOnly)}, 403},
		{"delete without delete permission", "DELETE", "/api/v1/accounts/" + ar.Account.ID, []reqOpt{bearer(retrieveOnly)}, 403},
		{"delete execution without delete permission", "DELETE", execPath(ar), []reqOpt{bearer(retrieveOnly)}, 403},
		{"steps without retrieve permission", "GET", execPath(ar) + "/steps", []reqOpt{bearer(initiateOnly)}, 403},
		{"delete with delete but not retrieve permission", "DELETE", "/api/v1/accounts/" + spare.Account.ID, []reqOpt{bearer(initiateOnly)}, 200},
		{"status with retrieve permission", "GET", execPath(ar) + "/status", []reqOpt{bearer(retrieveOnly)}, 200},
		{"lowercase bearer scheme", "GET", execPath(ar) + "/status", []reqOpt{header("Authorization", "bearer "+full)}, 200},
		{"missing User-Agent", "GET", execPath(ar) + "/status", []reqOpt{bearer(full), header("User-Agent", "")}, 403},
		{"missing User-Agent on token", "POST", "/oauth2/token", []reqOpt{header("User-Agent", "")}, 403},
		{"missing User-Agent on health", "GET", "/", []reqOpt{header("User-Agent", "")}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, strings.NewReader(`{}`), tt.opts...)
			if r.status != tt.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.status)
			}
			if r.status != 200 {
				r.problem(t)
				if strings.Contains(string(r.body), txToken) || strings.Contains(string(r.body), full) {
					t.Error("error echoes a token")
				}
			}
		})
	}
}

func TestAllowMissingUserAgent(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{Switches: Switches{AllowMissingUserAgent: true}})
	if r := e.do(http.MethodGet, "/", nil, header("User-Agent", "")); r.status != 200 {
		t.Fatalf("health without User-Agent: %d", r.status)
	}
}
