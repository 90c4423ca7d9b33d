package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

func TestContextHandlerStampsIDs(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, "debug", "json", 0)

	info := &RequestInfo{RequestID: "req-1"}
	ctx := WithRequestInfo(context.Background(), info)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab}, SpanID: trace.SpanID{0xcd}})
	ctx = trace.ContextWithSpanContext(ctx, sc)

	log.InfoContext(ctx, "before sign-in")
	info.SetUserID("usr_1")
	log.With("component", "x").WarnContext(ctx, "after sign-in")
	log.Info("no context")

	got := lines(t, &buf)
	require.Len(t, got, 3)
	require.Equal(t, "req-1", got[0]["request_id"])
	require.Equal(t, sc.TraceID().String(), got[0]["trace_id"])
	require.Equal(t, sc.SpanID().String(), got[0]["span_id"])
	require.NotContains(t, got[0], "user_id", "not known yet")
	require.Equal(t, "usr_1", got[1]["user_id"], "known once the request is authenticated")
	require.Equal(t, "x", got[1]["component"])
	require.NotContains(t, got[2], "request_id")
	require.NotContains(t, got[2], "trace_id")

	// A foreign logger gets the ids through WithContextIDs; ours is kept.
	buf.Reset()
	plain := slog.New(slog.NewJSONHandler(&buf, nil))
	WithContextIDs(plain).InfoContext(ctx, "foreign")
	require.Equal(t, "req-1", lines(t, &buf)[0]["request_id"])
	require.Same(t, log, WithContextIDs(log))
	require.Nil(t, WithContextIDs(nil))
}

// fakeTimers collects the flushes the sampler schedules, to run by hand.
type fakeTimers struct{ fns []func() }

func (f *fakeTimers) after(_ time.Duration, fn func()) { f.fns = append(f.fns, fn) }

func TestSamplingHandlerCapsMarkedLinesAndCountsTheRest(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	timers := &fakeTimers{}
	h := NewSamplingHandler(slog.NewJSONHandler(&buf, nil), 3)
	h.state.now = func() time.Time { return now }
	h.state.afterFunc = timers.after
	log := slog.New(h)

	for i := 0; i < 10; i++ {
		log.Info("http request", "status", 429, Sample("http_429"))
		log.Info("http request", "status", 503, Sample("http_503"))
		log.Info("unmarked line", "i", i)
	}
	got := lines(t, &buf)
	count := map[string]int{}
	for _, l := range got {
		count[l["msg"].(string)+"/"+toString(l["sample"])]++
	}
	require.Equal(t, 3, count["http request/http_429"], "at most 3 a second per key")
	require.Equal(t, 3, count["http request/http_503"], "keys are counted apart")
	require.Equal(t, 10, count["unmarked line/"], "unmarked lines are never sampled")
	require.Len(t, timers.fns, 2, "one flush scheduled per key with drops")

	// The next window: its first line brings the summary of the last one.
	buf.Reset()
	now = now.Add(time.Second)
	log.Info("http request", "status", 429, Sample("http_429"))
	got = lines(t, &buf)
	require.Len(t, got, 2)
	require.Equal(t, "log lines dropped by sampling", got[0]["msg"])
	require.Equal(t, "http request", got[0]["sampled_message"])
	require.Equal(t, "http_429", got[0]["sample"])
	require.EqualValues(t, 7, got[0]["dropped"])
	require.Equal(t, "http request", got[1]["msg"])

	// A key that went quiet is summarized by its timer, once.
	buf.Reset()
	for _, fn := range timers.fns {
		fn()
	}
	got = lines(t, &buf)
	require.Len(t, got, 1, "the 429 window was summarized already; the 503 one by its timer")
	require.Equal(t, "http_503", got[0]["sample"])
	require.EqualValues(t, 7, got[0]["dropped"])

	// Off: every line passes.
	buf.Reset()
	off := slog.New(NewSamplingHandler(slog.NewJSONHandler(&buf, nil), 0))
	for i := 0; i < 20; i++ {
		off.Info("http request", Sample("http_429"))
	}
	require.Len(t, lines(t, &buf), 20)
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
