package mail

import (
	"context"
	"log/slog"
)

// LogSender "delivers" messages by logging them. It is for development
// only: it logs the recipient, the subject and the whole plain-text body,
// because in development that is how one reads verification, reset and
// magic links without a mail server. Those bodies contain single-use
// tokens, which the rest of Gatehouse never logs, so production must use
// SMTPSender. The HTML body is left out (only its size is logged); it
// carries the same content as the text.
type LogSender struct {
	logger *slog.Logger
}

var _ Sender = (*LogSender)(nil)

// NewLogSender returns a LogSender writing to logger (slog.Default() when
// nil). Development only; see LogSender.
func NewLogSender(logger *slog.Logger) *LogSender {
	if logger == nil {
		logger = slog.Default()
	}
	return &LogSender{logger: logger.With("component", "mail")}
}

// Send logs m at info level and never fails.
func (s *LogSender) Send(ctx context.Context, m Message) error {
	s.logger.InfoContext(ctx, "email not sent: development log sender (the body may contain single-use links)",
		slog.String("to", m.To),
		slog.String("subject", singleLine(m.Subject)),
		slog.String("text", m.Text),
		slog.Int("html_bytes", len(m.HTML)),
	)
	return nil
}
