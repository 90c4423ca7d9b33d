package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

func loadConfig() (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, nil, err
	}
	log := telemetry.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat, cfg.LogSamplePerSecond)
	slog.SetDefault(log)
	return cfg, log, nil
}

// withApp wires the app for a one-shot command (migrated, no workers),
// runs fn with it and closes it.
func withApp(cmd *cobra.Command, fn func(a *app.App) error) error {
	cfg, log, err := loadConfig()
	if err != nil {
		return err
	}
	a, err := app.Build(cmd.Context(), cfg, log, app.Options{Migrate: cfg.AutoMigrate})
	if err != nil {
		return err
	}
	defer a.Close(cmd.Context())
	return fn(a)
}

// withStore opens the configured database for a one-shot command (not
// migrated, no workers), runs fn with it and closes it.
func withStore(cmd *cobra.Command, fn func(cfg *config.Config, db *sqlstore.DB) error) error {
	cfg, _, err := loadConfig()
	if err != nil {
		return err
	}
	db, err := app.OpenStore(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(cfg, db)
}
