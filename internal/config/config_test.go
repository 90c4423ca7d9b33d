package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/joho/godotenv"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/config"
)

func load(t *testing.T, kv ...string) (*config.Config, error) {
	t.Helper()
	m := map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir()}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return config.FromMap(m)
}

func TestDefaults(t *testing.T) {
	cfg, err := load(t)
	require.NoError(t, err)
	require.Equal(t, ":8080", cfg.Addr)
	require.Equal(t, "http://localhost:8080", cfg.PublicURL)
	require.Equal(t, "sqlite", cfg.Database.Dialect)
	require.Equal(t, filepath.Join(cfg.DataDir, "gatehouse.db"), cfg.Database.DSN)
	require.Equal(t, 15*time.Minute, cfg.AccessTokenTTL)
	require.Equal(t, 720*time.Hour, cfg.RefreshTokenTTL)
	require.Equal(t, 5, cfg.LockoutThreshold)
	require.Equal(t, 15*time.Minute, cfg.LockoutDuration)
	require.True(t, cfg.RateLimitEnabled)
	require.True(t, cfg.AutoMigrate)
	require.Equal(t, 20, cfg.DatabaseMaxConns)
	require.Equal(t, "Gatehouse <no-reply@localhost>", cfg.MailFrom)
	require.Equal(t, "https://api.twilio.com", cfg.TwilioAPI)
	require.Nil(t, cfg.MasterKey)
	require.False(t, cfg.TracingEnabled)
	require.Equal(t, "localhost", cfg.WebAuthnRPID)
	require.Equal(t, []string{"http://localhost:8080"}, cfg.WebAuthnOrigins)
	require.Equal(t, "Gatehouse", cfg.WebAuthnRPName)
	require.Equal(t, "gatehouse", cfg.TokenClientID)
}

func TestWebAuthnSettings(t *testing.T) {
	cfg, err := load(t, "GATEHOUSE_PUBLIC_URL", "https://auth.example.com/base/", "GATEHOUSE_SERVICE_NAME", "Acme")
	require.NoError(t, err)
	require.Equal(t, "auth.example.com", cfg.WebAuthnRPID)
	require.Equal(t, []string{"https://auth.example.com"}, cfg.WebAuthnOrigins)
	require.Equal(t, "Acme", cfg.WebAuthnRPName)

	cfg, err = load(t, "GATEHOUSE_PUBLIC_URL", "https://auth.example.com", "GATEHOUSE_WEBAUTHN_RP_ID", "Example.com",
		"GATEHOUSE_WEBAUTHN_ORIGINS", "https://auth.example.com, https://app.example.com/", "GATEHOUSE_WEBAUTHN_RP_NAME", "Example")
	require.NoError(t, err)
	require.Equal(t, "example.com", cfg.WebAuthnRPID)
	require.Equal(t, []string{"https://auth.example.com", "https://app.example.com"}, cfg.WebAuthnOrigins)
	require.Equal(t, "Example", cfg.WebAuthnRPName)
}

// Each bad value stops start-up with one line naming the variable, the
// problem and an example.
func TestBadValuesNameTheVariable(t *testing.T) {
	cases := []struct {
		kv   []string
		want []string
	}{
		{[]string{"GATEHOUSE_DATABASE_URL", "mysql://x"}, []string{"GATEHOUSE_DATABASE_URL", "unknown database scheme \"mysql\"", "example:"}},
		{[]string{"GATEHOUSE_DATABASE_URL", "nonsense"}, []string{"GATEHOUSE_DATABASE_URL", "no scheme"}},
		{[]string{"GATEHOUSE_ACCESS_TOKEN_TTL", "fifteen"}, []string{"GATEHOUSE_ACCESS_TOKEN_TTL", "not a valid duration", "example: 15m"}},
		{[]string{"GATEHOUSE_ACCESS_TOKEN_TTL", "-1m"}, []string{"GATEHOUSE_ACCESS_TOKEN_TTL", "positive"}},
		{[]string{"GATEHOUSE_LOCKOUT_THRESHOLD", "many"}, []string{"GATEHOUSE_LOCKOUT_THRESHOLD", "whole number"}},
		{[]string{"GATEHOUSE_RATE_LIMIT_ENABLED", "perhaps"}, []string{"GATEHOUSE_RATE_LIMIT_ENABLED", "boolean"}},
		{[]string{"GATEHOUSE_SECRET_KEY", "short"}, []string{"GATEHOUSE_SECRET_KEY", "at least 32", "openssl rand"}},
		{[]string{"GATEHOUSE_PUBLIC_URL", "localhost"}, []string{"GATEHOUSE_PUBLIC_URL", "absolute"}},
		{[]string{"GATEHOUSE_ADDR", "8080"}, []string{"GATEHOUSE_ADDR", "host:port"}},
		{[]string{"GATEHOUSE_REDIS_URL", "http://x"}, []string{"GATEHOUSE_REDIS_URL", "scheme"}},
		{[]string{"GATEHOUSE_LOG_LEVEL", "loud"}, []string{"GATEHOUSE_LOG_LEVEL"}},
		{[]string{"GATEHOUSE_LOG_FORMAT", "xml"}, []string{"GATEHOUSE_LOG_FORMAT"}},
		{[]string{"GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/33"}, []string{"GATEHOUSE_TRUSTED_PROXIES"}},
		{[]string{"GATEHOUSE_CORS_ORIGINS", "*"}, []string{"GATEHOUSE_CORS_ORIGINS", "wildcard"}},
		{[]string{"GATEHOUSE_SMS_PROVIDER", "twilio"}, []string{"GATEHOUSE_SMS_PROVIDER", "GATEHOUSE_TWILIO_ACCOUNT_SID"}},
		{[]string{"GATEHOUSE_SMTP_URL", "mail.example.com"}, []string{"GATEHOUSE_SMTP_URL"}},
		{[]string{"GATEHOUSE_RSA_KEY_BITS", "1024"}, []string{"GATEHOUSE_RSA_KEY_BITS"}},
		{[]string{"GATEHOUSE_REFRESH_TOKEN_TTL", "1m"}, []string{"GATEHOUSE_REFRESH_TOKEN_TTL"}},
		{[]string{"GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST", "/relative"}, []string{"GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST"}},
		{[]string{"GATEHOUSE_RATE_LIMIT_LOGIN", "20"}, []string{"GATEHOUSE_RATE_LIMIT_LOGIN", "<count>/<window>", "example: 20/1m"}},
		{[]string{"GATEHOUSE_RATE_LIMIT_API", "0/1m"}, []string{"GATEHOUSE_RATE_LIMIT_API", "count from 1"}},
		{[]string{"GATEHOUSE_RATE_LIMIT_EMAIL", "5/forever"}, []string{"GATEHOUSE_RATE_LIMIT_EMAIL", "window from 1s to 24h"}},
		{[]string{"GATEHOUSE_RATE_LIMIT_MFA", "5/1ms"}, []string{"GATEHOUSE_RATE_LIMIT_MFA", "window"}},
		{[]string{"GATEHOUSE_WEBAUTHN_RP_ID", "https://example.com"}, []string{"GATEHOUSE_WEBAUTHN_RP_ID", "not a domain"}},
		{[]string{"GATEHOUSE_WEBAUTHN_ORIGINS", "https://evil.example"}, []string{"GATEHOUSE_WEBAUTHN_ORIGINS", "not within", "example:"}},
		{[]string{"GATEHOUSE_TOKEN_CLIENT_ID", "my app"}, []string{"GATEHOUSE_TOKEN_CLIENT_ID", "without spaces", "example: gatehouse"}},
		{[]string{"GATEHOUSE_WEBAUTHN_ORIGINS", "localhost"}, []string{"GATEHOUSE_WEBAUTHN_ORIGINS", "not an origin"}},
	}
	for _, c := range cases {
		t.Run(c.kv[0]+"="+c.kv[1], func(t *testing.T) {
			_, err := load(t, c.kv...)
			require.Error(t, err)
			msg := err.Error()
			require.NotContains(t, msg, "\n", "one line")
			for _, w := range c.want {
				require.Contains(t, msg, w)
			}
		})
	}
}

func TestDatabaseURLForms(t *testing.T) {
	cfg, err := load(t, "GATEHOUSE_DATABASE_URL", "postgres://u:secretpw@db:5432/gh?sslmode=disable")
	require.NoError(t, err)
	require.Equal(t, "postgres", cfg.Database.Dialect)

	cfg, err = load(t, "GATEHOUSE_DATABASE_URL", "sqlite:///var/lib/gh/gh.db")
	require.NoError(t, err)
	require.Equal(t, config.Database{Dialect: "sqlite", DSN: "/var/lib/gh/gh.db"}, cfg.Database)

	// A socket directory and a keyword string are PostgreSQL too.
	for _, dsn := range []string{"postgres:///gh?host=/run/postgresql", "postgresql://u@/gh?host=/tmp", "host=db user=gh password=secretpw dbname=gh"} {
		cfg, err = load(t, "GATEHOUSE_DATABASE_URL", dsn)
		require.NoError(t, err, dsn)
		require.Equal(t, config.Database{Dialect: "postgres", DSN: dsn}, cfg.Database)
	}

	// Whatever is wrong, passwords never appear in messages.
	for _, dsn := range []string{
		"postgres://u:secretpw@db:notaport/x",
		"postgres://db/x?password=secretpw&port=notaport",
		"host=db password=secretpw port=notaport",
		"secretpw",
	} {
		_, err = load(t, "GATEHOUSE_DATABASE_URL", dsn)
		require.ErrorContains(t, err, "GATEHOUSE_DATABASE_URL", dsn)
		require.NotContains(t, err.Error(), "secretpw", dsn)
	}
	_, err = load(t, "GATEHOUSE_REDIS_URL", "http://u:secretpw@cache:6379/?password=secretpw")
	require.ErrorContains(t, err, "GATEHOUSE_REDIS_URL")
	require.NotContains(t, err.Error(), "secretpw")
}

func TestSecretFromFileAndMasterKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	secret := strings.Repeat("k", 40)
	require.NoError(t, os.WriteFile(path, []byte(secret+"\n"), 0o600))
	cfg, err := load(t, "GATEHOUSE_SECRET_KEY_FILE", path)
	require.NoError(t, err)
	require.Equal(t, secret, cfg.SecretKey)
	require.Len(t, cfg.MasterKey, 32)
	require.Equal(t, config.DeriveMasterKey(secret), cfg.MasterKey)

	_, err = load(t, "GATEHOUSE_SECRET_KEY_FILE", filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "GATEHOUSE_SECRET_KEY_FILE")

	// The plain variable wins over the file.
	other := strings.Repeat("z", 32)
	cfg, err = load(t, "GATEHOUSE_SECRET_KEY_FILE", path, "GATEHOUSE_SECRET_KEY", other)
	require.NoError(t, err)
	require.Equal(t, other, cfg.SecretKey)
}

// GATEHOUSE_SECRET_KEY_OLD (or its _FILE) gives the previous master key
// during a rotation; alone, or equal to the new key, it is refused.
func TestOldMasterKey(t *testing.T) {
	newKey, oldKey := strings.Repeat("n", 40), strings.Repeat("o", 40)
	cfg, err := load(t, "GATEHOUSE_SECRET_KEY", newKey)
	require.NoError(t, err)
	require.Nil(t, cfg.OldMasterKey)

	path := filepath.Join(t.TempDir(), "old")
	require.NoError(t, os.WriteFile(path, []byte(oldKey+"\n"), 0o600))
	cfg, err = load(t, "GATEHOUSE_SECRET_KEY", newKey, "GATEHOUSE_SECRET_KEY_OLD_FILE", path)
	require.NoError(t, err)
	require.Equal(t, config.DeriveMasterKey(oldKey), cfg.OldMasterKey)
	require.Equal(t, config.DeriveMasterKey(newKey), cfg.MasterKey)

	_, err = load(t, "GATEHOUSE_SECRET_KEY_OLD", oldKey)
	require.ErrorContains(t, err, "GATEHOUSE_SECRET_KEY_OLD: is set but GATEHOUSE_SECRET_KEY is not")
	_, err = load(t, "GATEHOUSE_SECRET_KEY", newKey, "GATEHOUSE_SECRET_KEY_OLD", newKey)
	require.ErrorContains(t, err, "GATEHOUSE_SECRET_KEY_OLD: equals GATEHOUSE_SECRET_KEY")
}

func TestDevMasterKeyIsGeneratedOnceAndKept(t *testing.T) {
	cfg, err := load(t)
	require.NoError(t, err)
	dev, err := cfg.EnsureMasterKey()
	require.NoError(t, err)
	require.True(t, dev)
	require.Len(t, cfg.MasterKey, 32)
	info, err := os.Stat(filepath.Join(cfg.DataDir, config.DevKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	again, err := config.FromMap(map[string]string{"GATEHOUSE_DATA_DIR": cfg.DataDir})
	require.NoError(t, err)
	_, err = again.EnsureMasterKey()
	require.NoError(t, err)
	require.Equal(t, cfg.MasterKey, again.MasterKey, "restart keeps the key")

	withKey, err := load(t, "GATEHOUSE_SECRET_KEY", strings.Repeat("a", 32))
	require.NoError(t, err)
	dev, err = withKey.EnsureMasterKey()
	require.NoError(t, err)
	require.False(t, dev)
}

func TestTrustedProxiesAndLookup(t *testing.T) {
	cfg, err := load(t, "GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.10,::1",
		"GATEHOUSE_OAUTH_GOOGLE_CLIENT_ID", "abc", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	require.NoError(t, err)
	require.Len(t, cfg.TrustedCIDRs, 3)
	require.Equal(t, "192.168.1.10/32", cfg.TrustedCIDRs[1].String())
	v, ok := cfg.Lookup("OAUTH_GOOGLE_CLIENT_ID")
	require.True(t, ok)
	require.Equal(t, "abc", v)
	require.Equal(t, "abc", cfg.Environ()["OAUTH_GOOGLE_CLIENT_ID"])
	require.True(t, cfg.TracingEnabled)
}

func TestTracingSettings(t *testing.T) {
	cfg, err := load(t)
	require.NoError(t, err)
	require.False(t, cfg.TracingEnabled)
	require.Equal(t, 1.0, cfg.TraceSampleRatio)
	require.Equal(t, 10, cfg.LogSamplePerSecond)

	cfg, err = load(t, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", "GATEHOUSE_TRACE_SAMPLE_RATIO", "0.25",
		"OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, tenant=t1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "tenant=t2",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500")
	require.NoError(t, err)
	require.True(t, cfg.TracingEnabled)
	require.Equal(t, 0.25, cfg.TraceSampleRatio)
	require.Equal(t, config.Tracing{Endpoint: "http://collector:4318/v1/traces",
		Headers: map[string]string{"api-key": "a b", "tenant": "t2"}, Gzip: true, Timeout: 2500 * time.Millisecond}, cfg.Tracing)

	cfg, err = load(t, "OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://b/custom")
	require.NoError(t, err)
	require.Equal(t, "https://b/custom", cfg.Tracing.Endpoint, "the traces endpoint is used as given")

	for _, bad := range [][]string{
		{"GATEHOUSE_TRACE_SAMPLE_RATIO", "1.5"}, {"GATEHOUSE_TRACE_SAMPLE_RATIO", "-0.1"},
		{"GATEHOUSE_LOG_SAMPLE_PER_SECOND", "-1"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"}, {"OTEL_EXPORTER_OTLP_HEADERS", "novalue"},
		{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"}, {"OTEL_EXPORTER_OTLP_TIMEOUT", "soon"},
	} {
		_, err := load(t, bad...)
		require.Error(t, err, "%v", bad)
		require.Contains(t, err.Error(), bad[0])
	}
}

func TestLoadReadsDotEnvButRealVariablesWin(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile(".env", []byte("GATEHOUSE_ADDR=:9999\nGATEHOUSE_LOG_LEVEL=debug\n"), 0o600))
	t.Setenv("GATEHOUSE_LOG_LEVEL", "warn")
	t.Setenv("GATEHOUSE_DATA_DIR", dir)
	cfg, err := config.Load()
	require.NoError(t, err)
	require.Equal(t, ":9999", cfg.Addr)
	require.Equal(t, "warn", cfg.LogLevel)
}

// .env.example documents every variable with its default, and those
// defaults are the ones the code applies.
func TestEnvExampleDocumentsEveryVariable(t *testing.T) {
	example, err := godotenv.Read("../../.env.example")
	require.NoError(t, err)
	defaults, err := load(t)
	require.NoError(t, err)
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" || name == "-" {
			continue
		}
		full := config.Prefix + name
		v, ok := example[full]
		require.True(t, ok, "%s is missing from .env.example", full)
		if def, has := f.Tag.Lookup("envDefault"); has {
			require.Equal(t, def, v, "%s default differs between code and .env.example", full)
		} else {
			require.Empty(t, v, "%s has no default in code", full)
		}
	}
	require.NotNil(t, defaults)
}

func TestRateLimits(t *testing.T) {
	cfg, err := load(t)
	require.NoError(t, err)
	require.Equal(t, config.RateLimit{Count: 20, Window: time.Minute}, cfg.RateLimitLogin)
	require.Equal(t, config.RateLimit{Count: 10, Window: time.Hour}, cfg.RateLimitRegister)
	require.Equal(t, config.RateLimit{Count: 5, Window: time.Hour}, cfg.RateLimitEmail)
	require.Equal(t, config.RateLimit{Count: 30, Window: time.Minute}, cfg.RateLimitMFA)
	require.Equal(t, config.RateLimit{Count: 600, Window: time.Minute}, cfg.RateLimitAPI)

	cfg, err = load(t, "GATEHOUSE_RATE_LIMIT_LOGIN", " 3 / 90s ", "GATEHOUSE_RATE_LIMIT_ENABLED", "false")
	require.NoError(t, err)
	require.Equal(t, config.RateLimit{Count: 3, Window: 90 * time.Second}, cfg.RateLimitLogin)
	require.Equal(t, "3/1m30s", cfg.RateLimitLogin.String())
	require.False(t, cfg.RateLimitEnabled)
}

// production is a configuration GATEHOUSE_ENV=production accepts; each
// case of TestProductionRefusesUnsafeSettings spoils one setting of it.
func production() []string {
	return []string{
		"GATEHOUSE_ENV", "production",
		"GATEHOUSE_PUBLIC_URL", "https://auth.example.com",
		"GATEHOUSE_SECRET_KEY", strings.Repeat("s", 40),
		"GATEHOUSE_SMTP_URL", "smtp://mail.example.com:587",
		"GATEHOUSE_SMS_PROVIDER", "none",
	}
}

func with(kv []string, more ...string) []string { return append(append([]string{}, kv...), more...) }

// API.md "Production mode": start-up stops with one line naming the
// setting when the public URL is not https, the master key would be
// generated, mail or SMS go to the log, rate limits are off or webhooks
// may reach private addresses.
func TestProductionRefusesUnsafeSettings(t *testing.T) {
	check := func(t *testing.T, kv ...string) error {
		cfg, err := load(t, kv...)
		if err != nil {
			return err
		}
		return cfg.CheckProduction()
	}
	cfg, err := load(t, production()...)
	require.NoError(t, err)
	require.True(t, cfg.Production())
	require.NoError(t, cfg.CheckProduction())
	dev, err := load(t)
	require.NoError(t, err)
	require.False(t, dev.Production(), "development is the default")
	require.NoError(t, dev.CheckProduction())

	cases := []struct {
		name string
		kv   []string
		want string
	}{
		{"http public URL", with(production(), "GATEHOUSE_PUBLIC_URL", "http://auth.example.com"), "GATEHOUSE_PUBLIC_URL"},
		{"generated master key", with(production(), "GATEHOUSE_SECRET_KEY", ""), "GATEHOUSE_SECRET_KEY"},
		{"mail to the log", with(production(), "GATEHOUSE_SMTP_URL", ""), "GATEHOUSE_SMTP_URL"},
		{"sms to the log", with(production(), "GATEHOUSE_SMS_PROVIDER", "log"), "GATEHOUSE_SMS_PROVIDER"},
		{"rate limits off", with(production(), "GATEHOUSE_RATE_LIMIT_ENABLED", "false"), "GATEHOUSE_RATE_LIMIT_ENABLED"},
		{"private webhooks", with(production(), "GATEHOUSE_WEBHOOK_ALLOW_PRIVATE", "true"), "GATEHOUSE_WEBHOOK_ALLOW_PRIVATE"},
		{"unknown environment", []string{"GATEHOUSE_ENV", "prod"}, "GATEHOUSE_ENV"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := check(t, c.kv...)
			require.Error(t, err)
			msg := err.Error()
			require.NotContains(t, msg, "\n", "one line")
			require.True(t, strings.HasPrefix(msg, "config: "+c.want+":"), "the line names the setting first: %s", msg)
		})
	}
	// Development allows all of it.
	require.NoError(t, check(t, "GATEHOUSE_RATE_LIMIT_ENABLED", "false", "GATEHOUSE_WEBHOOK_ALLOW_PRIVATE", "true", "GATEHOUSE_SMS_PROVIDER", "log"))
	// Twilio is fine in production; the key may come from a file.
	key := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(key, []byte(strings.Repeat("k", 40)+"\n"), 0o600))
	require.NoError(t, check(t, with(production(), "GATEHOUSE_SECRET_KEY", "", "GATEHOUSE_SECRET_KEY_FILE", key,
		"GATEHOUSE_SMS_PROVIDER", "twilio", "GATEHOUSE_TWILIO_ACCOUNT_SID", "AC1", "GATEHOUSE_TWILIO_AUTH_TOKEN", "t", "GATEHOUSE_TWILIO_FROM", "+15005550006")...))
}

// A public URL whose host is an IP address never stops start-up: passkeys
// are off, unless GATEHOUSE_WEBAUTHN_RP_ID names a domain.
func TestIPPublicURLTurnsPasskeysOff(t *testing.T) {
	for _, public := range []string{"http://127.0.0.1:8080", "https://203.0.113.7", "http://[::1]:8080", "https://[2001:db8::1]/auth"} {
		cfg, err := load(t, "GATEHOUSE_PUBLIC_URL", public)
		require.NoError(t, err, public)
		require.True(t, cfg.PasskeysOff, public)
		cfg, err = load(t, with(production(), "GATEHOUSE_PUBLIC_URL", strings.Replace(public, "http:", "https:", 1))...)
		require.NoError(t, err, "production too: %s", public)
		require.True(t, cfg.PasskeysOff, public)
	}
	cfg, err := load(t, "GATEHOUSE_PUBLIC_URL", "https://auth.example.com")
	require.NoError(t, err)
	require.False(t, cfg.PasskeysOff)

	cfg, err = load(t, "GATEHOUSE_PUBLIC_URL", "https://203.0.113.7", "GATEHOUSE_WEBAUTHN_RP_ID", "example.com",
		"GATEHOUSE_WEBAUTHN_ORIGINS", "https://auth.example.com")
	require.NoError(t, err)
	require.False(t, cfg.PasskeysOff, "an RP id turns them on")
	require.Equal(t, "example.com", cfg.WebAuthnRPID)

	_, err = load(t, "GATEHOUSE_PUBLIC_URL", "https://203.0.113.7", "GATEHOUSE_WEBAUTHN_RP_ID", "203.0.113.7")
	require.ErrorContains(t, err, "GATEHOUSE_WEBAUTHN_RP_ID")
	require.ErrorContains(t, err, "IP address")
}

func TestBootstrapAdminSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	for content, want := range map[string]string{
		"correct horse battery staple\n":   "correct horse battery staple",
		"correct horse battery staple\r\n": "correct horse battery staple",
		"correct horse battery staple":     "correct horse battery staple",
		"  spaced pass phrase  \n\n":       "  spaced pass phrase  \n",
	} {
		cfg, err := load(t, "GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", "Root@Example.COM", "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE", write("pw", content))
		require.NoError(t, err)
		require.Equal(t, want, cfg.BootstrapAdminPassword, "one trailing newline is dropped, nothing else")
		require.Equal(t, "root@example.com", cfg.BootstrapAdminEmail)
	}
	cfg, err := load(t)
	require.NoError(t, err)
	require.Empty(t, cfg.BootstrapAdminEmail)

	secret := write("secret", "hunter2-not-in-messages\n")
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", "root@example.com"}, "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE"},
		{[]string{"GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE", secret}, "GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL"},
		{[]string{"GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", "not an email", "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE", secret}, "GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL"},
		{[]string{"GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", "root@example.com", "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE", filepath.Join(dir, "missing")}, "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE"},
		{[]string{"GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", "root@example.com", "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE", write("empty", "\n")}, "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE"},
	} {
		_, err := load(t, c.kv...)
		require.ErrorContains(t, err, c.want, c.kv)
		require.NotContains(t, err.Error(), "hunter2", "the password is never in a message")
		require.NotContains(t, err.Error(), "\n")
	}
}

func TestSMSProviderNone(t *testing.T) {
	cfg, err := load(t, "GATEHOUSE_SMS_PROVIDER", "none")
	require.NoError(t, err)
	require.Equal(t, "none", cfg.SMSProvider)
	_, err = load(t, "GATEHOUSE_SMS_PROVIDER", "carrier-pigeon")
	require.ErrorContains(t, err, "log, twilio or none")
}
