package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

func TestNewLoggerFormatsAndLevels(t *testing.T) {
	var buf bytes.Buffer
	l := telemetry.NewLogger(&buf, "warn", "json", 0)
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1)
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	require.Equal(t, "shown", rec["msg"])
	require.Equal(t, "v", rec["k"])

	buf.Reset()
	l = telemetry.NewLogger(&buf, "DEBUG", "text", 0)
	l.Debug("dbg", "k", "v")
	require.Contains(t, buf.String(), "msg=dbg")
	require.Contains(t, buf.String(), "k=v")

	buf.Reset()
	l = telemetry.NewLogger(&buf, "nonsense", "nonsense", 0) // info, json
	l.Debug("hidden")
	l.Error("err")
	require.NotContains(t, buf.String(), "hidden")
	require.True(t, json.Valid(bytes.TrimSpace(buf.Bytes())))
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn,
		"warning": slog.LevelWarn, "error": slog.LevelError, " Error ": slog.LevelError, "": slog.LevelInfo,
	} {
		require.Equal(t, want, telemetry.ParseLevel(in), in)
	}
}

func TestContextLogger(t *testing.T) {
	require.Same(t, slog.Default(), telemetry.Logger(context.Background()))
	require.Same(t, slog.Default(), telemetry.Logger(nil)) //nolint:staticcheck // nil ctx is tolerated on purpose

	var buf bytes.Buffer
	l := telemetry.NewLogger(&buf, "info", "json", 0).With("request_id", "abc")
	ctx := telemetry.WithLogger(context.Background(), l)
	require.Same(t, l, telemetry.Logger(ctx))
	telemetry.Logger(ctx).Info("hello")
	require.Contains(t, buf.String(), `"request_id":"abc"`)
}

func TestRequestInfo(t *testing.T) {
	ctx := context.Background()
	require.Nil(t, telemetry.RequestInfoFrom(ctx))
	require.Nil(t, telemetry.RequestInfoFrom(nil)) //nolint:staticcheck // nil ctx is tolerated on purpose
	require.Empty(t, telemetry.RequestID(ctx))
	telemetry.SetUserID(ctx, "ignored") // no info: no panic

	info := &telemetry.RequestInfo{RequestID: "rid", TraceID: "tid"}
	ctx = telemetry.WithRequestInfo(ctx, info)
	require.Same(t, info, telemetry.RequestInfoFrom(ctx))
	require.Equal(t, "rid", telemetry.RequestID(ctx))

	// A child context set later still updates the value the parent sees.
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	telemetry.SetUserID(child, "user-1")
	require.Equal(t, "user-1", info.UserID())

	info.SetRoute("GET /x/{id}")
	require.Equal(t, "GET /x/{id}", info.Route())

	// A nil info is inert.
	var none *telemetry.RequestInfo
	none.SetUserID("x")
	none.SetRoute("y")
	require.Empty(t, none.UserID())
	require.Empty(t, none.Route())

	// Safe for concurrent use.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				info.SetUserID("u")
				_ = info.UserID()
				info.SetRoute("r")
				_ = info.Route()
			}
		})
	}
	wg.Wait()
}
