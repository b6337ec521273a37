// Package webhooks holds the building blocks of kycpipe's outbound
// webhooks (DESIGN 3.8, Standard Webhooks v1.0.0): secrets, signing and
// verification, the delivery payload and its id, the endpoint URL rules
// that defend against server-side request forgery, one signed delivery
// attempt, and the retry schedule. It knows nothing of JetStream or of
// kycpipe's message types (event data travels as raw JSON), so the
// notifier stage, the ingest API and receivers can all use it.
//
// # Secrets
//
// A [Secret] is "whsec_" + base64 of 32 random bytes ([NewSecret]);
// [ParseSecret] reads one back. Formatting a Secret prints
// "whsec_[REDACTED]"; only [Secret.Reveal] returns the secret string.
//
// # Signing and verifying
//
// webhook-signature is "v1," + base64(HMAC-SHA256(key,
// "{webhook-id}.{webhook-timestamp}.{body}")) per secret, space-separated
// ([Sign], [SignatureHeader], [SetHeaders]). Receivers use a [Verifier]:
//
//	v := &webhooks.Verifier{Secrets: secrets} // tolerance 5 minutes
//	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
//	if err := v.Verify(r.Header, body); err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//
// # Payloads and ids
//
// The body is {"type", "timestamp", "data"} ([EncodePayload], [Payload]);
// the type is one of [EventTypes], and endpoints subscribe with exact types
// or the patterns "verification.*" and "*" ([ValidateEventTypes],
// [Subscribed]). [MessageID] derives the webhook-id from the event and the
// endpoint, so every retry of one event to one endpoint carries the same
// id.
//
// # Endpoint URL rules
//
// [Policy] refuses non-https URLs and hosts that are or resolve to
// non-public addresses (see its doc for the full list). Call
// [Policy.CheckURL] at registration: a *[ValidationError] carries the
// field-level reasons for a 422. [Deliverer.Deliver] applies the same
// policy again at every attempt, resolves the host once and connects only
// to the addresses it checked, so DNS rebinding cannot reach an internal
// service.
//
// # Delivering and retrying
//
// A notifier builds one [Deliverer] and, per event and endpoint:
//
//	body, err := webhooks.EncodePayload(webhooks.EventDecided, ev.DecidedAt, msg.Data())
//	id := webhooks.MessageID(natsMsgID, endpoint.ID)
//	res := deliverer.Deliver(ctx, endpoint.URL, id, time.Now(), body, endpoint.Secrets)
//	switch res.Class {
//	case webhooks.ClassDelivered: // ack
//	case webhooks.ClassGone: // disable the endpoint, ack
//	case webhooks.ClassRetry, webhooks.ClassRefused:
//		if wait, ok := schedule.Delay(attempt, res.RetryAfter); ok {
//			// NakWithDelay(wait)
//		} else {
//			// dead-letter to kyc.dlq.notifier
//		}
//	}
//
// A Deliverer makes exactly one attempt per call: retries are the caller's
// (JetStream redelivery), never stacked inside this package. [Schedule]
// maps the attempt number to the next wait, honouring a longer Retry-After.
// The package never logs.
package webhooks
