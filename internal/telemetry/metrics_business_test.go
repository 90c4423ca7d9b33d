package telemetry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// APIMetrics are the names API.md § Metrics promises, besides Go/process
// metrics: each must be in the very first scrape.
var APIMetrics = []string{
	"http_server_request_duration_seconds",
	"gatehouse_logins_total", "gatehouse_registrations_total", "gatehouse_mfa_verifications_total",
	"gatehouse_lockouts_total", "gatehouse_refresh_total", "gatehouse_sessions_revoked_total",
	"gatehouse_security_alerts_total", "gatehouse_webhook_deliveries_total", "gatehouse_emails_sent_total",
	"gatehouse_sms_sent_total", "gatehouse_rate_limited_total", "gatehouse_password_hash_seconds",
	"gatehouse_circuit_breaker_state",
}

func TestBusinessMetricsPresentAtZero(t *testing.T) {
	m := telemetry.NewMetrics()
	body := scrape(t, m)
	for _, name := range APIMetrics {
		if name == "http_server_request_duration_seconds" || name == "gatehouse_circuit_breaker_state" {
			continue // labelled by what happened (routes, breakers made): present once there is one
		}
		require.Contains(t, body, "# TYPE "+name, name)
	}
	require.Contains(t, body, `gatehouse_logins_total{method="passkey",result="step_up"} 0`)
	require.Contains(t, body, `gatehouse_refresh_total{result="reused"} 0`)
	require.Contains(t, body, `gatehouse_emails_sent_total{result="failure",template="magic_link"} 0`)
	require.Contains(t, body, `gatehouse_rate_limited_total{limit="login"} 0`)
	require.Contains(t, body, `gatehouse_registrations_total 0`)
	require.Contains(t, body, `gatehouse_password_hash_seconds_count 0`)
}

func TestBusinessMetricsCountAndFoldUnknownLabels(t *testing.T) {
	m := telemetry.NewMetrics()
	m.Login("password", "success")
	m.Login("carrier-pigeon", "success") // unknown method: folded, not a new series per input
	m.Login("password", "weird")
	m.Registration()
	m.MFAVerification("totp", telemetry.Result(nil))
	m.MFAVerification("sms", telemetry.Result(errors.New("wrong code")))
	m.Lockout()
	m.Refresh("reused")
	m.SessionRevoked("logout")
	m.SessionRevoked("user@example.com") // never data as a label
	m.SecurityAlert("impossible_travel", "new_country")
	m.SecurityAlert()
	m.WebhookDelivery("gone")
	m.EmailSent("welcome", "success")
	m.SMSSent("failure")
	m.RateLimited("api")
	m.PasswordHashed(40 * time.Millisecond)

	body := scrape(t, m)
	for _, want := range []string{
		`gatehouse_logins_total{method="password",result="success"} 1`,
		`gatehouse_logins_total{method="other",result="success"} 1`,
		`gatehouse_logins_total{method="password",result="other"} 1`,
		`gatehouse_registrations_total 1`,
		`gatehouse_mfa_verifications_total{method="totp",result="success"} 1`,
		`gatehouse_mfa_verifications_total{method="sms",result="failure"} 1`,
		`gatehouse_lockouts_total 1`,
		`gatehouse_refresh_total{result="reused"} 1`,
		`gatehouse_sessions_revoked_total{reason="logout"} 1`,
		`gatehouse_sessions_revoked_total{reason="other"} 1`,
		`gatehouse_security_alerts_total{factor="impossible_travel"} 1`,
		`gatehouse_security_alerts_total{factor="new_country"} 1`,
		`gatehouse_security_alerts_total{factor="high_score"} 1`,
		`gatehouse_webhook_deliveries_total{result="gone"} 1`,
		`gatehouse_emails_sent_total{result="success",template="welcome"} 1`,
		`gatehouse_sms_sent_total{result="failure"} 1`,
		`gatehouse_rate_limited_total{limit="api"} 1`,
		`gatehouse_password_hash_seconds_count 1`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "example.com")
	require.NotContains(t, body, "carrier-pigeon")
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *telemetry.Metrics
	require.NotPanics(t, func() {
		m.Login("password", "success")
		m.Registration()
		m.MFAVerification("totp", "success")
		m.Lockout()
		m.Refresh("success")
		m.SessionRevoked("logout")
		m.SecurityAlert("new_device")
		m.WebhookDelivery("success")
		m.EmailSent("welcome", "success")
		m.SMSSent("success")
		m.RateLimited("api")
		m.PasswordHashed(time.Millisecond)
		c := m.Cache("permissions")
		c.Hit()
		c.Miss()
		c.Record(true)
	})
}

func TestCacheStats(t *testing.T) {
	m := telemetry.NewMetrics()
	c := m.Cache("permissions")
	body := scrape(t, m)
	require.Contains(t, body, `gatehouse_cache_requests_total{cache="permissions",result="hit"} 0`)
	require.Contains(t, body, `gatehouse_cache_requests_total{cache="permissions",result="miss"} 0`)
	c.Hit()
	c.Record(true)
	c.Record(false)
	c.Miss()
	body = scrape(t, m)
	require.Contains(t, body, `gatehouse_cache_requests_total{cache="permissions",result="hit"} 2`)
	require.Contains(t, body, `gatehouse_cache_requests_total{cache="permissions",result="miss"} 2`)
	// The same name again shares the series.
	m.Cache("permissions").Hit()
	require.Equal(t, 1, strings.Count(scrape(t, m), `gatehouse_cache_requests_total{cache="permissions",result="hit"} 3`))
}

func TestCountEvent(t *testing.T) {
	m := telemetry.NewMetrics()
	for _, e := range []gatehouse.Event{
		{Type: gatehouse.EventUserRegistered},
		{Type: gatehouse.EventUserLocked, Data: map[string]any{"reason": "too_many_failed_logins"}},
		{Type: gatehouse.EventUserLocked, Data: map[string]any{"reason": "locked_by_admin"}}, // not a lockout
		{Type: gatehouse.EventSessionRevoked, Data: map[string]any{"reason": "refresh_token_reused"}},
		{Type: gatehouse.EventSecurityAlert, Data: map[string]any{"reason": "risky_sign_in",
			"risk_factors": []map[string]any{{"name": "impossible_travel"}, {"name": "new_device"}}}},
		{Type: gatehouse.EventSecurityAlert, Data: map[string]any{"reason": "risky_refresh",
			"risk_factors": []any{map[string]any{"name": "ip_reputation"}}}},
		{Type: gatehouse.EventSecurityAlert, Data: map[string]any{"reason": "passkey_clone_suspected"}},
		{Type: gatehouse.EventSecurityAlert, Data: map[string]any{"reason": "risky_sign_in"}},
		{Type: gatehouse.EventUserLogin},
	} {
		m.CountEvent(string(e.Type), e.Data)
	}
	var nilMetrics *telemetry.Metrics
	nilMetrics.CountEvent(string(gatehouse.EventUserRegistered), nil)

	body := scrape(t, m)
	for _, want := range []string{
		"gatehouse_registrations_total 1",
		"gatehouse_lockouts_total 1",
		`gatehouse_sessions_revoked_total{reason="refresh_token_reused"} 1`,
		`gatehouse_security_alerts_total{factor="impossible_travel"} 1`,
		`gatehouse_security_alerts_total{factor="new_device"} 1`,
		`gatehouse_security_alerts_total{factor="ip_reputation"} 1`,
		`gatehouse_security_alerts_total{factor="passkey_clone_suspected"} 1`,
		`gatehouse_security_alerts_total{factor="high_score"} 1`,
	} {
		require.Contains(t, body, want)
	}
}

// The known label values follow the domain's names, so no real value is
// folded into "other".
func TestKnownLabelsFollowTheDomain(t *testing.T) {
	for _, tpl := range []string{
		gatehouse.MailTemplateVerifyEmail, gatehouse.MailTemplateResetPassword, gatehouse.MailTemplateWelcome,
		gatehouse.MailTemplateSecurityAlert, gatehouse.MailTemplateMagicLink, gatehouse.MailTemplateWebhookDisabled,
		gatehouse.MailTemplateNewDevice,
	} {
		require.Contains(t, telemetry.EmailTemplates, tpl)
	}
	for _, method := range []string{gatehouse.MFAMethodTOTP, gatehouse.MFAMethodSMS, gatehouse.MFAMethodBackupCode} {
		require.Contains(t, telemetry.MFAMethods, method)
	}
}

func TestDBPoolMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	require.NoError(t, m.RegisterDBPool(func() telemetry.DBPoolStats {
		return telemetry.DBPoolStats{InUse: 3, Idle: 2, Max: 10, Waits: 7, WaitTime: 1500 * time.Millisecond}
	}))
	body := scrape(t, m)
	for _, want := range []string{
		`gatehouse_db_pool_connections{state="in_use"} 3`,
		`gatehouse_db_pool_connections{state="idle"} 2`,
		`gatehouse_db_pool_max_connections 10`,
		`gatehouse_db_pool_waits_total 7`,
		`gatehouse_db_pool_wait_seconds_total 1.5`,
	} {
		require.Contains(t, body, want)
	}
	require.Error(t, m.RegisterDBPool(func() telemetry.DBPoolStats { return telemetry.DBPoolStats{} }), "one pool per registry")
}

func TestSigningKeyMetric(t *testing.T) {
	m := telemetry.NewMetrics()
	made := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, m.RegisterSigningKey(func(context.Context) (time.Time, error) { return made, nil }))
	require.Contains(t, scrape(t, m), "gatehouse_signing_key_created_timestamp_seconds 1.767323045e+09")
}
