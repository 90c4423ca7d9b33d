package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest/risktest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/oauth/oauthtest"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms/smstest"
	"github.com/gatehouse-auth/gatehouse/internal/passkey/passkeytest"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// contractMetrics are the names API.md § Metrics promises (besides Go and
// process metrics), and the operational ones the dashboards and alerts
// read: every one is in the first scrape of a fresh server.
var contractMetrics = []string{
	"http_server_request_duration_seconds",
	"gatehouse_logins_total", "gatehouse_registrations_total", "gatehouse_mfa_verifications_total",
	"gatehouse_lockouts_total", "gatehouse_refresh_total", "gatehouse_sessions_revoked_total",
	"gatehouse_security_alerts_total", "gatehouse_webhook_deliveries_total", "gatehouse_emails_sent_total",
	"gatehouse_sms_sent_total", "gatehouse_rate_limited_total", "gatehouse_password_hash_seconds",
	"gatehouse_circuit_breaker_state",
	// operations
	"http_requests_total", "http_requests_in_flight", "gatehouse_jobs_queued", "gatehouse_jobs_oldest_age_seconds",
	"gatehouse_db_pool_connections", "gatehouse_db_pool_max_connections", "gatehouse_db_pool_waits_total",
	"gatehouse_db_pool_wait_seconds_total", "gatehouse_signing_key_created_timestamp_seconds", "go_goroutines", "process_start_time_seconds",
	"gatehouse_sessions_active", "gatehouse_users", "gatehouse_users_with_mfa",
}

// series is one scrape: the value of every sample, keyed by its name and
// sorted labels (`name{a="1",b="2"}`).
type series map[string]float64

func scrapeMetrics(t require.TestingT, e *apptest.Env) (series, map[string]bool) {
	r := e.Do("GET", "/metrics", nil, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(r.Raw))
	require.NoError(t, err)
	out, names := series{}, map[string]bool{}
	for name, mf := range families {
		names[name] = true
		for _, m := range mf.GetMetric() {
			labels := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			case m.Untyped != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out, names
}

// TestMetricsPresentAtStart: a fresh server's first scrape already has
// every contract metric, its counters at 0, so dashboards and alerts have
// a series to read before anything happened.
func TestMetricsPresentAtStart(t *testing.T) {
	e := apptest.New(t, "sqlite", nil)
	e.Do("GET", "/health/live", nil, "") // one request, so a route has a duration
	got, names := scrapeMetrics(t, e)
	for _, name := range contractMetrics {
		require.True(t, names[name], "%s missing from the first scrape", name)
	}
	require.Zero(t, got[`gatehouse_logins_total{method="password",result="success"}`])
	require.Contains(t, got, `gatehouse_refresh_total{result="reused"}`)
	require.Contains(t, got, `gatehouse_circuit_breaker_state{name="smtp"}`)
	require.Contains(t, got, `gatehouse_jobs_queued{queue="webhooks"}`)
	if out := os.Getenv("GATEHOUSE_METRICS_SCRAPE_OUT"); out != "" {
		// The deploy module checks its dashboards and rules against this.
		r := e.Do("GET", "/metrics", nil, "")
		require.NoError(t, os.WriteFile(out, r.Raw, 0o600))
	}
}

// TestMetricsMoveWithTheirEvents runs a script through the whole server
// (registration, good and bad logins, a lockout, MFA, a refresh and its
// reuse, a webhook delivery, a rate-limited request) and checks each
// counter moved, by the scrape of /metrics.
func TestMetricsMoveWithTheirEvents(t *testing.T) {
	var hooks atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	e := apptest.New(t, "sqlite", map[string]string{
		"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true",
		"GATEHOUSE_RATE_LIMIT_ENABLED":    "true",
		"GATEHOUSE_RATE_LIMIT_REGISTER":   "2/1h",
		"GATEHOUSE_LOCKOUT_THRESHOLD":     "3",
	})
	before, _ := scrapeMetrics(t, e)

	// Registration and its verification email; a good login.
	e.Register("alice@example.com", apptest.StrongPassword)
	e.Mail.WaitFor(t, "alice@example.com", 10*time.Second)
	alice := e.Login("alice@example.com", apptest.StrongPassword)
	hook := e.Do("POST", "/webhooks", map[string]any{"url": receiver.URL + "/hook", "events": []string{"*"}}, alice.Access)
	require.Equal(t, http.StatusCreated, hook.Status, string(hook.Raw))

	// A bad login.
	r := e.Do("POST", "/auth/login", map[string]any{"email": "alice@example.com", "password": "not-the-password-1"}, "")
	apptest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")

	// Refresh, then the spent token again: reuse ends the session.
	r = e.Do("POST", "/auth/refresh", map[string]any{"refresh_token": alice.Refresh}, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = e.Do("POST", "/auth/refresh", map[string]any{"refresh_token": alice.Refresh}, "")
	apptest.Expect(t, r, http.StatusUnauthorized, "refresh_token_reused")

	// MFA: turn TOTP on, then a login meets its challenge, once with a
	// wrong code and once with the right one.
	alice = e.Login("alice@example.com", apptest.StrongPassword)
	r = e.Do("POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, alice.Access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	secret := r.Str("secret")
	code, err := mfa.TOTPCode(secret, e.Clock.Now())
	require.NoError(t, err)
	r = e.Do("POST", "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, alice.Access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	e.Clock.Advance(time.Minute) // the activation's code is spent
	r = e.Do("POST", "/auth/login", map[string]any{"email": "alice@example.com", "password": apptest.StrongPassword}, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, true, r.JSON["mfa_required"], string(r.Raw))
	challenge := r.Str("challenge_id")
	wrong, err := mfa.TOTPCode(secret, e.Clock.Now().Add(time.Hour))
	require.NoError(t, err)
	r = e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": challenge, "code": wrong}, "")
	apptest.Expect(t, r, http.StatusUnauthorized, "mfa_invalid_code")
	code, err = mfa.TOTPCode(secret, e.Clock.Now())
	require.NoError(t, err)
	r = e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": challenge, "code": code}, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = e.Do("POST", "/auth/logout", nil, r.Str("access_token"))
	require.Less(t, r.Status, 300, string(r.Raw))

	// A lockout: three wrong passwords, then the right one is refused.
	e.Register("bob@example.com", apptest.StrongPassword)
	for range 3 {
		r = e.Do("POST", "/auth/login", map[string]any{"email": "bob@example.com", "password": "not-the-password-1"}, "")
		apptest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
	}
	r = e.Do("POST", "/auth/login", map[string]any{"email": "bob@example.com", "password": apptest.StrongPassword}, "")
	apptest.Expect(t, r, http.StatusLocked, "account_locked")

	// Rate limited: the third registration from this address in the hour.
	r = e.Do("POST", "/auth/register", map[string]any{"email": "carol@example.com", "password": apptest.StrongPassword}, "")
	apptest.Expect(t, r, http.StatusTooManyRequests, "rate_limited")

	moved := []string{
		`gatehouse_registrations_total`,
		`gatehouse_logins_total{method="password",result="success"}`,
		`gatehouse_logins_total{method="password",result="failure"}`,
		`gatehouse_logins_total{method="password",result="locked"}`,
		`gatehouse_logins_total{method="password",result="mfa_required"}`,
		`gatehouse_logins_total{method="mfa",result="success"}`,
		`gatehouse_logins_total{method="mfa",result="failure"}`,
		`gatehouse_mfa_verifications_total{method="totp",result="success"}`,
		`gatehouse_mfa_verifications_total{method="totp",result="failure"}`,
		`gatehouse_lockouts_total`,
		`gatehouse_refresh_total{result="success"}`,
		`gatehouse_refresh_total{result="reused"}`,
		`gatehouse_sessions_revoked_total{reason="refresh_token_reused"}`,
		`gatehouse_sessions_revoked_total{reason="logout"}`,
		`gatehouse_webhook_deliveries_total{result="success"}`,
		`gatehouse_emails_sent_total{result="success",template="verify_email"}`,
		`gatehouse_rate_limited_total{limit="register"}`,
		`gatehouse_password_hash_seconds_count`,
		`http_server_request_duration_seconds{method="POST",route="POST /api/v1/auth/login",status="200"}_count`,
	}
	// Deliveries and emails are sent by jobs: wait for them to be counted.
	require.Eventually(t, func() bool {
		after, _ := scrapeMetrics(t, e)
		return after[`gatehouse_webhook_deliveries_total{result="success"}`] > 0 &&
			after[`gatehouse_emails_sent_total{result="success",template="verify_email"}`] > 0
	}, 30*time.Second, 50*time.Millisecond, "webhook delivery and email counted (receiver saw %d posts)", hooks.Load())
	e.Clock.Advance(telemetry.CountsTTL) // past the cache of the counted gauges
	after, _ := scrapeMetrics(t, e)
	requireMoved(t, before, after, moved)
	require.Equal(t, 2.0, after[`gatehouse_registrations_total`]-before[`gatehouse_registrations_total`], "the refused registration is not one")
	require.Equal(t, 1.0, after[`gatehouse_lockouts_total`]-before[`gatehouse_lockouts_total`])

	// The gauges counted in the database: alice and bob (carol was
	// refused), alice with TOTP; of alice's three sessions the first ended
	// by refresh reuse and the third by logout.
	gauges := []string{`gatehouse_users`, `gatehouse_users_with_mfa`, `gatehouse_sessions_active`}
	require.Equal(t, []float64{0, 0, 0}, valuesOf(before, gauges...), "%v at start", gauges)
	require.Equal(t, []float64{2, 1, 1}, valuesOf(after, gauges...), "%v after the script", gauges)

	// No label carries a user's data or a raw path.
	raw := string(e.Do("GET", "/metrics", nil, "").Raw)
	for _, leak := range []string{"alice", "bob", "carol", "example.com", challenge, hook.Str("id")} {
		require.NotContains(t, raw, leak)
	}
	for k := range after {
		if strings.Contains(k, `route="`) {
			require.True(t, strings.Contains(k, `route="unmatched"`) || strings.Contains(k, " /"), k)
			require.False(t, slices.ContainsFunc([]string{hook.Str("id")}, func(s string) bool { return strings.Contains(k, s) }), k)
		}
	}
}

// valuesOf answers the samples of these keys, in order (0 for a missing one).
func valuesOf(s series, keys ...string) []float64 {
	out := make([]float64, len(keys))
	for i, k := range keys {
		out[i] = s[k]
	}
	return out
}

// TestMetricsMoveForEverySignInMethod runs the sign-ins the first script
// does not through the whole server, with fake OAuth providers, a fake
// Twilio and the test city database: a social sign-in, a magic link (and
// the spent link again), a passkey, SMS as the second factor (texts sent,
// a wrong and a right code), and a sign-in from a new country that raises
// a security alert. Each counter moves under its labels.
func TestMetricsMoveForEverySignInMethod(t *testing.T) {
	tw := smstest.Start(t)
	e := newOAuthEnvWith(t, "sqlite", func(*oauthEnv) map[string]string {
		return map[string]string{
			"GATEHOUSE_SMS_PROVIDER": "twilio", "GATEHOUSE_TWILIO_ACCOUNT_SID": tw.SID, "GATEHOUSE_TWILIO_AUTH_TOKEN": tw.Token,
			"GATEHOUSE_TWILIO_FROM": smstest.From, "GATEHOUSE_TWILIO_API_URL": tw.URL(),
			"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1", "GATEHOUSE_GEOIP_DB": risktest.CityDB(t),
		}
	})
	before, _ := scrapeMetrics(t, e.Env)

	// A social sign-in, creating the account.
	e.google.SetUser(oauthtest.Identity{Subject: "g-metrics", Email: "social@example.com", EmailVerified: true})
	r := e.login(t, "google", "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))

	// A magic link, then the same link again.
	e.Register("link@example.com", apptest.StrongPassword)
	require.Equal(t, http.StatusAccepted, e.Do("POST", "/auth/magic-link", map[string]any{"email": "link@example.com"}, "").Status)
	var tok string
	for tok == "" { // past the verification email
		tok = apptest.TokenFromLink(e.Mail.WaitFor(t, "link@example.com", 10*time.Second).Text, "http://gatehouse.test/magic-link")
	}
	r = e.Do("GET", "/auth/magic-link/verify?token="+url.QueryEscape(tok), nil, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = e.Do("GET", "/auth/magic-link/verify?token="+url.QueryEscape(tok), nil, "")
	require.GreaterOrEqual(t, r.Status, 400, string(r.Raw))

	// A passkey: registered by a signed-in user, then used to sign in.
	e.Register("passkey@example.com", apptest.StrongPassword)
	pk := e.Login("passkey@example.com", apptest.StrongPassword)
	a := passkeytest.New("http://gatehouse.test")
	cred, _, err := a.Create(passkeyOptions(t, e.Do("POST", "/auth/webauthn/register/begin", nil, pk.Access)))
	require.NoError(t, err)
	r = e.Do("POST", "/auth/webauthn/register/finish", map[string]any{"credential": json.RawMessage(cred)}, pk.Access)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	begin := e.Do("POST", "/auth/webauthn/authenticate/begin", map[string]any{"email": "passkey@example.com"}, "")
	assertion, err := a.Get(passkeyOptions(t, begin), nil)
	require.NoError(t, err)
	r = e.Do("POST", "/auth/webauthn/authenticate/finish",
		map[string]any{"challenge_id": begin.Str("challenge_id"), "credential": json.RawMessage(assertion)}, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))

	// SMS as the second factor: the setup texts a code; a sign-in texts
	// another, met once with a wrong code and once with the right one.
	const phone = "+14155550123"
	e.Register("sms@example.com", apptest.StrongPassword)
	sms := e.Login("sms@example.com", apptest.StrongPassword)
	r = e.Do("POST", "/auth/mfa/setup", map[string]any{"method": "sms", "phone_number": phone}, sms.Access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = e.Do("POST", "/auth/mfa/activate", map[string]any{"method": "sms", "code": smstest.CodeFrom(tw.WaitMessage(phone).Body)}, sms.Access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = e.Do("POST", "/auth/login", map[string]any{"email": "sms@example.com", "password": apptest.StrongPassword}, "")
	require.Equal(t, true, r.JSON["mfa_required"], string(r.Raw))
	challenge := r.Str("challenge_id")
	code := smstest.CodeFrom(tw.WaitMessage(phone).Body)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	r = e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": challenge, "method": "sms", "code": wrong}, "")
	apptest.Expect(t, r, http.StatusUnauthorized, "mfa_invalid_code")
	r = e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": challenge, "method": "sms", "code": code}, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))

	// A sign-in from Berlin, then two days later from New York: a new
	// country, which raises a security alert.
	e.Register("traveller@example.com", apptest.StrongPassword)
	for _, city := range []risktest.City{risktest.Berlin, risktest.NewYork} {
		e.Header = http.Header{"X-Forwarded-For": {city.IP}}
		r = e.Do("POST", "/auth/login", map[string]any{"email": "traveller@example.com", "password": apptest.StrongPassword}, "")
		e.Header = nil
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		e.Clock.Advance(48 * time.Hour)
	}

	moved := []string{
		`gatehouse_logins_total{method="oauth",result="success"}`,
		`gatehouse_logins_total{method="magic_link",result="success"}`,
		`gatehouse_logins_total{method="magic_link",result="failure"}`,
		`gatehouse_logins_total{method="passkey",result="success"}`,
		`gatehouse_logins_total{method="password",result="mfa_required"}`,
		`gatehouse_logins_total{method="mfa",result="success"}`,
		`gatehouse_logins_total{method="mfa",result="failure"}`,
		`gatehouse_mfa_verifications_total{method="sms",result="success"}`,
		`gatehouse_mfa_verifications_total{method="sms",result="failure"}`,
		`gatehouse_sms_sent_total{result="success"}`,
		`gatehouse_security_alerts_total{factor="new_country"}`,
		`gatehouse_emails_sent_total{result="success",template="magic_link"}`,
	}
	var after series
	require.Eventually(t, func() bool { // texts and emails are sent by jobs
		after, _ = scrapeMetrics(t, e.Env)
		return after[`gatehouse_sms_sent_total{result="success"}`]-before[`gatehouse_sms_sent_total{result="success"}`] >= 2 &&
			after[`gatehouse_emails_sent_total{result="success",template="magic_link"}`] > 0
	}, 30*time.Second, 50*time.Millisecond)
	requireMoved(t, before, after, moved)
	require.Zero(t, after[`gatehouse_logins_total{method="oauth",result="failure"}`])
	require.Zero(t, after[`gatehouse_sms_sent_total{result="failure"}`])
	raw := string(e.Do("GET", "/metrics", nil, "").Raw)
	for _, leak := range []string{"example.com", phone, "g-metrics", challenge} {
		require.NotContains(t, raw, leak)
	}
}

// passkeyOptions re-encodes a begin answer's options for the test
// authenticator.
func passkeyOptions(t *testing.T, r *apptest.Response) []byte {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	var body struct {
		Options json.RawMessage `json:"options"`
	}
	require.NoError(t, json.Unmarshal(r.Raw, &body))
	return body.Options
}

// requireMoved fails naming each of keys whose value did not grow from
// before to after.
func requireMoved(t *testing.T, before, after series, keys []string) {
	t.Helper()
	var still []string
	for _, k := range keys {
		if after[k] <= before[k] {
			still = append(still, fmt.Sprintf("%s: %v -> %v", k, before[k], after[k]))
		}
	}
	require.Empty(t, still, "counters that did not move")
}
