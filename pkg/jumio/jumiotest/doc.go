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
// the client's model and the simulator stay in sync. Behaviour that Jumio
// documents is reproduced; where Jumio's documentation is silent (error
// bodies, callback retries, finalize with parts missing) the choices are
// stated below and in the field docs.
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
// One address serves every Jumio service, so with JUMIO_BASE_URL=s.URL the
// kycpipe client builds exactly these paths:
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
// URLs in responses and callbacks are built from the Host the request came
// through (Server.URL for the usual client). Every Jumio route requires a
// User-Agent (403 without, unless Options.AllowMissingUserAgent). Errors
// use Jumio's shape {"title","status","detail"} with application/json; the
// token endpoint uses OAuth2 bodies ({"error":"invalid_client"}). Details
// name the field and the rule, never a request value.
//
// # Credentials
//
// The token endpoint takes HTTP Basic auth with a configured client
// (Options.Clients, default sim-client / sim-secret, see
// [Server.Credentials]) and the form body grant_type=client_credentials.
// It answers {"access_token","expires_in":3600,"token_type":"Bearer"}; the
// token is a JWT (HMAC-signed with a random key) whose exp claim is the
// truth: while a client's token has at least Options.TokenReuseMin life
// left, the same token is handed back, so its remaining life is shorter
// than expires_in says, as with Jumio. Account calls need the OAuth token
// of a client allowed to initiate, retrieval and deletion one allowed to
// retrieve (ClientCredentials.DenyInitiate / DenyRetrieve give 403).
//
// Uploads and finalize need the execution's transaction token (api.token,
// shared by all its credentials), not the OAuth token: an OAuth token or
// another execution's token gets 401, and once the execution is finalized
// or expired the token is consumed (403).
//
// Workflows: 10011 and 10013 return ID (front, back), SELFIE (face) and
// FACEMAP (WEB/SDK only) credentials; 10163 and 10164 add a DATA
// credential for supporting data; 10010, 10065, 10066 and 10148 return one
// DATA credential (prepared_data). web.href and sdk.token come only with
// WEB/SDK-capable workflows. Options.Workflows adds custom ones
// ([WorkflowSpec], [DefaultWorkflows]). Images must be JPEG or PNG (sniffed)
// with the longest side above 300 px and no side above 8000 px, at most
// Options.MaxUploadSize (413 above); [PNG] and [JPEG] make valid test
// images. Prepared data is checked with jumio.ValidatePreparedData. PUT on a
// part replaces it (405 with Allow: POST when there is nothing to replace).
//
// # Outcomes
//
// When an execution is processed, its outcome comes from, in order: the
// decision chosen on the web page (or sent to the control API's complete
// endpoint), [Server.SetOutcome] for its customerInternalReference, then
// the decider (Options.Decide, default [DeriveOutcome]: "reject", "warn"
// or "notexec" in a reference or the prepared-data email). The details are
// built from the [Outcome]: usability per credential, extraction (the
// prepared data, else JOHN JACOB SMITH), similarity, liveness, dataChecks,
// imageChecks, watchlistScreening, addressValidation, proofOfResidency,
// emailVerification and phoneVerification as the workflow defines, with
// Jumio's dependency rules (a failed usability makes its dependants
// NOT_EXECUTED / PRECONDITION_NOT_FULFILLED) and Jumio's score bands
// (PASSED 0–30, WARNING 31–70, REJECTED 71–100, NOT_EXECUTED -1). A
// finalize with required parts missing is accepted, as by Jumio; the
// missing credentials' usability is NOT_EXECUTED / NOT_UPLOADED and the
// decision REJECTED (or NOT_EXECUTED if nothing could run). Expired
// executions report decision NOT_EXECUTED with the status as label
// (Options.ExpiredAsRejected reproduces a real capture's REJECTED / 100).
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
// status} and account {id, href}, with hrefs on the retrieval paths.
// Terminal statuses (PROCESSED, SESSION_EXPIRED, TOKEN_EXPIRED) are always
// sent; ACQUISITION_STARTED and ACQUIRED only with
// CallbackOptions.Intermediate. An execution's callbacks are delivered one
// at a time, in order. [CallbackOptions] adds delays, drops (first N, or at
// random with Options.Seed), duplicates, reordering (reverse order),
// retries and timeouts; Options.RetrievableDelay makes the PROCESSED
// callback arrive before the details can be read, and
// Options.ShortExecutionHref writes hrefs without the account segment, as
// real callbacks do. Close stops delivery.
//
// # Rate limits
//
// Off by default. [DefaultRateLimits] gives Jumio's documented per-tenant
// limits (accounts 1/s burst 5, retrieval 15/s burst 15, token 10/s burst
// 10 per client). Over a limit the answer is 429 with exactly Jumio's body
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
// up. Per request the order is: latency, fault, User-Agent check, rate
// limit, handler.
//
// # Counters
//
// [Server.Stats] returns exact, race-free counters: requests and answers
// per route, token requests vs tokens minted, accounts and executions (in
// total and per customerInternalReference), uploads, finalizes, callbacks
// sent, dropped and failed, rate-limited requests, injected faults and
// deletions. Request counters change before the answer is written, so a
// client that got its answer sees it counted. [Server.Execution] returns a
// snapshot of one execution.
//
// # The control API
//
// Under /_sim/ (JSON in and out, durations as Go duration strings such as
// "250ms"; no authentication, no User-Agent needed):
//
//	GET  /_sim/stats                     Stats
//	POST /_sim/reset-stats
//	POST /_sim/faults                    {"route":"create_account","count":3,"status":500,"retryAfter":"2s","body":"","closeConnection":false}
//	POST /_sim/latency                   {"route":"details","latency":"200ms"}
//	GET  /_sim/callbacks                 the CallbackOptions
//	POST /_sim/callbacks                 CallbackOptions, e.g. {"delay":"1s","duplicates":1,"intermediate":true}
//	POST /_sim/ratelimits                RateLimits; {} or {"enabled":true} for Jumio's defaults; {"enabled":false} turns them off
//	POST /_sim/outcomes                  {"customerInternalReference":"x","outcome":{"decision":"REJECTED"}}
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
