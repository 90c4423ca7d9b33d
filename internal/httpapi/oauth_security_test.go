package httpapi_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/oauth/oauthtest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Account pre-hijacking: somebody claims the victim's address at a
// provider that has not verified it. No account is made for it, so when
// the owner later registers (and verifies) the address, the attacker's
// provider identity is not a way into the owner's account.
func TestOAuthUnverifiedEmailMakesNoAccount(t *testing.T) {
	e := newOAuthEnv(t, "sqlite")
	users := e.userCount(t)
	for i, p := range []string{"google", "microsoft", "github", "acme"} {
		sub := strconv.Itoa(4100 + i)
		e.fake(p).SetUser(oauthtest.Identity{Subject: sub, Email: "Prey@Example.com", EmailVerified: false, TenantID: "t1"})
		r := e.login(t, p, "")
		apptest.Expect(t, r, http.StatusConflict, "oauth_email_not_verified", p)
		require.Contains(t, r.Str("detail"), "not verified", p)
		_, err := e.App.DB.GetOAuthAccount(t.Context(), p, sub)
		require.ErrorIs(t, err, store.ErrNotFound, p)
	}
	require.Equal(t, users, e.userCount(t), "no account was made")

	// The owner can register the address, and the attacker's identity
	// still gets nothing.
	reg := e.Do(http.MethodPost, "/auth/register", map[string]any{"email": "prey@example.com", "password": apptest.StrongPassword}, "")
	require.Less(t, reg.Status, 300, string(reg.Raw))
	e.microsoft.SetUser(oauthtest.Identity{Subject: "4101", Email: "prey@example.com", EmailVerified: false, TenantID: "t1"})
	apptest.Expect(t, e.login(t, "microsoft", ""), http.StatusConflict, "oauth_email_not_verified")
	owner := e.Login("prey@example.com", apptest.StrongPassword)
	require.Empty(t, e.accounts(t, owner.Access), "nothing linked")

	// Verified at the provider, a new address still makes its account,
	// and an already linked identity keeps signing in whatever its email
	// has become.
	e.acme.SetUser(oauthtest.Identity{Subject: "acme-fresh", Email: "fresh@example.com", EmailVerified: true})
	r := e.login(t, "acme", "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.Equal(t, true, userOf(r)["email_verified"])
	e.acme.SetUser(oauthtest.Identity{Subject: "acme-fresh", Email: "moved@example.com", EmailVerified: false})
	again := e.login(t, "acme", "")
	require.Equal(t, http.StatusOK, again.Status, string(again.Raw))
	require.Equal(t, userOf(r)["id"], userOf(again)["id"])
}

// stateCookieOf finds the state binding cookie an authorize answer set.
func stateCookieOf(t *testing.T, r *apptest.Response) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if strings.HasPrefix(c.Name, "gatehouse_oauth_") {
			require.Nil(t, found, "one binding cookie per flow")
			found = c
		}
	}
	require.NotNil(t, found, "authorize set no state cookie: %v", r.Header.Values("Set-Cookie"))
	return found
}

// Login CSRF: the state is bound to the browser that started the flow,
// so an attacker cannot have a victim's browser finish the attacker's own
// sign-in (and so sign the victim into the attacker's account).
func TestOAuthStateBoundToBrowser(t *testing.T) {
	e := newOAuthEnv(t, "sqlite")
	e.google.SetUser(oauthtest.Identity{Subject: "g-csrf-attacker", Email: "csrf-attacker@example.com", EmailVerified: true})

	// The binding cookie: HttpOnly, SameSite=Lax, on the callback path
	// only, for the state's lifetime; not Secure on an http public URL.
	auth := e.get(t, e.URL+"/oauth/google/authorize", "")
	require.Equal(t, http.StatusFound, auth.Status, string(auth.Raw))
	c := stateCookieOf(t, auth)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, c.SameSite)
	require.Equal(t, "/api/v1/oauth/google/callback", c.Path)
	require.Equal(t, 600, c.MaxAge)
	require.False(t, c.Secure)
	loc, err := url.Parse(auth.Header.Get("Location"))
	require.NoError(t, err)
	require.NotContains(t, c.Value, loc.Query().Get("state"), "the cookie holds a hash of the state, not the state")

	// The attacker starts a flow in their browser and stops at the
	// callback URL; the victim's browser opening it is refused, and makes
	// no session.
	attacker := newBrowser(t)
	start := e.getIn(t, attacker, e.URL+"/oauth/google/authorize", "")
	require.Equal(t, http.StatusFound, start.Status, string(start.Raw))
	atProvider := e.getIn(t, attacker, start.Header.Get("Location"), "")
	require.Equal(t, http.StatusFound, atProvider.Status, string(atProvider.Raw))
	cb := atProvider.Header.Get("Location")
	victim := e.getIn(t, newBrowser(t), cb, "")
	apptest.Expect(t, victim, http.StatusBadRequest, "invalid_token")
	require.Empty(t, victim.Str("access_token"))
	// The refused callback spent the state: the attacker cannot use it either.
	apptest.Expect(t, e.getIn(t, attacker, cb, ""), http.StatusBadRequest, "invalid_token")
	_, err = e.App.DB.GetOAuthAccount(t.Context(), "google", "g-csrf-attacker")
	require.ErrorIs(t, err, store.ErrNotFound, "no account was made")

	// A cookie of another flow does not stand in for the flow's own.
	other := stateCookieOf(t, e.getIn(t, attacker, e.URL+"/oauth/google/authorize", ""))
	cb = e.start(t, "google", "", "")
	forged := strings.Replace(cb, "http://gatehouse.test", e.Server.URL, 1)
	req, err := http.NewRequest(http.MethodGet, forged, nil)
	require.NoError(t, err)
	req.AddCookie(other)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// In the browser that started it the flow finishes, and the cookie is
	// cleared.
	cb = e.start(t, "google", "", "")
	done := e.get(t, cb, "")
	require.Equal(t, http.StatusOK, done.Status, string(done.Raw))
	cleared := false
	for _, c := range (&http.Response{Header: done.Header}).Cookies() {
		if strings.HasPrefix(c.Name, "gatehouse_oauth_") {
			require.Negative(t, c.MaxAge)
			require.Equal(t, "/api/v1/oauth/google/callback", c.Path)
			cleared = true
		}
	}
	require.True(t, cleared, "the callback cleared the binding cookie")

	// Flows begun in two tabs both finish.
	e.Clock.Advance(time.Second)
	first := e.start(t, "google", "", "")
	second := e.start(t, "google", "", "")
	require.Equal(t, http.StatusOK, e.get(t, second, "").Status)
	require.Equal(t, http.StatusOK, e.get(t, first, "").Status)
}
