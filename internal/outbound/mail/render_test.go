package mail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail/mailtest"
)

const link = "https://auth.example.com/v1/verify?token=abc123&next=%2Fhome"

func renderer(t *testing.T) *mail.Renderer {
	t.Helper()
	r, err := mail.NewRenderer("Acme ID")
	require.NoError(t, err)
	return r
}

func TestRenderAllTemplates(t *testing.T) {
	r := renderer(t)
	require.Subset(t, mail.Templates(), []string{"magic_link", "reset_password", "security_alert", "verify_email", "welcome", "webhook_disabled"})

	data := map[string]any{
		gatehouse.MailKeyName:      "Ann",
		gatehouse.MailKeyLink:      link,
		gatehouse.MailKeyExpiresIn: "24 hours",
		gatehouse.MailKeyTitle:     "New sign-in to your account",
		gatehouse.MailKeyDetails:   []string{"Browser: Firefox on Linux", "Location: Berlin, DE"},
		gatehouse.MailKeyTime:      time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600)),
		gatehouse.MailKeyIP:        "203.0.113.7",
	}
	subjects := map[string]string{
		gatehouse.MailTemplateVerifyEmail:     "Verify your email address for Acme ID",
		gatehouse.MailTemplateResetPassword:   "Reset your Acme ID password",
		gatehouse.MailTemplateWelcome:         "Welcome to Acme ID",
		gatehouse.MailTemplateSecurityAlert:   "Acme ID security alert: New sign-in to your account",
		gatehouse.MailTemplateMagicLink:       "Your Acme ID sign-in link",
		gatehouse.MailTemplateWebhookDisabled: "Acme ID: your webhook was disabled",
		gatehouse.MailTemplateNewDevice:       "Confirm your Acme ID sign-in",
		gatehouse.MailTemplateChangeEmail:     "Confirm your new email address for Acme ID",
	}
	expiring := map[string]bool{gatehouse.MailTemplateVerifyEmail: true, gatehouse.MailTemplateResetPassword: true, gatehouse.MailTemplateMagicLink: true,
		gatehouse.MailTemplateChangeEmail: true}
	for _, name := range mail.Templates() {
		t.Run(name, func(t *testing.T) {
			m, err := r.Render(name, data)
			require.NoError(t, err)
			require.Empty(t, m.To)
			require.Contains(t, subjects, name, "a new template needs its expected subject here")
			require.Equal(t, subjects[name], m.Subject)
			require.Contains(t, m.Text, "Hello Ann,")
			require.Contains(t, m.Text, "Acme ID")
			require.Equal(t, link, mailtest.LinkFrom(m.Text, "https://auth.example.com/v1/verify?"), "text link")
			require.Contains(t, m.HTML, `href="https://auth.example.com/v1/verify?token=abc123&amp;next=%2Fhome"`)
			require.Contains(t, m.HTML, "<title>"+subjects[name]+"</title>")
			require.NotContains(t, m.Text+m.HTML, "<no value>")
			if expiring[name] {
				require.Contains(t, m.Text, "expires in 24 hours")
			}
		})
	}

	m, err := r.Render(gatehouse.MailTemplateSecurityAlert, data)
	require.NoError(t, err)
	for _, want := range []string{"- Browser: Firefox on Linux", "- Location: Berlin, DE", "Time: 4 Mar 2025 04:06 UTC", "IP address: 203.0.113.7"} {
		require.Contains(t, m.Text, want)
	}
	require.Contains(t, m.HTML, "<li>Browser: Firefox on Linux</li>")
	require.Contains(t, m.HTML, "4 Mar 2025 04:06 UTC")
}

func TestRenderEscapesUserValuesInHTML(t *testing.T) {
	r := renderer(t)
	evil := `<script>alert("x")</script>`
	for _, name := range mail.Templates() {
		m, err := r.Render(name, map[string]any{
			gatehouse.MailKeyName: evil, gatehouse.MailKeyLink: link, gatehouse.MailKeyTitle: "Alert " + evil,
			gatehouse.MailKeyDetails: []any{"Device: " + evil},
		})
		require.NoError(t, err)
		require.NotContains(t, m.HTML, "<script>", name)
		require.Contains(t, m.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", name)
		require.Contains(t, m.Text, "Hello "+evil+",", "text bodies are plain text, not escaped")
	}
}

func TestRenderOptionalValuesAndNormalisation(t *testing.T) {
	r := renderer(t)

	m, err := r.Render(gatehouse.MailTemplateWelcome, nil)
	require.NoError(t, err)
	require.Contains(t, m.Text, "Hello,\n")
	require.NotContains(t, m.Text, "Sign in here")
	require.NotContains(t, m.HTML, "<a ")

	// Values as they come back from JSON: lists of any, RFC 3339 strings.
	m, err = r.Render(gatehouse.MailTemplateSecurityAlert, map[string]any{
		gatehouse.MailKeyServiceName: "Other",
		gatehouse.MailKeyTitle:       "Password\r\nchanged",
		gatehouse.MailKeyDetails:     "first line\n\n second line ",
		gatehouse.MailKeyTime:        "2025-03-04T05:06:07.123Z",
		gatehouse.MailKeyName:        nil,
	})
	require.NoError(t, err)
	require.Equal(t, "Other security alert: Password changed", m.Subject)
	require.Contains(t, m.Text, "- first line\n- second line")
	require.Contains(t, m.Text, "Time: 4 Mar 2025 05:06 UTC")
	require.NotContains(t, m.Text, "IP address")
	require.Contains(t, m.Text, "review your active sessions.\n")

	for _, tc := range []struct {
		time    any
		details any
		want    string
	}{
		{"yesterday", []any{1, "two"}, "Time: yesterday"},
		{time.Time{}, 42, "- 42"},
		{(*time.Time)(nil), nil, "Password changed"},
		{ptr(time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)), nil, "Time: 2 Jan 2025 03:04 UTC"},
		{1700000000, nil, "Time: 1700000000"},
	} {
		m, err := r.Render(gatehouse.MailTemplateSecurityAlert, map[string]any{gatehouse.MailKeyTitle: "Password changed", gatehouse.MailKeyTime: tc.time, gatehouse.MailKeyDetails: tc.details})
		require.NoError(t, err)
		require.Contains(t, m.Text, tc.want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRenderErrors(t *testing.T) {
	r := renderer(t)

	_, err := r.Render("nope", nil)
	require.ErrorIs(t, err, mail.ErrUnknownTemplate)
	require.Contains(t, err.Error(), `"nope"`)

	for _, name := range []string{gatehouse.MailTemplateVerifyEmail, gatehouse.MailTemplateResetPassword, gatehouse.MailTemplateMagicLink} {
		_, err := r.Render(name, map[string]any{gatehouse.MailKeyName: "Ann"})
		require.ErrorContains(t, err, "needs Link", name)
	}
	_, err = r.Render(gatehouse.MailTemplateSecurityAlert, nil)
	require.ErrorContains(t, err, "needs Title")

	for _, bad := range []string{"javascript:alert(1)", "/relative/path?token=secret", "https://", "http://%zz"} {
		_, err := r.Render(gatehouse.MailTemplateMagicLink, map[string]any{gatehouse.MailKeyLink: bad})
		require.ErrorContains(t, err, "absolute http(s) URL", bad)
		require.False(t, strings.Contains(err.Error(), "secret"), "errors never quote data")
	}
}
