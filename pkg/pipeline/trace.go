package pipeline

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing: every message the pipeline publishes carries the W3C trace
// context (traceparent, tracestate headers) of the work that produced it, so
// one trace runs from the HTTP submission through the worker and the
// retriever to the decision event. Spans are recorded when a TracerProvider
// is configured (see internal/service: KYCPIPE_OTLP_ENDPOINT); without one,
// the context is still passed along unchanged.

const tracerName = "github.com/kycpipe/kycpipe/pkg/pipeline"

var propagator = propagation.TraceContext{}

// natsCarrier adapts NATS headers to OpenTelemetry propagation.
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c natsCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// withTrace returns ctx carrying the trace context of an incoming message.
func withTrace(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, natsCarrier(h))
}

// injectTrace writes the trace context of ctx into outgoing headers.
func injectTrace(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, natsCarrier(h))
}

// traceParentOf returns the traceparent of ctx ("" when ctx has no valid
// span context), to remember a job's trace in its record.
func traceParentOf(ctx context.Context) string {
	h := nats.Header{}
	injectTrace(ctx, h)
	return h.Get("traceparent")
}

// contextFromTraceParent rebuilds a remote parent from a stored
// traceparent.
func contextFromTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	h := nats.Header{}
	natsCarrier(h).Set("traceparent", tp) // NATS headers are case-sensitive
	return propagator.Extract(ctx, natsCarrier(h))
}

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// endSpan records the outcome of handled work on its span.
func endSpan(span trace.Span, o outcome) {
	span.SetAttributes(attribute.String("kycpipe.outcome", o.String()))
	if o.action == actTerminate {
		span.SetStatus(codes.Error, o.reason)
	}
	span.End()
}
