package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/oauth/oauthtest"
)

// appError reads the error a failed flow took back to the app: the
// redirect must go to appCallback with error and error_description.
func appError(t *testing.T, r *apptest.Response) (code, description string) {
	t.Helper()
	require.Equal(t, http.StatusFound, r.Status, "a flow with a redirect_uri fails back to the app: %s", r.Raw)
	loc, err := url.Parse(r.Header.Get("Location"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(loc.String(), appCallback+"?"), "back to the app: %s", loc)
	require.Empty(t, loc.Query().Get("code"))
	require.NotEmpty(t, loc.Query().Get("error_description"))
	return loc.Query().Get("error"), loc.Query().Get("error_description")
}

// TestOAuthFailures: a flow that cannot work whatever the person does is
// a provider error the operator must fix, named in the log; a flow with a
// redirect_uri fails back to the app, never to an error page of ours;
// provider names match whatever their case; and a flow started on another
// host than the public URL's goes to the public host first, where its
// state cookie must live.
func TestOAuthFailures(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			// "broken" is the acme fake with a wrong client secret.
			e := newOAuthEnvWith(t, engine, func(e *oauthEnv) map[string]string {
				return map[string]string{"GATEHOUSE_OAUTH_BROKEN_CLIENT_ID": e.acme.ClientID,
					"GATEHOUSE_OAUTH_BROKEN_CLIENT_SECRET": "wrong-secret-value", "GATEHOUSE_OAUTH_BROKEN_ISSUER": e.acme.URL()}
			})

			t.Run("WrongClientSecret", func(t *testing.T) {
				apptest.Expect(t, e.login(t, "broken", ""), http.StatusBadGateway, "oauth_provider_error")
				var warned bool
				for _, l := range e.logs.lines(t) {
					if msg, _ := l["error"].(string); l["level"] == "WARN" && strings.Contains(msg, "GATEHOUSE_OAUTH_BROKEN_CLIENT_SECRET") {
						warned = true
						require.Contains(t, msg, "invalid_client")
					}
				}
				require.True(t, warned, "a WARN naming the setting: %s", e.logs.String())
				require.NotContains(t, e.logs.String(), "wrong-secret-value")

				code, _ := appError(t, e.get(t, e.start(t, "broken", appCallback, ""), ""))
				require.Equal(t, "oauth_provider_error", code)
			})

			t.Run("RedirectURIGetsEveryError", func(t *testing.T) {
				// The person or the provider refused.
				cb, _ := url.Parse(e.start(t, "acme", appCallback, ""))
				denied := e.URL + "/oauth/acme/callback?error=access_denied&state=" + url.QueryEscape(cb.Query().Get("state"))
				code, desc := appError(t, e.get(t, denied, ""))
				require.Equal(t, "oauth_denied", code)
				require.Contains(t, desc, "access_denied")

				// 409: an unverified email matching an account.
				_, err := e.App.Accounts.CreateUser(t.Context(), "taken-redirect@example.com", apptest.StrongPassword, nil, true)
				require.NoError(t, err)
				e.acme.SetUser(oauthtest.Identity{Subject: "acme-unverified", Email: "taken-redirect@example.com"})
				code, _ = appError(t, e.get(t, e.start(t, "acme", appCallback, ""), ""))
				require.Equal(t, "oauth_email_not_verified", code)

				// 502: the provider fails.
				e.acme.FailToken(http.StatusInternalServerError)
				code, _ = appError(t, e.get(t, e.start(t, "acme", appCallback, ""), ""))
				e.acme.Reset()
				require.Equal(t, "oauth_provider_error", code)

				// Without a valid state nothing says where the app is: JSON.
				e.acme.SetUser(oauthtest.Identity{Subject: "acme-ok", Email: "ok-redirect@example.com", EmailVerified: true})
				cb, _ = url.Parse(e.start(t, "acme", appCallback, ""))
				ok := e.get(t, cb.String(), "")
				require.Equal(t, http.StatusFound, ok.Status)
				require.Contains(t, ok.Header.Get("Location"), "code=")
				apptest.Expect(t, e.get(t, cb.String(), ""), http.StatusBadRequest, "invalid_token")
			})

			t.Run("ProviderNameCase", func(t *testing.T) {
				e.google.SetUser(oauthtest.Identity{Subject: "g-case", Email: "case@example.com", EmailVerified: true})
				for _, name := range []string{"Google", "GOOGLE"} {
					r := e.login(t, name, "")
					apptest.Expect(t, r, http.StatusOK, "", name)
					require.NotEmpty(t, r.Str("access_token"))
				}
				auth := e.get(t, e.URL+"/oauth/GitHub/authorize", "")
				require.Equal(t, http.StatusFound, auth.Status, string(auth.Raw))
				loc, _ := url.Parse(auth.Header.Get("Location"))
				require.Equal(t, "http://gatehouse.test/api/v1/oauth/github/callback", loc.Query().Get("redirect_uri"))
			})

			t.Run("OtherHostGoesToThePublicHostFirst", func(t *testing.T) {
				e.google.SetUser(oauthtest.Identity{Subject: "g-host", Email: "host@example.com", EmailVerified: true})
				browser := newBrowser(t)
				start := e.Server.URL + "/api/v1/oauth/google/authorize?redirect_uri=" + url.QueryEscape(appCallback)
				req, err := http.NewRequest(http.MethodGet, start, nil) // Host: 127.0.0.1:<port>
				require.NoError(t, err)
				resp, err := browser.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusFound, resp.StatusCode)
				require.Empty(t, resp.Header.Values("Set-Cookie"), "no state is started on the wrong host")
				loc, err := url.Parse(resp.Header.Get("Location"))
				require.NoError(t, err)
				require.Equal(t, "gatehouse.test", loc.Host)
				require.Equal(t, "/api/v1/oauth/google/authorize", loc.Path)
				require.Equal(t, appCallback, loc.Query().Get("redirect_uri"))

				// On the public host the flow starts and finishes.
				at := e.getIn(t, browser, loc.String(), "")
				require.Equal(t, http.StatusFound, at.Status, string(at.Raw))
				require.True(t, strings.HasPrefix(at.Header.Get("Location"), e.google.URL()), at.Header.Get("Location"))
				back := e.getIn(t, browser, e.getIn(t, browser, at.Header.Get("Location"), "").Header.Get("Location"), "")
				require.Equal(t, http.StatusFound, back.Status, string(back.Raw))
				require.Contains(t, back.Header.Get("Location"), "code=")

				// Once only: a proxy that rewrites Host cannot make it loop.
				req, err = http.NewRequest(http.MethodGet, loc.String(), nil)
				require.NoError(t, err)
				req.URL.Scheme, req.URL.Host = "http", strings.TrimPrefix(e.Server.URL, "http://")
				resp, err = browser.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusFound, resp.StatusCode)
				require.True(t, strings.HasPrefix(resp.Header.Get("Location"), e.google.URL()), resp.Header.Get("Location"))
			})
		})
	}
}
