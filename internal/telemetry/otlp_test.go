package telemetry_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// collector is an OTLP/HTTP receiver that decodes what it gets.
type collector struct {
	mu      sync.Mutex
	data    []*tracepb.TracesData
	headers []http.Header
	status  int
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	var td tracepb.TracesData // wire-identical to ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &td); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.data = append(c.data, &td)
	c.headers = append(c.headers, r.Header.Clone())
	status := c.status
	c.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (c *collector) spans() map[string]*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, td := range c.data {
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out[s.Name] = s
				}
			}
		}
	}
	return out
}

func TestOTLPExporterSendsDecodableProtobuf(t *testing.T) {
	for _, gz := range []bool{false, true} {
		col := &collector{}
		srv := httptest.NewServer(col)
		defer srv.Close()
		exp, err := telemetry.NewOTLPExporter(telemetry.OTLPConfig{Endpoint: srv.URL + "/v1/traces",
			Headers: map[string]string{"Api-Key": "k1"}, Gzip: gz})
		require.NoError(t, err)
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		tr := tp.Tracer("scope-a")

		ctx, parent := tr.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("s", "v"), attribute.Int("i", 7), attribute.Bool("b", true),
				attribute.Float64("f", 1.5), attribute.StringSlice("ss", []string{"a", "b"})))
		_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithLinks(trace.Link{SpanContext: parent.SpanContext()}))
		child.AddEvent("ev", trace.WithAttributes(attribute.String("x", "y")))
		child.SetStatus(codes.Error, "boom")
		child.End()
		parent.SetStatus(codes.Ok, "")
		parent.End()
		require.NoError(t, tp.Shutdown(context.Background()))

		got := col.spans()
		require.Contains(t, got, "parent")
		require.Contains(t, got, "child")
		p, c := got["parent"], got["child"]
		psc := parent.SpanContext()
		require.Equal(t, psc.TraceID().String(), trace.TraceID(p.TraceId).String())
		require.Equal(t, p.SpanId, c.ParentSpanId, "child points at its parent")
		require.Empty(t, p.ParentSpanId)
		require.Equal(t, tracepb.Span_SPAN_KIND_SERVER, p.Kind)
		require.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, c.Kind)
		require.Equal(t, tracepb.Status_STATUS_CODE_OK, p.Status.Code)
		require.Equal(t, tracepb.Status_STATUS_CODE_ERROR, c.Status.Code)
		require.Equal(t, "boom", c.Status.Message)
		require.Len(t, c.Links, 1)
		require.Equal(t, p.SpanId, c.Links[0].SpanId)
		require.Len(t, c.Events, 1)
		require.Equal(t, "ev", c.Events[0].Name)
		require.Equal(t, "v", findAttr(p, "s").GetStringValue())
		require.Equal(t, int64(7), findAttr(p, "i").GetIntValue())
		require.True(t, findAttr(p, "b").GetBoolValue())
		require.Equal(t, 1.5, findAttr(p, "f").GetDoubleValue())
		require.Len(t, findAttr(p, "ss").GetArrayValue().GetValues(), 2)
		require.Greater(t, p.EndTimeUnixNano, p.StartTimeUnixNano-1)
		col.mu.Lock()
		require.Equal(t, "k1", col.headers[0].Get("Api-Key"))
		require.Equal(t, "application/x-protobuf", col.headers[0].Get("Content-Type"))
		col.mu.Unlock()
	}
}

func findAttr(s *tracepb.Span, key string) interface {
	GetStringValue() string
	GetIntValue() int64
	GetBoolValue() bool
	GetDoubleValue() float64
	GetArrayValue() *commonpb.ArrayValue
} {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

func TestOTLPExporterReportsRefusal(t *testing.T) {
	col := &collector{status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(col)
	defer srv.Close()
	exp, err := telemetry.NewOTLPExporter(telemetry.OTLPConfig{Endpoint: srv.URL})
	require.NoError(t, err)
	var got []error
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(errRecorder{exp, &got}))
	_, s := tp.Tracer("t").Start(context.Background(), "x")
	s.End()
	require.Len(t, got, 1)
	require.ErrorContains(t, got[0], "503")

	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, exp.ExportSpans(context.Background(), nil))
	_, err = telemetry.NewOTLPExporter(telemetry.OTLPConfig{})
	require.Error(t, err)
}

type errRecorder struct {
	*telemetry.OTLPExporter
	errs *[]error
}

func (e errRecorder) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.OTLPExporter.ExportSpans(ctx, spans)
	if err != nil {
		*e.errs = append(*e.errs, err)
	}
	return errors.Join(err)
}
