package sqlstore

import (
	"context"
	"database/sql/driver"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// SQL spans. Every statement run inside a traced request (the store's and
// River's, since both go through the same pool) becomes a client span
// named after its operation and main table, with the statement text: it
// holds only placeholders, never the values, so no secret reaches a trace.
// Outside a recording span nothing is made.

// pgTracer is pgx's QueryTracer for the PostgreSQL pool.
type pgTracer struct{}

var _ pgx.QueryTracer = pgTracer{}

type pgSpanKey struct{}

func (pgTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	ctx, span := startSQLSpan(ctx, "postgresql", data.SQL)
	if !span.IsRecording() {
		return ctx
	}
	return context.WithValue(ctx, pgSpanKey{}, span)
}

func (pgTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span, ok := ctx.Value(pgSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if data.Err == nil {
		span.SetAttributes(attribute.Int64("db.response.returned_rows", data.CommandTag.RowsAffected()))
	}
	telemetry.EndSpan(span, spanErr(data.Err))
}

// spanErr leaves out "no rows": a lookup that finds nothing is an answer.
func spanErr(err error) error {
	if err == pgx.ErrNoRows || err == driver.ErrSkip {
		return nil
	}
	return err
}

// startSQLSpan starts the span of one statement.
func startSQLSpan(ctx context.Context, system, query string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return telemetry.StartSpan(ctx, "") // nothing, cheaply
	}
	op, table := summarize(query)
	name := op
	if table != "" {
		name += " " + table
	}
	attrs := []attribute.KeyValue{
		attribute.String("db.system.name", system),
		attribute.String("db.operation.name", op),
		attribute.String("db.query.text", truncateQuery(query)),
	}
	if table != "" {
		attrs = append(attrs, attribute.String("db.collection.name", table))
	}
	return telemetry.StartSpan(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

const maxQueryText = 2048

func truncateQuery(q string) string {
	if len(q) <= maxQueryText {
		return q
	}
	return q[:maxQueryText] + "…"
}

// summarize finds a statement's operation (its first keyword, after any
// WITH clause's name) and main table: the word after FROM, INTO or UPDATE.
// It is a heuristic for span names, not a parser; unknown shapes get the
// operation alone.
func summarize(q string) (op, table string) {
	fields := strings.Fields(q)
	if len(fields) == 0 {
		return "SQL", ""
	}
	op = strings.ToUpper(fields[0])
	if !isWord(op) {
		op = "SQL"
	}
	want := ""
	switch op {
	case "SELECT", "DELETE":
		want = "FROM"
	case "INSERT":
		want = "INTO"
	case "UPDATE":
		if len(fields) > 1 {
			return op, cleanTable(fields[1])
		}
		return op, ""
	case "WITH":
		// The statement's verb is the first one after the CTEs; name by it.
		for _, f := range fields[1:] {
			switch u := strings.ToUpper(f); u {
			case "INSERT", "UPDATE", "DELETE":
				return u, ""
			}
		}
		return "SELECT", ""
	default:
		return op, ""
	}
	for i, f := range fields[:len(fields)-1] {
		if strings.EqualFold(f, want) {
			return op, cleanTable(fields[i+1])
		}
	}
	return op, ""
}

func cleanTable(s string) string {
	if strings.HasPrefix(s, "(") {
		return "" // a subquery
	}
	s = strings.Trim(s, "\"`();,")
	if i := strings.IndexByte(s, '('); i >= 0 {
		s = s[:i]
	}
	if !isWord(strings.ReplaceAll(strings.ReplaceAll(s, ".", ""), "_", "")) {
		return ""
	}
	return s
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
