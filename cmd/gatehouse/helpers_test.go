package main

import (
	"io"
	"log/slog"
)

func loadTestLogger() (*slog.Logger, error) {
	return slog.New(slog.NewTextHandler(io.Discard, nil)), nil
}
