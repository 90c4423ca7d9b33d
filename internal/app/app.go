// Package app wires Gatehouse together: configuration -> stores -> key ring
// -> jobs -> services -> HTTP, in order, in one place, and closes in
// reverse. The CLI and the end-to-end tests are its only users; no other
// package constructs concrete stores or services.
package app

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/account"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/authz"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/device"
	"github.com/gatehouse-auth/gatehouse/internal/events"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/notify"
	"github.com/gatehouse-auth/gatehouse/internal/oauth"
	"github.com/gatehouse-auth/gatehouse/internal/oidcprovider"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
	"github.com/gatehouse-auth/gatehouse/internal/passkey"
	"github.com/gatehouse-auth/gatehouse/internal/password"
	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/session"
	"github.com/gatehouse-auth/gatehouse/internal/signin"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
	"github.com/gatehouse-auth/gatehouse/internal/token"
	"github.com/gatehouse-auth/gatehouse/internal/web"
	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// App is the wired server.
type App struct {
	Config *config.Config
	Log    *slog.Logger
	DB     *sqlstore.DB
	Cache  cache.Cache
	// Users holds in-process copies of users for the hot path.
	Users *cache.Local[gatehouse.User]
	Ring  *keys.Ring
	Bus   *events.Bus
	// Jobs inserts jobs.
	Jobs     *jobs.Client
	Metrics  *telemetry.Metrics
	HTTP     *httpapi.Server
	Sessions *session.Service
	Accounts *account.Service
	Authz    *authz.Checker
	Roles    *authz.Service
	Notify   *notify.Hub
	// SMS sends text messages (MFA codes) as jobs.
	SMS *sms.Service
	// MFA runs second factors and sign-in challenges.
	MFA *mfa.Service
	// Webhooks manages webhooks and delivers events to them.
	Webhooks *webhook.Service
	// Audit writes the audit trail; every event becomes a row.
	Audit *audit.Recorder
	// Devices keeps the devices users sign in from.
	Devices *device.Service
	// Risk scores sign-ins and refreshes, steps risky ones up and alerts.
	Risk *risk.Guard
	// MagicLinks signs in with emailed links.
	MagicLinks *account.MagicLinks
	// OAuth runs social login and linked accounts.
	OAuth *oauth.Service
	// Passkeys runs WebAuthn registration and sign-in.
	Passkeys *passkey.Service
	// SignIn runs every sign-in.
	SignIn *signin.Flow
	// Clients manages the OpenID Provider's registered clients; Consents
	// users' consents to them.
	Clients  *oidcprovider.Clients
	Consents *oidcprovider.Consents
	// OIDC is the OpenID Provider.
	OIDC *oidcprovider.Provider
	// Pages are the hosted pages; Pages.Sessions() answers who is signed
	// in on a browser.
	Pages *web.Pages
	// Worker works the jobs (nil unless Options.Jobs).
	Worker *jobs.Worker

	closers []func(context.Context) error
}

// Options choose what a command or test needs.
type Options struct {
	// Migrate applies migrations before anything reads the database.
	Migrate bool
	// Jobs makes the Worker that works jobs (serve); one-shot commands
	// only insert them.
	Jobs bool
	// PollInterval is how often idle job queues look for work (default 1s).
	PollInterval time.Duration
	// Now is the clock of every service (default time.Now); tests move it.
	Now func() time.Time
	// TracerProvider records the spans instead of the one the
	// configuration makes (tests pass one with an in-memory exporter);
	// nil means the configured one, or none when tracing is off.
	TracerProvider trace.TracerProvider
	// GenerateKey makes new signing keys' RSA keys (default: fresh from
	// crypto/rand); tests reuse a few, as generating one is their
	// costliest step of Build.
	GenerateKey func(bits int) (*rsa.PrivateKey, error)
}

// OpenStore opens the database named by the configuration, for a
// command: its statements have no time limit (an audit verify may read
// every row in one).
func OpenStore(ctx context.Context, cfg *config.Config) (*sqlstore.DB, error) {
	return openStore(ctx, cfg, false, nil)
}

// openStore opens the database; serving, its PostgreSQL sessions get the
// configured statement timeout.
func openStore(ctx context.Context, cfg *config.Config, serving bool, users *cache.Local[gatehouse.User]) (*sqlstore.DB, error) {
	sc := sqlstore.Config{
		Dialect:        store.Dialect(cfg.Database.Dialect),
		DSN:            cfg.Database.DSN,
		MaxConns:       cfg.DatabaseMaxConns,
		AcquireTimeout: cfg.DatabasePoolTimeout,
	}
	if users != nil {
		sc.OnUsersChanged = func(ctx context.Context, ids []string, all bool) {
			if all {
				users.InvalidateAll(ctx)
				return
			}
			users.Invalidate(ctx, ids...)
		}
	}
	if serving {
		sc.StatementTimeout = cfg.DatabaseStatementTimeout
	}
	db, err := sqlstore.Open(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return db, nil
}

// Build wires the server. On error everything made so far is closed.
func Build(ctx context.Context, cfg *config.Config, log *slog.Logger, opts Options) (_ *App, err error) {
	a := &App{Config: cfg, Log: log}
	defer func() {
		if err != nil {
			a.Close(context.Background())
		}
	}()
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// Microseconds are what PostgreSQL keeps: an answer built from memory
	// then says what a later read of the same row says.
	opts.Now = func() time.Time { return now().Truncate(time.Microsecond) }

	devKey, err := cfg.EnsureMasterKey()
	if err != nil {
		return nil, err
	}
	if devKey {
		log.Warn("GATEHOUSE_SECRET_KEY is not set: using a development master key generated into the data dir; anyone who can read " +
			cfg.DataDir + "/" + config.DevKeyFile + " can decrypt the secrets in the database. Set GATEHOUSE_SECRET_KEY in production.")
	}

	// First: every service counts what it does in it.
	a.Metrics = telemetry.NewMetrics()

	tp := opts.TracerProvider
	if tp == nil {
		sdkTP, shutdownTracing, err := telemetry.SetupTracing(ctx, telemetry.TracingConfig{
			Enabled: cfg.TracingEnabled, Endpoint: cfg.Tracing.Endpoint, Headers: cfg.Tracing.Headers,
			Gzip: cfg.Tracing.Gzip, Timeout: cfg.Tracing.Timeout, SampleRatio: cfg.TraceSampleRatio,
			Service: "gatehouse", Version: gatehouse.Version(),
		})
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		a.closers = append(a.closers, shutdownTracing)
		tp = telemetry.TracerProviderOrNil(sdkTP)
	}

	if cfg.RedisURL == "" {
		// The in-process cache follows the services' clock, so expiry of
		// cached marks agrees with the clock tests move.
		a.Cache = cache.NewMemory(cache.WithClock(opts.Now))
	} else {
		var r *cache.Redis
		// Unreachable at start is an outage to ride out, not a reason to
		// stay down: start degraded and recover when Redis answers.
		if r, err = cache.OpenRedis(ctx, cfg.RedisURL, cache.AllowUnreachable(), cache.WithRedisLogger(log)); err == nil {
			r.SetPrefix(cfg.RedisPrefix)
			a.Cache = r
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	a.closers = append(a.closers, func(context.Context) error { return a.Cache.Close() })

	// In-process copies of users (for /auth/me) are dropped whenever the
	// store commits a change to one, here and on every instance.
	localSize := cfg.CacheLocalSize
	if localSize == 0 {
		localSize = -1 // off
	}
	a.Users = cache.NewLocal[gatehouse.User](a.Cache, account.UserCacheName, cache.LocalOptions{
		Size: localSize, Now: opts.Now, Logger: log, Stats: a.Metrics.Cache(account.UserCacheName),
	})
	if err := a.Users.Start(ctx); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.Users.Close() })
	a.DB, err = openStore(ctx, cfg, opts.Jobs, a.Users)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.DB.Close() })
	if opts.Migrate {
		if err := a.DB.MigrateUp(ctx); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}

	// During a master key rotation the old key still opens what the
	// rotation has not re-sealed yet; new secrets are sealed under the new.
	box, err := secret.NewKeyring(cfg.MasterKey, cfg.OldMasterKey)
	if err != nil {
		return nil, err
	}
	if cfg.OldMasterKey != nil {
		log.Warn("GATEHOUSE_SECRET_KEY_OLD is set: secrets sealed under the old master key still open. Run `gatehouse keys rotate-master`, then restart without GATEHOUSE_SECRET_KEY_OLD")
	}
	a.Ring = keys.NewRing(a.DB, box, keys.Options{Bits: cfg.RSAKeyBits, MaxTokenTTL: cfg.AccessTokenTTL, Now: opts.Now,
		GenerateKey: opts.GenerateKey})
	created, err := a.Ring.Ensure(ctx)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("made the first token signing key")
	}

	sender, err := newMailSender(cfg, log)
	if err != nil {
		return nil, err
	}
	renderer, err := mail.NewRenderer(cfg.ServiceName)
	if err != nil {
		return nil, err
	}

	// In one pass: the job client that inserts comes first, every service
	// gets what it needs at construction and registers its workers, and
	// the worker that works the jobs comes last.
	if a.Jobs, err = jobs.NewClient(a.DB, log); err != nil {
		return nil, err
	}
	mails := mailer{a.Jobs}
	workers := jobs.NewWorkers()
	a.Bus = events.NewBus(a.DB, a.Jobs)
	a.Bus.Register(workers)
	a.Audit = audit.New(a.DB, opts.Now)
	a.Bus.OnEmit(a.Audit.RecordEvent)
	a.Bus.OnEmit(func(_ context.Context, tx store.Tx, e gatehouse.Event) error {
		tx.AfterCommit(func() { a.Metrics.CountEvent(string(e.Type), e.Data) })
		return nil
	})
	river.AddWorker(workers, &audit.PruneWorker{Store: a.DB, Dir: cfg.AuditExportDir, Retention: cfg.AuditRetention, Now: opts.Now, Logger: log})
	river.AddWorker(workers, &audit.LinkWorker{Store: a.DB, Logger: log})
	a.Notify = notify.NewHub(a.Cache, notify.Options{Logger: log, Now: opts.Now})
	if err := a.Notify.Start(ctx); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.Notify.Close() })
	a.Bus.Handle("notify", a.Notify.HandleEvent, a.Notify.WantsEvent)
	river.AddWorker(workers, mail.NewWorker(sender, renderer, log, a.Metrics))
	smsSender, err := newSMSSender(cfg, log)
	if err != nil {
		return nil, err
	}
	a.SMS = sms.New(smsSender, box, a.Jobs, sms.Options{Logger: log, Now: opts.Now, Cache: a.Cache, Metrics: a.Metrics})
	a.SMS.Register(workers)
	river.AddWorker(workers, &session.CleanupWorker{Store: a.DB, Logger: log, Now: opts.Now})
	river.AddWorker(workers, &oidcprovider.CleanupWorker{Store: a.DB, Logger: log, Now: opts.Now})

	a.Authz = authz.NewChecker(a.DB, a.Cache, authz.CheckerOptions{Now: opts.Now, Logger: log, Metrics: a.Metrics})
	if err := a.Authz.Start(ctx); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.Authz.Close() })
	a.Roles = authz.NewService(a.DB, a.Authz, a.Bus, opts.Now)
	a.Webhooks = webhook.New(a.DB, box, a.Jobs, mails, a.Authz, webhook.Options{
		AllowPrivate: cfg.WebhookAllowPrivate, DisabledTemplate: gatehouse.MailTemplateWebhookDisabled, Metrics: a.Metrics, Logger: log, Now: opts.Now,
	})
	a.Webhooks.Register(workers)
	a.Bus.Handle("webhooks", a.Webhooks.FanOut, a.Webhooks.WantsEvent)
	river.AddWorker(workers, webhook.NewCleanupWorker(a.DB, cfg.WebhookDeliveryRetention, opts.Now, log))
	river.AddWorker(workers, events.NewCleanupWorker(a.DB, opts.Now, log))

	if a.Risk, err = a.newRisk(cfg, log, opts.Now); err != nil {
		return nil, err
	}
	tokens := token.New(a.Ring, token.Options{Issuer: cfg.PublicURL, Audience: cfg.TokenAudience, ClientID: cfg.TokenClientID, TTL: cfg.AccessTokenTTL, Now: opts.Now,
		VerifiedCacheSize: cfg.CacheLocalSize})
	a.Sessions = session.New(a.DB, a.Cache, tokens, a.Bus, session.Options{
		Lifetime: cfg.RefreshTokenTTL, IdleTimeout: cfg.SessionIdleTimeout, Rescorer: a.Risk, Metrics: a.Metrics, Logger: log, Now: opts.Now,
		LocalSize: localSize,
	})
	if err := a.Sessions.Listen(ctx); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.Sessions.StopListening() })
	a.Devices = device.New(a.DB, a.Sessions, a.Bus, mails, device.Options{
		MaxAge: cfg.DeviceMaxAge, ServiceName: cfg.ServiceName, Now: opts.Now, Logger: log,
	})
	river.AddWorker(workers, &device.CleanupWorker{Service: a.Devices})
	params := password.Params{
		Memory: cfg.Argon2Memory, Iterations: cfg.Argon2Iterations, Parallelism: cfg.Argon2Parallelism,
		SaltLen: password.DefaultParams.SaltLen, KeyLen: password.DefaultParams.KeyLen,
	}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("config: GATEHOUSE_ARGON2_*: %w", err)
	}
	hasher := password.NewHasher(params, password.WithMetrics(a.Metrics))
	a.Accounts = account.New(a.DB, hasher, passwordPolicy(cfg), mails, a.Bus, a.Sessions, account.Options{
		LockoutThreshold: cfg.LockoutThreshold, LockoutDuration: cfg.LockoutDuration,
		VerifyURL: cfg.EmailVerifyURL, ResetURL: cfg.PasswordResetURL, ServiceName: cfg.ServiceName,
		ChangeEmailURL: strings.TrimRight(cfg.PublicURL, "/") + web.ConfirmEmailPath,
		DefaultRoles:   []string{"user"}, Authority: a.Roles, OnFailure: a.Risk.RecordFailure, Logger: log, Now: opts.Now,
		UserCache: a.Users,
	})
	a.MagicLinks = account.NewMagicLinks(a.Accounts, cfg.MagicLinkURL)
	var textsForMFA mfa.SMS = a.SMS
	if cfg.SMSProvider == "none" {
		textsForMFA = nil
	}
	a.MFA = mfa.New(a.DB, a.Cache, box, textsForMFA, mails, a.Bus, a.Accounts, mfa.Options{
		Issuer: cfg.ServiceName, Metrics: a.Metrics, Logger: log, Now: opts.Now,
	})
	if a.OAuth, err = newOAuth(cfg, a, opts.Now); err != nil {
		return nil, err
	}
	if cfg.PasskeysOff {
		log.Warn("passkeys are off: the host of GATEHOUSE_PUBLIC_URL (" + cfg.PublicURL + ") is an IP address and WebAuthn needs a domain; " +
			"set GATEHOUSE_WEBAUTHN_RP_ID (and GATEHOUSE_WEBAUTHN_ORIGINS) to a domain to turn them on")
	}
	a.Passkeys, err = passkey.New(a.DB, a.Cache, a.Bus, passkey.Options{
		Off: cfg.PasskeysOff, RPID: cfg.WebAuthnRPID, RPName: cfg.WebAuthnRPName, Origins: cfg.WebAuthnOrigins,
		HintKey: cfg.MasterKey, Logger: log, Now: opts.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("config: GATEHOUSE_WEBAUTHN_*: %w", err)
	}
	a.SignIn = signin.New(signin.Deps{
		Store: a.DB, Accounts: a.Accounts, MagicLinks: a.MagicLinks, MFA: a.MFA, Risk: a.Risk, Devices: a.Devices,
		Sessions: a.Sessions, Events: a.Bus, Passkeys: a.Passkeys, OAuth: a.OAuth, Metrics: a.Metrics, Now: opts.Now,
	})
	a.Clients = oidcprovider.NewClients(a.DB, a.Bus, a.Sessions, a.Authz, opts.Now)
	a.Consents = oidcprovider.NewConsents(a.DB, a.Bus, a.Sessions, opts.Now)
	if opts.Jobs {
		a.Worker, err = jobs.NewWorker(a.Jobs, jobs.WorkerConfig{
			Workers: workers, PollInterval: opts.PollInterval, TracerProvider: tp,
			PeriodicJobs: append([]*river.PeriodicJob{session.CleanupPeriodic(), oidcprovider.CleanupPeriodic(), device.CleanupPeriodic(), webhook.CleanupPeriodic(),
				events.CleanupPeriodic()}, auditPeriodic(cfg, a.DB.Dialect())...),
		})
		if err != nil {
			return nil, err
		}
	}

	rateLimiter := newRateLimiter(cfg, a.Cache, a.Metrics, log, opts.Now)
	a.Metrics.RegisterDBStats(a.DB.DB(), string(a.DB.Dialect()))
	if err := a.Metrics.RegisterDBPool(a.poolStats); err != nil {
		return nil, err
	}
	if err := a.Metrics.RegisterSigningKey(a.signingKeySince); err != nil {
		return nil, err
	}
	if err := a.Metrics.RegisterAccountCounts(telemetry.AccountCounts{
		ActiveSessions: a.DB.CountActiveSessions, MFAUsers: a.DB.CountMFAUsers, Now: opts.Now,
	}); err != nil {
		return nil, err
	}
	if err := a.Jobs.RegisterMetrics(a.Metrics.Registry()); err != nil {
		return nil, err
	}
	if err := a.Notify.RegisterMetrics(a.Metrics.Registry()); err != nil {
		return nil, err
	}
	pages, err := web.New(web.Deps{
		PublicURL: cfg.PublicURL, ServiceName: cfg.Brand.Name, ReturnAllowlist: cfg.OAuthRedirectAllowlist,
		Brand:   web.Brand{Logo: cfg.Brand.LogoBytes, LogoType: cfg.Brand.LogoType, LogoURL: cfg.Brand.LogoURL, Color: cfg.Brand.Color},
		APIBase: httpapi.BasePath, IdleTimeout: cfg.SessionIdleTimeout,
		ClientIP: func(ctx context.Context) string {
			if ip := httpapi.ClientIPFrom(ctx); ip.IsValid() {
				return ip.String()
			}
			return ""
		},
		SignIn: a.SignIn, Store: a.DB, Accounts: a.Accounts, MagicLinks: a.MagicLinks, MFA: a.MFA, OAuth: a.OAuth,
		Sessions: a.Sessions, Devices: a.Devices, Passkeys: passkeysForPages(cfg, a.Passkeys),
		Admin: web.Admin{Authz: a.Authz, Roles: a.Roles, Accounts: a.Accounts, Audit: a.Audit, Sessions: a.Sessions, Keys: a.Ring,
			Webhooks: pageWebhooks{a.Webhooks}, AuditChain: auditChain(a.DB)},
		AdminLinks: []web.AdminLink{{Label: "OAuth clients", Path: oidcprovider.ConsolePath, Permission: "clients:read"}},
		Limiter:    rateLimiter, Metrics: a.Metrics,
		Limits: web.Limits{Login: ratelimit.Limit(cfg.RateLimitLogin), Register: ratelimit.Limit(cfg.RateLimitRegister),
			Email: ratelimit.Limit(cfg.RateLimitEmail), MFA: ratelimit.Limit(cfg.RateLimitMFA)},
		Now: opts.Now, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	a.Pages = pages
	a.OIDC, err = oidcprovider.New(oidcprovider.Deps{
		Issuer: cfg.PublicURL, Store: a.DB, Keys: a.Ring, Tokens: tokens, Sessions: a.Sessions, Browser: pages.Sessions(),
		Events: a.Bus, Key: cfg.MasterKey, Now: opts.Now, Logger: log,
		Console: pages, Clients: a.Clients, Permissions: a.Authz,
		Limiter: rateLimiter, Limit: ratelimit.Limit(cfg.RateLimitAPI), Metrics: a.Metrics,
		ClientIP: func(ctx context.Context) string {
			if ip := httpapi.ClientIPFrom(ctx); ip.IsValid() {
				return ip.String()
			}
			return ""
		},
	})
	if err != nil {
		return nil, err
	}
	a.HTTP = httpapi.New(httpapi.Deps{
		TracerProvider: tp,
		Pages:          pages,
		OIDC:           a.OIDC,
		Logger:         log,
		Metrics:        a.Metrics,
		Version:        gatehouse.Version(),
		PublicURL:      cfg.PublicURL,
		CORSOrigins:    cfg.CORSOrigins,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		TrustedProxies: cfg.TrustedCIDRs,
		JWKS:           a.Ring.JWKS,
		Accounts:       a.Accounts,
		Sessions:       a.Sessions,
		Now:            opts.Now,
		Authz:          a.Authz,
		Roles:          a.Roles,
		Admin:          a.Accounts,
		Audit:          a.Audit,
		Clients:        a.Clients,
		Consents:       a.Consents,
		Webhooks:       a.Webhooks,
		Notify:         a.Notify,
		MFA:            a.MFA,
		MagicLinks:     a.MagicLinks,
		OAuth:          a.OAuth,
		ServiceName:    cfg.ServiceName,
		Passkeys:       a.Passkeys,
		Devices:        a.Devices,
		SignIn:         a.SignIn,
		Features:       map[string]string{"geoip": geoipFeature(cfg)},
		SessionTrust:   func(_ context.Context, p gatehouse.Principal) int { return p.TrustScore },
		RateLimiter:    rateLimiter,
		RateLimits: httpapi.RateLimits{
			Login: ratelimit.Limit(cfg.RateLimitLogin), Register: ratelimit.Limit(cfg.RateLimitRegister),
			Email: ratelimit.Limit(cfg.RateLimitEmail), MFA: ratelimit.Limit(cfg.RateLimitMFA), API: ratelimit.Limit(cfg.RateLimitAPI),
		},
		Checks: []httpapi.HealthCheck{
			{Name: "database", Check: a.DB.Ping},
			{Name: "cache", Check: a.Cache.Ping, Optional: true},
			{Name: "queue", Check: a.Jobs.Ping},
		},
	})
	return a, nil
}

// poolStats reads the connection pool: pgx's on PostgreSQL (database/sql
// only borrows from it there), database/sql's on SQLite.
func (a *App) poolStats() telemetry.DBPoolStats {
	if p := a.DB.Pool(); p != nil {
		st := p.Stat()
		return telemetry.DBPoolStats{
			InUse: int(st.AcquiredConns()), Idle: int(st.IdleConns()), Max: int(st.MaxConns()),
			Waits: st.EmptyAcquireCount(), WaitTime: st.EmptyAcquireWaitTime(),
		}
	}
	st := a.DB.DB().Stats()
	return telemetry.DBPoolStats{InUse: st.InUse, Idle: st.Idle, Max: st.MaxOpenConnections, Waits: st.WaitCount, WaitTime: st.WaitDuration}
}

// signingKeySince is when the key that signs new tokens was made.
func (a *App) signingKeySince(ctx context.Context) (time.Time, error) {
	ks, err := a.Ring.List(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var newest time.Time
	for _, k := range ks {
		if k.Active() && k.CreatedAt.After(newest) {
			newest = k.CreatedAt
		}
	}
	return newest, nil
}

// newRisk makes the risk guard of sign-ins and refreshes: the GeoIP
// database and the IP blocklist are opened here, once.
func (a *App) newRisk(cfg *config.Config, log *slog.Logger, now func() time.Time) (*risk.Guard, error) {
	var geo risk.Locator
	if cfg.GeoIPDB != "" {
		g, err := risk.OpenGeoIP(cfg.GeoIPDB)
		if err != nil {
			return nil, fmt.Errorf("config: GATEHOUSE_GEOIP_DB: %w", err)
		}
		a.closers = append(a.closers, func(context.Context) error { return g.Close() })
		geo = g
	} else {
		log.Info("GATEHOUSE_GEOIP_DB is not set: the new_country, new_city and impossible_travel risk factors are off")
	}
	var blocklist *risk.Blocklist
	if cfg.IPBlocklist != "" {
		var err error
		if blocklist, err = risk.OpenBlocklist(cfg.IPBlocklist, now, 0); err != nil {
			return nil, fmt.Errorf("config: GATEHOUSE_IP_BLOCKLIST: %w", err)
		}
	}
	engine := risk.New(a.Cache, geo, blocklist, risk.Options{High: cfg.RiskHigh, Medium: cfg.RiskMedium, Now: now, Logger: log})
	return risk.NewGuard(engine, a.DB, a.Bus, mailer{a.Jobs}, a.Cache, risk.GuardOptions{
		ConfirmURL: strings.TrimRight(cfg.PublicURL, "/") + web.ConfirmSignInPath, ServiceName: cfg.ServiceName, Now: now,
		DenyBlocklisted: cfg.IPBlocklistAction == "deny",
	}), nil
}

// passkeysForPages hides the pages' passkey buttons when passkeys are off.
func passkeysForPages(cfg *config.Config, p *passkey.Service) web.Passkeys {
	if cfg.PasskeysOff {
		return nil
	}
	return p
}

// geoipFeature is the health answer's geoip entry.
func geoipFeature(cfg *config.Config) string {
	if cfg.GeoIPDB == "" {
		return "disabled"
	}
	return "enabled"
}

// newOAuth makes social login with the GATEHOUSE_OAUTH_<NAME>_* providers.
func newOAuth(cfg *config.Config, a *App, now func() time.Time) (*oauth.Service, error) {
	providers := make([]oauth.ProviderConfig, 0, len(cfg.OAuthProviders))
	for _, p := range cfg.OAuthProviders {
		providers = append(providers, oauth.ProviderConfig{Name: p.Name, ClientID: p.ClientID, ClientSecret: p.ClientSecret, Issuer: p.Issuer})
	}
	return oauth.New(a.DB, a.Cache, a.Accounts, a.Bus, providers, oauth.Options{
		CallbackBase: cfg.PublicURL + httpapi.BasePath + "/oauth", Now: now,
		// The hosted pages' social sign-in comes back to them.
		RedirectAllowlist: append(slices.Clone(cfg.OAuthRedirectAllowlist), web.SocialDoneURL(cfg.PublicURL)),
	})
}

// auditPeriodic schedules audit pruning when a retention is set, and on
// PostgreSQL the linking of rows a dead process left unlinked.
func auditPeriodic(cfg *config.Config, dialect store.Dialect) []*river.PeriodicJob {
	var out []*river.PeriodicJob
	if cfg.AuditRetention > 0 {
		out = append(out, audit.PrunePeriodic())
	}
	if dialect == store.Postgres {
		out = append(out, audit.LinkPeriodic())
	}
	return out
}

// newMailSender picks SMTP (behind a circuit breaker) or, without
// GATEHOUSE_SMTP_URL, the development log sender.
func newMailSender(cfg *config.Config, log *slog.Logger) (mail.Sender, error) {
	if cfg.SMTPURL == "" {
		log.Warn("GATEHOUSE_SMTP_URL is not set: emails are written to the log (development only)")
		return mail.NewLogSender(log), nil
	}
	smtp, err := mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_SMTP_URL: %w", err)
	}
	return mail.NewBreaker(smtp, "smtp"), nil
}

// newSMSSender picks Twilio (GATEHOUSE_SMS_PROVIDER=twilio), the
// development log sender, or with none a sender that refuses every
// message (texts queued before SMS was turned off fail for good); sms.New
// puts it behind a circuit breaker.
func newSMSSender(cfg *config.Config, log *slog.Logger) (sms.Sender, error) {
	if cfg.SMSProvider == "none" {
		log.Info("GATEHOUSE_SMS_PROVIDER is none: text messages are off, and SMS cannot be set up as a second factor")
		return sms.SenderFunc(func(context.Context, string, string) error {
			return fmt.Errorf("%w: text messages are off (GATEHOUSE_SMS_PROVIDER=none)", sms.ErrPermanent)
		}), nil
	}
	if cfg.SMSProvider != "twilio" {
		log.Warn("GATEHOUSE_SMS_PROVIDER is log: text messages (login codes) are written to the log (development only)")
		return sms.NewLogSender(log), nil
	}
	tw, err := sms.NewTwilio(cfg.TwilioAPI, cfg.TwilioSID, cfg.TwilioToken, cfg.TwilioFrom, 0)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_TWILIO_*: %w", err)
	}
	return tw, nil
}

// newRateLimiter picks the limiter: none when GATEHOUSE_RATE_LIMIT_ENABLED
// is false; with Redis, Redis shared by every instance (in-process while
// Redis fails); else in-process, on the services' clock.
func newRateLimiter(cfg *config.Config, c cache.Cache, m *telemetry.Metrics, log *slog.Logger, now func() time.Time) ratelimit.Limiter {
	if !cfg.RateLimitEnabled {
		log.Warn("GATEHOUSE_RATE_LIMIT_ENABLED is false: no request is rate limited")
		return nil
	}
	local := ratelimit.NewMemory(ratelimit.WithClock(now))
	if r, ok := c.(*cache.Redis); ok {
		return ratelimit.NewFallback(ratelimit.NewRedis(r.Client(), r.Prefix()), local,
			ratelimit.FallbackOptions{Logger: log, Registerer: m.Registry(), PrimaryDown: r.Degraded})
	}
	return local
}

// passwordPolicy turns the configured policy into the account service's
// check.
func passwordPolicy(cfg *config.Config) account.PasswordPolicy {
	p := password.DefaultPolicy()
	p.MinLength, p.MaxLength, p.MinStrength = cfg.PasswordMinLength, cfg.PasswordMaxLength, cfg.PasswordMinStrength
	p.CheckCommon = cfg.PasswordCheckCommon
	p.RequireUpper, p.RequireLower = cfg.PasswordRequireUpper, cfg.PasswordRequireLower
	p.RequireDigit, p.RequireSymbol = cfg.PasswordRequireDigit, cfg.PasswordRequireSymbol
	return func(pw string, personal ...string) []string {
		var reasons []string
		for _, v := range p.Check(pw, personal...) {
			reasons = append(reasons, v.Message)
		}
		return reasons
	}
}

// mailer enqueues templated emails as jobs in the caller's transaction.
type mailer struct{ jobs *jobs.Client }

func (m mailer) SendTx(ctx context.Context, tx store.Tx, to, template string, data map[string]any) error {
	return mail.Enqueue(ctx, m.jobs, tx, to, template, data)
}

// Close releases everything in reverse order of construction.
func (a *App) Close(ctx context.Context) {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i](ctx))
	}
	if err := errors.Join(errs...); err != nil && a.Log != nil {
		a.Log.Error("shutdown", "err", err)
	}
}

// Serve runs until ctx ends (SIGINT/SIGTERM), then shuts down gracefully:
// stop accepting, finish in-flight requests, stop the workers, close the
// stores. A clean shutdown returns nil.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := httpapi.NewHTTPServer(ln.Addr().String(), a.HTTP.Handler())
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	// Shutdown does not wait for upgraded connections: close the sockets
	// (1001, going away) as it starts, so clients reconnect elsewhere.
	srv.RegisterOnShutdown(func() { _ = a.Notify.Close() })
	if a.Worker != nil {
		if err := a.Worker.Start(context.WithoutCancel(ctx)); err != nil {
			a.Close(context.Background())
			return err
		}
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
		a.Log.Info("shutting down", "timeout", a.Config.ShutdownTimeout.String())
	case err = <-serveErr:
		err = fmt.Errorf("http server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		a.Log.Error("http shutdown", "err", serr)
	}
	if a.Worker != nil {
		if jerr := a.Worker.Stop(sctx); jerr != nil {
			a.Log.Error("jobs shutdown", "err", jerr)
		}
	}
	a.Close(sctx)
	if err == nil {
		a.Log.Info("stopped")
	}
	return err
}
