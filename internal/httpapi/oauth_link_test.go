package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/oauth/oauthtest"
)

// linkURL is POST /oauth/{provider}/link.
func (e *oauthEnv) linkURL(t *testing.T, provider, access string, body any) *apptest.Response {
	t.Helper()
	return e.Do(http.MethodPost, "/oauth/"+provider+"/link", body, access)
}

// TestOAuthLinkFromASinglePageApp: a browser navigation cannot carry a
// bearer token, so a signed-in app asks POST /oauth/{provider}/link for a
// URL carrying a single-use link ticket bound to its user, and navigates
// the browser there; the flow then links the external account to that
// user, with or without a redirect_uri. The ticket works once, for its
// provider, for a minute; asking for one needs a recent sign-in.
func TestOAuthLinkFromASinglePageApp(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e := newOAuthEnv(t, engine)
			e.Register("spa@example.com", apptest.StrongPassword)
			tok := e.Login("spa@example.com", apptest.StrongPassword)

			// Without redirect_uri: the callback answers the user's tokens.
			e.google.SetUser(oauthtest.Identity{Subject: "g-spa", Email: "spa-at-google@example.com", EmailVerified: true})
			r := e.linkURL(t, "google", tok.Access, nil)
			apptest.Expect(t, r, http.StatusOK, "")
			require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
			require.Equal(t, float64(60), r.JSON["expires_in"])
			link, err := url.Parse(r.Str("url"))
			require.NoError(t, err)
			require.Equal(t, "gatehouse.test", link.Host, "on the public host")
			require.Equal(t, "/api/v1/oauth/google/authorize", link.Path)
			require.GreaterOrEqual(t, len(link.Query().Get("link_ticket")), 43, "256-bit ticket")

			auth := e.get(t, link.String(), "") // a navigation: no bearer token
			require.Equal(t, http.StatusFound, auth.Status, string(auth.Raw))
			done := e.get(t, e.get(t, auth.Header.Get("Location"), "").Header.Get("Location"), "")
			apptest.Expect(t, done, http.StatusOK, "")
			require.Equal(t, "spa@example.com", userOf(done)["email"], "linked to the ticket's user, not a new account")
			links := e.accounts(t, tok.Access)
			require.Len(t, links, 1)
			require.Equal(t, "g-spa", links[0].(map[string]any)["provider_user_id"])

			// Single use.
			apptest.Expect(t, e.get(t, link.String(), ""), http.StatusBadRequest, "invalid_token")

			// With redirect_uri: back to the app with a code for the session.
			e.acme.SetUser(oauthtest.Identity{Subject: "acme-spa", Email: "spa-at-acme@example.com", EmailVerified: true})
			r = e.linkURL(t, "acme", tok.Access, map[string]any{"redirect_uri": appCallback})
			apptest.Expect(t, r, http.StatusOK, "")
			auth = e.get(t, r.Str("url"), "")
			require.Equal(t, http.StatusFound, auth.Status, string(auth.Raw))
			back := e.get(t, e.get(t, auth.Header.Get("Location"), "").Header.Get("Location"), "")
			require.Equal(t, http.StatusFound, back.Status, string(back.Raw))
			loc, _ := url.Parse(back.Header.Get("Location"))
			require.True(t, strings.HasPrefix(loc.String(), appCallback+"?"), loc.String())
			x := e.Do(http.MethodPost, "/oauth/exchange", map[string]any{"code": loc.Query().Get("code")}, "")
			apptest.Expect(t, x, http.StatusOK, "")
			require.Equal(t, "spa@example.com", userOf(x)["email"])
			require.Len(t, e.accounts(t, tok.Access), 2)

			// A ticket is its provider's; one ticket, many racing navigations: one flow.
			r = e.linkURL(t, "github", tok.Access, nil)
			other := strings.Replace(r.Str("url"), "/github/", "/acme/", 1)
			apptest.Expect(t, e.get(t, other, ""), http.StatusBadRequest, "invalid_token")
			apptest.Expect(t, e.get(t, r.Str("url"), ""), http.StatusBadRequest, "invalid_token", "the failed use spent it")
			r = e.linkURL(t, "github", tok.Access, nil)
			statuses := make([]int, 8)
			var wg sync.WaitGroup
			for i := range statuses {
				wg.Go(func() {
					req, err := http.NewRequest(http.MethodGet, strings.Replace(r.Str("url"), "http://gatehouse.test", e.Server.URL, 1), nil)
					if err != nil {
						return
					}
					req.Host = "gatehouse.test"
					client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
					if resp, err := client.Do(req); err == nil {
						resp.Body.Close()
						statuses[i] = resp.StatusCode
					}
				})
			}
			wg.Wait()
			found := 0
			for _, st := range statuses {
				if st == http.StatusFound {
					found++
				} else {
					require.Equal(t, http.StatusBadRequest, st)
				}
			}
			require.Equal(t, 1, found, "one flow per ticket")

			// What a ticket URL will not take: a bearer token or a redirect_uri besides.
			r = e.linkURL(t, "github", tok.Access, nil)
			apptest.Expect(t, e.get(t, r.Str("url"), tok.Access), http.StatusUnprocessableEntity, "validation_failed")
			apptest.Expect(t, e.get(t, r.Str("url")+"&redirect_uri="+url.QueryEscape(appCallback), ""), http.StatusUnprocessableEntity, "validation_failed")

			// Asking for a link: a bearer token, a known provider, an
			// allow-listed redirect_uri, a recent sign-in.
			apptest.Expect(t, e.linkURL(t, "google", "", nil), http.StatusUnauthorized, "unauthorized")
			apptest.Expect(t, e.linkURL(t, "nope", tok.Access, nil), http.StatusNotFound, "not_found")
			bad := e.linkURL(t, "google", tok.Access, map[string]any{"redirect_uri": "https://evil.example.com/cb"})
			apptest.Expect(t, bad, http.StatusUnprocessableEntity, "validation_failed")
			require.Contains(t, string(bad.Raw), "body.redirect_uri")
			if !e.redis { // Redis expires by the real clock
				r = e.linkURL(t, "github", tok.Access, nil)
				e.Clock.Advance(61 * time.Second)
				apptest.Expect(t, e.get(t, r.Str("url"), ""), http.StatusBadRequest, "invalid_token")
			}
			e.Clock.Advance(5*time.Minute + time.Second)
			apptest.Expect(t, e.linkURL(t, "google", tok.Access, nil), http.StatusForbidden, "recent_auth_required")
		})
	}
}
