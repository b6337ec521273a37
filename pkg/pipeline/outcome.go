package pipeline

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// action is what happens to a message once its handler returns.
type action int

const (
	// actAck acknowledges the message: the work is done (or was already).
	actAck action = iota
	// actRetry asks JetStream to redeliver the message after a delay.
	actRetry
	// actTerminate stops redelivery. The handler has dead-lettered the
	// message and marked its job failed before returning it.
	actTerminate
	// actHandBack returns the message for immediate redelivery to another
	// instance (shutdown).
	actHandBack
)

// outcome is a handler's verdict on a message.
type outcome struct {
	action action
	delay  time.Duration // actRetry
	reason string        // actTerminate: recorded in the MSG_TERMINATED advisory
}

func ack() outcome                    { return outcome{action: actAck} }
func retry(d time.Duration) outcome   { return outcome{action: actRetry, delay: d} }
func terminate(reason string) outcome { return outcome{action: actTerminate, reason: reason} }
func handBack() outcome               { return outcome{action: actHandBack} }

func (o outcome) String() string {
	switch o.action {
	case actAck:
		return "ack"
	case actRetry:
		return "retry in " + o.delay.Round(time.Millisecond).String()
	case actTerminate:
		return "terminate: " + o.reason
	}
	return "hand back"
}

// errClass is what a failure means for the message whose work failed.
type errClass int

const (
	// classInfra: NATS trouble (timeouts, no responders, a lost
	// compare-and-swap race) or an unexpected local failure. Not the job's
	// fault: retried without using its retry budget.
	classInfra errClass = iota
	// classTransient: Jumio 5xx or 408, a timeout or a broken connection
	// talking to Jumio. Retried with backoff, using the job's retry budget.
	classTransient
	// classThrottled: Jumio answered 429, or the shared rate limiter would
	// have made the call wait too long. The message waits (Retry-After when
	// Jumio gave one) without using the retry budget.
	classThrottled
	// classTerminal: no retry can fix it (an invalid message, a Jumio 4xx
	// other than 401-after-refresh, 408 and 429). Dead-lettered at once.
	classTerminal
	// classCanceled: the process is stopping. The message is handed back.
	classCanceled
	// classConfig: Jumio refuses kycpipe's configuration, not the job: the
	// token endpoint refused the client credentials (400/401/403), or the
	// stage knows it (no web.href). The region pauses (pause.go) and the
	// message is held without using its retry budget.
	classConfig
	// classSuspect: a 403 (or a 401 after the token refresh) on a call: the
	// configuration's fault if a probe of the same permission with a fresh
	// token is refused too (then as classConfig), else the job's (then as
	// classTerminal).
	classSuspect
)

func (c errClass) String() string {
	return [...]string{"infra", "transient", "throttled", "terminal", "canceled", "config", "suspect"}[c]
}

// classify maps an error a stage met to its class and, when the error
// carries one, the wait Jumio asked for (Retry-After; 0 when none). It is the
// one place where errors become retry decisions: stages pass it their
// errors, marking only what is genuinely their own with [terminalError],
// [infraError] or [transientError].
func classify(err error) (errClass, time.Duration) {
	ra, _ := jumio.RetryAfter(err)
	var term *terminalError
	var infra *infraError
	var trans *transientError
	switch {
	case err == nil:
		return classInfra, 0
	case errors.Is(err, context.Canceled):
		return classCanceled, 0
	case errors.As(err, new(*configFaultError)), errors.As(err, new(*ConfigFault)), tokenRefused(err):
		return classConfig, 0
	case errors.As(err, &term):
		return classTerminal, 0
	case errors.As(err, &infra):
		return classInfra, 0
	case errors.As(err, &trans):
		return classTransient, ra
	case errors.Is(err, jumio.ErrRateLimited), errors.Is(err, jumio.ErrThrottled):
		return classThrottled, ra
	case fromJumio(err) && jumio.IsRetryable(err):
		return classTransient, ra
	case suspectRefusal(err):
		return classSuspect, 0
	case errors.Is(err, messages.ErrMalformed), errors.Is(err, messages.ErrUnsupportedSchema),
		errors.Is(err, jumio.ErrValidation), errors.Is(err, jumio.ErrInvalidArgument):
		return classTerminal, 0
	case jumio.StatusCode(err) != 0:
		// Jumio refused the request (a 4xx other than 401-after-refresh,
		// 408 and 429): no retry can fix it.
		return classTerminal, 0
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrKeyRevisionMismatch),
		errors.Is(err, context.DeadlineExceeded):
		return classInfra, 0
	}
	return classInfra, 0
}

// suspectRefusal reports whether err is a refusal that may be the
// configuration's fault: a 403 on any call (Jumio answers a missing
// permission and a blocked User-Agent so), or a 401 on a call made with the
// OAuth token after the client's one refresh (a fresh token refused: a
// token of another region's tenant). A 401 on an upload or finalize is the
// transaction token's, i.e. the job's.
func suspectRefusal(err error) bool {
	var apiErr *jumio.APIError
	if !errors.As(err, &apiErr) || apiErr.TokenEndpoint() {
		return false
	}
	switch apiErr.StatusCode {
	case http.StatusForbidden:
		return true
	case http.StatusUnauthorized:
		return apiErr.Permission() != ""
	}
	return false
}

// permissionOf is the permission a suspect refusal's call needed ("" for
// credential calls: the probe is then a token request alone).
func permissionOf(err error) jumio.Permission {
	var apiErr *jumio.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Permission()
	}
	return ""
}

// fromJumio reports whether err is an answer from Jumio or a failure to get
// one (as opposed to a NATS or local error).
func fromJumio(err error) bool {
	var apiErr *jumio.APIError
	var tErr *jumio.TransportError
	return errors.As(err, &apiErr) || errors.As(err, &tErr)
}

// terminalError marks a failure no retry can fix; code becomes the job's
// error code (messages.ErrCode…).
type terminalError struct {
	code string
	err  error
}

func (e *terminalError) Error() string { return e.err.Error() }
func (e *terminalError) Unwrap() error { return e.err }

// infraError marks a failure of NATS (KV, publish) or of the process, retried
// without using the job's retry budget.
type infraError struct{ err error }

func (e *infraError) Error() string { return e.err.Error() }
func (e *infraError) Unwrap() error { return e.err }

// transientError marks a failure a stage knows to be worth retrying within
// the job's budget although its status alone says otherwise (the retriever's
// 404 on an execution Jumio has not made visible yet).
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// errorCode is the job error code recorded for a terminal err.
func errorCode(err error) string {
	var term *terminalError
	if errors.As(err, &term) && term.code != "" {
		return term.code
	}
	if errors.Is(err, messages.ErrMalformed) || errors.Is(err, messages.ErrUnsupportedSchema) {
		return messages.ErrCodeInvalidJob
	}
	return messages.ErrCodeJumioRejected
}
