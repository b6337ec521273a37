package pipeline

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Problem is an RFC 9457 problem detail, the body of every error answer of
// the ingest API (Content-Type application/problem+json).
type Problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail,omitempty"`
	Errors []jumio.FieldError `json:"errors,omitempty"` // field-level violations (422 only)
}

// Problem types, documented in docs/API.md and docs/openapi.yaml.
const (
	ProblemInvalidBody      = "urn:kycpipe:problem:invalid-body"
	ProblemUnauthorized     = "urn:kycpipe:problem:unauthorized"
	ProblemForbidden        = "urn:kycpipe:problem:forbidden"
	ProblemNotFound         = "urn:kycpipe:problem:not-found"
	ProblemMethodNotAllowed = "urn:kycpipe:problem:method-not-allowed"
	ProblemConflict         = "urn:kycpipe:problem:conflict"
	ProblemTooLarge         = "urn:kycpipe:problem:body-too-large"
	ProblemUnsupportedType  = "urn:kycpipe:problem:unsupported-media-type"
	ProblemValidation       = "urn:kycpipe:problem:validation"
	ProblemTooManyRequests  = "urn:kycpipe:problem:too-many-requests"
	ProblemUnavailable      = "urn:kycpipe:problem:unavailable"
	ProblemInternal         = "urn:kycpipe:problem:internal"
)

func writeProblem(w http.ResponseWriter, p Problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeUnavailable(w http.ResponseWriter, retryAfter time.Duration, detail string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retryAfter.Round(time.Second)/time.Second))))
	writeProblem(w, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable, Detail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// publicDetail is the detail of a 400 for err: the decoder's own words when
// it says what is wrong (never echoing values), else fallback.
func publicDetail(err error, fallback string) string {
	var ie *messages.InputError
	if errors.As(err, &ie) {
		return ie.Public()
	}
	return fallback
}
