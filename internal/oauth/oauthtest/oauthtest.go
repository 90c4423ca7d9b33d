// Package oauthtest runs fake identity providers over real HTTP for tests:
// an OpenID Provider (discovery, JWKS, authorize, token, userinfo) that
// signs ID tokens with its own RSA key and checks the client secret and
// the PKCE verifier, and a GitHub look-alike (OAuth 2 plus /user and
// /user/emails).
package oauthtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Identity is the person the fake signs in at its authorize endpoint.
type Identity struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	TenantID      string // the tid claim (Microsoft)
	// Emails is what GitHub's /user/emails answers; empty means Email as
	// the primary address, verified as EmailVerified.
	Emails []GitHubEmail
}

// GitHubEmail is one entry of GitHub's GET /user/emails.
type GitHubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// Kind selects what the fake imitates.
type Kind int

// The kinds of fake.
const (
	OIDC      Kind = iota // a standard OpenID Provider
	Microsoft             // OIDC whose discovery names the {tenantid} issuer template
	GitHub                // OAuth 2 with GitHub's endpoints and user API
)

// Provider is a running fake.
type Provider struct {
	Kind         Kind
	ClientID     string
	ClientSecret string
	Server       *httptest.Server
	key          *rsa.PrivateKey

	mu    sync.Mutex
	user  Identity
	codes map[string]*grant
	now   func() time.Time
	// TokenStatus, when set, is the status the token endpoint answers.
	tokenStatus int
	// tamper edits the ID token claims before signing.
	tamper func(claims map[string]any)
	// signer, when set, signs ID tokens instead of the published key.
	signWith *rsa.PrivateKey
	// TokenRequests counts calls to the token endpoint.
	tokenRequests int
}

type grant struct {
	clientID, redirectURI, challenge, nonce string
	user                                    Identity
	used                                    bool
}

// Start runs a fake of the kind, closed when t ends. now is the clock of
// the ID tokens' iat and exp (nil: time.Now).
func Start(t testing.TB, kind Kind, now func() time.Time) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if now == nil {
		now = time.Now
	}
	p := &Provider{Kind: kind, ClientID: "client-" + randomString(), ClientSecret: "secret-" + randomString(),
		key: key, codes: map[string]*grant{}, now: now,
		user: Identity{Subject: "sub-1", Email: "person@example.com", EmailVerified: true, Name: "Pat Person"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("GET /login/oauth/authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /login/oauth/access_token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	mux.HandleFunc("GET /user", p.githubUser)
	mux.HandleFunc("GET /user/emails", p.githubEmails)
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Server.Close)
	return p
}

// URL is the issuer (OIDC) or base URL (GitHub) to configure.
func (p *Provider) URL() string { return p.Server.URL }

// Env returns the GATEHOUSE_OAUTH_<NAME>_* variables pointing name at the fake.
func (p *Provider) Env(name string) map[string]string {
	pre := "GATEHOUSE_OAUTH_" + strings.ToUpper(name)
	return map[string]string{pre + "_CLIENT_ID": p.ClientID, pre + "_CLIENT_SECRET": p.ClientSecret, pre + "_ISSUER": p.URL()}
}

// SetUser sets who signs in next.
func (p *Provider) SetUser(u Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = u
}

// Reset undoes FailToken, Tamper and SignWithForeignKey.
func (p *Provider) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenStatus, p.tamper, p.signWith = 0, nil, nil
}

// FailToken makes the token endpoint answer status.
func (p *Provider) FailToken(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenStatus = status
}

// Tamper edits every later ID token's claims before signing.
func (p *Provider) Tamper(fn func(claims map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = fn
}

// SignWithForeignKey signs later ID tokens with a key the JWKS does not
// publish.
func (p *Provider) SignWithForeignKey(t testing.TB) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signWith = key
}

// TokenRequests is how many times the token endpoint was called.
func (p *Provider) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenRequests
}

func (p *Provider) issuer(tenant string) string {
	if p.Kind == Microsoft {
		return p.URL() + "/" + tenant + "/v2.0"
	}
	return p.URL()
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.issuer("{tenantid}"),
		"authorization_endpoint":                p.URL() + "/authorize",
		"token_endpoint":                        p.URL() + "/token",
		"userinfo_endpoint":                     p.URL() + "/userinfo",
		"jwks_uri":                              p.URL() + "/jwks",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

// authorize signs the current user in at once and redirects back with a
// code, as a provider does after the person consents.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != p.ClientID || redirect == "" || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := randomString()
	p.mu.Lock()
	p.codes[code] = &grant{clientID: p.ClientID, redirectURI: redirect, challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), user: p.user}
	p.mu.Unlock()
	u, _ := url.Parse(redirect)
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenRequests++
	if p.tokenStatus != 0 {
		writeJSON(w, p.tokenStatus, map[string]string{"error": "server_error"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || secret != p.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	g := p.codes[r.PostForm.Get("code")]
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if r.PostForm.Get("grant_type") != "authorization_code" || g == nil || g.used ||
		g.redirectURI != r.PostForm.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	g.used = true
	access := "at-" + randomString()
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600}
	if p.Kind == GitHub {
		resp["scope"] = "read:user,user:email"
		p.codes["token:"+access] = g // /user answers by access token
		writeJSON(w, http.StatusOK, resp)
		return
	}
	p.codes["token:"+access] = g
	now := p.now()
	claims := map[string]any{
		"iss": p.issuer(g.user.TenantID), "sub": g.user.Subject, "aud": p.ClientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": g.nonce, "name": g.user.Name,
	}
	if g.user.Email != "" {
		claims["email"], claims["email_verified"] = g.user.Email, g.user.EmailVerified
	}
	if g.user.TenantID != "" {
		claims["tid"] = g.user.TenantID
	}
	if p.tamper != nil {
		p.tamper(claims)
	}
	key := p.key
	if p.signWith != nil {
		key = p.signWith
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	resp["id_token"], _ = jws.CompactSerialize()
	writeJSON(w, http.StatusOK, resp)
}

// byToken finds the grant of the request's bearer access token.
func (p *Provider) byToken(r *http.Request) *grant {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.codes["token:"+tok]
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	g := p.byToken(r)
	if g == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": g.user.Subject, "email": g.user.Email,
		"email_verified": g.user.EmailVerified, "name": g.user.Name})
}

func (p *Provider) githubUser(w http.ResponseWriter, r *http.Request) {
	g := p.byToken(r)
	if g == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": json.Number(g.user.Subject), "login": "octo-" + g.user.Subject, "name": g.user.Name})
}

func (p *Provider) githubEmails(w http.ResponseWriter, r *http.Request) {
	g := p.byToken(r)
	if g == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	}
	emails := g.user.Emails
	if len(emails) == 0 && g.user.Email != "" {
		emails = []GitHubEmail{{Email: g.user.Email, Primary: true, Verified: g.user.EmailVerified}}
	}
	if emails == nil {
		emails = []GitHubEmail{}
	}
	writeJSON(w, http.StatusOK, emails)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomString() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
