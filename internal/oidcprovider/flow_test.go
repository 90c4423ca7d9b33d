package oidcprovider_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/oidcprovider"
)

// prompt=login and an exceeded max_age send a signed-in browser to sign in
// again; consent can be denied; prompt=none answers consent_required when
// consent is missing.
func TestPromptLoginMaxAgeConsent(t *testing.T) {
	e, email := setup(t, "sqlite")
	id, secret := newClient(t, e, oidcprovider.ClientInput{})
	r := newRP(t, e, id, secret)
	verifier := oauth2.GenerateVerifier()
	pkce := oauth2.S256ChallengeOption(verifier)

	// Signed in, but no consent yet: prompt=none cannot ask.
	r.open("GET", r.conf.AuthCodeURL("s0", pkce), nil)
	resp := r.signIn(email)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, r.last, `value="deny"`, "the consent page")
	q := r.callback(r.open("GET", r.conf.AuthCodeURL("s1", pkce, oauth2.SetAuthURLParam("prompt", "none")), nil))
	require.Equal(t, "consent_required", q.Get("error"))

	// Deny.
	r.open("GET", r.conf.AuthCodeURL("s2", pkce), nil)
	f := r.hidden()
	f.Set("decision", "deny")
	q = r.callback(r.open("POST", "/oauth2/consent", f))
	require.Equal(t, "access_denied", q.Get("error"))
	require.Equal(t, "s2", q.Get("state"))

	// A forged consent form is refused.
	r.open("GET", r.conf.AuthCodeURL("s3", pkce), nil)
	f = r.hidden()
	f.Set("decision", "allow")
	f.Set("csrf", "forged")
	resp = r.open("POST", "/oauth2/consent", f)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	q = r.authorize(email, "s4", "n", verifier)
	require.NotEmpty(t, q.Get("code"))

	// prompt=login: the login form again, although signed in.
	resp = r.open("GET", r.conf.AuthCodeURL("s5", pkce, oauth2.SetAuthURLParam("prompt", "login")), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, r.last, `name="password"`)
	q = r.callback(r.signIn(email))
	require.Equal(t, "s5", q.Get("state"))
	require.NotEmpty(t, q.Get("code"))

	// max_age: fine while the sign-in is recent, the form again when it is not.
	q = r.callback(r.open("GET", r.conf.AuthCodeURL("s6", pkce, oauth2.SetAuthURLParam("max_age", "3600")), nil))
	require.NotEmpty(t, q.Get("code"))
	e.Clock.Advance(2 * time.Hour)
	resp = r.open("GET", r.conf.AuthCodeURL("s7", pkce, oauth2.SetAuthURLParam("max_age", "3600")), nil)
	require.Contains(t, r.last, `name="password"`, "an old sign-in must be renewed")
	_, err := r.conf.Exchange(r.ctx, r.callback(r.signIn(email)).Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	// prompt=none with a sign-in older than max_age: login_required, no code.
	e.Clock.Advance(2 * time.Hour)
	q = r.callback(r.open("GET", r.conf.AuthCodeURL("s8", pkce, oauth2.SetAuthURLParam("prompt", "none"),
		oauth2.SetAuthURLParam("max_age", "3600")), nil))
	require.Equal(t, "login_required", q.Get("error"))
	require.Empty(t, q.Get("code"))

	// Unknown or spent requests answer a page, never a redirect.
	resp = r.open("GET", "/oauth2/continue?id=nope", nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp = r.open("GET", "/oauth2/continue", nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// Expired authorization requests are swept.
func TestCleanup(t *testing.T) {
	e, _ := setup(t, "sqlite")
	id, secret := newClient(t, e, oidcprovider.ClientInput{})
	r := newRP(t, e, id, secret)
	r.open("GET", r.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	w := &oidcprovider.CleanupWorker{Store: e.App.DB, Now: func() time.Time { return e.Clock.Now().Add(2 * time.Hour) }}
	require.NoError(t, w.Work(t.Context(), nil))
	n, err := e.App.DB.DeleteStaleAuthRequests(t.Context(), e.Clock.Now().Add(24*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "the worker swept the expired request")
}

// Property: only a registered redirect URI, byte for byte, is ever
// redirected to.
func TestPropertyRedirectURIMatchingIsExact(t *testing.T) {
	e, _ := setup(t, "sqlite")
	registered := "http://localhost:9999/cb"
	id, secret := newClient(t, e, oidcprovider.ClientInput{FirstParty: true})
	r := newRP(t, e, id, secret)
	rapid.Check(t, func(rt *rapid.T) {
		mutated := rapid.OneOf(
			rapid.Just(registered+"/"), rapid.Just(registered+"?a=b"), rapid.Just(strings.ToUpper(registered)),
			rapid.Map(rapid.StringMatching(`[a-z/._%-]{0,8}`), func(s string) string { return registered + s }),
			rapid.Map(rapid.StringMatching(`[a-z]{1,8}`), func(s string) string { return "http://" + s + ".example/cb" }),
		).Draw(rt, "redirect_uri")
		if mutated == registered {
			return
		}
		conf := r.conf
		conf.RedirectURL = mutated
		resp := r.open("GET", conf.AuthCodeURL("s", oauth2.S256ChallengeOption("x")), nil)
		if resp.StatusCode == http.StatusFound {
			u, _ := url.Parse(resp.Header.Get("Location"))
			require.NotEqual(rt, "localhost:9999", u.Host, "redirected to %s for %s", resp.Header.Get("Location"), mutated)
		}
	})
}
