package jumio

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Sentinel errors. API errors match the status sentinels through
// [APIError.Is], so callers write errors.Is(err, jumio.ErrNotFound).
var (
	ErrInvalidOption   = errors.New("jumio: invalid option")
	ErrInvalidArgument = errors.New("jumio: invalid argument")
	ErrInvalidRegion   = errors.New("jumio: invalid region")
	ErrInvalidResponse = errors.New("jumio: invalid response")
	ErrValidation      = messages.ErrValidation

	ErrBadRequest   = errors.New("jumio: bad request")       // 400
	ErrUnauthorized = errors.New("jumio: unauthorized")      // 401
	ErrForbidden    = errors.New("jumio: forbidden")         // 403
	ErrNotFound     = errors.New("jumio: not found")         // 404
	ErrRateLimited  = errors.New("jumio: rate limited")      // 429
	ErrServer       = errors.New("jumio: server error")      // 5xx
	ErrThrottled    = errors.New("jumio: throttled locally") // a Limiter refused to wait
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// APIError is a non-2xx answer from Jumio. Title and Detail come from
// Jumio's {title, status, detail} body when present (or the OAuth
// error/error_description pair, or a bare message). They are Jumio's words,
// truncated; this package never puts request values, tokens or URLs in them.
type APIError struct {
	Op         string        // the operation, e.g. "create account"
	StatusCode int           // HTTP status
	Title      string        // Jumio's title (or OAuth error code)
	Detail     string        // Jumio's detail (or OAuth error_description, or message)
	RetryAfter time.Duration // from the Retry-After header; 0 when absent
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("jumio: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	if e.Title != "" && e.Title != http.StatusText(e.StatusCode) {
		b.WriteString(": ")
		b.WriteString(e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is matches the status sentinels: ErrBadRequest, ErrUnauthorized,
// ErrForbidden, ErrNotFound, ErrRateLimited and ErrServer (any 5xx).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrServer:
		return e.StatusCode >= 500
	}
	return false
}

// Retryable reports whether a later identical call may succeed: 408, 429
// and 5xx except 501.
func (e *APIError) Retryable() bool {
	switch {
	case e.StatusCode == http.StatusTooManyRequests, e.StatusCode == http.StatusRequestTimeout:
		return true
	case e.StatusCode == http.StatusNotImplemented:
		return false
	case e.StatusCode >= 500:
		return true
	}
	return false
}

// TransportError is a failure to get any HTTP answer from Jumio: connection
// refused or reset, DNS, TLS, a timeout. It never carries the request URL.
type TransportError struct {
	Op  string
	Err error
}

// Error implements error.
func (e *TransportError) Error() string { return "jumio: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying network error.
func (e *TransportError) Unwrap() error { return e.Err }

// ThrottledError is returned when a [Limiter] would make the call wait longer
// than the caller allows. Delay is how long until a permit is expected.
type ThrottledError struct {
	Op    string
	Class EndpointClass
	Delay time.Duration
}

// Error implements error.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("jumio: %s: throttled (%s rate limit), next permit in %s", e.Op, e.Class, e.Delay.Round(time.Millisecond))
}

// Is matches ErrThrottled.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// IsRetryable reports whether err is worth retrying later: transport errors
// and timeouts, 408, 429 and 5xx except 501, and local throttling. Other
// API errors (400, 401 after the refresh, 403, 404, …) are terminal.
// Cancellation (context.Canceled) is neither: it returns false, and callers
// should check for it first.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Retryable()
	}
	var tErr *TransportError
	if errors.As(err, &tErr) {
		return true
	}
	if errors.Is(err, ErrThrottled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return false
}

// RetryAfter returns the wait Jumio asked for (Retry-After on a 429 or 503)
// or a local limiter's delay, if err carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		return apiErr.RetryAfter, true
	}
	var th *ThrottledError
	if errors.As(err, &th) && th.Delay > 0 {
		return th.Delay, true
	}
	return 0, false
}

// StatusCode returns the HTTP status of an *APIError in err's chain, or 0.
func StatusCode(err error) int {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

// errorBody covers the error shapes Jumio is known to send.
type errorBody struct {
	Title            string          `json:"title"`
	Status           json.RawMessage `json:"status"`
	Detail           string          `json:"detail"`
	Message          string          `json:"message"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// newAPIError builds an APIError from a response's status, headers and the
// first bytes of its body.
func newAPIError(op string, status int, h http.Header, body []byte, now time.Time) *APIError {
	e := &APIError{Op: op, StatusCode: status, RetryAfter: parseRetryAfter(h.Get("Retry-After"), now)}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Title = cleanText(cmp.Or(eb.Title, eb.Error))
		e.Detail = cleanText(cmp.Or(eb.Detail, eb.ErrorDescription, eb.Message))
	}
	return e
}

// cleanText keeps error text printable and short.
func cleanText(s string) string {
	const max = 200
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// parseRetryAfter reads a Retry-After header (seconds or an HTTP date).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
