package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of Standard Webhooks v1.0.0. (Go's http.Header stores them
// canonicalized, "Webhook-Id"; HTTP header names are case-insensitive.)
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SignatureVersion is the prefix of a symmetric (HMAC-SHA256) signature.
const SignatureVersion = "v1"

// DefaultTolerance is how far webhook-timestamp may be from the receiver's
// clock, in either direction, before [Verifier.Verify] refuses a message.
const DefaultTolerance = 5 * time.Minute

// mac returns HMAC-SHA256(key, "{id}.{ts}.{body}"), ts being the
// webhook-timestamp header value.
func mac(key []byte, id, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Sign returns one signature, "v1," + base64(HMAC-SHA256(key,
// "{id}.{ts.Unix()}.{body}")), as Standard Webhooks defines it. The zero
// Secret signs with an empty key: callers check [Secret.IsZero] first.
func Sign(secret Secret, id string, ts time.Time, body []byte) string {
	return SignatureVersion + "," + base64.StdEncoding.EncodeToString(mac(secret.key, id, strconv.FormatInt(ts.Unix(), 10), body))
}

// SignatureHeader returns the webhook-signature value: one signature per
// secret, space-separated, in the order given (during a rotation: the new
// secret and the old one). It fails with [ErrNoSecret] when secrets holds
// no non-zero Secret.
func SignatureHeader(secrets []Secret, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if !s.IsZero() {
			sigs = append(sigs, Sign(s, id, ts, body))
		}
	}
	if len(sigs) == 0 {
		return "", fmt.Errorf("webhooks: sign: %w", ErrNoSecret)
	}
	return strings.Join(sigs, " "), nil
}

// SetHeaders sets webhook-id, webhook-timestamp (ts in Unix seconds) and
// webhook-signature on h. It fails with [ErrNoSecret] like
// [SignatureHeader], leaving h unchanged.
func SetHeaders(h http.Header, secrets []Secret, id string, ts time.Time, body []byte) error {
	sig, err := SignatureHeader(secrets, id, ts, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Verifier checks Standard Webhooks signatures on received messages. The
// zero value has no secret and refuses everything. A Verifier is safe for
// concurrent use once built.
type Verifier struct {
	// Secrets are the accepted keys: a message is authentic when any v1
	// signature it carries matches any of them (several during a rotation).
	Secrets []Secret
	// Tolerance bounds |now - webhook-timestamp| (replay protection);
	// zero or negative means [DefaultTolerance].
	Tolerance time.Duration
	// Now is the receiver's clock; nil means time.Now.
	Now func() time.Time
}

// Verify checks the headers of a received message against its raw body
// (exactly the bytes received, before any JSON decoding):
//   - webhook-id, webhook-timestamp and webhook-signature must be present
//     ([ErrMissingHeaders]);
//   - webhook-timestamp must be Unix seconds ([ErrInvalidTimestamp]) within
//     Tolerance of Now ([ErrTimestampTooOld], [ErrTimestampTooNew]);
//   - one of the space-separated signatures must be "v1," + the base64
//     HMAC of "{id}.{timestamp}.{body}" (the header values as received)
//     under one of Secrets, compared in
//     constant time ([ErrNoMatchingSignature]); signatures of other versions
//     are ignored.
//
// Errors wrap those sentinels and never contain a secret or the body.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	id, tsRaw, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return fmt.Errorf("webhooks: verify: %w", ErrMissingHeaders)
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("webhooks: verify: %w", ErrInvalidTimestamp)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	nowUnix := now().Unix()
	tolSec := int64(tol / time.Second)
	// Bounds on the receiver's side: a hostile ts cannot overflow them.
	switch {
	case ts < nowUnix-tolSec:
		return fmt.Errorf("webhooks: verify: %w", ErrTimestampTooOld)
	case ts > nowUnix+tolSec:
		return fmt.Errorf("webhooks: verify: %w", ErrTimestampTooNew)
	}
	expected := make([][]byte, 0, len(v.Secrets))
	for _, s := range v.Secrets {
		if !s.IsZero() {
			expected = append(expected, mac(s.key, id, tsRaw, body))
		}
	}
	if len(expected) == 0 {
		return fmt.Errorf("webhooks: verify: %w", ErrNoSecret)
	}
	for _, sig := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != SignatureVersion {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		for _, want := range expected {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return fmt.Errorf("webhooks: verify: %w", ErrNoMatchingSignature)
}
