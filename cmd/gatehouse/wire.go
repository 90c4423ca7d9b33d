package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/events"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// app is the wired server. Construction is plain code, in order; close
// releases in reverse.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	db      *sqlstore.DB
	cache   cache.Cache
	ring    *keys.Ring
	bus     *events.Bus
	jobs    *jobs.Client
	metrics *telemetry.Metrics
	http    *httpapi.Server

	closers []func(context.Context) error
}

// buildOptions choose what a command needs.
type buildOptions struct {
	migrate  bool // apply migrations before anything reads the database
	jobs     bool // work jobs (serve) rather than only insert them
	poll     time.Duration
	logLevel string
}

func loadConfig() (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, nil, err
	}
	log := telemetry.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	slog.SetDefault(log)
	return cfg, log, nil
}

// openStore opens the database named by the configuration.
func openStore(ctx context.Context, cfg *config.Config) (*sqlstore.DB, error) {
	db, err := sqlstore.Open(ctx, sqlstore.Config{
		Dialect:  store.Dialect(cfg.Database.Dialect),
		DSN:      cfg.Database.DSN,
		MaxConns: cfg.DatabaseMaxConns,
	})
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return db, nil
}

func build(ctx context.Context, cfg *config.Config, log *slog.Logger, opts buildOptions) (_ *app, err error) {
	a := &app{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			a.close(context.Background())
		}
	}()

	devKey, err := cfg.EnsureMasterKey()
	if err != nil {
		return nil, err
	}
	if devKey {
		log.Warn("GATEHOUSE_SECRET_KEY is not set: using a development master key generated into the data dir; anyone who can read " +
			cfg.DataDir + "/" + config.DevKeyFile + " can decrypt the secrets in the database. Set GATEHOUSE_SECRET_KEY in production.")
	}

	shutdownTracing, err := telemetry.SetupTracing(ctx, cfg.TracingEnabled, "gatehouse", gatehouse.Version())
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	a.closers = append(a.closers, shutdownTracing)

	a.db, err = openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.db.Close() })
	if opts.migrate {
		if err := a.db.MigrateUp(ctx); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}

	a.cache, err = cache.Open(ctx, cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	a.closers = append(a.closers, func(context.Context) error { return a.cache.Close() })

	box, err := secret.NewBox(cfg.MasterKey)
	if err != nil {
		return nil, err
	}
	a.ring = keys.NewRing(a.db, box, keys.Options{Bits: cfg.RSAKeyBits, MaxTokenTTL: cfg.AccessTokenTTL})
	created, err := a.ring.Ensure(ctx)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("made the first token signing key")
	}

	workers := jobs.NewWorkers()
	a.bus = events.NewBus(a.db)
	a.bus.Register(workers)
	a.jobs, err = jobs.New(jobs.Config{
		DB: a.db.DB(), Dialect: a.db.Dialect(), Logger: log,
		Workers: workers, InsertOnly: !opts.jobs, PollInterval: opts.poll,
	})
	if err != nil {
		return nil, err
	}
	a.bus.SetEnqueuer(a.jobs)

	a.metrics = telemetry.NewMetrics()
	a.metrics.RegisterDBStats(a.db.DB(), string(a.db.Dialect()))
	a.http = httpapi.New(httpapi.Deps{
		Logger:         log,
		Metrics:        a.metrics,
		Version:        gatehouse.Version(),
		PublicURL:      cfg.PublicURL,
		CORSOrigins:    cfg.CORSOrigins,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		TrustedProxies: cfg.TrustedCIDRs,
		JWKS:           a.ring.JWKS,
		Checks: []httpapi.HealthCheck{
			{Name: "database", Check: a.db.Ping},
			{Name: "cache", Check: a.cache.Ping},
			{Name: "queue", Check: a.jobs.Ping},
		},
	})
	return a, nil
}

// close releases everything in reverse order of construction.
func (a *app) close(ctx context.Context) {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i](ctx))
	}
	if err := errors.Join(errs...); err != nil && a.log != nil {
		a.log.Error("shutdown", "err", err)
	}
}
