package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Propagator is the W3C Trace Context + Baggage propagator Gatehouse uses
// for incoming and outgoing requests.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// SetupTracing installs the global W3C propagator and, when enabled, a
// tracer provider exporting spans over OTLP/HTTP in batches. The exporter
// reads the standard OTEL_EXPORTER_OTLP_* variables itself (endpoint,
// headers, TLS, timeout); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// override service and version. The returned shutdown flushes pending
// spans; when tracing is disabled it does nothing.
func SetupTracing(ctx context.Context, enabled bool, service, version string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator())
	if !enabled {
		return func(context.Context) error { return nil }, nil
	}

	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("create OTLP trace exporter: %w", err)
	}
	// Later options win: the environment may override what the code says.
	// The attributes are schemaless so they never conflict with the schema
	// URL the SDK's own detectors carry.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version)),
		resource.WithFromEnv(),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("build trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
