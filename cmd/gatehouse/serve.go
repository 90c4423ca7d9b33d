package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

func newServeCmd() *cobra.Command {
	var noMigrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server (the default command)",
		Long:  "Run the HTTP server and the background job workers. Migrations are applied first unless --no-migrate or GATEHOUSE_AUTO_MIGRATE=false.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig()
			if err != nil {
				return err
			}
			started := time.Now()
			a, err := build(cmd.Context(), cfg, log, buildOptions{migrate: cfg.AutoMigrate && !noMigrate, jobs: true})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				a.close(context.Background())
				return fmt.Errorf("listen on GATEHOUSE_ADDR=%s: %w", cfg.Addr, err)
			}
			log.Info("gatehouse started", "addr", ln.Addr().String(), "version", gatehouse.Version(),
				"database", string(a.db.Dialect()), "redis", cfg.RedisURL != "", "startup", time.Since(started).Round(time.Millisecond).String())
			return a.serve(cmd.Context(), ln)
		},
	}
	cmd.Flags().BoolVar(&noMigrate, "no-migrate", false, "do not apply database migrations at start")
	return cmd
}

// serve runs until ctx ends (SIGINT/SIGTERM), then shuts down gracefully:
// stop accepting, finish in-flight requests, stop the workers, close the
// stores. A clean shutdown returns nil.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	srv := httpapi.NewHTTPServer(ln.Addr().String(), a.http.Handler())
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	if err := a.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		a.close(context.Background())
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout.String())
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		a.log.Error("http shutdown", "err", serr)
	}
	if jerr := a.jobs.Stop(sctx); jerr != nil {
		a.log.Error("jobs shutdown", "err", jerr)
	}
	a.close(sctx)
	if err == nil {
		a.log.Info("stopped")
	}
	return err
}
