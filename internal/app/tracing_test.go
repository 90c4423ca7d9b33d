package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// spans indexes finished spans for ancestry questions.
type spans []tracetest.SpanStub

func (ss spans) byID(id trace.SpanID) (tracetest.SpanStub, bool) {
	for _, s := range ss {
		if s.SpanContext.SpanID() == id {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

// under reports whether s descends from the span with id root.
func (ss spans) under(s tracetest.SpanStub, root trace.SpanID) bool {
	for i := 0; i < 64; i++ {
		p := s.Parent.SpanID()
		if p == root {
			return true
		}
		next, ok := ss.byID(p)
		if !ok {
			return false
		}
		s = next
	}
	return false
}

func (ss spans) find(pred func(tracetest.SpanStub) bool) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range ss {
		if pred(s) {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoginTrace signs in through a real server with an in-memory span
// exporter and checks the trace: the caller's trace context is continued
// by the HTTP server span; under it, the SQL statements, the Argon2
// verification, Redis commands (when Redis is configured) and the enqueue
// of the login event. The event's job, worked later, is linked to that
// enqueue; the webhook delivery it fans out to is linked to its own
// enqueue, and its outbound request carries the trace context to the
// receiver.
func TestLoginTrace(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			defer func() { _ = tp.Shutdown(context.Background()) }()

			var mu sync.Mutex
			var received []string
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				mu.Lock()
				received = append(received, r.Header.Get("traceparent"))
				mu.Unlock()
			}))
			defer receiver.Close()

			extra := map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true"}
			redis := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
			if redis != "" {
				extra["GATEHOUSE_REDIS_URL"] = redis
			}
			env := apptest.NewWith(t, engine, apptest.Options{Extra: extra, TracerProvider: tp})
			env.App.Webhooks.SetBackoff(func(int) time.Duration { return 0 })
			env.Register("trace@example.com", apptest.StrongPassword)
			tk := env.Login("trace@example.com", apptest.StrongPassword)
			hook := env.Do("POST", "/webhooks", map[string]any{"url": receiver.URL + "/hook", "events": []string{"user.login"}}, tk.Access)
			require.Equal(t, http.StatusCreated, hook.Status, string(hook.Raw))

			// The login under test, continuing a caller's sampled trace.
			const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			r, err := env.Send("POST", "/auth/login", map[string]any{"email": "trace@example.com", "password": apptest.StrongPassword}, "",
				map[string]string{"traceparent": "00-" + callerTrace + "-" + callerSpan + "-01"})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))

			inTrace := func(s tracetest.SpanStub) bool { return s.SpanContext.TraceID().String() == callerTrace }
			all := spans(exp.GetSpans())
			servers := all.find(func(s tracetest.SpanStub) bool { return inTrace(s) && s.SpanKind == trace.SpanKindServer })
			require.Len(t, servers, 1, "one HTTP server span in the caller's trace")
			server := servers[0]
			require.Equal(t, "POST /api/v1/auth/login", server.Name)
			require.Equal(t, callerSpan, server.Parent.SpanID().String(), "the caller's span is the parent")
			require.True(t, server.Parent.IsRemote())
			sid := server.SpanContext.SpanID()

			below := all.find(func(s tracetest.SpanStub) bool { return inTrace(s) && all.under(s, sid) })
			var sql, argon, enqueue, cache []tracetest.SpanStub
			for _, s := range below {
				switch {
				case attr(s, "db.system.name") == "redis":
					cache = append(cache, s)
				case attr(s, "db.system.name") != "":
					sql = append(sql, s)
					require.Equal(t, trace.SpanKindClient, s.SpanKind)
					require.NotEmpty(t, attr(s, "db.query.text"))
					require.NotContains(t, attr(s, "db.query.text"), apptest.StrongPassword)
				case s.Name == "argon2id verify":
					argon = append(argon, s)
				case strings.HasPrefix(s.Name, "enqueue "):
					enqueue = append(enqueue, s)
					require.Equal(t, trace.SpanKindProducer, s.SpanKind)
				}
			}
			names := func(ss []tracetest.SpanStub) []string {
				var out []string
				for _, s := range ss {
					out = append(out, s.Name)
				}
				return out
			}
			require.NotEmpty(t, sql, "SQL statements of the login: %v", names(below))
			wantSystem := map[string]string{"sqlite": "sqlite", "postgres": "postgresql"}[engine]
			require.Equal(t, wantSystem, attr(sql[0], "db.system.name"))
			require.Len(t, argon, 1, "one password verification: %v", names(below))
			require.Equal(t, "64", attr(argon[0], "argon2.memory_kib"))
			require.NotEmpty(t, enqueue, "the login event is enqueued in the login's transaction: %v", names(below))
			if redis != "" {
				require.NotEmpty(t, cache, "Redis commands of the login: %v", names(below))
				for _, c := range cache {
					require.Equal(t, strings.ToUpper(c.Name), c.Name, "spans name the command, never the key")
				}
			}
			for _, s := range below {
				for _, kv := range s.Attributes {
					require.NotContains(t, kv.Value.Emit(), "trace@example.com", "no address in span %s", s.Name)
				}
			}

			// The event job, then the webhook delivery job, each linked to
			// the span that enqueued it; the delivery reaches the receiver
			// with the delivery job's trace context.
			linkedTo := func(id trace.SpanID) func(tracetest.SpanStub) bool {
				return func(s tracetest.SpanStub) bool {
					for _, l := range s.Links {
						if l.SpanContext.SpanID() == id {
							return true
						}
					}
					return false
				}
			}
			var delivery tracetest.SpanStub
			eventually(t, "the webhook delivery's job span", func() bool {
				all = spans(exp.GetSpans())
				for _, e := range enqueue {
					for _, eventJob := range all.find(linkedTo(e.SpanContext.SpanID())) {
						// The event job enqueued the delivery.
						for _, e2 := range all.find(func(s tracetest.SpanStub) bool {
							return strings.HasPrefix(s.Name, "enqueue ") && all.under(s, eventJob.SpanContext.SpanID())
						}) {
							if d := all.find(linkedTo(e2.SpanContext.SpanID())); len(d) > 0 {
								delivery = d[0]
								return true
							}
						}
					}
				}
				return false
			})
			require.Equal(t, trace.SpanKindConsumer, delivery.SpanKind)
			require.True(t, strings.HasPrefix(delivery.Name, "job "), delivery.Name)
			require.NotEqual(t, callerTrace, delivery.SpanContext.TraceID().String(), "work outliving the request has its own trace, linked")

			clients := all.find(func(s tracetest.SpanStub) bool {
				return s.SpanKind == trace.SpanKindClient && all.under(s, delivery.SpanContext.SpanID()) &&
					attr(s, "http.request.method") == "POST"
			})
			require.Len(t, clients, 1, "one outbound POST")
			mu.Lock()
			got := append([]string(nil), received...)
			mu.Unlock()
			want := "00-" + delivery.SpanContext.TraceID().String() + "-" + clients[0].SpanContext.SpanID().String() + "-01"
			require.Contains(t, got, want, "the receiver got the trace context")
			require.Equal(t, "200", attr(clients[0], "http.response.status_code"))
		})
	}
}

// TestLogLinesCarryRequestAndTraceIDs checks the log of a real server:
// the lines written while serving a request carry its request id, trace id
// and span id, and the user id once known.
func TestLogLinesCarryRequestAndTraceIDs(t *testing.T) {
	var buf syncBuffer
	level := slog.LevelInfo
	env := apptest.NewWith(t, "sqlite", apptest.Options{Logs: &buf, LogLevel: &level})
	env.Register("logs@example.com", apptest.StrongPassword)
	tk := env.Login("logs@example.com", apptest.StrongPassword)
	const callerTrace = "0af7651916cd43dd8448eb211c80319c"
	r, err := env.Send("GET", "/auth/me", nil, tk.Access, map[string]string{
		"traceparent": "00-" + callerTrace + "-b7ad6b7169203331-01", "X-Request-ID": "req-logs-1"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status)

	var line map[string]any
	for _, l := range buf.lines(t) {
		if l["msg"] == "http request" && l["request_id"] == "req-logs-1" {
			line = l
		}
	}
	require.NotNil(t, line, "the access line of the request")
	require.Equal(t, callerTrace, line["trace_id"])
	require.Regexp(t, "^[0-9a-f]{16}$", line["span_id"])
	require.NotEmpty(t, line["user_id"])
	for _, l := range buf.lines(t) {
		if l["msg"] == "http request" {
			require.NotEmpty(t, l["request_id"], "every request line has its request id: %v", l)
			require.Regexp(t, "^[0-9a-f]{32}$", l["trace_id"], "and a trace id: %v", l)
		}
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

// TestRateLimitedLinesAreSampled floods a real server's login limit: the
// 429 access lines are sampled, and every one of them is either written
// or counted in a summary line.
func TestRateLimitedLinesAreSampled(t *testing.T) {
	var buf syncBuffer
	level := slog.LevelInfo
	env := apptest.NewWith(t, "sqlite", apptest.Options{Logs: &buf, LogLevel: &level, Extra: map[string]string{
		"GATEHOUSE_RATE_LIMIT_ENABLED": "true", "GATEHOUSE_RATE_LIMIT_LOGIN": "1/1h", "GATEHOUSE_LOG_SAMPLE_PER_SECOND": "2"}})
	limited := 0
	for i := 0; i < 15; i++ {
		r := env.Do("POST", "/auth/login", map[string]any{"email": "flood@example.com", "password": "wrong-password-123"}, "")
		if r.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	require.GreaterOrEqual(t, limited, 10)

	var written, dropped int
	eventually(t, "every 429 line written or counted", func() bool {
		written, dropped = 0, 0
		for _, l := range buf.lines(t) {
			switch {
			case l["msg"] == "http request" && l["status"] == float64(429):
				written++
				require.Equal(t, "http_429", l["sample"])
			case l["msg"] == "log lines dropped by sampling" && l["sample"] == "http_429":
				require.Equal(t, "http request", l["sampled_message"])
				dropped += int(l["dropped"].(float64))
			}
		}
		return written+dropped == limited
	})
	require.Positive(t, dropped, "a flood within a second is cut down")
	require.Less(t, written, limited)
}
