package jobs

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestTraceContextInJobMetadata(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2}, SpanID: trace.SpanID{3}, TraceFlags: trace.FlagsSampled})
	carrier := propagation.MapCarrier{"traceparent": "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"}

	// Metadata of its own is kept beside the trace context.
	md := withTraceContext([]byte(`{"origin":"admin"}`), carrier)
	var m map[string]any
	require.NoError(t, json.Unmarshal(md, &m))
	require.Equal(t, "admin", m["origin"])
	got := traceContextOf(md)
	require.Equal(t, sc.TraceID(), got.TraceID())
	require.Equal(t, sc.SpanID(), got.SpanID())
	require.True(t, got.IsSampled())
	require.True(t, got.IsRemote())

	require.Equal(t, sc.TraceID(), traceContextOf(withTraceContext(nil, carrier)).TraceID())
	// Metadata that is not an object is left alone; nothing is read back.
	require.Equal(t, []byte(`[1]`), withTraceContext([]byte(`[1]`), carrier))
	for _, md := range []string{"", "[1]", `{"x":1}`, `{"otel":{"traceparent":"garbage"}}`} {
		require.False(t, traceContextOf([]byte(md)).IsValid(), md)
	}
}
