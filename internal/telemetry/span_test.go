package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

func recorder() (*tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	exp := tracetest.NewInMemoryExporter()
	return exp, sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
}

func TestStartSpanOnlyUnderARecordingSpan(t *testing.T) {
	exp, tp := recorder()

	// No span in the context: nothing is made, and ending it is harmless.
	ctx, s := telemetry.StartSpan(context.Background(), "orphan")
	require.False(t, s.IsRecording())
	require.False(t, trace.SpanContextFromContext(ctx).IsValid())
	s.End()

	// Under an unsampled parent: nothing either.
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSyncer(exp))
	uctx, unsampled := never.Tracer("t").Start(context.Background(), "unsampled")
	_, s = telemetry.StartSpan(uctx, "child")
	require.False(t, s.IsRecording())
	s.End()
	unsampled.End()
	require.Empty(t, exp.GetSpans())

	// Under a recording parent: a child, by the parent's own provider.
	pctx, parent := tp.Tracer("t").Start(context.Background(), "parent")
	_, child := telemetry.StartSpan(pctx, "child")
	require.True(t, child.IsRecording())
	telemetry.EndSpan(child, errors.New("failed"))
	parent.End()
	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	require.Equal(t, "child", spans[0].Name)
	require.Equal(t, parent.SpanContext().SpanID(), spans[0].Parent.SpanID())
	require.Equal(t, codes.Error, spans[0].Status.Code)
	require.Equal(t, telemetry.Scope, spans[0].InstrumentationScope.Name)
}

func TestTransportPropagatesTraceContext(t *testing.T) {
	exp, tp := recorder()
	var got []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("traceparent"))
		w.WriteHeader(http.StatusTeapot)
	}))
	defer receiver.Close()
	client := &http.Client{Transport: telemetry.Transport(nil)}
	require.Same(t, client.Transport, telemetry.Transport(client.Transport), "wrapping twice is once")

	// Outside any trace: no header, no span.
	req, _ := http.NewRequest(http.MethodGet, receiver.URL+"/x?token=secret", nil)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()

	// In a recorded trace: a client span, whose id goes out as the parent.
	ctx, parent := tp.Tracer("t").Start(context.Background(), "parent")
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, receiver.URL+"/hook?token=secret", nil)
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, req.Header.Get("traceparent"), "the caller's request is not changed")
	parent.End()

	// In an unsampled trace: the context still goes out (flags 00).
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}})
	req, _ = http.NewRequestWithContext(trace.ContextWithSpanContext(context.Background(), sc), http.MethodGet, receiver.URL, nil)
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()

	require.Len(t, got, 3)
	require.Empty(t, got[0])
	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	client0 := spans[0]
	require.Equal(t, trace.SpanKindClient, client0.SpanKind)
	require.Equal(t, "POST 127.0.0.1", client0.Name, "method and host, never the path or query")
	require.Equal(t, codes.Error, client0.Status.Code, "a 4xx answer marks the client span")
	require.Equal(t, "00-"+parent.SpanContext().TraceID().String()+"-"+client0.SpanContext.SpanID().String()+"-01", got[1])
	require.Equal(t, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-00", got[2])
	for _, kv := range client0.Attributes {
		require.NotContains(t, kv.Value.Emit(), "secret")
	}
}

func TestSamplerFollowsTheParent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(telemetry.Sampler(0)), sdktrace.WithSyncer(exp))
	_, root := tp.Tracer("t").Start(context.Background(), "root")
	require.False(t, root.IsRecording(), "ratio 0: new traces are not recorded")
	root.End()

	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9},
		TraceFlags: trace.FlagsSampled, Remote: true})
	_, s := tp.Tracer("t").Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "child")
	require.True(t, s.IsRecording(), "a sampled caller's trace is continued whatever the ratio")
	s.End()

	all := sdktrace.NewTracerProvider(sdktrace.WithSampler(telemetry.Sampler(1)))
	_, s = all.Tracer("t").Start(context.Background(), "root")
	require.True(t, s.IsRecording())
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{8}, SpanID: trace.SpanID{8}, Remote: true})
	_, s = all.Tracer("t").Start(trace.ContextWithRemoteSpanContext(context.Background(), unsampled), "child")
	require.False(t, s.IsRecording(), "an unsampled caller's decision holds too")
	require.Contains(t, telemetry.Sampler(0.25).Description(), "TraceIDRatioBased{0.25}")
}

// BenchmarkStartSpanTracingOff is what every instrumented call (SQL,
// Redis, Argon2, SMTP) costs when tracing is off: one context lookup.
func BenchmarkStartSpanTracingOff(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, s := telemetry.StartSpan(ctx, "SELECT users")
		s.End()
	}
}
