package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app"
)

func newServeCmd() *cobra.Command {
	var noMigrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server (the default command)",
		Long: "Run the HTTP server and the background job workers. Migrations are applied first unless --no-migrate or GATEHOUSE_AUTO_MIGRATE=false;\n" +
			"with GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL and _PASSWORD_FILE the first administrator is made when none exists.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig()
			if err != nil {
				return err
			}
			if err := cfg.CheckProduction(); err != nil {
				return err
			}
			started := time.Now()
			a, err := app.Build(cmd.Context(), cfg, log, app.Options{Migrate: cfg.AutoMigrate && !noMigrate, Jobs: true})
			if err != nil {
				return err
			}
			if err := a.BootstrapAdmin(cmd.Context()); err != nil {
				a.Close(context.Background())
				return err
			}
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				a.Close(context.Background())
				return fmt.Errorf("listen on GATEHOUSE_ADDR=%s: %w", cfg.Addr, err)
			}
			log.Info("gatehouse started", "addr", ln.Addr().String(), "version", gatehouse.Version(),
				"database", string(a.DB.Dialect()), "redis", cfg.RedisURL != "", "startup", time.Since(started).Round(time.Millisecond).String())
			return a.Serve(cmd.Context(), ln)
		},
	}
	cmd.Flags().BoolVar(&noMigrate, "no-migrate", false, "do not apply database migrations at start")
	return cmd
}
