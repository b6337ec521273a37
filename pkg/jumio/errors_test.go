package jumio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	api := func(status int) error {
		return fmt.Errorf("wrapped: %w", newAPIError("create account", status, http.Header{}, nil, now))
	}
	tests := []struct {
		name      string
		err       error
		retryable bool
		sentinel  error
	}{
		{"400", api(400), false, ErrBadRequest},
		{"401", api(401), false, ErrUnauthorized},
		{"403", api(403), false, ErrForbidden},
		{"404", api(404), false, ErrNotFound},
		{"408", api(408), true, nil},
		{"409", api(409), false, nil},
		{"429", api(429), true, ErrRateLimited},
		{"500", api(500), true, ErrServer},
		{"501", api(501), false, ErrServer},
		{"502", api(502), true, ErrServer},
		{"503", api(503), true, ErrServer},
		{"transport", &TransportError{Op: "finalize", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, true, nil},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true, nil},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false, nil},
		{"throttled", &ThrottledError{Op: "create account", Class: ClassAccount, Delay: time.Second}, true, ErrThrottled},
		{"validation", &ValidationError{}, false, ErrValidation},
		{"nil", nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := IsRetryable(tt.err); got != tt.retryable {
				t.Errorf("IsRetryable = %v, want %v", got, tt.retryable)
			}
			if tt.sentinel != nil && !errors.Is(tt.err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.sentinel)
			}
		})
	}
}

func TestAPIErrorBodies(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, body, header string
		title, detail      string
		retryAfter         time.Duration
	}{
		{"jumio 429", `{"title":"Too Many Requests","status":429,"detail":"Request limit exceeded"}`, "", "Too Many Requests", "Request limit exceeded", 0},
		{"oauth", `{"error":"invalid_client","error_description":"bad secret"}`, "", "invalid_client", "bad secret", 0},
		{"message", `{"message":"workflowDefinition.key invalid"}`, "", "", "workflowDefinition.key invalid", 0},
		{"not json", `<html>gateway</html>`, "", "", "", 0},
		{"retry after seconds", `{}`, "7", "", "", 7 * time.Second},
		{"retry after date", `{}`, now.Add(90 * time.Second).Format(http.TimeFormat), "", "", 90 * time.Second},
		{"retry after garbage", `{}`, "soon", "", "", 0},
		{"control chars", `{"detail":"line1\nline2\u0000"}`, "", "", "line1 line2", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.header != "" {
				h.Set("Retry-After", tt.header)
			}
			e := newAPIError("op", 429, h, []byte(tt.body), now)
			if e.Title != tt.title || e.Detail != tt.detail || e.RetryAfter != tt.retryAfter {
				t.Errorf("got title=%q detail=%q retryAfter=%v", e.Title, e.Detail, e.RetryAfter)
			}
			if d, ok := RetryAfter(e); ok != (tt.retryAfter > 0) || d != tt.retryAfter {
				t.Errorf("RetryAfter = %v, %v", d, ok)
			}
		})
	}
	long := newAPIError("op", 400, http.Header{}, []byte(`{"detail":"`+strings.Repeat("a", 500)+`"}`), now)
	if len(long.Detail) > 210 {
		t.Errorf("detail not truncated: %d bytes", len(long.Detail))
	}
	if got := long.Error(); !strings.HasPrefix(got, "jumio: op: 400 Bad Request: ") {
		t.Errorf("Error() = %q", got)
	}
}

func TestCredentialsDoNotPrintSecret(t *testing.T) {
	t.Parallel()
	c := Credentials{ClientID: "id", ClientSecret: "s3cr3t"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("secret printed: %s", s)
		}
	}
}
