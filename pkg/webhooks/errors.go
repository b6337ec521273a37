package webhooks

import (
	"errors"
	"strings"
)

// Sentinel errors. Functions wrap them with %w; branch with [errors.Is].
var (
	// ErrInvalidSecret: a secret string is not "whsec_" followed by the
	// standard base64 encoding of 24 to 64 bytes. The error never contains
	// the string.
	ErrInvalidSecret = errors.New("webhooks: invalid secret")

	// ErrInvalidOption: an option given to [NewDeliverer] is invalid.
	ErrInvalidOption = errors.New("webhooks: invalid option")

	// ErrInvalidSchedule: a retry schedule string cannot be parsed.
	ErrInvalidSchedule = errors.New("webhooks: invalid retry schedule")

	// ErrValidation: a value breaks a rule a client must fix (the API's
	// 422). Returned errors are *[ValidationError], which matches it.
	ErrValidation = errors.New("webhooks: validation failed")

	// ErrResolve: the endpoint's host could not be resolved for a reason
	// that may pass (DNS timeout, server failure). At registration this is
	// not the client's fault (answer 503, not 422); at delivery it is a
	// retryable failure.
	ErrResolve = errors.New("webhooks: cannot resolve host")

	// Verification failures returned by [Verifier.Verify].

	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is absent or empty.
	ErrMissingHeaders = errors.New("webhooks: missing signature headers")
	// ErrInvalidTimestamp: webhook-timestamp is not an integer of Unix seconds.
	ErrInvalidTimestamp = errors.New("webhooks: invalid webhook-timestamp")
	// ErrTimestampTooOld: webhook-timestamp is older than the tolerance.
	ErrTimestampTooOld = errors.New("webhooks: webhook-timestamp too old")
	// ErrTimestampTooNew: webhook-timestamp is further in the future than
	// the tolerance.
	ErrTimestampTooNew = errors.New("webhooks: webhook-timestamp too new")
	// ErrNoMatchingSignature: no v1 signature in webhook-signature matches
	// any of the verifier's secrets.
	ErrNoMatchingSignature = errors.New("webhooks: no matching signature")
	// ErrNoSecret: signing or verifying was asked for with no secret.
	ErrNoSecret = errors.New("webhooks: no secret")
)

// FieldError is one rule violation, for the "errors" list of a 422
// problem. Field is the JSON path of the offending field ("url",
// "eventTypes[1]"), Code a stable machine-readable code and Message a
// sentence for humans. Message never repeats the field's value nor any
// resolved address, so it is safe to log and to return to clients. It has
// the same fields as jumio.FieldError, so the two convert into each other.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Field error codes.
const (
	CodeRequired         = "required"          // the value is missing
	CodeInvalidFormat    = "invalid_format"    // not a URL, a bad host name, an unknown event type
	CodeTooLong          = "too_long"          // longer than allowed
	CodeInsecureScheme   = "insecure_scheme"   // http without AllowInsecure, or another scheme
	CodeForbiddenAddress = "forbidden_address" // the host is or resolves to a refused address
	CodeUnresolvable     = "unresolvable"      // the host name does not exist
)

// ValidationError lists every rule a value breaks. It matches
// [ErrValidation] with [errors.Is].
type ValidationError struct {
	Fields []FieldError
}

// Error implements error.
func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return "webhooks: " + strings.Join(parts, "; ")
}

// Is matches [ErrValidation].
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

// validator collects field errors.
type validator struct{ fields []FieldError }

func (v *validator) add(field, code, msg string) {
	v.fields = append(v.fields, FieldError{Field: field, Code: code, Message: msg})
}

func (v *validator) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}
