package pipeline

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// traceKey carries the W3C trace context of the message being handled, so
// that every message published while handling it continues the same trace.
type traceKey struct{}

type traceContext struct{ parent, state string }

// withTrace returns ctx carrying the trace headers of an incoming message.
func withTrace(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	tp := h.Get(messages.HeaderTraceParent)
	if tp == "" {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, traceContext{parent: tp, state: h.Get(messages.HeaderTraceState)})
}

// injectTrace copies the trace context of ctx into outgoing headers.
func injectTrace(ctx context.Context, h nats.Header) {
	tc, ok := ctx.Value(traceKey{}).(traceContext)
	if !ok || h.Get(messages.HeaderTraceParent) != "" {
		return
	}
	h.Set(messages.HeaderTraceParent, tc.parent)
	if tc.state != "" {
		h.Set(messages.HeaderTraceState, tc.state)
	}
}
