package jumiotest

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

func TestRegionTenants(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := setup(t, Options{RateLimits: &RateLimits{TokenPerSecond: 0.001, TokenBurst: 3}})
	emea := e.s.RegionURL(jumio.RegionEMEA)
	if emea != e.s.URL+"/regions/emea-1" || e.s.RegionURL("mars-1") != "" {
		t.Fatalf("RegionURL = %q", emea)
	}
	emeaCreds, ok := e.s.RegionCredentials(jumio.RegionEMEA)
	if !ok || emeaCreds.ClientID != "sim-client-emea-1" || e.s.Credentials().ClientID != DefaultClientID {
		t.Fatalf("credentials: %v %v", emeaCreds, e.s.Credentials())
	}
	tokenAt := func(base string, c jumio.Credentials) response {
		return e.do(http.MethodPost, base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"),
			basic(c.ClientID, c.ClientSecret), header("Content-Type", "application/x-www-form-urlencoded"))
	}
	r := tokenAt(emea, emeaCreds)
	mustOK(t, r, "emea-1 token")
	var tr tokenResponse
	r.decode(t, &tr)
	emeaTok := tr.AccessToken
	amerTok := e.token() // at the root: the default region, amer-1

	// Another region's client is unknown to this tenant.
	if r := tokenAt(emea, e.s.Credentials()); r.status != http.StatusBadRequest {
		t.Errorf("amer-1 client at emea-1: %d", r.status)
	}

	// An account created in emea-1 lives there: every URL Jumio returns
	// points at the region's base.
	req := accountReq("eu-user", jumio.WorkflowIDIV)
	req.CallbackURL = rc.srv.URL
	body := jsonBody(t, req)
	r = e.do(http.MethodPost, emea+"/api/v1/accounts", body, bearer(emeaTok), header("Content-Type", "application/json"))
	mustOK(t, r, "emea-1 account")
	var ar jumio.AccountResponse
	r.decode(t, &ar)
	id := credOf(t, ar, jumio.CategoryID)
	for _, u := range append([]string{ar.Web.Href, id.API.WorkflowExecution}, mapValues(id.API.Parts)...) {
		if !strings.HasPrefix(u, emea+"/") {
			t.Errorf("URL %s is not on the region's base", u)
		}
	}
	// A token of amer-1's tenant is refused at emea-1's hosts, and the other
	// way round.
	r = e.do(http.MethodGet, emea+execPath(ar)+"/status", nil, bearer(amerTok))
	if r.status != http.StatusUnauthorized {
		t.Errorf("amer-1 token at emea-1: %d", r.status)
	}
	r = e.do(http.MethodPost, "/api/v1/accounts", jsonBody(t, req), bearer(emeaTok), header("Content-Type", "application/json"))
	if r.status != http.StatusUnauthorized {
		t.Errorf("emea-1 token at the root (amer-1): %d", r.status)
	}
	// The execution is unknown in amer-1, even to amer-1's own token.
	if r := e.do(http.MethodGet, execPath(ar)+"/status", nil, bearer(amerTok)); r.status != http.StatusNotFound {
		t.Errorf("emea-1 execution at amer-1: %d", r.status)
	}
	if r := e.do(http.MethodPut, "/api/v1/accounts/"+ar.Account.ID, jsonBody(t, req), bearer(amerTok),
		header("Content-Type", "application/json")); r.status != http.StatusNotFound {
		t.Errorf("PUT on an emea-1 account at amer-1: %d", r.status)
	}
	// The transaction token works only at its region's upload URLs.
	front, _ := id.API.PartURL(jumio.PartFront)
	img, ct := multipartFile(t, "file", frontPNG())
	if r := e.do(http.MethodPost, strings.Replace(front, "/regions/emea-1", "", 1), img, bearer(id.API.Token),
		header("Content-Type", ct)); r.status != http.StatusUnauthorized {
		t.Errorf("upload through amer-1: %d", r.status)
	}
	e.completeAPI(ar)
	cb := rc.next(t).cb
	if cb.WorkflowExecution.Href != emea+"/api/v1/workflow-executions/"+ar.WorkflowExecution.ID || cb.Account.Href != emea+"/api/v1/accounts/"+ar.Account.ID {
		t.Errorf("callback hrefs: %s %s", cb.WorkflowExecution.Href, cb.Account.Href)
	}
	r = e.do(http.MethodGet, emea+execPath(ar), nil, bearer(emeaTok))
	mustOK(t, r, "emea-1 details")
	d, err := jumio.DecodeWorkflowDetails(bytes.NewReader(r.body))
	if err != nil || d.Decision.Type != jumio.DecisionPassed || !strings.HasPrefix(d.Steps.Href, emea+"/") ||
		!strings.HasPrefix(d.Credentials[0].Parts[0].Href, emea+"/") {
		t.Errorf("details: %v %+v", err, d)
	}
	if info, _ := e.s.Execution(ar.WorkflowExecution.ID); info.Region != jumio.RegionEMEA {
		t.Errorf("info.Region = %s", info.Region)
	}

	// The web page answers at its region only.
	web := e.createAccount(amerTok, accountReq("us-user", jumio.WorkflowIDIV))
	if r := e.do(http.MethodGet, web.Web.Href, nil); r.status != 200 {
		t.Errorf("web page: %d", r.status)
	}
	if r := e.do(http.MethodGet, strings.Replace(web.Web.Href, e.s.URL, emea, 1), nil); r.status != http.StatusNotFound {
		t.Errorf("amer-1 web page at emea-1: %d", r.status)
	}

	// The root and /regions/amer-1 are the same tenant.
	amer := e.s.RegionURL(jumio.RegionAMER)
	mustOK(t, e.do(http.MethodGet, amer+execPath(web)+"/status", nil, bearer(amerTok)), "amer-1 at its region URL")

	// Unknown regions, and the control API under a region, are not served.
	for _, p := range []string{"/regions/mars-1/", "/regions/emea-1/_sim/stats", "/regions/"} {
		if r := e.do(http.MethodGet, p, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, r.status)
		}
	}
	mustOK(t, e.do(http.MethodGet, emea+"/", nil), "emea-1 status host")

	// Rate limits are per tenant: amer-1's token bucket (burst 3) is spent,
	// emea-1's (2 calls so far) is not.
	e.token()
	e.token()
	if r := e.tokenFor(DefaultClientID, DefaultClientSecret); r.status != http.StatusTooManyRequests {
		t.Errorf("4th amer-1 token call: %d", r.status)
	}
	mustOK(t, tokenAt(emea, emeaCreds), "3rd emea-1 token call")

	st := e.s.Stats()
	if st.RequestsByRegion["emea-1"] == 0 || st.RequestsByRegion["amer-1"] == 0 || st.RequestsByRegion["apac-1"] != 0 ||
		st.Refusals[RefusalWrongRegion] != 2 {
		t.Errorf("stats: by region %v, refusals %v", st.RequestsByRegion, st.Refusals)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestRegionWithJumioClient runs kycpipe's client against one region's URL.
func TestRegionWithJumioClient(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	creds, _ := e.s.RegionCredentials(jumio.RegionAPAC)
	c, err := jumio.New(creds, jumio.WithRegion("SG"), jumio.WithBaseURL(e.s.RegionURL(jumio.RegionAPAC)), jumio.WithUserAgent(testUA))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	acct, err := c.CreateAccount(ctx, accountReq("sg-user", jumio.WorkflowEmailVerification))
	if err != nil {
		t.Fatal(err)
	}
	data := acct.WorkflowExecution.Credentials[0]
	u, _ := data.API.PartURL(jumio.PartPreparedData)
	if _, err := c.UploadPreparedData(ctx, u, data.API.Token, &jumio.PreparedData{Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finalize(ctx, data.API.WorkflowExecution, data.API.Token); err != nil {
		t.Fatal(err)
	}
	d, err := c.WorkflowDetails(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
	if err != nil || d.Workflow.Status != jumio.StatusProcessed {
		t.Fatalf("details: %v %+v", err, d)
	}
	if err := c.DeleteAccount(ctx, acct.Account.ID); err != nil {
		t.Fatal(err)
	}
	// amer-1's credentials against apac-1: the token endpoint refuses them.
	wrong, _ := jumio.New(e.s.Credentials(), jumio.WithBaseURL(e.s.RegionURL(jumio.RegionAPAC)), jumio.WithUserAgent(testUA))
	if _, err := wrong.CreateAccount(ctx, accountReq("x", jumio.WorkflowEmailVerification)); !errors.Is(err, jumio.ErrBadRequest) {
		t.Errorf("amer-1 credentials at apac-1: %v", err)
	}
	if st := e.s.Stats(); st.RequestsByRegion["apac-1"] != st.Requests["token"]+5 || st.RequestsByRegion["amer-1"] != 0 {
		t.Errorf("requests by region = %v (requests %v)", st.RequestsByRegion, st.Requests)
	}
}

func TestClientManagement(t *testing.T) {
	t.Parallel()
	e := setup(t, Options{})
	var clients []ClientCredentials
	e.ctl("GET", "clients", "").decode(t, &clients)
	if len(clients) != 3 || clients[0].ID != DefaultClientID || clients[0].Secret != DefaultClientSecret || clients[0].Region != jumio.RegionAMER ||
		clients[1].Region != jumio.RegionEMEA || clients[2].ID != "sim-client-apac-1" {
		t.Fatalf("clients = %+v", clients)
	}
	oldTok := e.token()
	ar := e.createAccount(oldTok, accountReq("perm", jumio.WorkflowIDIV))

	// kycpipe configured with a wrong secret, then the simulator "fixed".
	c, err := jumio.New(jumio.Credentials{ClientID: DefaultClientID, ClientSecret: "kycpipe-secret"}, jumio.WithBaseURL(e.s.URL), jumio.WithUserAgent(testUA))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.WorkflowStatus(ctx, ar.Account.ID, ar.WorkflowExecution.ID); !errors.Is(err, jumio.ErrBadRequest) {
		t.Fatalf("wrong secret: %v", err)
	}
	r := e.ctl("POST", "clients/"+DefaultClientID, `{"secret":"kycpipe-secret"}`)
	mustOK(t, r, "set secret")
	if _, err := c.WorkflowStatus(ctx, ar.Account.ID, ar.WorkflowExecution.ID); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	if r := e.tokenFor(DefaultClientID, DefaultClientSecret); r.status != http.StatusBadRequest {
		t.Errorf("old secret: %d", r.status)
	}
	// Tokens issued before the change stay valid until they expire.
	mustOK(t, e.do(http.MethodGet, execPath(ar)+"/status", nil, bearer(oldTok)), "old token")
	if e.s.Credentials().ClientSecret != "kycpipe-secret" {
		t.Error("Credentials() does not follow the change")
	}

	// Permissions change at runtime and apply to issued tokens.
	mustOK(t, e.ctl("POST", "clients/"+DefaultClientID, `{"denyRetrieve":true}`), "deny retrieve")
	if r := e.do(http.MethodGet, execPath(ar)+"/status", nil, bearer(oldTok)); r.status != http.StatusForbidden {
		t.Errorf("retrieve denied: %d", r.status)
	}
	mustOK(t, e.postAccount(oldTok, accountReq("still-initiates", jumio.WorkflowIDIV)), "initiate still allowed")
	mustOK(t, e.ctl("POST", "clients/"+DefaultClientID, `{"denyRetrieve":false,"denyInitiate":true,"denyDelete":true}`), "switch")
	if r := e.postAccount(oldTok, accountReq("x", jumio.WorkflowIDIV)); r.status != http.StatusForbidden {
		t.Errorf("initiate denied: %d", r.status)
	}
	if r := e.do(http.MethodDelete, "/api/v1/accounts/"+ar.Account.ID, nil, bearer(oldTok)); r.status != http.StatusForbidden {
		t.Errorf("delete denied: %d", r.status)
	}
	mustOK(t, e.do(http.MethodGet, execPath(ar), nil, bearer(oldTok)), "retrieve allowed again")
	if st := e.s.Stats(); st.Refusals[RefusalPermission] != 3 {
		t.Errorf("permission refusals = %d", st.Refusals[RefusalPermission])
	}

	// Go API and errors.
	if err := e.s.SetClientSecret("nobody", "x"); !errors.Is(err, ErrUnknownClient) {
		t.Errorf("unknown client: %v", err)
	}
	if err := e.s.SetClientSecret(DefaultClientID, ""); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("empty secret: %v", err)
	}
	if err := e.s.SetClient(ClientCredentials{ID: DefaultClientID, Secret: "s", Region: "mars-1"}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("bad region: %v", err)
	}
	if err := e.s.SetClient(ClientCredentials{ID: DefaultClientID, Secret: "s"}); err != nil || e.s.Clients()[0].Region != jumio.RegionAMER ||
		e.s.Clients()[0].DenyInitiate {
		t.Errorf("SetClient: %v %+v", err, e.s.Clients()[0])
	}
	for _, tt := range []struct{ path, body string }{
		{"clients/nobody", `{"secret":"x"}`},
		{"clients/" + DefaultClientID, `{"id":"other"}`},
		{"clients/sim-client-emea-1", `{"region":"mars-1"}`},
		{"clients/sim-client-apac-1", `{"secret":""}`},
		{"clients/" + DefaultClientID, `{"typo":1}`},
	} {
		if r := e.ctl("POST", tt.path, tt.body); r.status != http.StatusNotFound && r.status != http.StatusBadRequest {
			t.Errorf("POST %s %s: %d", tt.path, tt.body, r.status)
		}
	}
	if r := e.ctl("POST", "clients/nobody", `{}`); r.status != http.StatusNotFound {
		t.Errorf("unknown client: %d", r.status)
	}
}
