package oidcprovider_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-auth/gatehouse/internal/oidcprovider"
)

// Requests the provider cannot honour are answered in words (a page) or in
// the OAuth error form, never by a redirect to an unchecked place.
func TestErrorPaths(t *testing.T) {
	e, _ := setup(t, "sqlite")
	id, secret := newClient(t, e, oidcprovider.ClientInput{})
	r := newRP(t, e, id, secret)

	// The browser steps with a missing, unknown or over-long request id.
	for _, path := range []string{"/oauth2/continue", "/oauth2/continue?id=nope", "/oauth2/consent?id=nope",
		"/oauth2/continue?id=" + strings.Repeat("a", 80)} {
		resp := r.open("GET", path, nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, path)
		require.Contains(t, r.last, "start again", path)
	}
	resp := r.open("POST", "/oauth2/consent", url.Values{"id": {"nope"}, "decision": {"allow"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// An unknown client: no redirect at all.
	conf := r.conf
	conf.ClientID = "unknown-client"
	resp = r.open("GET", conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Location"))

	// Without openid in the scope the request goes back with invalid_scope.
	conf = r.conf
	conf.Scopes = []string{"profile"}
	q := r.callback(r.open("GET", conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil))
	require.Equal(t, "invalid_scope", q.Get("error"))

	// The consent page without a browser session sends the browser to sign in.
	resp = r.open("GET", r.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	reqID := r.hidden().Get("return_to")
	require.Contains(t, reqID, "/oauth2/continue?id=")
	parsed, err := url.Parse(reqID)
	require.NoError(t, err)
	resp = r.open("GET", "/oauth2/consent?id="+url.QueryEscape(parsed.Query().Get("id")), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, r.last, `name="password"`, "the login page")
	resp = r.open("POST", "/oauth2/consent", url.Values{"id": {parsed.Query().Get("id")}, "csrf": {"x"}, "decision": {"allow"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Userinfo and introspection refuse what they cannot trust.
	req, err := http.NewRequest("GET", issuer+"/oauth2/userinfo", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer not-a-token")
	uresp, err := r.http.Do(req)
	require.NoError(t, err)
	uresp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, uresp.StatusCode)
	resp = r.post("/oauth2/introspect", id, "", url.Values{"token": {"x"}})
	require.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, resp.StatusCode, r.last)
	require.Contains(t, r.last, "invalid_client")
	// A refresh token is not another client's to use.
	resp = r.post("/oauth2/token", id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, r.last, "invalid_grant")
	// A client without client_credentials may not use it.
	resp = r.post("/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, r.last)
	require.Contains(t, r.last, "unauthorized_client")
}
