// Package jumio is a typed client for Jumio's platform (KYX) API: the calls
// an identity verification needs, from the OAuth2 token to the retrieval of
// the decision.
//
// # Creating a client
//
// A [Client] talks to one region (data center) with one OAuth2 client:
//
//	c, err := jumio.New(jumio.Credentials{ClientID: id, ClientSecret: secret},
//		jumio.WithRegion(jumio.RegionEMEA),           // or "EU"
//		jumio.WithUserAgent("Acme Onboarding/1.4"),   // Jumio wants company and app name
//	)
//
// By default it calls Jumio's real hosts for the region: auth.{region}.jumio.ai,
// account.{region}.jumio.ai and retrieval.{region}.jumio.ai. [WithBaseURL]
// points all of them at one URL (a simulator such as
// [github.com/kycpipe/kycpipe/pkg/jumio/jumiotest], or a proxy);
// [WithAuthURL], [WithAccountURL] and [WithRetrievalURL] override one service.
// Upload and finalize URLs are never built by the client: they are always the
// ones Jumio returned in the account response (their host differs, e.g.
// api.{region}.jumio.link).
//
// # Authentication
//
// The client obtains an OAuth2 access token with the client-credentials grant
// (HTTP Basic auth) and reuses it until shortly before it expires ([WithRefreshSkew],
// default 5 minutes). The expiry is the earlier of expires_in and the JWT's exp
// claim, because Jumio may hand back a cached token with less life left than
// expires_in says. However many goroutines need a token, at most one refresh
// runs at a time. Every call takes a context; a caller whose context ends stops
// waiting without failing the refresh for the others. When Jumio answers 401 to
// a call made with the OAuth token, the client refreshes the token once and
// repeats the call once.
//
// Uploads and finalize use the credential's transaction token (api.token from
// the account response), not the OAuth token; a 401 there is final.
//
// # A verification, step by step
//
//	acct, err := c.CreateAccount(ctx, &jumio.AccountRequest{
//		CustomerInternalReference: "order-1234",
//		WorkflowDefinition:        jumio.WorkflowDefinition{Key: jumio.WorkflowEmailVerification},
//		CallbackURL:               "https://hooks.example.com/jumio",
//	})
//	cred := acct.WorkflowExecution.Credentials[0]
//	partURL, _ := cred.API.PartURL(jumio.PartPreparedData)
//	_, err = c.UploadPreparedData(ctx, partURL, cred.API.Token, &jumio.PreparedData{Email: "jane@example.com"})
//	_, err = c.Finalize(ctx, cred.API.WorkflowExecution, cred.API.Token)
//	// … later, after the callback (see ParseCallback) or by polling:
//	st, err := c.WorkflowStatus(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
//	if jumio.IsTerminalStatus(st.WorkflowExecution.Status) {
//		details, err := c.WorkflowDetails(ctx, acct.Account.ID, acct.WorkflowExecution.ID)
//		fmt.Println(details.Decision.Type, details.Decision.Details.Label)
//	}
//
// For the WEB and SDK channels, hand acct.Web.Href or acct.SDK.Token to the
// end user instead of uploading. Images go through [Client.UploadPart], which
// streams the file as the multipart field "file".
//
// # The retrieval model
//
// [WorkflowDetails] types the whole retrieval response: workflow, account,
// credentials and parts, the decision (type, label, risk score) and every
// documented capability in [Capabilities]. Capabilities the model does not
// know, and known ones whose payload does not match the model, are kept
// verbatim in Capabilities.Other and re-encoded unchanged, so a new Jumio
// capability never breaks decoding. [Capabilities.All] lists every result's
// name and decision, typed or not.
//
// Details are decoded by a hand-written fast path (one pass over the bytes)
// that handles the documents Jumio sends, unknown fields and capabilities
// included, and leaves anything it is not sure of to encoding/json; the
// result is the same either way (a fuzz test compares the two).
//
// # Errors and retries
//
// The client does not retry (apart from the single 401 refresh): in kycpipe
// the queue's redelivery is the one retry layer, and stacked retries multiply.
// Callers branch on the error instead:
//
//   - [*APIError]: Jumio answered with a non-2xx status. It carries Jumio's
//     {title, status, detail} body and Retry-After when present, and matches
//     [ErrBadRequest], [ErrUnauthorized], [ErrForbidden], [ErrNotFound],
//     [ErrRateLimited] or [ErrServer] with errors.Is.
//   - [*TransportError]: no answer (connection, TLS, timeout).
//   - [*ThrottledError]: a [Limiter] asked the caller to come back later.
//   - [*ValidationError]: the request breaks Jumio's documented rules
//     (see [ValidateAccountRequest] and [ValidatePreparedData]).
//
// [IsRetryable] says whether a later retry may succeed (transport errors, 408,
// 429, 5xx except 501, local throttling) and [RetryAfter] how long to wait
// when Jumio or the limiter said so. Errors never contain tokens, secrets,
// URLs with identifiers of the applicant, or request values.
//
// # Rate limits, metrics and tracing
//
// Jumio limits calls per tenant and [EndpointClass]: tokens (10/s), account
// initiation (about 1/s) and retrieval (15/s). [WithLimiter] makes every call
// wait for a permit of its class; [WithObserver] reports each HTTP call's
// operation, class, status and duration.
//
// # Validation
//
// [ValidateAccountRequest] and [ValidatePreparedData] mirror Jumio's
// documented rules (required fields and lengths, forbidden characters in
// customerInternalReference and in prepared-data names, email and phone,
// tokenLifetime format and 5m..60d range, callback URL rules). Each violation is
// a [FieldError] naming the JSON path and the rule, never the value.
package jumio
