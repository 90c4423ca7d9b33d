package cache

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// tracingHook puts every Redis command (and pipeline) made inside a traced
// request in a client span. It names the command, never the key or the
// arguments: keys hold token hashes and e-mail addresses. Outside a
// recording span it does nothing but one context lookup.
type tracingHook struct{ system attribute.KeyValue }

var _ redis.Hook = tracingHook{}

func newTracingHook() tracingHook {
	return tracingHook{system: attribute.String("db.system.name", "redis")}
}

func (tracingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tracingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := strings.ToUpper(cmd.Name())
		ctx, span := telemetry.StartSpan(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(h.system, attribute.String("db.operation.name", name)))
		err := next(ctx, cmd)
		telemetry.EndSpan(span, spanErr(err))
		return err
	}
}

func (h tracingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, span := telemetry.StartSpan(ctx, "PIPELINE", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(h.system, attribute.String("db.operation.name", "PIPELINE"),
				attribute.Int("db.operation.batch.size", len(cmds))))
		err := next(ctx, cmds)
		telemetry.EndSpan(span, spanErr(err))
		return err
	}
}

// spanErr leaves out redis.Nil: a missing key is an answer, not a failure.
func spanErr(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
