package mfa_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
)

// parseKeyURI splits an otpauth URL as an authenticator app does (Key URI
// format): the label is issuer ":" account, split at the one unescaped
// colon, each part percent-decoded.
func parseKeyURI(t *testing.T, raw string) (issuer, account string, q url.Values) {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	require.Equal(t, "otpauth", u.Scheme)
	require.Equal(t, "totp", u.Host)
	parts := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), ":")
	require.Len(t, parts, 2, "the label has exactly one unescaped colon: %s", raw)
	issuer, err = url.PathUnescape(parts[0])
	require.NoError(t, err)
	account, err = url.PathUnescape(parts[1])
	require.NoError(t, err)
	return issuer, account, u.Query()
}

// A service name with a colon (and other characters a URL path keeps
// special) reaches authenticator apps intact: in the label's issuer part,
// percent-encoded, and in the issuer parameter.
func TestOTPAuthLabelEscapesServiceName(t *testing.T) {
	const service = "Acme: Staging/EU #1 100%"
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, map[string]string{"GATEHOUSE_SERVICE_NAME": service})
			email := "o'brien+totp@example.com"
			e.Register(email, apptest.StrongPassword)
			tok := e.Login(email, apptest.StrongPassword)

			r := e.Do("POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			link := r.Str("otpauth_url")
			require.Equal(t, 2, strings.Count(link, ":"), "only the scheme's colon and the label's: %s", link)
			issuer, account, q := parseKeyURI(t, link)
			require.Equal(t, service, issuer)
			require.Equal(t, email, account)
			require.Equal(t, service, q.Get("issuer"))
			require.Equal(t, r.Str("secret"), q.Get("secret"))

			// The secret in the URL is the one that activates.
			code, err := mfa.TOTPCode(q.Get("secret"), e.Clock.Now())
			require.NoError(t, err)
			r = e.Do("POST", "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		})
	}
}
