package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/web"
)

// A sign-in through the pages is a normal session: it sets an HttpOnly,
// SameSite=Lax cookie holding an opaque reference (no JWT), the session is
// in the user's list, revoking it signs the browser out, and signing out
// ends it.
func TestBrowserSessionIsANormalSession(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newBrowser(t, env)
	b.login(email, apptest.StrongPassword)
	require.Contains(t, b.last, email)

	c := b.cookie(web.InsecureSessionCookie) // the test server's public URL is http
	require.NotNil(t, c)
	require.NotContains(t, c.Value, ".", "an opaque reference, never a JWT")

	// The session is listed; revoking it from another client signs the
	// browser out.
	api := env.Login(email, apptest.StrongPassword)
	list := env.Do("GET", "/sessions", nil, api.Access)
	require.Equal(t, http.StatusOK, list.Status)
	items := list.JSON["items"].([]any)
	require.Len(t, items, 2)
	var browserSession string
	for _, it := range items {
		if m := it.(map[string]any); m["current"] != true {
			browserSession = m["id"].(string)
		}
	}
	require.Equal(t, http.StatusNoContent, env.Do("DELETE", "/sessions/"+browserSession, nil, api.Access).Status)
	b.get("/account")
	require.Contains(t, b.url, "/login?return_to=%2Faccount", "revoked: back to sign in")

	// Sign in again, then out: the session ends with the cookie.
	b.login(email, apptest.StrongPassword)
	resp := b.post("/logout", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, b.last, "You are signed out")
	require.Nil(t, b.cookie(web.InsecureSessionCookie))
	list = env.Do("GET", "/sessions", nil, api.Access)
	require.Len(t, list.JSON["items"].([]any), 1, "only the API session is left")
}

// Each session header and the flags of the cookie.
func TestSessionCookieFlags(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newBrowser(t, env)
	b.get("/login")
	form := url.Values{"email": {email}, "password": {apptest.StrongPassword}, "csrf": {b.csrf()}}
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range b.c.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/account", resp.Header.Get("Location"))
	var set string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, web.InsecureSessionCookie+"=") {
			set = v
		}
	}
	require.Contains(t, set, "HttpOnly")
	require.Contains(t, set, "SameSite=Lax")
	require.Contains(t, set, "Path=/")
}

// A form posted without its CSRF token, with a wrong one, or from another
// origin is refused with a page in words, and signs nobody in.
func TestCSRFRefused(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newBrowser(t, env)
	b.get("/login")
	good := b.csrf()
	for name, form := range map[string]url.Values{
		"missing": {"email": {email}, "password": {apptest.StrongPassword}, "csrf": {""}},
		"wrong":   {"email": {email}, "password": {apptest.StrongPassword}, "csrf": {strings.Repeat("A", 43)}},
	} {
		resp := b.post("/login", form)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, name)
		require.Contains(t, resp.Header.Get("Content-Type"), "text/html", name)
		require.Contains(t, b.last, "did not come from this site", name)
		require.Nil(t, b.cookie(web.InsecureSessionCookie), name)
	}

	// The right token from another origin.
	form := url.Values{"email": {email}, "password": {apptest.StrongPassword}, "csrf": {good}}
	req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp := b.do(req)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Nil(t, b.cookie(web.InsecureSessionCookie))

	// A signed-in form too.
	b.login(email, apptest.StrongPassword)
	resp = b.post("/logout", url.Values{"csrf": {"nope"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.NotNil(t, b.cookie(web.InsecureSessionCookie), "still signed in")
}

// return_to goes back only to this origin or an allow-listed prefix;
// anything else goes to the account page.
func TestReturnToAllowList(t *testing.T) {
	env, email := newEnv(t, map[string]string{"GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST": "https://app.example.com/cb"})
	cases := map[string]string{
		"/account?tab=x":                       "/account?tab=x",
		"http://gatehouse.test/account?from=1": "http://gatehouse.test/account?from=1",
		"https://app.example.com/cb/done":      "https://app.example.com/cb/done",
		"https://evil.example/":                "/account",
		"//evil.example/x":                     "/account",
		"https://app.example.com/other":        "/account",
		"javascript:alert(1)":                  "/account",
		"/\\evil.example":                      "/account",
	}
	for returnTo, want := range cases {
		b := newBrowser(t, env)
		b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		b.get("/login?return_to=" + url.QueryEscape(returnTo))
		resp := b.post("/login", url.Values{"email": {email}, "password": {apptest.StrongPassword},
			"return_to": {returnTo}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, returnTo)
		require.Equal(t, want, resp.Header.Get("Location"), returnTo)
	}
}

// Wrong passwords are said in words; a locked account says it is locked.
func TestLoginErrorsInWords(t *testing.T) {
	env, email := newEnv(t, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "2"})
	b := newBrowser(t, env)
	b.get("/login")
	resp := b.post("/login", url.Values{"email": {email}, "password": {"wrong-password-123"}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, b.last, "The email or password is wrong.")
	require.NotContains(t, b.last, "invalid_credentials")
	b.post("/login", url.Values{"email": {email}, "password": {"wrong-password-123"}})
	resp = b.post("/login", url.Values{"email": {email}, "password": {apptest.StrongPassword}})
	require.Equal(t, http.StatusLocked, resp.StatusCode)
	require.Contains(t, b.last, "This account is locked")
}

// Rate limits are said in words, with Retry-After.
func TestLoginRateLimitInWords(t *testing.T) {
	env, email := newEnv(t, map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "true", "GATEHOUSE_RATE_LIMIT_LOGIN": "2/1h"})
	b := newBrowser(t, env)
	b.get("/login")
	for range 2 {
		b.post("/login", url.Values{"email": {email}, "password": {"wrong-password-123"}})
	}
	resp := b.post("/login", url.Values{"email": {email}, "password": {"wrong-password-123"}})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Contains(t, b.last, "Too many attempts.")
	// Counted as the API's refusals are.
	metrics := string(env.Do("GET", "/metrics", nil, "").Raw)
	require.Contains(t, metrics, `gatehouse_rate_limited_total{limit="login"} 1`+"\n")
}

// An account with TOTP meets the MFA step after the password, and comes
// back to return_to after it.
func TestLoginWithMFAReturnsToReturnTo(t *testing.T) {
	env, email := newEnv(t, nil)
	api := env.Login(email, apptest.StrongPassword)
	setup := env.Do("POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, api.Access)
	require.Equal(t, http.StatusOK, setup.Status, string(setup.Raw))
	secret := setup.Str("secret")
	code, err := mfa.TOTPCode(secret, env.Clock.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, env.Do("POST", "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, api.Access).Status)

	b := newBrowser(t, env)
	returnTo := "http://gatehouse.test/oauth2/authorize?client_id=abc&state=xyz"
	b.get("/login?return_to=" + url.QueryEscape(returnTo))
	resp := b.post("/login", url.Values{"email": {email}, "password": {apptest.StrongPassword}, "return_to": {returnTo}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, b.last, "Two-step verification")
	require.Nil(t, b.cookie(web.InsecureSessionCookie), "no session before the second factor")

	resp = b.post("/login/mfa", url.Values{"challenge_id": {challengeID(t, b.last)}, "method": {"totp"}, "code": {"000000"},
		"methods": {"totp", "backup_code"}, "return_to": {returnTo}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, b.last, "That code is wrong")

	env.Clock.Advance(30 * time.Second) // a fresh step: the setup's code is spent
	code, err = mfa.TOTPCode(secret, env.Clock.Now())
	require.NoError(t, err)
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp = b.post("/login/mfa", url.Values{"challenge_id": {challengeID(t, b.last)}, "method": {"totp"}, "code": {code},
		"methods": {"totp", "backup_code"}, "return_to": {returnTo}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, b.last)
	require.Equal(t, returnTo, resp.Header.Get("Location"))
	require.NotNil(t, b.cookie(web.InsecureSessionCookie))
}

func challengeID(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="challenge_id" value="`)
	require.True(t, ok, page)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// The magic link finishes signed in on the browser that opens it; opening
// the page spends nothing; a spent link is said in words.
func TestMagicLinkSignsInOnThisBrowser(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newBrowser(t, env)
	b.get("/login")
	resp := b.post("/login/magic-link", url.Values{"email": {email}, "return_to": {"/account?from=mail"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, b.last, "Check your email")
	var tok string
	for tok == "" {
		tok = apptest.TokenFromLink(env.Mail.WaitFor(t, email, 10*time.Second).Text, "http://gatehouse.test/magic-link")
	}
	b.get("/magic-link?token=" + url.QueryEscape(tok))
	b.get("/magic-link?token=" + url.QueryEscape(tok)) // opening twice spends nothing
	require.Nil(t, b.cookie(web.InsecureSessionCookie))
	resp = b.post("/magic-link", url.Values{"token": {tok}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, b.url, "/account?from=mail")
	require.NotNil(t, b.cookie(web.InsecureSessionCookie))

	other := newBrowser(t, env)
	other.get("/magic-link?token=" + url.QueryEscape(tok))
	resp = other.post("/magic-link", url.Values{"token": {tok}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, other.last, "invalid, expired or already used")
}

// A plain user does not see the admin console.
func TestAdminRefusedToPlainUser(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newBrowser(t, env)
	b.login(email, apptest.StrongPassword)
	require.NotContains(t, b.last, `href="/admin"`)
	resp := b.get("/admin")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, b.last, "permission")
}

// The pages send a strict CSP and load nothing from elsewhere.
func TestPagesHeaders(t *testing.T) {
	env, _ := newEnv(t, nil)
	b := newBrowser(t, env)
	for _, path := range []string{"/login", "/register", "/forgot-password", "/reset-password?token=x", "/verify-email?token=x",
		"/magic-link?token=x", "/confirm-sign-in?token=x"} {
		resp := b.get(path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		csp := resp.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'none'", path)
		require.Regexp(t, `script-src 'nonce-[A-Za-z0-9_-]{43}';`, csp, path)
		require.NotContains(t, csp, "unsafe", path)
		require.Contains(t, csp, "frame-ancestors 'none'", path)
		require.NotContains(t, b.last, "http://", path)
		require.NotContains(t, b.last, "https://", path)
		require.Contains(t, b.last, `<html lang="en">`, path)
	}
	// The one script runs by this answer's nonce, a new one each time.
	resp := b.get("/login")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	nonce := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(resp.Header.Get("Content-Security-Policy"))
	require.NotNil(t, nonce)
	require.Contains(t, b.last, `<script src="/assets/passkey.js" nonce="`+nonce[1]+`"`)
	b.get("/login")
	require.NotContains(t, b.last, nonce[1], "a fresh nonce per answer")

	resp = b.get("/verify-email")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, b.last, "This link has no token")
}
