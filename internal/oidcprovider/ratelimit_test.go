package oidcprovider_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/oidcprovider"
)

// The token, introspection and revocation endpoints share the API's limit
// per client address and per client: over it, 429 with Retry-After in the
// OAuth error form; another address and another client are not affected.
func TestTokenEndpointsRateLimited(t *testing.T) {
	e := apptest.New(t, "sqlite", map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "true",
		"GATEHOUSE_RATE_LIMIT_API": "3/1m", "GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1"})
	cc := oidcprovider.ClientInput{RedirectURIs: []string{}, GrantTypes: []string{"client_credentials"}, Scopes: []string{"users:read"}}
	id, secret := newClient(t, e, cc)
	other, otherSecret := newClient(t, e, cc)
	tr := toServer{addr: strings.TrimPrefix(e.Server.URL, "http://")}
	post := func(path, from string, form url.Values, id, secret string) (*http.Response, map[string]any) {
		req, err := http.NewRequest("POST", issuer+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		if secret != "" {
			req.SetBasicAuth(id, secret)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	grant := url.Values{"grant_type": {"client_credentials"}}
	requireLimited := func(resp *http.Response, out map[string]any) {
		t.Helper()
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, out)
		require.Equal(t, "rate_limited", out["error"])
		require.Contains(t, out["error_description"], "retry in 20 seconds")
		require.Equal(t, "20", resp.Header.Get("Retry-After")) // 1m / 3
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}

	// Per address: three requests of any of the endpoints, any client.
	resp, out := post("/oauth2/token", "198.51.100.1", grant, id, secret)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	resp, _ = post("/oauth2/introspect", "198.51.100.1", url.Values{"token": {"x"}}, other, otherSecret)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = post("/oauth2/revoke", "198.51.100.1", url.Values{"token": {"x"}}, other, otherSecret)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	requireLimited(post("/oauth2/token", "198.51.100.1", grant, other, otherSecret))
	requireLimited(post("/oauth2/token", "198.51.100.1", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}}, "", ""))

	// Per client, across addresses: id has used one; two more pass.
	for _, from := range []string{"198.51.100.2", "198.51.100.3"} {
		resp, out := post("/oauth2/token", from, grant, id, secret)
		require.Equal(t, http.StatusOK, resp.StatusCode, out)
	}
	requireLimited(post("/oauth2/token", "198.51.100.4", grant, id, secret))
	// Another client passes there: other has used two (the refusal at the
	// limited address did not count for it), so one more.
	resp, out = post("/oauth2/token", "198.51.100.5", grant, other, otherSecret)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	requireLimited(post("/oauth2/token", "198.51.100.6", grant, other, otherSecret))
}
