package sms_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
)

// In development the code is read from the log, at info level.
func TestLogSender(t *testing.T) {
	var out strings.Builder
	s := sms.NewLogSender(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	require.NoError(t, s.Send(context.Background(), alice, body))
	line := out.String()
	for _, want := range []string{"level=INFO", "development SMS", "component=sms", "to=" + alice, `body="` + body + `"`} {
		require.Contains(t, line, want)
	}
}
