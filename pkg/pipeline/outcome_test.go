package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Every error kind a stage meets maps to one class, the same for every
// stage.
func TestClassify(t *testing.T) {
	t.Parallel()
	apiErr := func(status int, retryAfter time.Duration) error {
		return &jumio.APIError{Op: "create account", StatusCode: status, RetryAfter: retryAfter}
	}
	wrapped := func(err error) error { return fmt.Errorf("step: %w", err) }
	_, decodeErr := messages.DecodeRequest([]byte("{"))
	_, schemaErr := messages.DecodeRequest([]byte(`{"schema":"kycpipe.verification.v9"}`))
	for _, tt := range []struct {
		name       string
		err        error
		want       errClass
		retryAfter time.Duration
	}{
		{"Jumio 500", apiErr(500, 0), classTransient, 0},
		{"Jumio 503 with Retry-After", wrapped(apiErr(503, 7*time.Second)), classTransient, 7 * time.Second},
		{"Jumio 408", apiErr(408, 0), classTransient, 0},
		{"Jumio 501", apiErr(501, 0), classTerminal, 0},
		{"Jumio 429", apiErr(429, 0), classThrottled, 0},
		{"Jumio 429 with Retry-After", wrapped(apiErr(429, 3*time.Second)), classThrottled, 3 * time.Second},
		{"local throttling", &jumio.ThrottledError{Op: "create account", Delay: 2 * time.Second}, classThrottled, 2 * time.Second},
		{"Jumio 401 after the refresh (a fresh token refused)", apiErr(401, 0), classSuspect, 0},
		{"Jumio 403", apiErr(403, 0), classSuspect, 0},
		{"Jumio 403 on an upload", &jumio.APIError{Op: "upload part", StatusCode: 403}, classSuspect, 0},
		{"Jumio 401 on an upload (the transaction token)", &jumio.APIError{Op: "upload part", StatusCode: 401}, classTerminal, 0},
		{"token endpoint 400 (bad client credentials)", wrapped(&jumio.APIError{Op: "token", StatusCode: 400}), classConfig, 0},
		{"token endpoint 401", &jumio.APIError{Op: "token", StatusCode: 401}, classConfig, 0},
		{"token endpoint 403 (a blocked User-Agent)", &jumio.APIError{Op: "token", StatusCode: 403}, classConfig, 0},
		{"token endpoint 500", &jumio.APIError{Op: "token", StatusCode: 500}, classTransient, 0},
		{"no web.href", &configFaultError{&ConfigFault{Kind: FaultWebHref}}, classConfig, 0},
		{"Jumio 404", apiErr(404, 0), classTerminal, 0},
		{"Jumio 400", wrapped(apiErr(400, 0)), classTerminal, 0},
		{"Jumio connection refused", &jumio.TransportError{Op: "status", Err: errors.New("connection refused")}, classTransient, 0},
		{"Jumio call timed out", &jumio.TransportError{Op: "status", Err: context.DeadlineExceeded}, classTransient, 0},
		{"Jumio unexpected EOF", &jumio.TransportError{Op: "status", Err: io.ErrUnexpectedEOF}, classTransient, 0},
		{"a stage's own 404 worth retrying", &transientError{apiErr(http.StatusNotFound, 0)}, classTransient, 0},
		{"NATS timeout", wrapped(nats.ErrTimeout), classInfra, 0},
		{"NATS no responders", wrapped(nats.ErrNoResponders), classInfra, 0},
		{"JetStream no stream response", jetstream.ErrNoStreamResponse, classInfra, 0},
		{"KV wrong last sequence", wrapped(jetstream.ErrKeyRevisionMismatch), classInfra, 0},
		{"a bare deadline (NATS)", wrapped(context.DeadlineExceeded), classInfra, 0},
		{"a checkpoint that failed", &infraError{errors.New("kv down")}, classInfra, 0},
		{"an unexpected local error", errors.New("boom"), classInfra, 0},
		{"decode error", decodeErr, classTerminal, 0},
		{"unsupported schema", schemaErr, classTerminal, 0},
		{"validation error", wrapped(&jumio.ValidationError{Fields: []jumio.FieldError{{Field: "x"}}}), classTerminal, 0},
		{"invalid argument", fmt.Errorf("jumio: upload: %w: nil reader", jumio.ErrInvalidArgument), classTerminal, 0},
		{"a stage's terminal error", &terminalError{code: messages.ErrCodeInvalidJob, err: errors.New("no credential")}, classTerminal, 0},
		{"context canceled", wrapped(context.Canceled), classCanceled, 0},
		{"Jumio call canceled", &jumio.TransportError{Op: "status", Err: context.Canceled}, classCanceled, 0},
	} {
		got, ra := classify(tt.err)
		if got != tt.want || ra != tt.retryAfter {
			t.Errorf("%s: classify = %v, %v; want %v, %v", tt.name, got, ra, tt.want, tt.retryAfter)
		}
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	_, decodeErr := messages.DecodeRequest([]byte("{"))
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&terminalError{code: messages.ErrCodeImageMissing, err: errors.New("gone")}, messages.ErrCodeImageMissing},
		{decodeErr, messages.ErrCodeInvalidJob},
		{&jumio.APIError{StatusCode: 400}, messages.ErrCodeJumioRejected},
	} {
		if got := errorCode(tt.err); got != tt.want {
			t.Errorf("errorCode(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	exact := Backoff{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2, Jitter: -1} // no jitter
	for _, tt := range []struct {
		attempt int
		want    time.Duration
	}{
		{-3, time.Second}, {0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{4, 8 * time.Second}, {5, 10 * time.Second}, {64, 10 * time.Second}, {1000, 10 * time.Second},
	} {
		if got := exact.Delay(tt.attempt); got != tt.want {
			t.Errorf("Delay(%d) = %s, want %s", tt.attempt, got, tt.want)
		}
	}
	jittered := Backoff{Initial: time.Second, Max: time.Minute, Jitter: 0.2}
	for i := 0; i < 200; i++ {
		if d := jittered.Delay(3); d < 3200*time.Millisecond || d > 4800*time.Millisecond {
			t.Fatalf("Delay(3) with ±20%% jitter = %s, want within [3.2s, 4.8s]", d)
		}
	}
	if d := (Backoff{}).Delay(1); d < 800*time.Millisecond || d > 1200*time.Millisecond {
		t.Errorf("default Delay(1) = %s, want about 1s", d)
	}
}

func TestScheduleDelay(t *testing.T) {
	t.Parallel()
	s := []time.Duration{40 * time.Second, 60 * time.Second, 100 * time.Second}
	for _, tt := range []struct {
		schedule []time.Duration
		n        int
		want     time.Duration
	}{
		{s, 0, 40 * time.Second}, {s, 1, 40 * time.Second}, {s, 2, 20 * time.Second}, {s, 3, 40 * time.Second},
		{s, 4, 40 * time.Second}, {s, 99, 40 * time.Second},
		{[]time.Duration{5 * time.Second}, 7, 5 * time.Second},
		{nil, 1, time.Minute},
		{JumioRetrievalSchedule, 10, 180 * time.Second},
	} {
		if got := ScheduleDelay(tt.schedule, tt.n); got != tt.want {
			t.Errorf("ScheduleDelay(%v, %d) = %s, want %s", tt.schedule, tt.n, got, tt.want)
		}
	}
}
