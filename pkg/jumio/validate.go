package jumio

import (
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Jumio's documented request rules are implemented in package messages,
// which kycpipe's request validation and this client share; the names here
// refer to them.

// FieldError is one rule violation; see [messages.FieldError].
type FieldError = messages.FieldError

// ValidationError lists every rule a request violates. It matches
// [ErrValidation].
type ValidationError = messages.ValidationError

// Validator collects field errors. The zero value is ready to use.
type Validator = messages.Validator

// Validation error codes.
const (
	CodeRequired            = messages.CodeRequired
	CodeTooLong             = messages.CodeTooLong
	CodeForbiddenCharacters = messages.CodeForbiddenCharacters
	CodeInvalidFormat       = messages.CodeInvalidFormat
	CodeOutOfRange          = messages.CodeOutOfRange
	CodeInvalidValue        = messages.CodeInvalidValue
)

// Forbidden character sets and limits from Jumio's documentation.
const (
	ForbiddenReferenceChars    = messages.ForbiddenReferenceChars
	ForbiddenPreparedDataChars = messages.ForbiddenPreparedDataChars
	MaxReferenceLength         = messages.MaxReferenceLength
	MaxReportingLength         = messages.MaxReportingLength
	MaxURLLength               = messages.MaxURLLength
	MaxLocaleLength            = messages.MaxLocaleLength
	MinTokenLifetime           = messages.MinTokenLifetime
	MaxTokenLifetime           = messages.MaxTokenLifetime
	DefaultTokenLifetime       = messages.DefaultTokenLifetime
)

// ParseTokenLifetime parses Jumio's tokenLifetime format; see
// [messages.ParseTokenLifetime].
func ParseTokenLifetime(s string) (time.Duration, error) { return messages.ParseTokenLifetime(s) }

// CheckCallbackURL applies Jumio's rules for callback URLs; see
// [messages.CheckCallbackURL].
func CheckCallbackURL(raw string) string { return messages.CheckCallbackURL(raw) }

// ValidateAccountRequest checks an account request against Jumio's
// documented rules and returns a *ValidationError listing every violation,
// or nil.
func ValidateAccountRequest(req *AccountRequest) error {
	var v Validator
	messages.ValidateAccountFields(&v, "", req)
	return v.Err()
}

// ValidatePreparedData checks prepared data against Jumio's rules.
func ValidatePreparedData(p *PreparedData) error {
	var v Validator
	messages.ValidatePreparedDataFields(&v, "", p)
	return v.Err()
}

// ValidID reports whether s looks like an ID Jumio hands out (UUIDs): 1 to 64
// letters, digits and dashes. IDs that pass are safe in URLs, NATS subjects
// and KV keys.
func ValidID(s string) bool { return messages.ValidJumioID(s) }
