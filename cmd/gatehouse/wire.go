package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

func loadConfig() (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, nil, err
	}
	log := telemetry.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	slog.SetDefault(log)
	return cfg, log, nil
}

// buildForCLI wires the app for a one-shot command: migrated, no workers.
func buildForCLI(cmd *cobra.Command) (*app.App, error) {
	cfg, log, err := loadConfig()
	if err != nil {
		return nil, err
	}
	return app.Build(cmd.Context(), cfg, log, app.Options{Migrate: cfg.AutoMigrate})
}
