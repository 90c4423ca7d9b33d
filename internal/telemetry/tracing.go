package telemetry

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the W3C Trace Context + Baggage propagator Gatehouse uses
// for incoming and outgoing requests.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// TracingConfig says whether and where spans go. The config package fills
// it from GATEHOUSE_TRACE_SAMPLE_RATIO and the standard
// OTEL_EXPORTER_OTLP_* variables.
type TracingConfig struct {
	// Enabled turns the exporting provider on; off, no span is recorded.
	Enabled bool
	// Endpoint is the full URL spans are POSTed to (…/v1/traces).
	Endpoint string
	// Headers go with every export (for example an API key).
	Headers map[string]string
	// Gzip compresses the exports.
	Gzip bool
	// Timeout bounds one export (0: 10 s).
	Timeout time.Duration
	// SampleRatio is the share of new traces recorded, 0 to 1. A request
	// that arrives with a trace context follows its caller's decision
	// (parent-based sampling), so a trace is never cut in half.
	SampleRatio float64
	// Service and Version name the resource; OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override them.
	Service, Version string
}

// SetupTracing installs the global W3C propagator and, when enabled, a
// tracer provider exporting spans over OTLP/HTTP (protobuf) in batches,
// sampling new traces at cfg.SampleRatio. It returns the provider (nil
// when tracing is off: callers then install no instrumentation at all, so
// tracing off costs nothing) and a shutdown that flushes pending spans.
func SetupTracing(ctx context.Context, cfg TracingConfig) (tp *sdktrace.TracerProvider, shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator())
	if !cfg.Enabled {
		return nil, func(context.Context) error { return nil }, nil
	}
	exp, err := NewOTLPExporter(OTLPConfig{Endpoint: cfg.Endpoint, Headers: cfg.Headers, Gzip: cfg.Gzip, Timeout: cfg.Timeout})
	if err != nil {
		return nil, nil, fmt.Errorf("create OTLP trace exporter: %w", err)
	}
	// Later options win: the environment may override what the code says.
	// The attributes are schemaless so they never conflict with the schema
	// URL the SDK's own detectors carry.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(cfg.Service), semconv.ServiceVersion(cfg.Version)),
		resource.WithFromEnv(),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, nil, fmt.Errorf("build trace resource: %w", err)
	}
	tp = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(Sampler(cfg.SampleRatio)),
	)
	otel.SetTracerProvider(tp)
	return tp, tp.Shutdown, nil
}

// Sampler is the parent-based ratio sampler: a span with a parent follows
// the parent's decision (local or from the caller's traceparent); a new
// trace is recorded with probability ratio (1 or more: all; 0 or less:
// none).
func Sampler(ratio float64) sdktrace.Sampler {
	var root sdktrace.Sampler
	switch {
	case ratio >= 1:
		root = sdktrace.AlwaysSample()
	case ratio <= 0:
		root = sdktrace.NeverSample()
	default:
		root = sdktrace.TraceIDRatioBased(ratio)
	}
	return sdktrace.ParentBased(root)
}

// TracerProviderOrNil returns tp unless it is nil; a typed nil
// *sdktrace.TracerProvider becomes an untyped nil, so "no provider" checks
// work on the interface.
func TracerProviderOrNil(tp *sdktrace.TracerProvider) trace.TracerProvider {
	if tp == nil {
		return nil
	}
	return tp
}
