package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/oauth/oauthtest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

const appCallback = "https://app.example.com/cb"

// oauthEnv is the whole server with fake google, microsoft, github and a
// generic OIDC provider "acme" configured.
type oauthEnv struct {
	*apptest.Env
	google, microsoft, github, acme *oauthtest.Provider
	// browser is the client the flows run in: it shows redirects instead
	// of following them, and keeps cookies (the state binding).
	browser *http.Client
	// redis is set when the cache is Redis, whose expiry follows the real
	// clock rather than the test's.
	redis bool
	// logs holds the server's warnings and errors (JSON lines).
	logs *syncBuffer
}

func newOAuthEnv(t *testing.T, engine string) *oauthEnv { return newOAuthEnvWith(t, engine, nil) }

// newOAuthEnvWith is newOAuthEnv with more configuration, made from the
// fakes (extra may be nil).
func newOAuthEnvWith(t *testing.T, engine string, extra func(e *oauthEnv) map[string]string) *oauthEnv {
	var env *apptest.Env
	now := func() time.Time { return env.Clock.Now() }
	e := &oauthEnv{google: oauthtest.Start(t, oauthtest.OIDC, now), microsoft: oauthtest.Start(t, oauthtest.Microsoft, now),
		github: oauthtest.Start(t, oauthtest.GitHub, now), acme: oauthtest.Start(t, oauthtest.OIDC, now)}
	vars := map[string]string{"GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST": appCallback + ",https://other.example.com/"}
	for name, p := range map[string]*oauthtest.Provider{"google": e.google, "microsoft": e.microsoft, "github": e.github, "acme": e.acme} {
		for k, v := range p.Env(name) {
			vars[k] = v
		}
	}
	// On PostgreSQL, states and codes live in Redis when a test Redis runs.
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" && engine == "postgres" {
		vars["GATEHOUSE_REDIS_URL"], e.redis = u, true
	}
	if extra != nil {
		for k, v := range extra(e) {
			vars[k] = v
		}
	}
	e.logs = &syncBuffer{}
	env = apptest.NewLogged(t, engine, vars, e.logs)
	e.Env = env
	e.browser = newBrowser(t)
	return e
}

// newBrowser is a client that keeps cookies and shows redirects instead
// of following them.
func newBrowser(t require.TestingT) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// helperT is a *testing.T or a *rapid.T.
type helperT interface {
	require.TestingT
	Helper()
}

// get sends a GET from the env's browser to an absolute URL (a
// gatehouse.test URL goes to the test server) and decodes the answer.
func (e *oauthEnv) get(t helperT, raw, bearer string) *apptest.Response {
	t.Helper()
	return e.getIn(t, e.browser, raw, bearer)
}

// getIn is get from another browser. Requests to the test server carry
// the public URL's host (gatehouse.test), as a browser on it sends them.
func (e *oauthEnv) getIn(t helperT, browser *http.Client, raw, bearer string) *apptest.Response {
	t.Helper()
	raw = strings.Replace(raw, "http://gatehouse.test", e.Server.URL, 1)
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	require.NoError(t, err)
	if strings.HasPrefix(raw, e.Server.URL) {
		req.Host = "gatehouse.test"
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := browser.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Raw: body}
	_ = json.Unmarshal(body, &out.JSON)
	return out
}

// start begins a flow and answers the callback URL the provider sends the
// browser back to.
func (e *oauthEnv) start(t helperT, provider, redirectURI, bearer string) string {
	t.Helper()
	q := ""
	if redirectURI != "" {
		q = "?redirect_uri=" + url.QueryEscape(redirectURI)
	}
	r := e.get(t, e.URL+"/oauth/"+provider+"/authorize"+q, bearer)
	require.Equal(t, http.StatusFound, r.Status, string(r.Raw))
	at := e.get(t, r.Header.Get("Location"), "")
	require.Equal(t, http.StatusFound, at.Status, string(at.Raw))
	return at.Header.Get("Location")
}

// login runs a whole flow without redirect_uri.
func (e *oauthEnv) login(t helperT, provider, bearer string) *apptest.Response {
	t.Helper()
	return e.get(t, e.start(t, provider, "", bearer), "")
}

func (e *oauthEnv) accounts(t helperT, access string) []any {
	t.Helper()
	r := e.Do(http.MethodGet, "/oauth/accounts", nil, access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	return r.JSON["items"].([]any)
}

func userOf(r *apptest.Response) map[string]any {
	u, _ := r.JSON["user"].(map[string]any)
	return u
}

func TestOAuth(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e := newOAuthEnv(t, engine)

			t.Run("NewUserThenKnownSubject", func(t *testing.T) {
				e.google.SetUser(oauthtest.Identity{Subject: "g-new", Email: "new@example.com", EmailVerified: true, Name: "New Person"})
				r := e.login(t, "google", "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				require.Equal(t, []any{"fed"}, apptest.Claims(t, r.Str("access_token"))["amr"])
				u := userOf(r)
				require.Equal(t, "new@example.com", u["email"])
				require.Equal(t, true, u["email_verified"])
				require.Equal(t, "New Person", u["name"])
				links := e.accounts(t, r.Str("access_token"))
				require.Len(t, links, 1)
				link := links[0].(map[string]any)
				require.Equal(t, "google", link["provider"])
				require.Equal(t, "g-new", link["provider_user_id"])

				// The same subject signs in again, even with another email.
				e.google.SetUser(oauthtest.Identity{Subject: "g-new", Email: "changed@example.com", EmailVerified: true})
				again := e.login(t, "google", "")
				require.Equal(t, http.StatusOK, again.Status, string(again.Raw))
				require.Equal(t, u["id"], userOf(again)["id"])
				require.Len(t, e.accounts(t, again.Str("access_token")), 1)
			})

			t.Run("BearerLinks", func(t *testing.T) {
				e.Register("linker@example.com", apptest.StrongPassword)
				tok := e.Login("linker@example.com", apptest.StrongPassword)
				e.github.SetUser(oauthtest.Identity{Subject: "4242", Email: "elsewhere@example.com", EmailVerified: true})
				r := e.login(t, "github", tok.Access)
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				require.Equal(t, "linker@example.com", userOf(r)["email"])
				links := e.accounts(t, tok.Access)
				require.Len(t, links, 1)
				require.Equal(t, "github", links[0].(map[string]any)["provider"])
				require.Equal(t, "4242", links[0].(map[string]any)["provider_user_id"])

				// Another user cannot take the linked account over.
				e.Register("other-linker@example.com", apptest.StrongPassword)
				other := e.Login("other-linker@example.com", apptest.StrongPassword)
				apptest.Expect(t, e.login(t, "github", other.Access), http.StatusConflict, "conflict")
				require.Empty(t, e.accounts(t, other.Access))

				// A bad bearer token is refused, not ignored.
				r = e.get(t, e.URL+"/oauth/github/authorize", "not-a-token")
				require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))

				// A linked account signs in without the password: linking
				// needs a sign-in within the last five minutes.
				e.Clock.Advance(5*time.Minute + time.Second)
				apptest.Expect(t, e.get(t, e.URL+"/oauth/github/authorize", other.Access), http.StatusForbidden, "recent_auth_required")
			})

			t.Run("VerifiedEmailAutoLinks", func(t *testing.T) {
				u, err := e.App.Accounts.CreateUser(t.Context(), "verified@example.com", apptest.StrongPassword, nil, true)
				require.NoError(t, err)
				e.acme.SetUser(oauthtest.Identity{Subject: "acme-1", Email: "Verified@Example.com", EmailVerified: true})
				r := e.login(t, "acme", "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				require.Equal(t, u.ID, userOf(r)["id"])
				require.Len(t, e.accounts(t, r.Str("access_token")), 1)
			})

			t.Run("UnverifiedEmailRefused", func(t *testing.T) {
				_, err := e.App.Accounts.CreateUser(t.Context(), "victim@example.com", apptest.StrongPassword, nil, true)
				require.NoError(t, err)
				e.microsoft.SetUser(oauthtest.Identity{Subject: "ms-attacker", Email: "victim@example.com", TenantID: "t1"})
				apptest.Expect(t, e.login(t, "microsoft", ""), http.StatusConflict, "oauth_email_not_verified")
				tok := e.Login("victim@example.com", apptest.StrongPassword)
				require.Empty(t, e.accounts(t, tok.Access), "nothing linked")

				// A provider-verified email does not link to an account
				// whose own email is unverified either.
				e.Register("unproven@example.com", apptest.StrongPassword)
				e.google.SetUser(oauthtest.Identity{Subject: "g-unproven", Email: "unproven@example.com", EmailVerified: true})
				apptest.Expect(t, e.login(t, "google", ""), http.StatusConflict, "oauth_email_not_verified")

				// GitHub: only a verified primary address counts.
				e.github.SetUser(oauthtest.Identity{Subject: "777", Emails: []oauthtest.GitHubEmail{
					{Email: "victim@example.com", Primary: true, Verified: false},
					{Email: "side@example.com", Primary: false, Verified: true},
				}})
				apptest.Expect(t, e.login(t, "github", ""), http.StatusConflict, "oauth_email_not_verified")
			})

			t.Run("GitHubEmails", func(t *testing.T) {
				e.github.SetUser(oauthtest.Identity{Subject: "9001", Name: "Octo", Emails: []oauthtest.GitHubEmail{
					{Email: "secondary@example.com", Primary: false, Verified: true},
					{Email: "octo@example.com", Primary: true, Verified: true},
				}})
				r := e.login(t, "github", "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				require.Equal(t, "octo@example.com", userOf(r)["email"])
				require.Equal(t, true, userOf(r)["email_verified"])

				// An address GitHub has not verified makes no account.
				e.github.SetUser(oauthtest.Identity{Subject: "9002", Emails: []oauthtest.GitHubEmail{
					{Email: "fresh-unverified@example.com", Primary: true, Verified: false},
					{Email: "fresh-secondary@example.com", Primary: false, Verified: true}}})
				apptest.Expect(t, e.login(t, "github", ""), http.StatusConflict, "oauth_email_not_verified")
				_, err := e.App.DB.GetOAuthAccount(t.Context(), "github", "9002")
				require.ErrorIs(t, err, store.ErrNotFound)

				e.github.SetUser(oauthtest.Identity{Subject: "9003"})
				apptest.Expect(t, e.login(t, "github", ""), http.StatusBadRequest, "oauth_denied")
			})

			t.Run("StateIsSingleUseAndBound", func(t *testing.T) {
				e.google.SetUser(oauthtest.Identity{Subject: "g-state", Email: "state@example.com", EmailVerified: true})
				cb := e.start(t, "google", "", "")
				require.Equal(t, http.StatusOK, e.get(t, cb, "").Status)
				apptest.Expect(t, e.get(t, cb, ""), http.StatusBadRequest, "invalid_token")

				// A state from one provider's flow is refused at another's callback.
				cb = e.start(t, "google", "", "")
				apptest.Expect(t, e.get(t, strings.Replace(cb, "/google/", "/acme/", 1), ""), http.StatusBadRequest, "invalid_token")
				apptest.Expect(t, e.get(t, e.URL+"/oauth/google/callback?code=x", ""), http.StatusBadRequest, "invalid_token")

				if e.redis {
					return
				}
				// Expired after 10 minutes.
				cb = e.start(t, "google", "", "")
				e.Clock.Advance(10*time.Minute + time.Second)
				apptest.Expect(t, e.get(t, cb, ""), http.StatusBadRequest, "invalid_token")
			})

			t.Run("PKCEBindsCodeToFlow", func(t *testing.T) {
				// Swapping the state of flow B onto the code of flow A: the
				// code is exchanged with B's verifier, which the provider refuses.
				e.google.SetUser(oauthtest.Identity{Subject: "g-pkce", Email: "pkce@example.com", EmailVerified: true})
				a, _ := url.Parse(e.start(t, "google", "", ""))
				b, _ := url.Parse(e.start(t, "google", "", ""))
				q := a.Query()
				q.Set("state", b.Query().Get("state"))
				a.RawQuery = q.Encode()
				apptest.Expect(t, e.get(t, a.String(), ""), http.StatusBadRequest, "oauth_denied")

				auth := e.get(t, e.URL+"/oauth/google/authorize", "")
				loc, _ := url.Parse(auth.Header.Get("Location"))
				require.Equal(t, "S256", loc.Query().Get("code_challenge_method"))
				require.Len(t, loc.Query().Get("code_challenge"), 43)
				require.NotEmpty(t, loc.Query().Get("nonce"))
				require.NotEmpty(t, loc.Query().Get("state"))
				require.Equal(t, "http://gatehouse.test/api/v1/oauth/google/callback", loc.Query().Get("redirect_uri"))
			})

			t.Run("BadIDTokens", func(t *testing.T) {
				e.google.SetUser(oauthtest.Identity{Subject: "g-bad", Email: "bad-id@example.com", EmailVerified: true})
				defer e.google.Reset()
				for name, tamper := range map[string]func(map[string]any){
					"nonce":    func(c map[string]any) { c["nonce"] = "other" },
					"issuer":   func(c map[string]any) { c["iss"] = "https://evil.example.com" },
					"audience": func(c map[string]any) { c["aud"] = "someone-else" },
					"expired":  func(c map[string]any) { c["exp"] = e.Clock.Now().Add(-time.Minute).Unix() },
				} {
					e.google.Tamper(tamper)
					r := e.login(t, "google", "")
					require.Equal(t, "oauth_provider_error", r.Code(), name)
					require.Equal(t, http.StatusBadGateway, r.Status, name)
				}
				e.google.Reset()
				e.google.SignWithForeignKey(t)
				apptest.Expect(t, e.login(t, "google", ""), http.StatusBadGateway, "oauth_provider_error")
				r := e.Do(http.MethodPost, "/auth/login", map[string]any{"email": "bad-id@example.com", "password": "x"}, "")
				require.Equal(t, http.StatusUnauthorized, r.Status, "no account was made")
			})

			t.Run("ProviderErrors", func(t *testing.T) {
				cb, _ := url.Parse(e.start(t, "acme", "", ""))
				state := cb.Query().Get("state")
				r := e.get(t, e.URL+"/oauth/acme/callback?error=access_denied&state="+url.QueryEscape(state), "")
				apptest.Expect(t, r, http.StatusBadRequest, "oauth_denied")

				e.acme.FailToken(http.StatusInternalServerError)
				defer e.acme.Reset()
				apptest.Expect(t, e.login(t, "acme", ""), http.StatusBadGateway, "oauth_provider_error")

				apptest.Expect(t, e.get(t, e.URL+"/oauth/nope/authorize", ""), http.StatusNotFound, "not_found")
			})

			t.Run("RedirectAllowList", func(t *testing.T) {
				for _, bad := range []string{"https://evil.example.com/cb", "https://app.example.com.evil.com/cb",
					"https://app.example.com/cbx", "http://app.example.com/cb", "https://user@app.example.com/cb",
					"https://app.example.com/cb/../x", "javascript:alert(1)"} {
					r := e.get(t, e.URL+"/oauth/google/authorize?redirect_uri="+url.QueryEscape(bad), "")
					apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed")
					require.Contains(t, string(r.Raw), "query.redirect_uri", bad)
				}
				for _, good := range []string{appCallback, appCallback + "/deeper?x=1", "https://other.example.com/anything"} {
					r := e.get(t, e.URL+"/oauth/google/authorize?redirect_uri="+url.QueryEscape(good), "")
					require.Equal(t, http.StatusFound, r.Status, good)
				}
			})

			t.Run("OneTimeCodeSingleUse", func(t *testing.T) {
				e.acme.SetUser(oauthtest.Identity{Subject: "acme-code", Email: "code@example.com", EmailVerified: true})
				r := e.get(t, e.start(t, "acme", appCallback+"?from=test", ""), "")
				require.Equal(t, http.StatusFound, r.Status, string(r.Raw))
				to, err := url.Parse(r.Header.Get("Location"))
				require.NoError(t, err)
				require.Equal(t, appCallback, to.Scheme+"://"+to.Host+to.Path)
				require.Equal(t, "test", to.Query().Get("from"))
				code := to.Query().Get("code")
				require.NotEmpty(t, code)

				statuses := make(chan int, 20)
				var wg sync.WaitGroup
				for range 20 {
					wg.Go(func() {
						statuses <- e.Do(http.MethodPost, "/oauth/exchange", map[string]any{"code": code}, "").Status
					})
				}
				wg.Wait()
				close(statuses)
				count := map[int]int{}
				for s := range statuses {
					count[s]++
				}
				require.Equal(t, map[int]int{http.StatusOK: 1, http.StatusBadRequest: 19}, count)

				if e.redis {
					return
				}
				// And it dies after 60 seconds.
				r = e.get(t, e.start(t, "acme", appCallback, ""), "")
				to, _ = url.Parse(r.Header.Get("Location"))
				e.Clock.Advance(61 * time.Second)
				x := e.Do(http.MethodPost, "/oauth/exchange", map[string]any{"code": to.Query().Get("code")}, "")
				apptest.Expect(t, x, http.StatusBadRequest, "invalid_token")
			})

			t.Run("MicrosoftTenantIssuer", func(t *testing.T) {
				// Microsoft does not vouch for emails unless it says so: no
				// account is made on an address it has not verified.
				e.microsoft.SetUser(oauthtest.Identity{Subject: "ms-1", Email: "ms@example.com", TenantID: "9188040d-6c67-4c5b-b112-36a304b66dad"})
				apptest.Expect(t, e.login(t, "microsoft", ""), http.StatusConflict, "oauth_email_not_verified")
				e.microsoft.SetUser(oauthtest.Identity{Subject: "ms-1", Email: "ms@example.com", EmailVerified: true,
					TenantID: "9188040d-6c67-4c5b-b112-36a304b66dad"})
				r := e.login(t, "microsoft", "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				require.Equal(t, true, userOf(r)["email_verified"])

				// An ID token whose iss names another tenant than its tid.
				e.microsoft.Tamper(func(c map[string]any) { c["tid"] = "another-tenant" })
				defer e.microsoft.Reset()
				apptest.Expect(t, e.login(t, "microsoft", ""), http.StatusBadGateway, "oauth_provider_error")
			})

			t.Run("UnlinkLastMethod", func(t *testing.T) {
				e.google.SetUser(oauthtest.Identity{Subject: "g-only", Email: "only@example.com", EmailVerified: true})
				r := e.login(t, "google", "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				access := r.Str("access_token")
				first := e.accounts(t, access)[0].(map[string]any)["id"].(string)
				apptest.Expect(t, e.Do(http.MethodDelete, "/oauth/accounts/"+first, nil, access), http.StatusConflict, "last_login_method")

				e.acme.SetUser(oauthtest.Identity{Subject: "acme-only", Email: "only-acme@example.com", EmailVerified: true})
				require.Equal(t, http.StatusOK, e.login(t, "acme", access).Status)
				require.Len(t, e.accounts(t, access), 2)
				require.Equal(t, http.StatusNoContent, e.Do(http.MethodDelete, "/oauth/accounts/"+first, nil, access).Status)
				apptest.Expect(t, e.Do(http.MethodDelete, "/oauth/accounts/"+first, nil, access), http.StatusNotFound, "not_found")
				require.Len(t, e.accounts(t, access), 1)
			})

			t.Run("MFAChallenge", func(t *testing.T) {
				e.google.SetUser(oauthtest.Identity{Subject: "g-mfa", Email: "mfa@example.com", EmailVerified: true})
				r := e.login(t, "google", "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				access := r.Str("access_token")
				setup := e.Do(http.MethodPost, "/auth/mfa/setup", map[string]any{"method": "totp"}, access)
				require.Equal(t, http.StatusOK, setup.Status, string(setup.Raw))
				code, err := mfa.TOTPCode(setup.Str("secret"), e.Clock.Now())
				require.NoError(t, err)
				act := e.Do(http.MethodPost, "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, access)
				require.Equal(t, http.StatusOK, act.Status, string(act.Raw))

				r = e.login(t, "google", "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				require.Equal(t, true, r.JSON["mfa_required"], string(r.Raw))
				require.Empty(t, r.Str("access_token"))
			})
		})
	}
}

// Properties 45, 46 and 47: a new external account with no local match
// makes a (verified) user only when the provider verified the email, and
// is refused with oauth_email_not_verified otherwise;
// one matching a local account links only when both sides verified the
// email, and is refused (nothing linked) otherwise; signing in again with
// the same subject always reaches the same user.
func TestProperty46_OAuthEmailVerification(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			e := newOAuthEnv(t, engine)
			var n atomic.Int64
			e.Check(t, func(rt *rapid.T) {
				i := n.Add(1)
				email := fmt.Sprintf("prop46-%d@example.com", i)
				providerVerified := rapid.Bool().Draw(rt, "provider_verified")
				local := rapid.SampledFrom([]string{"none", "verified", "unverified"}).Draw(rt, "local")
				var localID string
				if local != "none" {
					u, err := e.App.Accounts.CreateUser(t.Context(), email, apptest.StrongPassword, nil, local == "verified")
					require.NoError(rt, err)
					localID = u.ID
				}
				e.acme.SetUser(oauthtest.Identity{Subject: fmt.Sprintf("p46-%d", i), Email: email, EmailVerified: providerVerified})
				r := e.login(t, "acme", "")
				switch {
				case local == "none" && providerVerified:
					require.Equal(rt, http.StatusOK, r.Status, string(r.Raw))
					require.Equal(rt, true, userOf(r)["email_verified"])
				case local == "verified" && providerVerified:
					require.Equal(rt, http.StatusOK, r.Status, string(r.Raw))
					require.Equal(rt, localID, userOf(r)["id"])
				default:
					require.Equal(rt, http.StatusConflict, r.Status, string(r.Raw))
					require.Equal(rt, "oauth_email_not_verified", r.Code())
					return
				}
				again := e.login(t, "acme", "")
				require.Equal(rt, http.StatusOK, again.Status, string(again.Raw))
				require.Equal(rt, userOf(r)["id"], userOf(again)["id"])
				require.Len(rt, e.accounts(t, again.Str("access_token")), 1)
			})
		})
	}
}
