package sms

import (
	"context"
	"log/slog"
)

// SenderFunc is a Sender made of a function.
type SenderFunc func(ctx context.Context, to, body string) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, to, body string) error { return f(ctx, to, body) }

// NewLogSender returns a sender that "delivers" messages by logging the
// recipient and the whole body at info level to logger (slog.Default()
// when nil), and never fails. It is for development only: that is how one
// reads a login code without an SMS provider, but those bodies hold codes,
// which the rest of Gatehouse never logs, so production must use Twilio.
func NewLogSender(logger *slog.Logger) SenderFunc {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "sms")
	return func(ctx context.Context, to, body string) error {
		logger.InfoContext(ctx, "development SMS, not sent: log sender (the body holds a login code)",
			slog.String("to", to), slog.String("body", body))
		return nil
	}
}
