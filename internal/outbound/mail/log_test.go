package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
)

func TestLogSender(t *testing.T) {
	var buf bytes.Buffer
	s := mail.NewLogSender(slog.New(slog.NewJSONHandler(&buf, nil)))
	err := s.Send(context.Background(), mail.Message{
		To:      "alice@example.com",
		Subject: "Verify\nyour email",
		Text:    "Open https://localhost:8080/verify?token=abc\n",
		HTML:    "<p>secret html</p>",
	})
	require.NoError(t, err)

	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	require.Equal(t, "INFO", rec["level"])
	require.Equal(t, "mail", rec["component"])
	require.Equal(t, "alice@example.com", rec["to"])
	require.Equal(t, "Verify your email", rec["subject"])
	require.Equal(t, "Open https://localhost:8080/verify?token=abc\n", rec["text"], "development mode reads links from the log")
	require.EqualValues(t, len("<p>secret html</p>"), rec["html_bytes"])
	require.NotContains(t, buf.String(), "secret html")

	// A nil logger means slog.Default().
	var def bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&def, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	require.NoError(t, mail.NewLogSender(nil).Send(context.Background(), mail.Message{To: "x@example.com"}))
	require.Contains(t, def.String(), "to=x@example.com")
}
