// Package jumiotest is a faithful, in-process simulator of Jumio's platform
// (KYX) API, for tests and demos. It follows net/http/httptest: a [Server]
// listens on a loopback port, exposes its URL, and is closed by the test.
//
//	s := jumiotest.NewServer(jumiotest.Options{})
//	defer s.Close()
//	c, _ := jumio.New(s.Credentials(), jumio.WithBaseURL(s.URL))
//
// [NewServer] and [NewUnstartedServer] panic on invalid [Options], like
// httptest; [StartServer] returns an error instead, for binaries.
//
// The simulator builds every response from the types of package jumio, so
// the client's model and the simulator stay in sync. Requests, on the other
// hand, are checked by the simulator's own code, written from Jumio's
// documents and never borrowed from the client's validators, so that a bug
// in kycpipe's checks is caught here. It refuses what the real Jumio
// refuses; docs/JUMIO.md lists every rule with its source. Behaviour that
// Jumio documents is reproduced; where Jumio's documentation is silent
// (error bodies, callback retries, finalize with parts missing, the status
// of a refused upload without consent) the choices are stated below, in
// the field docs and in docs/JUMIO.md.
//
// # What is simulated
//
// The OAuth2 token service, account creation and update,
// credential upload (images and prepared data) and finalize, the workflow
// lifecycle (INITIATED → ACQUIRED → PROCESSED, TOKEN_EXPIRED,
// SESSION_EXPIRED), callbacks, retrieval (status, details, steps, images),
// deletion, the status host and the hosted web flow. Everything is in
// memory; nothing leaves the machine except callbacks to the URLs you give.
//
// # Routes and URL layout
//
// One address serves every Jumio service of every region. The root URL
// serves the default region (Options.DefaultRegion, amer-1), and
// [Server.RegionURL] gives each region's own base, {URL}/regions/{region}
// (see Regions below). With JUMIO_BASE_URL=s.URL the kycpipe client builds
// exactly these paths (under a region's base, the same paths follow it):
//
//	POST   /oauth2/token                                          auth
//	POST   /api/v1/accounts                                       account: create
//	PUT    /api/v1/accounts/{accountId}                           account: new execution
//	GET    /api/v1/accounts/{a}/workflow-executions/{w}/status    retrieval
//	GET    /api/v1/accounts/{a}/workflow-executions/{w}           retrieval: details
//	GET    /api/v1/accounts/{a}/workflow-executions/{w}/steps     retrieval
//	GET    /api/v1/accounts/{a}/credentials/{c}/parts/{classifier} retrieval: image bytes
//	DELETE /api/v1/accounts/{a}                                   deletion
//	DELETE /api/v1/accounts/{a}/workflow-executions/{w}           deletion
//	GET    /                                                      status host: {"status":"UP"}
//	GET    /web/v4/app?authorizationToken=…&locale=…              the web.href page
//
// The credential ("api") service is served under the prefix /link, which
// stands for Jumio's separate api.{region}.jumio.link host: clients must use
// the URLs the account response returns, exactly as real Jumio requires.
//
//	POST|PUT {URL}/link/api/v1/accounts/{a}/workflow-executions/{w}/credentials/{c}/parts/{FRONT|BACK|FACE|PREPARED_DATA}
//	PUT      {URL}/link/api/v1/accounts/{a}/workflow-executions/{w}   finalize
//
// URLs in responses and callbacks are built from the Host (and region
// prefix) the request came through (Server.URL for the usual client).
// Every Jumio route requires a User-Agent, and refuses the values listed in
// Switches.BlockedUserAgents, with 403 (Jumio answers missing or suspicious
// headers so); credential uploads (images and prepared data) must carry
// Content-Length (403 for a chunked upload, which Stats.ChunkedRequests
// counts). Errors use Jumio's shape {"title","status","detail"} with
// application/json; the token endpoint uses OAuth2 bodies
// ({"error":"invalid_client"}). Details name the field and the rule, never
// a request value. Stats.Refusals counts every refusal by rule.
//
// # Switches
//
// The rules and quirks that tests turn on and off are [Switches]: initial
// values in Options.Switches, changed at runtime with [Server.SetSwitches]
// or POST /_sim/switches. Their zero value is Jumio's behaviour: User-Agent
// required, consent required, country and ID type required, Content-Length
// required, web.href returned, the short execution href in callbacks,
// expired executions NOT_EXECUTED / -1, prepared data not starting a web
// session, 400 for bad client credentials.
//
// # Credentials
//
// Each region's token endpoint takes HTTP Basic auth with a client of that
// region's tenant (Options.Clients; by default sim-client / sim-secret in
// amer-1, see [Server.Credentials], and sim-client-emea-1 /
// sim-secret-emea-1, sim-client-apac-1 / sim-secret-apac-1, see
// [Server.RegionCredentials]) and the form body
// grant_type=client_credentials. Bad client credentials (missing, unknown,
// wrong secret, another region's client) answer 400
// {"error":"invalid_client"}: Jumio documents 400 or 403 for them
// (Switches.BadClientStatus picks 403, or 401).
// It answers {"access_token","expires_in":3600,"token_type":"Bearer"}; the
// token is a JWT (HMAC-signed with a random key) whose exp claim is the
// truth: while a client's token has at least Options.TokenReuseMin life
// left, the same token is handed back, so its remaining life is shorter
// than expires_in says, as with Jumio. Account calls need the OAuth token
// of a client allowed to initiate, retrieval one allowed to retrieve, and
// deletion one allowed to delete (ClientCredentials.DenyInitiate,
// DenyRetrieve, DenyDelete give 403). [Server.SetClient],
// [Server.SetClientSecret], GET /_sim/clients and POST /_sim/clients/{id}
// change secrets and permissions while the server runs: a test can start
// with a secret that does not match kycpipe's and then fix either side.
//
// Uploads and finalize need the execution's transaction token (api.token,
// shared by all its credentials), not the OAuth token: an OAuth token or
// another execution's token gets 401, and once the execution is finalized
// or expired the token is consumed (403). Uploads of ID and biometric data
// (the parts of ID, SELFIE and FACEMAP credentials; not DOCUMENT or
// PREPARED_DATA) also need end-user consent in the account request (POST
// or PUT) that started the execution: userConsent {userIp, userLocation {country}, consent
// {obtained: "yes", obtainedAt}}; without it they answer 403 (Jumio
// documents the requirement, not the status: the simulator's choice). A PUT
// that adds consent starts an execution whose uploads pass.
//
// Workflows: 10011 and 10013 return ID (front, back), SELFIE (face) and
// FACEMAP (WEB/SDK only) credentials; 10163 and 10164 add a DATA
// credential for supporting data; 10010, 10065, 10066 and 10148 return one
// DATA credential (prepared_data). web.href and sdk.token come only with
// WEB/SDK-capable workflows (web.href is left out with
// Switches.OmitWebHref, as for a tenant without the portal's domain
// setting). Options.Workflows adds custom ones ([WorkflowSpec],
// [DefaultWorkflows]). Images must be JPEG or PNG (sniffed) with the
// longest side above 300 px and no side above 8000 px (read with
// image.DecodeConfig), of at most Options.MaxUploadSize bytes (15,000,000);
// each refusal is a 400. [PNG] and [JPEG] make valid test images. Prepared
// data must respect Jumio's forbidden characters in name, email and phone
// keys, E.164 phone numbers and YYYY-MM-DD dates. PUT on a part replaces it
// (405 with Allow: POST when there is nothing to replace). A PREPARED_DATA
// upload starts the acquisition only on workflows without a WEB or SDK
// channel (Switches.PreparedDataStartsSession for all).
//
// # Regions
//
// amer-1, emea-1 and apac-1 are separate tenants, as Jumio's data centers
// are: [Server.RegionURL] is a base URL serving every service of one region
// (token, account, upload and finalize, retrieval, status, web page), and
// the root URL serves Options.DefaultRegion as well. Clients, tokens,
// accounts and executions belong to one region: a token issued by one
// region's tenant gets 401 at another region's URLs, an account or
// execution of another region is 404, and the upload, finalize, web and
// callback URLs of an execution point at the base it was created through.
// Rate limits count per tenant. Stats.RequestsByRegion counts requests by
// region.
//
// # Outcomes
//
// When an execution is processed, its outcome comes from, in order: the
// decision chosen on the web page (or sent to the control API's complete
// endpoint), [Server.SetOutcome] for its customerInternalReference, then
// the decider (Options.Decide, default [DeriveOutcome]: "notexec",
// "reject", "warn" or "alert" in a reference or the prepared-data email;
// "alert" gives an overall PASSED with watchlistScreening WARNING / ALERT
// and search results, as standalone screening reports a hit). The details
// are built from the [Outcome]: usability per credential (each result names
// the credential, ID or SELFIE, it judged), extraction (the prepared data,
// else JOHN JACOB SMITH, of the country and type the request named),
// similarity, liveness, dataChecks,
// imageChecks, watchlistScreening, addressValidation, proofOfResidency,
// emailVerification and phoneVerification as the workflow defines, with
// Jumio's dependency rules (a failed usability makes its dependants
// NOT_EXECUTED / PRECONDITION_NOT_FULFILLED) and Jumio's score bands
// (PASSED 0–30, WARNING 31–70, REJECTED 71–100, NOT_EXECUTED -1). A
// finalize with required parts missing is accepted, as by Jumio; the
// missing credentials' usability is NOT_EXECUTED / NOT_UPLOADED and the
// decision REJECTED (or NOT_EXECUTED if nothing could run). An ID uploaded
// over the API without a country and ID type in the account request
// (workflowDefinition.credentials [{category: ID, country {values}, type
// {values}}]) cannot be judged: its usability is NOT_EXECUTED /
// TECHNICAL_ERROR (the label is the simulator's choice) and its dependants
// NOT_EXECUTED / PRECONDITION_NOT_FULFILLED (Switches
// .AllowMissingCountryAndType lets it pass). Expired executions have
// retrievable details: decision NOT_EXECUTED with the status
// (TOKEN_EXPIRED, SESSION_EXPIRED) as label and score -1, capabilities
// NOT_EXECUTED (NOT_UPLOADED / PRECONDITION_NOT_FULFILLED), no steps
// (Switches.ExpiredAsRejected, "2023 mode", reproduces a real capture's
// REJECTED / 100). Steps use only Jumio's documented names (ID_IV,
// SCREENING, ADDRESS_VERIFICATION, DL_VERIFICATION); email and phone risk
// signals are grouped under SCREENING.
//
// # The clock
//
// Options.Now (see [Clock]) drives token expiry, transaction token
// lifetimes (tokenLifetime, default 30m), session timeouts
// (Options.SessionTimeout, default 15m, reset by every upload and user
// action) and timestamps. Clock-driven transitions are applied by a
// background sweeper (Options.SweepInterval), by [Server.Sweep], and by
// every request touching the execution. ProcessingDelay,
// RetrievableDelay, AutoCompleteWeb, callback delays and rate limits run
// in real time.
//
// # Callbacks and their faults
//
// Status changes are POSTed asynchronously as application/json, with
// User-Agent Jumio-Callback/1.0 and no signature (Jumio sends none), to
// the account request's callbackUrl, else Options.DefaultCallbackURL. The
// body is jumio.Callback: callbackSentAt (the time of the event),
// userReference (if set), workflowExecution {id, href, definitionKey,
// status} and account {id, href}, with hrefs on the retrieval paths:
// workflowExecution.href has the short form real callbacks carry,
// {base}/api/v1/workflow-executions/{id} (Switches.LongExecutionHref gives
// the documented long one; status answers follow the same switch).
// Terminal statuses (PROCESSED, SESSION_EXPIRED, TOKEN_EXPIRED) are always
// sent; ACQUISITION_STARTED and ACQUIRED only with
// CallbackOptions.Intermediate. An execution's callbacks are delivered one
// at a time, in order. [CallbackOptions] adds delays, drops (first N, or at
// random with Options.Seed), duplicates, reordering (reverse order),
// retries and timeouts; Options.RetrievableDelay makes the PROCESSED
// callback arrive before the details can be read. Close stops delivery.
//
// # Rate limits
//
// Off by default. [DefaultRateLimits] gives Jumio's documented per-tenant
// limits (accounts 1/s burst 5, retrieval 15/s burst 15, token 10/s burst
// 10), counted per region's tenant, all its clients together. Over a limit
// the answer is 429 with exactly Jumio's body
// {"title":"Too Many Requests","status":429,"detail":"Request limit
// exceeded"}, without Retry-After unless RateLimits.RetryAfter. A limited
// request never reaches the handler.
//
// # Fault injection
//
// [Server.FailNext] and [Server.FailNextWith] make the next n requests on
// a [Route] fail (a status with Jumio's error body or a raw body,
// Retry-After, or a closed connection) before any other handling;
// [Server.SetLatency] delays a route, ending early when the client gives
// up. Per request the order is: latency, fault, header checks (User-Agent,
// Content-Length), rate limit, handler.
//
// # Counters
//
// [Server.Stats] returns exact, race-free counters: requests and answers
// per route and per region, token requests vs tokens minted, accounts and
// executions (in total and per customerInternalReference), uploads,
// finalizes, callbacks sent, dropped and failed, rate-limited requests,
// injected faults, deletions, refusals by rule (Refusal* keys) and
// requests without Content-Length. Request counters change before the answer is written, so a
// client that got its answer sees it counted. [Server.Execution] returns a
// snapshot of one execution.
//
// The call log ([Server.CallLog], off unless Options.RecordCalls or
// [Server.SetCallLog] turns it on) records when each Jumio call about a
// customerInternalReference arrived, with its route, IDs and answer: the
// soak uses it to check that no call for a job arrives after the job's
// erasure was accepted, which totals cannot tell.
//
// # Memory on long runs
//
// The simulator keeps every execution it created, for tests to inspect.
// For long load tests and demos, Options.MaxExecutions (jumiosim
// -max-executions) bounds them: the sweeper forgets the executions that
// ended longest ago (PROCESSED, expired or deleted, callbacks delivered)
// beyond the bound, as Jumio's retention deletes data: their routes answer
// 404, their accounts go with their last execution, and
// Stats.ExecutionsForgotten counts them. The sweeper's own work grows with
// the executions still INITIATED, not with all of them.
//
// # The control API
//
// Under /_sim/ at the root URL only (JSON in and out, durations as Go
// duration strings such as "250ms"; no authentication, no User-Agent
// needed: keep the simulator on a trusted network, as GET /_sim/clients
// shows the clients' secrets):
//
//	GET  /_sim/stats                     Stats
//	GET  /_sim/call-log                  the CallLog
//	POST /_sim/call-log                  {"enabled":true} turns the call log on ({"enabled":false} off)
//	POST /_sim/reset-stats
//	POST /_sim/faults                    {"route":"create_account","count":3,"status":500,"retryAfter":"2s","body":"","closeConnection":false}
//	POST /_sim/latency                   {"route":"details","latency":"200ms"}
//	GET  /_sim/callbacks                 the CallbackOptions
//	POST /_sim/callbacks                 CallbackOptions, e.g. {"delay":"1s","duplicates":1,"intermediate":true}
//	POST /_sim/ratelimits                RateLimits; {} or {"enabled":true} for Jumio's defaults; {"enabled":false} turns them off
//	GET  /_sim/switches                  the Switches
//	POST /_sim/switches                  the Switches to change, e.g. {"omitWebHref":true,"blockedUserAgents":["Go-http-client/*"]}
//	GET  /_sim/clients                   the OAuth2 clients, secrets and regions included
//	POST /_sim/clients/{id}              what to change, e.g. {"secret":"new"} or {"denyRetrieve":true,"denyDelete":false}
//	POST /_sim/outcomes                  {"customerInternalReference":"x","outcome":{"decision":"REJECTED"}} (or {"watchlistAlert":true})
//	POST /_sim/health                    {"status":"DEGRADED","details":{"callback":"DEGRADED"}}
//	POST /_sim/sweep                     apply clock-driven transitions now
//	GET  /_sim/executions                every ExecutionInfo
//	GET  /_sim/executions/{id}           ExecutionInfo
//	POST /_sim/executions/{id}/start     the user opened the link
//	POST /_sim/executions/{id}/complete  the user finished the web/SDK flow; optional Outcome body, e.g. {"decision":"REJECTED"}
//
// The web.href page shows the execution with buttons "Finish (pass)",
// "Finish (warning)" and "Finish (reject)" that call the complete endpoint,
// then follow web.successUrl like Jumio's redirect. Options.AutoCompleteWeb
// completes web flows without a browser. cmd/jumiosim runs the simulator
// as a standalone binary.
package jumiotest
