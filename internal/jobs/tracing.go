package jobs

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// traceMetadataKey is the key of a job's metadata holding the W3C trace
// context (traceparent, tracestate) of the request that enqueued it.
const traceMetadataKey = "otel"

// tracing is River middleware joining a job to the trace that caused it.
// At insert (inside a traced request) it makes a producer span and stores
// its context in the job's metadata; when the job is worked, possibly on
// another instance minutes later, the worker's consumer span starts a
// trace of its own linked to that producer span, as OpenTelemetry's
// messaging conventions do for work that outlives its request.
type tracing struct {
	river.MiddlewareDefaults
	// tp makes the worker spans; nil makes none (tracing off).
	tp trace.TracerProvider
}

var (
	_ rivertype.JobInsertMiddleware = (*tracing)(nil)
	_ rivertype.WorkerMiddleware    = (*tracing)(nil)
)

var propagator = telemetry.Propagator()

// InsertMany implements rivertype.JobInsertMiddleware.
func (t *tracing) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return doInner(ctx)
	}
	kinds := make([]string, 0, len(params))
	for _, p := range params {
		if len(kinds) == 0 || kinds[len(kinds)-1] != p.Kind {
			kinds = append(kinds, p.Kind)
		}
	}
	ctx, span := telemetry.StartSpan(ctx, "enqueue "+strings.Join(kinds, ","),
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "river"),
			attribute.String("messaging.operation.type", "send"),
			attribute.Int("messaging.batch.message_count", len(params))))
	carrier := propagation.MapCarrier{}
	propagator.Inject(ctx, carrier)
	for _, p := range params {
		p.Metadata = withTraceContext(p.Metadata, carrier)
	}
	res, err := doInner(ctx)
	telemetry.EndSpan(span, err)
	return res, err
}

// Work implements rivertype.WorkerMiddleware.
func (t *tracing) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if t.tp == nil {
		return doInner(ctx)
	}
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "river"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", job.Queue),
			attribute.Int64("messaging.message.id", job.ID),
			attribute.String("job.kind", job.Kind),
			attribute.Int("job.attempt", job.Attempt)),
	}
	if sc := traceContextOf(job.Metadata); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, span := t.tp.Tracer(telemetry.Scope).Start(ctx, "job "+job.Kind, opts...)
	defer span.End()
	err := doInner(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// withTraceContext returns metadata (a JSON object, or empty) with the
// trace context under traceMetadataKey. Metadata that is not an object is
// left alone: tracing never breaks an insert.
func withTraceContext(metadata []byte, carrier propagation.MapCarrier) []byte {
	m := map[string]json.RawMessage{}
	if len(metadata) > 0 {
		if err := json.Unmarshal(metadata, &m); err != nil {
			return metadata
		}
	}
	tc, err := json.Marshal(map[string]string(carrier))
	if err != nil {
		return metadata
	}
	m[traceMetadataKey] = tc
	out, err := json.Marshal(m)
	if err != nil {
		return metadata
	}
	return out
}

// traceContextOf reads the trace context stored by withTraceContext; the
// zero SpanContext when there is none.
func traceContextOf(metadata []byte) trace.SpanContext {
	if len(metadata) == 0 {
		return trace.SpanContext{}
	}
	var m struct {
		Otel map[string]string `json:"otel"`
	}
	if err := json.Unmarshal(metadata, &m); err != nil || len(m.Otel) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagator.Extract(context.Background(), propagation.MapCarrier(m.Otel)))
}
