package oidcprovider_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/oidcprovider"
)

// The relying party of these tests: golang.org/x/oauth2 and go-oidc,
// talking to a whole server through a cookie-keeping browser.

const (
	issuer      = "http://gatehouse.test" // apptest's GATEHOUSE_PUBLIC_URL
	rpCallback  = "http://localhost:9999/cb"
	rpLoggedOut = "http://localhost:9999/bye"
)

// toServer sends requests for the public URL's host to the test server,
// keeping the Host header, as a reverse proxy would.
type toServer struct{ addr string }

func (t toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "gatehouse.test" {
		r = r.Clone(r.Context())
		r.URL.Host, r.Host = t.addr, "gatehouse.test"
	}
	return http.DefaultTransport.RoundTrip(r)
}

type rp struct {
	t        *testing.T
	e        *apptest.Env
	ctx      context.Context
	http     *http.Client // the RP's back channel
	browser  *http.Client
	provider *oidc.Provider
	conf     oauth2.Config
	last     string // body of the browser's last page
}

func newRP(t *testing.T, e *apptest.Env, clientID, secret string, scopes ...string) *rp {
	t.Helper()
	tr := toServer{addr: strings.TrimPrefix(e.Server.URL, "http://")}
	back := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Transport: tr, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if r.URL.Host == "localhost:9999" {
				return http.ErrUseLastResponse // the RP's own pages
			}
			return nil
		}}
	ctx := oidc.ClientContext(t.Context(), back)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, back)
	provider, err := oidc.NewProvider(ctx, issuer)
	require.NoError(t, err, "discovery verifies (issuer matches)")
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	}
	return &rp{t: t, e: e, ctx: ctx, http: back, browser: browser, provider: provider,
		conf: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: rpCallback, Scopes: scopes}}
}

// open follows the browser to wherever a URL leads; it returns the last
// answer (a page, or the redirect to the RP).
func (r *rp) open(method, u string, form url.Values) *http.Response {
	r.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	if strings.HasPrefix(u, "/") {
		u = issuer + u
	}
	req, err := http.NewRequestWithContext(r.ctx, method, u, body)
	require.NoError(r.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := r.browser.Do(req)
	require.NoError(r.t, err)
	return r.keep(resp)
}

// keep reads resp's body into r.last and closes it.
func (r *rp) keep(resp *http.Response) *http.Response {
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.last = string(b)
	return resp
}

var hiddenRe = regexp.MustCompile(`name="(csrf|return_to|id)" value="([^"]*)"`)

// hidden reads the hidden fields of the last page's first form.
func (r *rp) hidden() url.Values {
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(r.last, -1) {
		if v.Get(m[1]) == "" {
			v.Set(m[1], html.UnescapeString(m[2]))
		}
	}
	return v
}

// callback reads the RP's callback parameters from a redirect to it.
func (r *rp) callback(resp *http.Response) url.Values {
	r.t.Helper()
	require.Equal(r.t, http.StatusFound, resp.StatusCode, "want a redirect to the RP, got page:\n%s", r.last)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(r.t, err)
	require.Equal(r.t, "localhost:9999", loc.Host, resp.Header.Get("Location"))
	return loc.Query()
}

// signIn posts the login page the browser is on.
func (r *rp) signIn(email string) *http.Response {
	r.t.Helper()
	require.Contains(r.t, r.last, `name="password"`, "the login page")
	f := r.hidden()
	f.Set("email", email)
	f.Set("password", apptest.StrongPassword)
	return r.open("POST", "/login", f)
}

// authorize runs the front channel up to the code: sign in when asked,
// allow when asked. It returns the callback parameters.
func (r *rp) authorize(email, state, nonce, verifier string, extra ...oauth2.AuthCodeOption) url.Values {
	r.t.Helper()
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(nonce)}, extra...)
	if verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	resp := r.open("GET", r.conf.AuthCodeURL(state, opts...), nil)
	if resp.StatusCode == http.StatusOK && strings.Contains(r.last, `name="password"`) {
		resp = r.signIn(email)
	}
	if resp.StatusCode == http.StatusOK && strings.Contains(r.last, `value="allow"`) {
		f := r.hidden()
		f.Set("decision", "allow")
		resp = r.open("POST", "/oauth2/consent", f)
	}
	q := r.callback(resp)
	require.Equal(r.t, state, q.Get("state"))
	return q
}

func setup(t *testing.T, engine string) (*apptest.Env, string) {
	e := apptest.New(t, engine, nil)
	email := "ada@example.com"
	_, err := e.App.Accounts.CreateUser(t.Context(), email, apptest.StrongPassword, nil, true)
	require.NoError(t, err)
	return e, email
}

func newClient(t *testing.T, e *apptest.Env, in oidcprovider.ClientInput) (string, string) {
	t.Helper()
	if in.Name == "" {
		in.Name = "Grafana"
	}
	if in.RedirectURIs == nil {
		in.RedirectURIs = []string{rpCallback}
	}
	if in.PostLogoutRedirectURIs == nil {
		in.PostLogoutRedirectURIs = []string{rpLoggedOut}
	}
	c, secret, err := e.App.Clients.Create(t.Context(), "", in)
	require.NoError(t, err)
	return c.ID, secret
}

func TestCodeFlow(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e, email := setup(t, engine)
			id, secret := newClient(t, e, oidcprovider.ClientInput{})
			r := newRP(t, e, id, secret)

			verifier := oauth2.GenerateVerifier()
			q := r.authorize(email, "st-1", "n-1", verifier)
			code := q.Get("code")
			require.NotEmpty(t, code)

			tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
			require.NoError(t, err)
			require.NotEmpty(t, tok.RefreshToken, "offline_access gives a refresh token")
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := r.provider.Verifier(&oidc.Config{ClientID: id}).Verify(r.ctx, rawID)
			require.NoError(t, err, "go-oidc verifies the ID token")
			require.Equal(t, "n-1", idt.Nonce)
			var claims map[string]any
			require.NoError(t, idt.Claims(&claims))
			for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "sid", "email", "email_verified", "at_hash"} {
				require.Contains(t, claims, c)
			}
			require.Equal(t, email, claims["email"])
			require.Equal(t, []any{"pwd"}, claims["amr"])
			require.Equal(t, oidcprovider.ACRSingleFactor, claims["acr"])
			require.NoError(t, idt.VerifyAccessToken(tok.AccessToken))

			// The access token is today's at+jwt, for this client, with its scope.
			at := apptest.Claims(t, tok.AccessToken)
			require.Equal(t, id, at["client_id"])
			require.Equal(t, "openid profile email offline_access", at["scope"])
			require.Equal(t, idt.Subject, at["sub"])
			// ... for the app's resource servers, not for Gatehouse's own API.
			apptest.Expect(t, e.Do("GET", "/auth/me", nil, tok.AccessToken), http.StatusUnauthorized, "unauthorized")

			ui, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(tok))
			require.NoError(t, err)
			require.Equal(t, email, ui.Email)
			require.Equal(t, idt.Subject, ui.Subject)

			// (A code is spent once, and its replay ends these tokens:
			// TestCodeReplayRevokesItsTokens.)

			// Introspection, for an authenticated client.
			in := r.introspect(id, secret, tok.AccessToken)
			require.Equal(t, true, in["active"])
			require.Equal(t, id, in["client_id"])
			require.Equal(t, false, r.introspect(id, secret, "nonsense")["active"])
			require.Equal(t, true, r.introspect(id, secret, tok.RefreshToken)["active"])
			resp := r.post("/oauth2/introspect", id, "wrong", url.Values{"token": {tok.AccessToken}})
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

			// Refresh rotates; the rotated token presented again ends the family.
			old := tok.RefreshToken
			next, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Hour)}).Token()
			require.NoError(t, err)
			require.NotEqual(t, old, next.RefreshToken)
			require.NotEmpty(t, next.Extra("id_token"))
			_, err = r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Hour)}).Token()
			requireOAuthError(t, err, "invalid_grant")
			_, err = r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: next.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
			requireOAuthError(t, err, "invalid_grant")
			require.Equal(t, false, r.introspect(id, secret, next.AccessToken)["active"], "the family's session ended")

			// Signed in already and consented: the next authorization goes straight back.
			q = r.authorize(email, "st-2", "n-2", verifier)
			tok2, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			require.NoError(t, err)

			// Revocation ends the session behind the token.
			resp = r.post("/oauth2/revoke", id, secret, url.Values{"token": {tok2.RefreshToken}})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, false, r.introspect(id, secret, tok2.AccessToken)["active"])

			// Consents are listed and revocable.
			user := e.Login(email, apptest.StrongPassword)
			list := e.Do("GET", "/auth/consents", nil, user.Access)
			apptest.Expect(t, list, http.StatusOK, "")
			require.Len(t, list.JSON["items"], 1)

			// RP-initiated logout ends the browser session and returns to the app.
			q = r.authorize(email, "st-3", "n-3", verifier)
			tok3, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			require.NoError(t, err)
			resp = r.open("GET", "/oauth2/end_session?"+url.Values{"id_token_hint": {tok3.Extra("id_token").(string)},
				"post_logout_redirect_uri": {rpLoggedOut}, "state": {"bye"}}.Encode(), nil)
			require.Equal(t, http.StatusFound, resp.StatusCode, r.last)
			require.Equal(t, rpLoggedOut+"?state=bye", resp.Header.Get("Location"))
			q = r.callback(r.open("GET", r.conf.AuthCodeURL("st-4", oauth2.S256ChallengeOption(verifier),
				oauth2.SetAuthURLParam("prompt", "none")), nil))
			require.Equal(t, "login_required", q.Get("error"), "the browser is signed out")

			apptest.Expect(t, e.Do("DELETE", "/auth/consents/"+id, nil, user.Access), http.StatusNoContent, "")
			list = e.Do("GET", "/auth/consents", nil, user.Access)
			require.Empty(t, list.JSON["items"])

			types := map[string]bool{}
			for _, ev := range e.Events() {
				types[string(ev.Type)] = true
			}
			require.True(t, types["client.authorized"] && types["client.token_granted"] && types["client.consent_revoked"], "%v", types)
		})
	}
}

func (r *rp) post(path, id, secret string, form url.Values) *http.Response {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.ctx, "POST", issuer+path, strings.NewReader(form.Encode()))
	require.NoError(r.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := r.http.Do(req)
	require.NoError(r.t, err)
	return r.keep(resp)
}

func (r *rp) introspect(id, secret, tok string) map[string]any {
	r.t.Helper()
	resp := r.post("/oauth2/introspect", id, secret, url.Values{"token": {tok}})
	require.Equal(r.t, http.StatusOK, resp.StatusCode, r.last)
	var out map[string]any
	require.NoError(r.t, json.Unmarshal([]byte(r.last), &out))
	return out
}

func requireOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	require.Equal(t, code, re.ErrorCode, string(re.Body))
}

func TestPromptNoneWithoutSession(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e, _ := setup(t, engine)
			id, secret := newClient(t, e, oidcprovider.ClientInput{})
			r := newRP(t, e, id, secret)
			q := r.callback(r.open("GET", r.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
				oauth2.SetAuthURLParam("prompt", "none")), nil))
			require.Equal(t, "login_required", q.Get("error"))
			require.Equal(t, "s", q.Get("state"))
		})
	}
}

func TestPublicClientNeedsPKCE(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e, email := setup(t, engine)
			id, _ := newClient(t, e, oidcprovider.ClientInput{Public: true, FirstParty: true})
			r := newRP(t, e, id, "")
			q := r.callback(r.open("GET", r.conf.AuthCodeURL("s"), nil))
			require.Equal(t, "invalid_request", q.Get("error"), "no code_challenge")
			q = r.callback(r.open("GET", r.conf.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", "abc"),
				oauth2.SetAuthURLParam("code_challenge_method", "plain")), nil))
			require.Equal(t, "invalid_request", q.Get("error"), "plain is refused")

			// With S256 it works, and a first-party client skips consent.
			verifier := oauth2.GenerateVerifier()
			q = r.authorize(email, "s", "n", verifier)
			require.NotContains(t, r.last, "allow")
			_, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption("wrong-"+verifier))
			requireOAuthError(t, err, "invalid_grant")
			q = r.authorize(email, "s", "n", verifier)
			_, err = r.conf.Exchange(r.ctx, q.Get("code"))
			requireOAuthError(t, err, "invalid_grant")
			q = r.authorize(email, "s", "n", verifier)
			tok, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			require.NoError(t, err)
			require.NotEmpty(t, tok.AccessToken)
		})
	}
}

func TestWrongRedirectURIRefused(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e, email := setup(t, engine)
			id, secret := newClient(t, e, oidcprovider.ClientInput{FirstParty: true})
			r := newRP(t, e, id, secret)
			for _, bad := range []string{"http://localhost:9999/cb/", "http://localhost:9999/cb?x=1", "http://localhost:9999/CB", "https://evil.example/cb"} {
				conf := r.conf
				conf.RedirectURL = bad
				resp := r.open("GET", conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
				require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: never redirected to an unregistered URI", bad)
			}
			// A code is bound to the redirect URI it was issued for.
			verifier := oauth2.GenerateVerifier()
			q := r.authorize(email, "s", "n", verifier)
			conf := r.conf
			conf.RedirectURL = "http://localhost:9999/other"
			_, err := conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			requireOAuthError(t, err, "invalid_grant")
			// Wrong client secret.
			conf = r.conf
			conf.ClientSecret = "wrong"
			_, err = conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			requireOAuthError(t, err, "invalid_client")
		})
	}
}

func TestCodeSpentOnceUnderConcurrency(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e, email := setup(t, engine)
			id, secret := newClient(t, e, oidcprovider.ClientInput{FirstParty: true})
			r := newRP(t, e, id, secret)
			verifier := oauth2.GenerateVerifier()
			code := r.authorize(email, "s", "n", verifier).Get("code")
			var (
				wg   sync.WaitGroup
				errs [2]error
			)
			start := make(chan struct{})
			for i := range errs {
				wg.Go(func() {
					<-start
					_, errs[i] = r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(verifier))
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
				} else {
					requireOAuthError(t, err, "invalid_grant")
				}
			}
			require.Equal(t, 1, wins, "exactly one exchange wins")
		})
	}
}

func TestClientCredentials(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e, _ := setup(t, engine)
			id, secret := newClient(t, e, oidcprovider.ClientInput{Name: "billing", RedirectURIs: []string{},
				GrantTypes: []string{"client_credentials"}, Scopes: []string{"users:read", "audit:read"}})
			tr := toServer{addr: strings.TrimPrefix(e.Server.URL, "http://")}
			post := func(form url.Values, secret string) (int, map[string]any) {
				req, err := http.NewRequest("POST", issuer+"/oauth2/token", strings.NewReader(form.Encode()))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, secret)
				resp, err := (&http.Client{Transport: tr}).Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				var out map[string]any
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
				return resp.StatusCode, out
			}
			status, out := post(url.Values{"grant_type": {"client_credentials"}, "scope": {"users:read"}}, secret)
			require.Equal(t, http.StatusOK, status, out)
			at := apptest.Claims(t, out["access_token"].(string))
			require.Equal(t, id, at["sub"])
			require.Equal(t, id, at["client_id"])
			require.Equal(t, "users:read", at["scope"])
			apptest.Expect(t, e.Do("GET", "/admin/users", nil, out["access_token"].(string)), http.StatusUnauthorized, "unauthorized")

			status, out = post(url.Values{"grant_type": {"client_credentials"}}, secret)
			require.Equal(t, http.StatusOK, status, out)
			require.Equal(t, "users:read audit:read", apptest.Claims(t, out["access_token"].(string))["scope"])

			status, out = post(url.Values{"grant_type": {"client_credentials"}, "scope": {"roles:write"}}, secret)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, "invalid_scope", out["error"])
			status, out = post(url.Values{"grant_type": {"client_credentials"}}, "wrong")
			require.Equal(t, http.StatusUnauthorized, status, out)
			require.Equal(t, "invalid_client", out["error"])
		})
	}
}

// Discovery names what the provider does, with the fields OpenID Connect
// Discovery 1.0 §3 requires.
func TestDiscovery(t *testing.T) {
	e, _ := setup(t, "sqlite")
	r := newRP(t, e, "x", "")
	var d map[string]any
	require.NoError(t, r.provider.Claims(&d))
	for _, f := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
		"subject_types_supported", "id_token_signing_alg_values_supported", "userinfo_endpoint", "end_session_endpoint",
		"revocation_endpoint", "introspection_endpoint", "code_challenge_methods_supported"} {
		require.Contains(t, d, f)
	}
	require.Equal(t, issuer, d["issuer"])
	require.Equal(t, issuer+"/.well-known/jwks.json", d["jwks_uri"])
	require.Equal(t, []any{"code"}, d["response_types_supported"])
	require.Equal(t, []any{"authorization_code", "refresh_token", "client_credentials"}, d["grant_types_supported"])
	require.Equal(t, []any{"S256"}, d["code_challenge_methods_supported"])
	require.Equal(t, []any{"RS256"}, d["id_token_signing_alg_values_supported"])
}
