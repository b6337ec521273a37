package service

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/kycpipe/kycpipe/internal/config"
)

// Tracing are the OpenTelemetry settings: spans are exported over OTLP/HTTP
// when an endpoint is set, and not recorded at all otherwise (the W3C trace
// context is propagated either way).
type Tracing struct {
	Endpoint    string
	SampleRatio string
	ratioSet    *config.Setting
	endpointSet *config.Setting
}

// Bind registers the tracing settings.
func (t *Tracing) Bind(s *config.Set) {
	t.endpointSet = s.String(&t.Endpoint, "otlp-endpoint", "KYCPIPE_OTLP_ENDPOINT", "", "OTLP/HTTP endpoint to export traces to, e.g. http://otel-collector:4318 (empty: tracing off)").URL("http", "https")
	t.ratioSet = s.String(&t.SampleRatio, "trace-sample-ratio", "KYCPIPE_TRACE_SAMPLE_RATIO", "1", "share of new traces recorded (0..1); traces started upstream follow the caller's decision")
	t.ratioSet.Check(func() string {
		if _, ok := t.ratio(); !ok {
			return fmt.Sprintf("want a number between 0 and 1, got %q", t.SampleRatio)
		}
		return ""
	})
}

func (t *Tracing) ratio() (float64, bool) {
	var ratio float64
	if _, err := fmt.Sscanf(t.SampleRatio, "%g", &ratio); err != nil || ratio < 0 || ratio > 1 {
		return 0, false
	}
	return ratio, true
}

// Provider returns the tracer provider and a function flushing it.
func (t *Tracing) Provider(ctx context.Context, service string) (trace.TracerProvider, func(context.Context) error, error) {
	if t.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	ratio, ok := t.ratio()
	if !ok {
		return nil, nil, config.Invalid(t.ratioSet, fmt.Errorf("want a number between 0 and 1, got %q", t.SampleRatio))
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(t.Endpoint))
	if err != nil {
		return nil, nil, config.Invalid(t.endpointSet, err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("kycpipe-"+service), semconv.ServiceVersion(Version))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	return tp, tp.Shutdown, nil
}
