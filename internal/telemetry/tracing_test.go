package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

func restoreGlobals(t *testing.T) {
	prop := otel.GetTextMapPropagator()
	t.Cleanup(func() {
		// Restoring the initial global delegate onto itself makes otel
		// complain; a no-op provider is just as inert.
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(prop)
	})
}

func TestSetupTracingDisabled(t *testing.T) {
	restoreGlobals(t)
	tp, shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{Service: "gatehouse", Version: "test"})
	require.NoError(t, err)
	require.Nil(t, tp, "tracing off: no provider, so no instrumentation is installed")
	require.NoError(t, shutdown(context.Background()))

	// The W3C propagator is installed even with tracing off, so trace ids
	// from callers still reach the logs.
	fields := otel.GetTextMapPropagator().Fields()
	require.Contains(t, fields, "traceparent")
	require.Contains(t, fields, "baggage")

	// No real provider: spans do not record.
	_, span := otel.Tracer("t").Start(context.Background(), "s")
	require.False(t, span.IsRecording())
	span.End()
}

func TestSetupTracingExportsOverOTLPHTTP(t *testing.T) {
	restoreGlobals(t)
	var got atomic.Int32
	var gotPath atomic.Value
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		gotPath.Store(r.URL.Path)
		got.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_SERVICE_NAME", "")

	tp, shutdown, err := telemetry.SetupTracing(context.Background(), telemetry.TracingConfig{
		Enabled: true, Endpoint: collector.URL + "/v1/traces", SampleRatio: 1, Service: "gatehouse", Version: "1.2.3"})
	require.NoError(t, err)
	require.NotNil(t, tp)

	ctx, span := otel.Tracer("t").Start(context.Background(), "work")
	require.True(t, span.IsRecording())
	require.True(t, span.SpanContext().IsValid())

	// The global propagator writes traceparent for outgoing calls.
	h := http.Header{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
	require.Contains(t, h.Get("Traceparent"), span.SpanContext().TraceID().String())
	span.End()

	require.NoError(t, shutdown(context.Background())) // flushes the batch
	require.GreaterOrEqual(t, got.Load(), int32(1))
	require.Equal(t, "/v1/traces", gotPath.Load())
}

func TestPropagatorIsW3C(t *testing.T) {
	p := telemetry.Propagator()
	h := http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx := p.Extract(context.Background(), propagation.HeaderCarrier(h))
	out := http.Header{}
	p.Inject(ctx, propagation.HeaderCarrier(out))
	require.Equal(t, h.Get("traceparent"), out.Get("traceparent"))
}
