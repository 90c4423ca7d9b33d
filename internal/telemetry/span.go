package telemetry

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope (tracer name) of Gatehouse's spans.
const Scope = "github.com/gatehouse-auth/gatehouse"

// noSpan is what StartSpan returns when it records nothing: ending it does
// nothing, and it carries no span context.
var noSpan = trace.SpanFromContext(context.Background())

// propagator writes outgoing trace context whatever the global one is.
var propagator = Propagator()

// StartSpan starts a child of the span in ctx, made by that span's own
// provider, or nothing at all when ctx holds no recording span. Work done
// outside a traced request (River polling, cleanups) and everything when
// tracing is off or the trace was not sampled then costs one context
// lookup, and the provider never needs passing through constructors.
func StartSpan(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	return parent.TracerProvider().Tracer(Scope).Start(ctx, name, opts...)
}

// EndSpan ends span, recording err (if any) as its error status.
func EndSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Transport wraps an outbound HTTP transport (nil: http.DefaultTransport):
// every request carries the W3C trace context of its context (traceparent,
// even for an unsampled trace, so the callee can follow the decision), and
// runs in a client span when the trace records. The span names the method
// and host, never the path or query, which may carry tokens.
func Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if _, ok := rt.(*transport); ok {
		return rt
	}
	return &transport{next: rt}
}

type transport struct{ next http.RoundTripper }

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return t.next.RoundTrip(r)
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	ctx, span := StartSpan(ctx, method+" "+r.URL.Hostname(),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("server.address", r.URL.Hostname()),
			attribute.String("url.scheme", r.URL.Scheme),
		))
	if p := r.URL.Port(); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			span.SetAttributes(attribute.Int("server.port", n))
		}
	}
	// RoundTrip must not change the caller's request: inject into a clone.
	r = r.Clone(ctx)
	propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		EndSpan(span, err)
		return resp, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, resp.Status)
	}
	span.End()
	return resp, nil
}

// CloseIdleConnections passes the call on, so http.Client.CloseIdleConnections
// still reaches the wrapped transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// SpanIDs returns the hex trace and span ids of the span in ctx, or ""
// when it has none.
func SpanIDs(ctx context.Context) (traceID, spanID string) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}
