package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// Schema identifiers. A message whose schema field is empty is read as the
// current version; any other unknown value is rejected.
const (
	SchemaVerification = "kycpipe.verification.v1"
	SchemaEvent        = "kycpipe.event.v1"
	SchemaCallback     = "kycpipe.callback.v1"
	SchemaDecision     = "kycpipe.decision.v1"
)

// Channels through which a job's end user (or data) reaches Jumio.
const (
	ChannelWeb = "WEB" // hosted web flow: the job yields web.href
	ChannelSDK = "SDK" // mobile SDK: the job yields sdk.token
	ChannelAPI = "API" // data and images go straight through the API
)

// Image limits (DESIGN 3.4).
const (
	MaxImageSize       = 15_000_000 // per part: Jumio's "max. size 15 MB" (jumio-api.md §10.10), read as 15,000,000 bytes
	MaxRequestJSONSize = 1 << 20    // JSON bodies, base64 images included
)

// VerificationRequest is a job: one identity verification to run through
// Jumio. It is the body of POST /v1/verifications and the payload of
// kyc.jobs.submit. PreparedData and Parts carry PII.
type VerificationRequest struct {
	Schema                    string             `json:"schema,omitempty"`
	JobID                     string             `json:"jobId,omitempty"`
	Region                    string             `json:"region,omitempty"`
	AccountID                 string             `json:"accountId,omitempty"`
	CustomerInternalReference string             `json:"customerInternalReference"`
	UserReference             string             `json:"userReference,omitempty"`
	ReportingCriteria         string             `json:"reportingCriteria,omitempty"`
	WorkflowDefinition        WorkflowDefinition `json:"workflowDefinition"`
	Channel                   string             `json:"channel,omitempty"`
	CallbackURL               string             `json:"callbackUrl,omitempty"`
	TokenLifetime             string             `json:"tokenLifetime,omitempty"`
	Web                       *WebSettings       `json:"web,omitempty"`
	UserConsent               *UserConsent       `json:"userConsent,omitempty"`
	PreparedData              *PreparedData      `json:"preparedData,omitempty"`
	Parts                     []Part             `json:"parts,omitempty"`
	SubmittedAt               *time.Time         `json:"submittedAt,omitempty"`
}

// Part is an image for the API channel. Exactly one of Object (the name of
// an object in the pipeline's image store, as ingest stores uploads) and Data
// (the image itself, base64 in JSON, for small images within the 1 MiB JSON
// limit) is set.
type Part struct {
	Classifier  string `json:"classifier"`            // FRONT, BACK or FACE
	ContentType string `json:"contentType,omitempty"` // image/jpeg or image/png
	Object      string `json:"object,omitempty"`
	Data        []byte `json:"data,omitempty"`
	Size        int64  `json:"size,omitempty"`   // bytes, set by ingest for stored objects
	SHA256      string `json:"sha256,omitempty"` // hex digest of the image, set by ingest
}

// EffectiveChannel returns the channel, WEB when unset.
func (r *VerificationRequest) EffectiveChannel() string {
	if r.Channel == "" {
		return ChannelWeb
	}
	return strings.ToUpper(r.Channel)
}

// accountFields returns the job's fields that a Jumio account request
// carries (without the pipeline's default callback URL).
func (r *VerificationRequest) accountFields() *AccountRequest {
	return &AccountRequest{
		CustomerInternalReference: r.CustomerInternalReference,
		WorkflowDefinition:        r.WorkflowDefinition,
		UserReference:             r.UserReference,
		ReportingCriteria:         r.ReportingCriteria,
		CallbackURL:               r.CallbackURL,
		TokenLifetime:             r.TokenLifetime,
		Web:                       r.Web,
		UserConsent:               r.UserConsent,
	}
}

var jobIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidJobID reports whether id can be a job ID: 1 to 64 letters, digits,
// '-' and '_', starting with a letter or digit. Such IDs are safe in NATS
// subjects, KV keys and URLs.
func ValidJobID(id string) bool { return jobIDRE.MatchString(id) }

// Validate checks the request against the pipeline's rules and Jumio's
// documented ones, and returns a *ValidationError listing every
// violation (field paths are the request's JSON paths), or nil.
func (r *VerificationRequest) Validate() error {
	var v Validator
	r.validate(&v)
	return v.Err()
}

func (r *VerificationRequest) validate(v *Validator) {
	if r.Schema != "" && r.Schema != SchemaVerification {
		v.Add("schema", CodeInvalidValue, "must be "+SchemaVerification)
	}
	if r.JobID != "" && !ValidJobID(r.JobID) {
		v.Add("jobId", CodeInvalidFormat, "must be 1-64 letters, digits, '-' or '_', starting with a letter or digit")
	}
	if r.Region != "" {
		if _, ok := CanonicalRegion(r.Region); !ok {
			v.Add("region", CodeInvalidValue, "must be amer-1, emea-1, apac-1 (or US, EU, SG)")
		}
	}
	if r.AccountID != "" && !ValidAccountID(r.AccountID) {
		v.Add("accountId", CodeInvalidFormat, "must be the UUID of an existing Jumio account (the accountId of a job that reached Jumio)")
	}
	// Control characters have no business in references or names: they
	// only serve to break logs, terminals and downstream parsers.
	for field, val := range map[string]string{
		"customerInternalReference": r.CustomerInternalReference, "userReference": r.UserReference,
		"reportingCriteria": r.ReportingCriteria, "jobId": r.JobID,
	} {
		noControl(v, field, val)
	}
	if p := r.PreparedData; p != nil {
		for field, val := range map[string]string{
			"firstName": p.FirstName, "lastName": p.LastName, "middleName": p.MiddleName, "email": p.Email,
			"phoneNumber": p.PhoneNumber, "socialSecurityNumber": p.SocialSecurityNumber, "personalNumber": p.PersonalNumber,
		} {
			noControl(v, "preparedData."+field, val)
		}
		if a := p.Address; a != nil {
			for field, val := range map[string]string{"line1": a.Line1, "line2": a.Line2, "city": a.City, "postalCode": a.PostalCode} {
				noControl(v, "preparedData.address."+field, val)
			}
		}
	}
	// The account request carries the job's Jumio fields; callbackUrl is
	// checked against Jumio's rules only when the job overrides it.
	ValidateAccountFields(v, "", r.accountFields())
	ch := r.EffectiveChannel()
	switch ch {
	case ChannelWeb, ChannelSDK, ChannelAPI:
	default:
		v.Add("channel", CodeInvalidValue, "must be WEB, SDK or API")
	}
	if r.PreparedData != nil {
		ValidatePreparedDataFields(v, "preparedData.", r.PreparedData)
	}
	if len(r.Parts) > 0 && ch != ChannelAPI {
		v.Add("parts", CodeInvalidValue, "images can only be sent with channel API")
	}
	if ch == ChannelAPI && r.PreparedData == nil && len(r.Parts) == 0 {
		v.Add("channel", CodeInvalidValue, "channel API needs preparedData or parts to upload")
	}
	seen := map[string]bool{}
	for i, p := range r.Parts {
		path := fmt.Sprintf("parts[%d]", i)
		switch p.Classifier {
		case PartFront, PartBack, PartFace:
		default:
			v.Add(path+".classifier", CodeInvalidValue, "must be FRONT, BACK or FACE")
		}
		if seen[p.Classifier] {
			v.Add(path+".classifier", CodeInvalidValue, "each classifier may appear once")
		}
		seen[p.Classifier] = true
		switch p.ContentType {
		case "", "image/jpeg", "image/png":
		default:
			v.Add(path+".contentType", CodeInvalidValue, "must be image/jpeg or image/png")
		}
		switch {
		case (p.Object == "") == (len(p.Data) == 0):
			v.Add(path, CodeInvalidValue, "exactly one of object and data is required")
		case p.Object != "" && !objectNameRE.MatchString(p.Object):
			v.Add(path+".object", CodeInvalidFormat, "must be an object name from the image store")
		case len(p.Data) > MaxImageSize:
			v.Add(path+".data", CodeTooLong, "must be at most 15,000,000 bytes")
		}
	}
}

// noControl rejects ASCII control characters (including NUL and newlines).
func noControl(v *Validator, field, val string) {
	for i := 0; i < len(val); i++ {
		if c := val[i]; c < 0x20 || c == 0x7f {
			v.Add(field, CodeForbiddenCharacters, "must not contain control characters")
			return
		}
	}
}

var objectNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}/(FRONT|BACK|FACE)$`)

// ObjectName is the image store name of a job's part: the job ID, a nonce
// of the submission that stored it (so that a conflicting resubmission never
// overwrites the first one's images) and the classifier.
func ObjectName(jobID, nonce, classifier string) string {
	return jobID + "/" + nonce + "/" + classifier
}

// DecodeRequest decodes a VerificationRequest strictly: unknown fields
// (field names are case-sensitive: "JOBID" is not jobId), trailing data and
// unsupported schemas are errors (wrapping [ErrMalformed]
// or [ErrUnsupportedSchema]), and the error never echoes values. It does not
// call Validate.
func DecodeRequest(b []byte) (*VerificationRequest, error) {
	var r VerificationRequest
	if !decodeRequestFast(b, &r) {
		// Anything the fast path does not take (an error above all) is
		// decoded by encoding/json, whose result and errors are the
		// contract.
		r = VerificationRequest{}
		if err := strictDecode(b, &r); err != nil {
			return nil, err
		}
	}
	if r.Schema != "" && r.Schema != SchemaVerification {
		return nil, inputError(ErrUnsupportedSchema, fmt.Sprintf("%q (want %s)", truncate(r.Schema, 64), SchemaVerification))
	}
	return &r, nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return inputError(ErrMalformed, DescribeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return inputError(ErrMalformed, "trailing data after the JSON object")
	}
	// encoding/json ignores letter case when it matches keys to fields; a
	// strict decoder does not.
	return checkFieldCase(b, reflect.TypeOf(v))
}

// DescribeJSONError describes a JSON decoding error without echoing the
// offending value.
func DescribeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %s must be a JSON %s", te.Field, jsonTypeName(te.Type.Kind().String()))
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	msg := err.Error()
	// encoding/json: `json: unknown field "x"`: the field name is ours to echo.
	if strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown field " + truncate(strings.TrimPrefix(msg, "json: unknown field "), 80)
	}
	if strings.Contains(msg, "base64") || strings.Contains(msg, "illegal") {
		return "invalid base64 data"
	}
	return "invalid JSON"
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "struct", "map", "ptr":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return "number"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
