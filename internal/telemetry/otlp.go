package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPExporter sends spans to an OpenTelemetry collector over OTLP/HTTP
// with protobuf bodies (POST {endpoint}, normally .../v1/traces).
//
// It exists instead of otlptracehttp because that module links gRPC (its
// config and collector packages import it) even when only HTTP is used,
// which cost the binary megabytes for a transport Gatehouse never speaks.
// The body is a TracesData message, which is wire-identical to the
// collector's ExportTraceServiceRequest (both are field 1: repeated
// ResourceSpans), so only the message packages of the OTLP protos are
// needed, and they import nothing of gRPC.
type OTLPExporter struct {
	endpoint string
	headers  map[string]string
	gzip     bool
	client   *http.Client

	mu      sync.Mutex
	stopped bool
}

var _ sdktrace.SpanExporter = (*OTLPExporter)(nil)

// OTLPConfig says where and how spans are sent.
type OTLPConfig struct {
	// Endpoint is the full URL spans are POSTed to, such as
	// http://collector:4318/v1/traces.
	Endpoint string
	// Headers are added to every export (for example an API key).
	Headers map[string]string
	// Gzip compresses the bodies.
	Gzip bool
	// Timeout bounds one export (default 10 s).
	Timeout time.Duration
}

// NewOTLPExporter makes an exporter for cfg.
func NewOTLPExporter(cfg OTLPConfig) (*OTLPExporter, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("otlp: no endpoint")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &OTLPExporter{
		endpoint: cfg.Endpoint,
		headers:  cfg.Headers,
		gzip:     cfg.Gzip,
		client:   &http.Client{Timeout: timeout},
	}, nil
}

// ExportSpans implements sdktrace.SpanExporter: one POST per batch. A
// failed batch is reported (the SDK hands the error to otel's error
// handler) and dropped: spans are diagnostics, not data to queue up.
func (e *OTLPExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped || len(spans) == 0 {
		return nil
	}
	body, err := proto.Marshal(TracesData(spans))
	if err != nil {
		return fmt.Errorf("otlp: encode spans: %w", err)
	}
	if e.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("otlp: %w", err)
	}
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("otlp: export %d spans: %w", len(spans), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("otlp: export %d spans: collector answered %s", len(spans), resp.Status)
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter; later exports do nothing.
func (e *OTLPExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.client.CloseIdleConnections()
	return nil
}

// TracesData converts finished spans to the OTLP message, grouped by
// resource and instrumentation scope.
func TracesData(spans []sdktrace.ReadOnlySpan) *tracepb.TracesData {
	type scopeKey struct{ name, version, schema string }
	var (
		out     = &tracepb.TracesData{}
		byRes   = map[*sdkresource.Resource]*tracepb.ResourceSpans{}
		byScope = map[*tracepb.ResourceSpans]map[scopeKey]*tracepb.ScopeSpans{}
	)
	for _, s := range spans {
		res := s.Resource()
		rs, ok := byRes[res]
		if !ok {
			rs = &tracepb.ResourceSpans{Resource: &resourcepb.Resource{}}
			if res != nil {
				rs.Resource.Attributes = keyValues(res.Attributes())
				rs.SchemaUrl = res.SchemaURL()
			}
			byRes[res] = rs
			byScope[rs] = map[scopeKey]*tracepb.ScopeSpans{}
			out.ResourceSpans = append(out.ResourceSpans, rs)
		}
		is := s.InstrumentationScope()
		k := scopeKey{is.Name, is.Version, is.SchemaURL}
		ss, ok := byScope[rs][k]
		if !ok {
			ss = &tracepb.ScopeSpans{
				Scope:     &commonpb.InstrumentationScope{Name: is.Name, Version: is.Version},
				SchemaUrl: is.SchemaURL,
			}
			byScope[rs][k] = ss
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		ss.Spans = append(ss.Spans, span(s))
	}
	return out
}

func span(s sdktrace.ReadOnlySpan) *tracepb.Span {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	p := &tracepb.Span{
		TraceId:                tid[:],
		SpanId:                 sid[:],
		TraceState:             sc.TraceState().String(),
		Flags:                  spanFlags(sc.TraceFlags(), s.Parent().IsRemote()),
		Name:                   s.Name(),
		Kind:                   tracepb.Span_SpanKind(s.SpanKind()), // same numbering, 0-5
		StartTimeUnixNano:      unixNano(s.StartTime()),
		EndTimeUnixNano:        unixNano(s.EndTime()),
		Attributes:             keyValues(s.Attributes()),
		DroppedAttributesCount: uint32(s.DroppedAttributes()),
		DroppedEventsCount:     uint32(s.DroppedEvents()),
		DroppedLinksCount:      uint32(s.DroppedLinks()),
		Status:                 status(s.Status()),
	}
	if s.SpanKind() == trace.SpanKindUnspecified {
		p.Kind = tracepb.Span_SPAN_KIND_INTERNAL
	}
	if parent := s.Parent(); parent.SpanID().IsValid() {
		psid := parent.SpanID()
		p.ParentSpanId = psid[:]
	}
	for _, ev := range s.Events() {
		p.Events = append(p.Events, &tracepb.Span_Event{
			TimeUnixNano:           unixNano(ev.Time),
			Name:                   ev.Name,
			Attributes:             keyValues(ev.Attributes),
			DroppedAttributesCount: uint32(ev.DroppedAttributeCount),
		})
	}
	for _, l := range s.Links() {
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		p.Links = append(p.Links, &tracepb.Span_Link{
			TraceId:                ltid[:],
			SpanId:                 lsid[:],
			TraceState:             l.SpanContext.TraceState().String(),
			Attributes:             keyValues(l.Attributes),
			DroppedAttributesCount: uint32(l.DroppedAttributeCount),
			Flags:                  spanFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()),
		})
	}
	return p
}

func spanFlags(f trace.TraceFlags, remote bool) uint32 {
	out := uint32(f) | uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
	if remote {
		out |= uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)
	}
	return out
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// status maps otel's codes (Unset 0, Error 1, Ok 2) to OTLP's (Unset 0,
// Ok 1, Error 2).
func status(s sdktrace.Status) *tracepb.Status {
	out := &tracepb.Status{Message: s.Description}
	switch s.Code {
	case codes.Error:
		out.Code = tracepb.Status_STATUS_CODE_ERROR
	case codes.Ok:
		out.Code = tracepb.Status_STATUS_CODE_OK
		out.Message = ""
	default:
		out.Message = ""
	}
	return out
}

func keyValues(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, 0, len(attrs))
	for _, kv := range attrs {
		out = append(out, &commonpb.KeyValue{Key: string(kv.Key), Value: anyValue(kv.Value)})
	}
	return out
}

// arrayOf encodes a slice attribute as an array of its elements' values.
func arrayOf[T any](xs []T, value func(T) attribute.Value) *commonpb.AnyValue {
	var vs []*commonpb.AnyValue
	for _, x := range xs {
		vs = append(vs, anyValue(value(x)))
	}
	return array(vs)
}

func anyValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	case attribute.STRING:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.AsString()}}
	case attribute.BOOLSLICE:
		return arrayOf(v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return arrayOf(v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return arrayOf(v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return arrayOf(v.AsStringSlice(), attribute.StringValue)
	default:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.Emit()}}
	}
}

func array(vs []*commonpb.AnyValue) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vs}}}
}
