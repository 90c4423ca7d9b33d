// Package config loads and validates Gatehouse's settings. It is the only
// package that reads the environment: variables named GATEHOUSE_*, a .env
// file in the working directory (real variables win), and NAME_FILE
// variants for secrets. Validation names the variable, what is wrong and an
// example of a good value, so a bad start-up stops with one clear line.
package config

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/joho/godotenv"

	"github.com/gatehouse-auth/gatehouse"
)

// Config is every setting, typed. Field tags name the variables; defaults
// are those documented in API.md and .env.example.
type Config struct {
	// Env is "development" or "production"; production refuses to start
	// on settings that are only safe on a developer's machine.
	Env         string `env:"ENV" envDefault:"development"`
	Addr        string `env:"ADDR" envDefault:":8080"`
	PublicURL   string `env:"PUBLIC_URL" envDefault:"http://localhost:8080"`
	DataDir     string `env:"DATA_DIR" envDefault:"./data"`
	DatabaseURL string `env:"DATABASE_URL"`
	// DatabaseMaxConns caps the PostgreSQL pool (SQLite always uses one
	// connection: River and SQLite share it without lock errors).
	DatabaseMaxConns int `env:"DATABASE_MAX_CONNS" envDefault:"20"`
	// DatabaseStatementTimeout is PostgreSQL's statement_timeout for the
	// server's connections (0 keeps the database's own); a statement
	// cancelled by it answers 503. Migrations and CLI commands run without.
	DatabaseStatementTimeout time.Duration `env:"DATABASE_STATEMENT_TIMEOUT" envDefault:"15s"`
	// DatabasePoolTimeout bounds the wait for a free PostgreSQL connection
	// when every one is busy; a request that waits longer answers 503.
	DatabasePoolTimeout time.Duration `env:"DATABASE_POOL_TIMEOUT" envDefault:"10s"`
	AutoMigrate         bool          `env:"AUTO_MIGRATE" envDefault:"true"`
	RedisURL            string        `env:"REDIS_URL"`
	RedisPrefix         string        `env:"REDIS_PREFIX"`
	SecretKey           string        `env:"SECRET_KEY"`
	// SecretKeyOld is the previous master key during a master key
	// rotation: secrets sealed under it still open (see OldMasterKey).
	SecretKeyOld string `env:"SECRET_KEY_OLD"`

	SMTPURL     string `env:"SMTP_URL"`
	MailFrom    string `env:"MAIL_FROM" envDefault:"Gatehouse <no-reply@localhost>"`
	SMSProvider string `env:"SMS_PROVIDER" envDefault:"log"`
	TwilioSID   string `env:"TWILIO_ACCOUNT_SID"`
	TwilioToken string `env:"TWILIO_AUTH_TOKEN"`
	TwilioFrom  string `env:"TWILIO_FROM"`
	TwilioAPI   string `env:"TWILIO_API_URL" envDefault:"https://api.twilio.com"`

	OAuthRedirectAllowlist []string `env:"OAUTH_REDIRECT_ALLOWLIST" envSeparator:","`
	// MagicLinkURL is the page emailed sign-in links open (?token= is
	// appended); empty means the built-in page under PublicURL.
	MagicLinkURL string `env:"MAGIC_LINK_URL"`

	// WebAuthn (passkeys): the relying party id (a domain; default the
	// host of PUBLIC_URL), the origins browsers may run ceremonies from
	// (default PUBLIC_URL's origin) and the name shown by authenticators
	// (default SERVICE_NAME).
	WebAuthnRPID    string   `env:"WEBAUTHN_RP_ID"`
	WebAuthnOrigins []string `env:"WEBAUTHN_ORIGINS" envSeparator:","`
	WebAuthnRPName  string   `env:"WEBAUTHN_RP_NAME"`

	AccessTokenTTL   time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshTokenTTL  time.Duration `env:"REFRESH_TOKEN_TTL" envDefault:"720h"`
	LockoutThreshold int           `env:"LOCKOUT_THRESHOLD" envDefault:"5"`
	LockoutDuration  time.Duration `env:"LOCKOUT_DURATION" envDefault:"15m"`

	// SessionIdleTimeout ends a session unused this long (0 disables).
	SessionIdleTimeout time.Duration `env:"SESSION_IDLE_TIMEOUT" envDefault:"168h"`
	// TokenAudience is the access tokens' aud; empty means PublicURL.
	TokenAudience string `env:"TOKEN_AUDIENCE"`
	// TokenClientID is the client_id (RFC 9068) of access tokens issued to
	// Gatehouse's own API clients; tokens issued to an OAuth client carry
	// that client's id instead.
	TokenClientID string `env:"TOKEN_CLIENT_ID" envDefault:"gatehouse"`
	// EmailVerifyURL and PasswordResetURL are the pages emailed links open
	// (the token is appended as ?token=); empty means the built-in pages
	// under PublicURL.
	EmailVerifyURL   string `env:"EMAIL_VERIFY_URL"`
	PasswordResetURL string `env:"PASSWORD_RESET_URL"`

	// Argon2id parameters (OWASP defaults); changing them rehashes each
	// password at its next successful login.
	Argon2Memory      uint32 `env:"ARGON2_MEMORY_KIB" envDefault:"19456"`
	Argon2Iterations  uint32 `env:"ARGON2_ITERATIONS" envDefault:"2"`
	Argon2Parallelism uint8  `env:"ARGON2_PARALLELISM" envDefault:"1"`
	// Password policy.
	PasswordMinLength     int  `env:"PASSWORD_MIN_LENGTH" envDefault:"12"`
	PasswordMaxLength     int  `env:"PASSWORD_MAX_LENGTH" envDefault:"128"`
	PasswordMinStrength   int  `env:"PASSWORD_MIN_STRENGTH" envDefault:"3"`
	PasswordCheckCommon   bool `env:"PASSWORD_CHECK_COMMON" envDefault:"true"`
	PasswordRequireUpper  bool `env:"PASSWORD_REQUIRE_UPPER" envDefault:"false"`
	PasswordRequireLower  bool `env:"PASSWORD_REQUIRE_LOWER" envDefault:"false"`
	PasswordRequireDigit  bool `env:"PASSWORD_REQUIRE_DIGIT" envDefault:"false"`
	PasswordRequireSymbol bool `env:"PASSWORD_REQUIRE_SYMBOL" envDefault:"false"`

	// CacheLocalSize bounds each in-process cache (sessions vouched for,
	// users, verified access tokens) in entries; 0 turns them off.
	CacheLocalSize int `env:"CACHE_LOCAL_SIZE" envDefault:"100000"`

	RateLimitEnabled    bool     `env:"RATE_LIMIT_ENABLED" envDefault:"true"`
	TrustedProxies      []string `env:"TRUSTED_PROXIES" envSeparator:","`
	GeoIPDB             string   `env:"GEOIP_DB"`
	IPBlocklist         string   `env:"IP_BLOCKLIST"`
	WebhookAllowPrivate bool     `env:"WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
	CORSOrigins         []string `env:"CORS_ORIGINS" envSeparator:","`
	// WebhookDeliveryRetention is how long finished webhook delivery
	// records (with their attempts) are kept; at least an hour.
	WebhookDeliveryRetention time.Duration `env:"WEBHOOK_DELIVERY_RETENTION" envDefault:"720h"`

	// Rate limits (API.md "Rate limits"), each <count>/<window>.
	RateLimitLogin    RateLimit `env:"RATE_LIMIT_LOGIN" envDefault:"20/1m"`
	RateLimitRegister RateLimit `env:"RATE_LIMIT_REGISTER" envDefault:"10/1h"`
	RateLimitEmail    RateLimit `env:"RATE_LIMIT_EMAIL" envDefault:"5/1h"`
	RateLimitMFA      RateLimit `env:"RATE_LIMIT_MFA" envDefault:"30/1m"`
	RateLimitAPI      RateLimit `env:"RATE_LIMIT_API" envDefault:"600/1m"`

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
	// LogSamplePerSecond caps repetitive high-volume log lines (rate-limited
	// requests, overload answers): per message at most this many a second,
	// then one line saying how many were dropped. 0 logs every line.
	LogSamplePerSecond int `env:"LOG_SAMPLE_PER_SECOND" envDefault:"10"`

	// TraceSampleRatio is the share of new traces recorded when tracing is
	// on (0 to 1); requests arriving with a traceparent follow their
	// caller's sampling decision.
	TraceSampleRatio float64 `env:"TRACE_SAMPLE_RATIO" envDefault:"1"`

	// RSAKeyBits is the size of new signing keys.
	RSAKeyBits int `env:"RSA_KEY_BITS" envDefault:"2048"`
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"1048576"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
	// ServiceName is shown to users (TOTP issuer, email subjects).
	ServiceName string `env:"SERVICE_NAME" envDefault:"Gatehouse"`
	// BrandName, BrandLogo and BrandColor are the hosted pages' look; see
	// Brand, which validate makes of them.
	BrandName  string `env:"BRAND_NAME"`
	BrandLogo  string `env:"BRAND_LOGO"`
	BrandColor string `env:"BRAND_COLOR"`
	// AuditRetention is how long audit rows are kept before the prune job
	// exports and deletes them; 0 keeps them forever.
	AuditRetention time.Duration `env:"AUDIT_RETENTION" envDefault:"0"`
	// AuditExportDir receives the pruned rows; empty means
	// DATA_DIR/audit-export.
	AuditExportDir string `env:"AUDIT_EXPORT_DIR"`
	// DeviceMaxAge removes devices unused this long.
	DeviceMaxAge time.Duration `env:"DEVICE_MAX_AGE" envDefault:"2160h"`
	// RiskHigh and RiskMedium are the risk score thresholds: from RiskHigh
	// on, a sign-in must step up and raises a security alert.
	RiskHigh   int `env:"RISK_HIGH" envDefault:"70"`
	RiskMedium int `env:"RISK_MEDIUM" envDefault:"40"`
	// IPBlocklistAction is what a sign-in from an address on IP_BLOCKLIST
	// gets: step_up (an MFA challenge or an emailed confirmation) or deny.
	IPBlocklistAction string `env:"IP_BLOCKLIST_ACTION" envDefault:"step_up"`

	// BootstrapAdminEmail and BootstrapAdminPasswordFile make the first
	// administrator at start-up when no account holds the admin role (for
	// containers, which have no terminal to run `gatehouse users create`).
	BootstrapAdminEmail        string `env:"BOOTSTRAP_ADMIN_EMAIL"`
	BootstrapAdminPasswordFile string `env:"BOOTSTRAP_ADMIN_PASSWORD_FILE"`

	// Derived by Load; not read from the environment.
	// BootstrapAdminPassword is the content of BootstrapAdminPasswordFile
	// without one trailing newline. Never log it.
	BootstrapAdminPassword string `env:"-"`
	// PasskeysOff is true when the public URL's host is an IP address and
	// no GATEHOUSE_WEBAUTHN_RP_ID is set: WebAuthn needs a domain.
	PasskeysOff  bool           `env:"-"`
	Database     Database       `env:"-"`
	TrustedCIDRs []netip.Prefix `env:"-"`
	MasterKey    []byte         `env:"-"`
	// OldMasterKey is derived from SecretKeyOld; nil when it is unset.
	OldMasterKey []byte `env:"-"`
	GeneratedKey bool   `env:"-"` // the master key was made for dev
	// TracingEnabled is true when an OTLP endpoint is configured through the
	// standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables.
	TracingEnabled bool `env:"-"`
	// Tracing is the OTLP exporter's settings from the standard
	// OTEL_EXPORTER_OTLP_* variables (endpoint, headers, compression,
	// timeout); only OTLP over HTTP with protobuf is spoken.
	Tracing     Tracing           `env:"-"`
	Brand       Brand             `env:"-"`
	environment map[string]string `env:"-"`

	// OAuthProviders are the social login providers configured with
	// GATEHOUSE_OAUTH_<NAME>_CLIENT_ID, _CLIENT_SECRET and _ISSUER, by name.
	OAuthProviders []OAuthProvider `env:"-"`
}

// Tracing is where spans are exported.
type Tracing struct {
	// Endpoint is the full URL spans are POSTed to:
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or
	// OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended.
	Endpoint string
	// Headers are OTEL_EXPORTER_OTLP_HEADERS, then
	// OTEL_EXPORTER_OTLP_TRACES_HEADERS (key=value,... URL-encoded values).
	Headers map[string]string
	// Gzip is OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION=gzip.
	Gzip bool
	// Timeout is OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT (milliseconds).
	Timeout time.Duration
}

// Database is the parsed GATEHOUSE_DATABASE_URL.
type Database struct {
	Dialect string // "sqlite" or "postgres"
	// DSN is what the driver opens: a file path for SQLite, the URL for
	// PostgreSQL.
	DSN string
}

// Prefix is prepended to every variable name.
const Prefix = "GATEHOUSE_"

// secretVars may be given as NAME_FILE pointing at a file holding the value.
var secretVars = []string{
	"SECRET_KEY", "SECRET_KEY_OLD", "DATABASE_URL", "REDIS_URL", "SMTP_URL", "TWILIO_AUTH_TOKEN",
}

// examples are shown with a validation error.
var examples = map[string]string{
	"ADDR": ":8080", "PUBLIC_URL": "https://auth.example.com",
	"DATABASE_URL": "postgres://user:pass@localhost:5432/gatehouse or sqlite:///var/lib/gatehouse/gatehouse.db",
	"REDIS_URL":    "redis://localhost:6379/0", "SECRET_KEY": "the output of: openssl rand -base64 32",
	"ACCESS_TOKEN_TTL": "15m", "REFRESH_TOKEN_TTL": "720h", "LOCKOUT_DURATION": "15m",
	"LOCKOUT_THRESHOLD": "5", "SHUTDOWN_TIMEOUT": "20s", "RSA_KEY_BITS": "2048",
	"DATABASE_MAX_CONNS": "20", "MAX_BODY_BYTES": "1048576", "LOG_LEVEL": "info",
	"LOG_FORMAT": "json", "SMS_PROVIDER": "log", "TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.10",
	"CORS_ORIGINS": "https://app.example.com", "SMTP_URL": "smtp://user:pass@mail.example.com:587?tls=starttls",
	"RATE_LIMIT_ENABLED": "true", "AUTO_MIGRATE": "true", "WEBHOOK_ALLOW_PRIVATE": "false",
	"SESSION_IDLE_TIMEOUT": "168h", "EMAIL_VERIFY_URL": "https://app.example.com/verify-email",
	"PASSWORD_RESET_URL": "https://app.example.com/reset-password", "ARGON2_MEMORY_KIB": "19456",
	"PASSWORD_MIN_LENGTH": "12", "PASSWORD_MIN_STRENGTH": "3",
	"RATE_LIMIT_LOGIN": "20/1m", "RATE_LIMIT_REGISTER": "10/1h", "RATE_LIMIT_EMAIL": "5/1h",
	"RATE_LIMIT_MFA": "30/1m", "RATE_LIMIT_API": "600/1m", "WEBHOOK_DELIVERY_RETENTION": "720h (30 days)",
	"AUDIT_RETENTION": "8760h (a year) or 0 to keep forever",
	"MAGIC_LINK_URL":  "https://app.example.com/magic-link", "TOKEN_CLIENT_ID": "gatehouse",
	"WEBAUTHN_RP_ID": "example.com", "WEBAUTHN_ORIGINS": "https://auth.example.com,https://app.example.com",

	"DEVICE_MAX_AGE": "2160h (90 days)", "RISK_HIGH": "70", "RISK_MEDIUM": "40",
	"GEOIP_DB": "/var/lib/GeoIP/GeoLite2-City.mmdb", "IP_BLOCKLIST": "/etc/gatehouse/blocklist.txt",

	"TRACE_SAMPLE_RATIO": "0.1", "LOG_SAMPLE_PER_SECOND": "10",
	"ENV": "production", "BOOTSTRAP_ADMIN_EMAIL": "admin@example.com",
	"BOOTSTRAP_ADMIN_PASSWORD_FILE": "/run/secrets/gatehouse-admin-password",
}

// Error is a configuration problem with the variable it concerns.
type Error struct {
	Var     string // full name, e.g. GATEHOUSE_ACCESS_TOKEN_TTL
	Problem string
	Example string
}

func (e *Error) Error() string {
	if e.Example == "" {
		return fmt.Sprintf("config: %s: %s", e.Var, e.Problem)
	}
	return fmt.Sprintf("config: %s: %s (example: %s)", e.Var, e.Problem, e.Example)
}

func invalid(name, problem string) *Error {
	return &Error{Var: Prefix + name, Problem: problem, Example: examples[name]}
}

// Load reads the process environment and ./.env.
func Load() (*Config, error) {
	dotenv, err := godotenv.Read(".env")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config: read .env: %w", err)
	}
	environ := map[string]string{}
	for k, v := range dotenv {
		environ[k] = v
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			environ[k] = v
		}
	}
	return FromMap(environ)
}

// FromMap builds a Config from explicit variables (tests use it directly).
func FromMap(environ map[string]string) (*Config, error) {
	vars := make(map[string]string, len(environ))
	for k, v := range environ {
		vars[k] = v
	}
	for _, name := range secretVars {
		full := Prefix + name
		path, ok := vars[full+"_FILE"]
		if !ok || path == "" || vars[full] != "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &Error{Var: full + "_FILE", Problem: fmt.Sprintf("cannot read %q: %v", path, errors.Unwrap(err))}
		}
		vars[full] = strings.TrimRight(string(b), "\r\n")
	}
	cfg := &Config{environment: vars}
	cfg.TracingEnabled = vars["OTEL_EXPORTER_OTLP_ENDPOINT"] != "" || vars["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != ""
	if err := cfg.Tracing.load(vars); err != nil {
		return nil, err
	}
	if err := env.ParseWithOptions(cfg, env.Options{Prefix: Prefix, Environment: vars}); err != nil {
		return nil, explainParse(err)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Lookup returns a raw variable (without the prefix), for capability
// settings whose names are dynamic, such as GATEHOUSE_OAUTH_<NAME>_*.
func (c *Config) Lookup(name string) (string, bool) {
	v, ok := c.environment[Prefix+name]
	return v, ok
}

// Environ returns every GATEHOUSE_ variable with its prefix removed.
func (c *Config) Environ() map[string]string {
	out := map[string]string{}
	for k, v := range c.environment {
		if rest, ok := strings.CutPrefix(k, Prefix); ok {
			out[rest] = v
		}
	}
	return out
}

func explainParse(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) || len(agg.Errors) == 0 {
		return fmt.Errorf("config: %w", err)
	}
	var pe env.ParseError
	if errors.As(agg.Errors[0], &pe) {
		name := envName(pe.Name)
		problem := "not a valid " + kind(pe.Type)
		if pe.Type == reflect.TypeFor[time.Duration]() {
			problem = "not a valid duration (use units such as s, m, h)"
		}
		if pe.Type == reflect.TypeFor[RateLimit]() {
			problem = pe.Err.Error()
		}
		return invalid(name, problem)
	}
	return fmt.Errorf("config: %w", agg.Errors[0])
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.Int, reflect.Int64:
		return "whole number"
	default:
		return t.String()
	}
}

// envName finds the variable name (without prefix) of a Config field.
func envName(field string) string {
	f, ok := reflect.TypeFor[Config]().FieldByName(field)
	if !ok {
		return field
	}
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
}

func (c *Config) validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return invalid("ADDR", fmt.Sprintf("%q is not host:port", c.Addr))
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("PUBLIC_URL", fmt.Sprintf("%q is not an absolute http(s) URL", c.PublicURL))
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.DataDir == "" {
		return invalid("DATA_DIR", "must not be empty")
	}
	db, err := ParseDatabaseURL(c.DatabaseURL, c.DataDir)
	if err != nil {
		return invalid("DATABASE_URL", err.Error())
	}
	c.Database = db
	if c.DatabaseMaxConns < 1 {
		return invalid("DATABASE_MAX_CONNS", "must be at least 1")
	}
	if c.DatabaseStatementTimeout < 0 {
		return invalid("DATABASE_STATEMENT_TIMEOUT", "must not be negative (0 keeps the database's own setting), e.g. 15s")
	}
	if c.DatabasePoolTimeout <= 0 {
		return invalid("DATABASE_POOL_TIMEOUT", "must be positive, e.g. 10s")
	}
	if c.CacheLocalSize < 0 {
		return invalid("CACHE_LOCAL_SIZE", "must not be negative (0 turns the in-process caches off), e.g. 100000")
	}
	if c.RedisURL != "" {
		ru, err := url.Parse(c.RedisURL)
		if err != nil || (ru.Scheme != "redis" && ru.Scheme != "rediss" && ru.Scheme != "redis-sentinel") {
			return invalid("REDIS_URL", fmt.Sprintf("scheme must be redis, rediss or redis-sentinel, got %q", redact(c.RedisURL)))
		}
	}
	if c.SecretKey != "" {
		if len(c.SecretKey) < 32 {
			return invalid("SECRET_KEY", fmt.Sprintf("is %d characters; at least 32 are required", len(c.SecretKey)))
		}
		c.MasterKey = DeriveMasterKey(c.SecretKey)
	}
	if err := c.validateOldKey(); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ACCESS_TOKEN_TTL", c.AccessTokenTTL}, {"REFRESH_TOKEN_TTL", c.RefreshTokenTTL}, {"LOCKOUT_DURATION", c.LockoutDuration}, {"SHUTDOWN_TIMEOUT", c.ShutdownTimeout}} {
		if d.v <= 0 {
			return invalid(d.name, "must be a positive duration")
		}
	}
	if c.AccessTokenTTL > 24*time.Hour {
		return invalid("ACCESS_TOKEN_TTL", "must be at most 24h; use refresh tokens for long sessions")
	}
	if c.RefreshTokenTTL < c.AccessTokenTTL {
		return invalid("REFRESH_TOKEN_TTL", "must not be shorter than GATEHOUSE_ACCESS_TOKEN_TTL")
	}
	if c.SessionIdleTimeout < 0 || (c.SessionIdleTimeout > 0 && c.SessionIdleTimeout < time.Minute) {
		// Sessions are vouched for in the cache for a minute at a time, so
		// a shorter idle timeout could not be enforced precisely.
		return invalid("SESSION_IDLE_TIMEOUT", "must be 0 (off) or at least 1m")
	}
	if c.TokenAudience == "" {
		c.TokenAudience = c.PublicURL
	}
	if c.TokenClientID == "" || len(c.TokenClientID) > 255 || strings.ContainsFunc(c.TokenClientID, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalid("TOKEN_CLIENT_ID", "must be 1 to 255 characters without spaces or control characters")
	}
	if c.EmailVerifyURL == "" {
		c.EmailVerifyURL = c.PublicURL + "/verify-email"
	}
	if c.PasswordResetURL == "" {
		c.PasswordResetURL = c.PublicURL + "/reset-password"
	}
	for name, v := range map[string]string{"EMAIL_VERIFY_URL": c.EmailVerifyURL, "PASSWORD_RESET_URL": c.PasswordResetURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid(name, fmt.Sprintf("%q is not an absolute http(s) URL", v))
		}
	}
	if c.Argon2Memory < 8*uint32(max(c.Argon2Parallelism, 1)) || c.Argon2Iterations < 1 || c.Argon2Parallelism < 1 {
		return invalid("ARGON2_MEMORY_KIB", "Argon2id needs memory ≥ 8 KiB per lane, at least 1 iteration and 1 lane")
	}
	if c.PasswordMinLength < 8 || c.PasswordMaxLength < c.PasswordMinLength || c.PasswordMaxLength > 1024 {
		return invalid("PASSWORD_MIN_LENGTH", "needs 8 ≤ GATEHOUSE_PASSWORD_MIN_LENGTH ≤ GATEHOUSE_PASSWORD_MAX_LENGTH ≤ 1024")
	}
	if c.PasswordMinStrength < 0 || c.PasswordMinStrength > 4 {
		return invalid("PASSWORD_MIN_STRENGTH", "must be a score from 0 to 4")
	}
	if c.LockoutThreshold < 1 {
		return invalid("LOCKOUT_THRESHOLD", "must be at least 1")
	}
	if c.AuditRetention < 0 || (c.AuditRetention > 0 && c.AuditRetention < 24*time.Hour) {
		return invalid("AUDIT_RETENTION", "must be 0 (keep forever) or at least 24h")
	}
	if c.WebhookDeliveryRetention < time.Hour {
		return invalid("WEBHOOK_DELIVERY_RETENTION", "must be at least 1h")
	}
	if c.AuditExportDir == "" {
		c.AuditExportDir = filepath.Join(c.DataDir, "audit-export")
	}
	if c.DeviceMaxAge < 24*time.Hour {
		return invalid("DEVICE_MAX_AGE", "must be at least 24h")
	}
	if c.RiskHigh < 1 || c.RiskHigh > 100 {
		return invalid("RISK_HIGH", "must be a score from 1 to 100")
	}
	if c.RiskMedium < 1 || c.RiskMedium >= c.RiskHigh {
		return invalid("RISK_MEDIUM", "must be at least 1 and below GATEHOUSE_RISK_HIGH")
	}
	if c.IPBlocklistAction != "step_up" && c.IPBlocklistAction != "deny" {
		return invalid("IP_BLOCKLIST_ACTION", fmt.Sprintf("%q is not step_up or deny", c.IPBlocklistAction))
	}
	for name, path := range map[string]string{"GEOIP_DB": c.GeoIPDB, "IP_BLOCKLIST": c.IPBlocklist} {
		if path == "" {
			continue
		}
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			return invalid(name, "must name a readable file")
		}
	}
	if c.RSAKeyBits < 2048 || c.RSAKeyBits > 8192 || c.RSAKeyBits%1024 != 0 {
		return invalid("RSA_KEY_BITS", "must be 2048, 3072, 4096 ... 8192")
	}
	if c.MaxBodyBytes < 1024 {
		return invalid("MAX_BODY_BYTES", "must be at least 1024")
	}
	if c.TraceSampleRatio < 0 || c.TraceSampleRatio > 1 || math.IsNaN(c.TraceSampleRatio) {
		return invalid("TRACE_SAMPLE_RATIO", "must be between 0 and 1")
	}
	if c.LogSamplePerSecond < 0 {
		return invalid("LOG_SAMPLE_PER_SECOND", "must be 0 (log every line) or more")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return invalid("LOG_LEVEL", fmt.Sprintf("%q is not one of debug, info, warn, error", c.LogLevel))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return invalid("LOG_FORMAT", fmt.Sprintf("%q is not json or text", c.LogFormat))
	}
	switch c.SMSProvider {
	case "log", "none":
	case "twilio":
		if c.TwilioSID == "" || c.TwilioToken == "" || c.TwilioFrom == "" {
			return &Error{Var: Prefix + "SMS_PROVIDER", Problem: "twilio needs GATEHOUSE_TWILIO_ACCOUNT_SID, GATEHOUSE_TWILIO_AUTH_TOKEN and GATEHOUSE_TWILIO_FROM"}
		}
	default:
		return invalid("SMS_PROVIDER", fmt.Sprintf("%q is not log, twilio or none", c.SMSProvider))
	}
	if c.SMTPURL != "" {
		su, err := url.Parse(c.SMTPURL)
		if err != nil || (su.Scheme != "smtp" && su.Scheme != "smtps") || su.Hostname() == "" {
			return invalid("SMTP_URL", "is not an smtp:// URL with a host")
		}
	}
	for _, p := range c.TrustedProxies {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		prefix, err := parsePrefix(p)
		if err != nil {
			return invalid("TRUSTED_PROXIES", fmt.Sprintf("%q is not an IP or CIDR", p))
		}
		c.TrustedCIDRs = append(c.TrustedCIDRs, prefix)
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			return invalid("CORS_ORIGINS", "a wildcard cannot be combined with credentials; list the origins")
		}
		ou, err := url.Parse(o)
		if err != nil || ou.Scheme == "" || ou.Host == "" {
			return invalid("CORS_ORIGINS", fmt.Sprintf("%q is not an origin like https://app.example.com", o))
		}
	}
	if err := c.validateWebAuthn(u); err != nil {
		return err
	}
	for _, r := range c.OAuthRedirectAllowlist {
		ru, err := url.Parse(r)
		if err != nil || ru.Scheme == "" || ru.Host == "" {
			return invalid("OAUTH_REDIRECT_ALLOWLIST", fmt.Sprintf("%q is not an absolute URL prefix", r))
		}
	}
	if c.MagicLinkURL == "" {
		c.MagicLinkURL = c.PublicURL + "/magic-link"
	}
	if u, err := url.Parse(c.MagicLinkURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid("MAGIC_LINK_URL", fmt.Sprintf("%q is not an absolute http(s) URL", c.MagicLinkURL))
	}
	providers, err := parseOAuthProviders(c.environment)
	if err != nil {
		return err
	}
	c.OAuthProviders = providers
	if err := c.readBootstrapAdmin(); err != nil {
		return err
	}
	if err := c.validateBrand(); err != nil {
		return err
	}
	if c.Env != "development" && c.Env != "production" {
		return invalid("ENV", fmt.Sprintf("%q is not development or production", c.Env))
	}
	return nil
}

// Production reports whether GATEHOUSE_ENV is production.
func (c *Config) Production() bool { return c.Env == "production" }

// CheckProduction refuses, under GATEHOUSE_ENV=production, the settings
// that are conveniences on a developer's machine and holes on a server,
// naming the first such variable; it answers nil in development. `serve`
// calls it before anything starts; one-shot commands (migrate, keys,
// users) run with what they are given, as a migration job's environment
// may rightly lack the mail server.
func (c *Config) CheckProduction() error {
	if !c.Production() {
		return nil
	}
	public, err := url.Parse(c.PublicURL)
	if err != nil {
		return invalid("PUBLIC_URL", "is not a URL") // validate parsed it already
	}
	refuse := func(name, problem string) error {
		e := invalid(name, problem+" (GATEHOUSE_ENV=production)")
		if name == "SMS_PROVIDER" {
			e.Example = "twilio"
		}
		return e
	}
	switch {
	case public.Scheme != "https":
		return refuse("PUBLIC_URL", "must be an https URL in production: tokens, cookies and links would travel in clear")
	case c.SecretKey == "":
		return refuse("SECRET_KEY", "must be given in production (or GATEHOUSE_SECRET_KEY_FILE): a generated key lies next to the data it protects")
	case c.SMTPURL == "":
		return refuse("SMTP_URL", "must be set in production: emails, with their sign-in links, would only be written to the log")
	case c.SMSProvider == "log":
		return refuse("SMS_PROVIDER", "must be twilio, or none to turn text messages off, in production: log writes login codes to the log")
	case !c.RateLimitEnabled:
		return refuse("RATE_LIMIT_ENABLED", "must be true in production")
	case c.WebhookAllowPrivate:
		return refuse("WEBHOOK_ALLOW_PRIVATE", "must be false in production: it lets webhooks reach internal addresses")
	}
	return nil
}

// readBootstrapAdmin checks the bootstrap admin settings and reads the
// password file, dropping one trailing newline (what echo and most
// editors add) and nothing else. Errors never quote the file's content.
func (c *Config) readBootstrapAdmin() error {
	switch {
	case c.BootstrapAdminEmail == "" && c.BootstrapAdminPasswordFile == "":
		return nil
	case c.BootstrapAdminEmail == "":
		return invalid("BOOTSTRAP_ADMIN_EMAIL", "is required when GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE is set")
	case c.BootstrapAdminPasswordFile == "":
		return invalid("BOOTSTRAP_ADMIN_PASSWORD_FILE", "is required when GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL is set")
	}
	email, err := gatehouse.ParseEmail(c.BootstrapAdminEmail)
	if err != nil {
		return invalid("BOOTSTRAP_ADMIN_EMAIL", fmt.Sprintf("%q is not an email address", c.BootstrapAdminEmail))
	}
	c.BootstrapAdminEmail = email.String()
	b, err := os.ReadFile(c.BootstrapAdminPasswordFile)
	if err != nil {
		return invalid("BOOTSTRAP_ADMIN_PASSWORD_FILE", fmt.Sprintf("cannot read %q: %v", c.BootstrapAdminPasswordFile, errors.Unwrap(err)))
	}
	pw := string(b)
	if rest, ok := strings.CutSuffix(pw, "\n"); ok {
		pw = strings.TrimSuffix(rest, "\r") // one newline, LF or CRLF
	}
	if pw == "" {
		return invalid("BOOTSTRAP_ADMIN_PASSWORD_FILE", fmt.Sprintf("%q is empty", c.BootstrapAdminPasswordFile))
	}
	c.BootstrapAdminPassword = pw
	return nil
}

// OAuthProvider is one social login provider from
// GATEHOUSE_OAUTH_<NAME>_CLIENT_ID, _CLIENT_SECRET and _ISSUER.
type OAuthProvider struct {
	// Name is <NAME> in lower case: the {provider} of the API paths.
	Name     string
	ClientID string
	// ClientSecret may be empty for a public client, which PKCE alone
	// protects.
	ClientSecret string
	// Issuer is the OpenID Connect issuer (discovery at
	// Issuer/.well-known/openid-configuration); for github, the base URL
	// of both its web and API endpoints. Empty for google, microsoft and
	// github means their public endpoints; required for any other name.
	Issuer string
}

// KnownOAuthProviders need no GATEHOUSE_OAUTH_<NAME>_ISSUER.
var KnownOAuthProviders = []string{"github", "google", "microsoft"}

// parseOAuthProviders scans the environment for GATEHOUSE_OAUTH_<NAME>_*
// and answers the providers sorted by name.
func parseOAuthProviders(vars map[string]string) ([]OAuthProvider, error) {
	byName := map[string]*OAuthProvider{}
	var names []string
	for k, v := range vars {
		rest, ok := strings.CutPrefix(k, Prefix+"OAUTH_")
		if !ok {
			continue
		}
		for _, suffix := range []string{"_CLIENT_ID", "_CLIENT_SECRET", "_ISSUER"} {
			name, ok := strings.CutSuffix(rest, suffix)
			if !ok || name == "" {
				continue
			}
			p := byName[name]
			if p == nil {
				p = &OAuthProvider{Name: strings.ToLower(name)}
				byName[name] = p
				names = append(names, name)
			}
			v = strings.TrimSpace(v)
			switch suffix {
			case "_CLIENT_ID":
				p.ClientID = v
			case "_CLIENT_SECRET":
				p.ClientSecret = v
			default:
				p.Issuer = strings.TrimRight(v, "/")
			}
			break
		}
	}
	slices.Sort(names)
	out := make([]OAuthProvider, 0, len(names))
	for _, name := range names {
		p, pre := *byName[name], "OAUTH_"+name
		for _, r := range name {
			if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
				return nil, &Error{Var: Prefix + pre + "_CLIENT_ID", Problem: "the provider name may hold only A-Z, 0-9 and _"}
			}
		}
		if p.ClientID == "" {
			return nil, &Error{Var: Prefix + pre + "_CLIENT_ID", Problem: "is required when any GATEHOUSE_" + pre + "_* is set"}
		}
		if p.Issuer == "" && !slices.Contains(KnownOAuthProviders, p.Name) {
			return nil, &Error{Var: Prefix + pre + "_ISSUER", Problem: "is required for a provider other than " +
				strings.Join(KnownOAuthProviders, ", "), Example: "https://idp.example.com"}
		}
		if u, err := url.Parse(p.Issuer); p.Issuer != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			return nil, &Error{Var: Prefix + pre + "_ISSUER", Problem: fmt.Sprintf("%q is not an absolute http(s) URL", p.Issuer),
				Example: "https://idp.example.com"}
		}
		out = append(out, p)
	}
	return out, nil
}

// validateWebAuthn fills the WebAuthn defaults from the public URL and
// checks that every origin lies within the relying party id, as browsers
// require (an origin's host is the id or a subdomain of it). A public URL
// whose host is an IP address turns passkeys off rather than stopping
// start-up (PasskeysOff; the app warns): WebAuthn needs a domain, and a
// server reached by address can do everything else.
func (c *Config) validateWebAuthn(public *url.URL) error {
	if c.WebAuthnRPName == "" {
		c.WebAuthnRPName = c.ServiceName
	}
	if c.WebAuthnRPID == "" {
		if _, err := netip.ParseAddr(public.Hostname()); err == nil {
			c.PasskeysOff = true
			return nil
		}
		c.WebAuthnRPID = public.Hostname()
	}
	c.WebAuthnRPID = strings.ToLower(c.WebAuthnRPID)
	if strings.ContainsAny(c.WebAuthnRPID, ":/ ") {
		return invalid("WEBAUTHN_RP_ID", fmt.Sprintf("%q is not a domain (no scheme, port or path)", c.WebAuthnRPID))
	}
	if _, err := netip.ParseAddr(c.WebAuthnRPID); err == nil {
		return invalid("WEBAUTHN_RP_ID", fmt.Sprintf("%q is an IP address; WebAuthn needs a domain", c.WebAuthnRPID))
	}
	var origins []string
	for _, o := range c.WebAuthnOrigins {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			origins = append(origins, o)
		}
	}
	if len(origins) == 0 {
		origins = []string{public.Scheme + "://" + public.Host}
	}
	for _, o := range origins {
		ou, err := url.Parse(o)
		if err != nil || (ou.Scheme != "http" && ou.Scheme != "https") || ou.Host == "" || (ou.Path != "" && ou.Path != "/") {
			return invalid("WEBAUTHN_ORIGINS", fmt.Sprintf("%q is not an origin like https://app.example.com", o))
		}
		h := strings.ToLower(ou.Hostname())
		if h != c.WebAuthnRPID && !strings.HasSuffix(h, "."+c.WebAuthnRPID) {
			return invalid("WEBAUTHN_ORIGINS", fmt.Sprintf("%q is not within GATEHOUSE_WEBAUTHN_RP_ID %q (its host must be that domain or a subdomain)", o, c.WebAuthnRPID))
		}
	}
	c.WebAuthnOrigins = origins
	return nil
}

// RateLimit is a GATEHOUSE_RATE_LIMIT_<NAME> value: Count requests per
// Window, written "<count>/<window>" such as "20/1m" or "10/1h".
type RateLimit struct {
	Count  int
	Window time.Duration
}

// UnmarshalText parses "<count>/<window>": a count from 1 to 1000000 and a
// window from 1s to 24h.
func (l *RateLimit) UnmarshalText(b []byte) error {
	count, window, ok := strings.Cut(strings.TrimSpace(string(b)), "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !ok || err != nil || n < 1 || n > 1_000_000 {
		return fmt.Errorf("%q is not <count>/<window> with a count from 1 to 1000000", b)
	}
	d, err := time.ParseDuration(strings.TrimSpace(window))
	if err != nil || d < time.Second || d > 24*time.Hour {
		return fmt.Errorf("%q needs a window from 1s to 24h, such as 1m or 1h", b)
	}
	*l = RateLimit{Count: n, Window: d}
	return nil
}

// String is the "<count>/<window>" form.
func (l RateLimit) String() string { return fmt.Sprintf("%d/%s", l.Count, l.Window) }

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseDatabaseURL turns GATEHOUSE_DATABASE_URL into a dialect and DSN. An
// empty URL means the SQLite file gatehouse.db in dataDir. PostgreSQL takes
// a URL (a socket directory as ?host=/run/postgresql) or a keyword string
// ("host=db dbname=gh"). Errors never repeat the value: it may hold a
// password.
func ParseDatabaseURL(raw, dataDir string) (Database, error) {
	if raw == "" {
		return Database{Dialect: "sqlite", DSN: filepath.Join(dataDir, "gatehouse.db")}, nil
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if !strings.Contains(raw, "=") {
			return Database{}, errors.New("it has no scheme; use postgres://..., sqlite://... or a PostgreSQL keyword string (host=... dbname=...)")
		}
		if _, err := pgconn.ParseConfig(raw); err != nil {
			return Database{}, errors.New("it is not a valid PostgreSQL keyword string (host=db port=5432 dbname=gh user=gh)")
		}
		return Database{Dialect: "postgres", DSN: raw}, nil
	}
	switch scheme {
	case "postgres", "postgresql":
		if _, err := pgconn.ParseConfig(raw); err != nil {
			return Database{}, errors.New("it is not a valid PostgreSQL URL (postgres://user:password@host:5432/db, or postgres:///db?host=/run/postgresql)")
		}
		return Database{Dialect: "postgres", DSN: raw}, nil
	case "sqlite", "sqlite3", "file":
		path, _, _ := strings.Cut(rest, "?")
		if path == "" {
			return Database{}, errors.New("the sqlite URL names no file")
		}
		return Database{Dialect: "sqlite", DSN: path}, nil
	default:
		return Database{}, fmt.Errorf("unknown database scheme %q; use postgres:// or sqlite://", scheme)
	}
}

// validateOldKey checks GATEHOUSE_SECRET_KEY_OLD: it only makes sense next
// to a new GATEHOUSE_SECRET_KEY, different from it.
func (c *Config) validateOldKey() error {
	switch {
	case c.SecretKeyOld == "":
		return nil
	case c.SecretKey == "":
		return invalid("SECRET_KEY_OLD", "is set but GATEHOUSE_SECRET_KEY is not: give the new master key in GATEHOUSE_SECRET_KEY and the previous one here")
	case c.SecretKeyOld == c.SecretKey:
		return invalid("SECRET_KEY_OLD", "equals GATEHOUSE_SECRET_KEY: it must be the previous master key (or unset once the rotation is done)")
	}
	// Its length is not checked again: it was accepted as the current key.
	c.OldMasterKey = DeriveMasterKey(c.SecretKeyOld)
	return nil
}

// DeriveMasterKey turns the configured secret into the 32-byte AES-256 key
// with HKDF-SHA256, so any sufficiently long string is a usable secret.
func DeriveMasterKey(secret string) []byte {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "gatehouse master key v1", 32)
	if err != nil {
		panic(err) // only on invalid length, which is constant here
	}
	return key
}

// redact hides the password of a URL for messages, and its query, which
// may carry one too.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	u.RawQuery = ""
	return u.Redacted()
}

// load reads the standard OTLP exporter variables; the traces-specific
// ones win over the general ones.
func (t *Tracing) load(vars map[string]string) error {
	pick := func(name string) (string, string) {
		if v := strings.TrimSpace(vars["OTEL_EXPORTER_OTLP_TRACES_"+name]); v != "" {
			return v, "OTEL_EXPORTER_OTLP_TRACES_" + name
		}
		return strings.TrimSpace(vars["OTEL_EXPORTER_OTLP_"+name]), "OTEL_EXPORTER_OTLP_" + name
	}
	if v := strings.TrimSpace(vars["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]); v != "" {
		t.Endpoint = v
	} else if v := strings.TrimSpace(vars["OTEL_EXPORTER_OTLP_ENDPOINT"]); v != "" {
		t.Endpoint = strings.TrimRight(v, "/") + "/v1/traces"
	}
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{Var: "OTEL_EXPORTER_OTLP_ENDPOINT", Problem: fmt.Sprintf("%q is not an http(s) URL (OTLP over HTTP is the only protocol spoken)", t.Endpoint),
				Example: "http://otel-collector:4318"}
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for _, part := range strings.Split(vars[name], ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			k, v, ok := strings.Cut(part, "=")
			k = strings.TrimSpace(k)
			dv, err := url.PathUnescape(strings.TrimSpace(v))
			if !ok || k == "" || err != nil {
				return &Error{Var: name, Problem: "must be comma-separated key=value pairs with URL-encoded values", Example: "api-key=secret,tenant=a"}
			}
			if t.Headers == nil {
				t.Headers = map[string]string{}
			}
			t.Headers[k] = dv
		}
	}
	if v, name := pick("COMPRESSION"); v != "" {
		switch strings.ToLower(v) {
		case "gzip":
			t.Gzip = true
		case "none":
		default:
			return &Error{Var: name, Problem: fmt.Sprintf("%q is not gzip or none", v)}
		}
	}
	if v, name := pick("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return &Error{Var: name, Problem: fmt.Sprintf("%q is not a positive number of milliseconds", v), Example: "10000"}
		}
		t.Timeout = time.Duration(ms) * time.Millisecond
	}
	return nil
}
