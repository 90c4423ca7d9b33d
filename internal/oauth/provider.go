package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// Provider kinds.
const (
	kindOIDC   = "oidc"
	kindGitHub = "github"
)

// The public endpoints of the known providers; GATEHOUSE_OAUTH_<NAME>_ISSUER
// replaces them (tests point them at fakes).
const (
	googleIssuer    = "https://accounts.google.com"
	microsoftIssuer = "https://login.microsoftonline.com/common/v2.0"
	githubWeb       = "https://github.com"
	githubAPI       = "https://api.github.com"
)

// tenantPlaceholder stands for the tenant id in Microsoft's multi-tenant
// issuer ("https://login.microsoftonline.com/{tenantid}/v2.0").
const tenantPlaceholder = "{tenantid}"

// tenantID is what a tid claim may hold (a GUID, in practice).
var tenantID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// ProviderConfig is one configured provider.
type ProviderConfig struct {
	// Name is the {provider} of the API paths: google, github, microsoft,
	// or any other name for a generic OpenID Connect provider.
	Name         string
	ClientID     string
	ClientSecret string
	// Issuer is the OpenID Connect issuer; for github the base URL of both
	// its web and API endpoints. Empty means the known provider's public
	// endpoints.
	Issuer string
}

// profile is what a provider says about the person who signed in.
type profile struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// provider talks to one identity provider. Every call goes through its
// client: a timeout and a circuit breaker.
type provider struct {
	name, kind string
	cfg        ProviderConfig
	client     *http.Client
	now        func() time.Time
	// github
	apiBase string
	// oidc, discovered on first use (and retried after a failure)
	mu       sync.Mutex
	oidc     *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// issuerTemplate is set when the discovered issuer names
	// {tenantid} (Microsoft's common endpoint): each ID token's iss must
	// then be the template with the token's own tid.
	issuerTemplate string
	oauth2         oauth2.Config
}

func newProvider(c ProviderConfig, redirectURL string, timeout time.Duration, base http.RoundTripper, now func() time.Time) *provider {
	p := &provider{name: c.Name, kind: kindOIDC, cfg: c, now: now,
		client: &http.Client{Timeout: timeout, Transport: telemetry.Transport(newBreakerTransport(c.Name, base)),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	p.oauth2 = oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirectURL,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	switch c.Name {
	case "github":
		p.kind = kindGitHub
		web, api := githubWeb, githubAPI
		if c.Issuer != "" {
			web, api = c.Issuer, c.Issuer
		}
		p.apiBase = api
		p.oauth2.Scopes = []string{"read:user", "user:email"}
		p.oauth2.Endpoint = oauth2.Endpoint{AuthURL: web + "/login/oauth/authorize", TokenURL: web + "/login/oauth/access_token"}
	case "google":
		if p.cfg.Issuer == "" {
			p.cfg.Issuer = googleIssuer
		}
	case "microsoft":
		if p.cfg.Issuer == "" {
			p.cfg.Issuer = microsoftIssuer
		}
	}
	return p
}

// ctx carries the provider's client to x/oauth2 and go-oidc.
func (p *provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, p.client), p.client)
}

// discovery is the part of the OpenID Provider metadata we use.
type discovery struct {
	Issuer      string   `json:"issuer"`
	AuthURL     string   `json:"authorization_endpoint"`
	TokenURL    string   `json:"token_endpoint"`
	UserInfoURL string   `json:"userinfo_endpoint"`
	JWKSURL     string   `json:"jwks_uri"`
	Algorithms  []string `json:"id_token_signing_alg_values_supported"`
}

// config answers the OAuth 2 configuration, running OIDC discovery on
// first use.
func (p *provider) config(ctx context.Context) (oauth2.Config, error) {
	if p.kind != kindOIDC {
		return p.oauth2, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.oidc != nil {
		return p.oauth2, nil
	}
	var d discovery
	if err := p.getJSON(ctx, p.cfg.Issuer+"/.well-known/openid-configuration", "", &d); err != nil {
		return oauth2.Config{}, providerError(p.name, fmt.Errorf("discovery: %w", err))
	}
	switch {
	case d.Issuer == p.cfg.Issuer:
	case p.name == "microsoft" && strings.Contains(d.Issuer, tenantPlaceholder):
		p.issuerTemplate = d.Issuer
	default:
		return oauth2.Config{}, providerError(p.name, fmt.Errorf("discovery: issuer %q is not the configured %q", d.Issuer, p.cfg.Issuer))
	}
	if d.AuthURL == "" || d.TokenURL == "" || d.JWKSURL == "" {
		return oauth2.Config{}, providerError(p.name, errors.New("discovery: an endpoint is missing"))
	}
	pc := oidc.ProviderConfig{IssuerURL: d.Issuer, AuthURL: d.AuthURL, TokenURL: d.TokenURL,
		UserInfoURL: d.UserInfoURL, JWKSURL: d.JWKSURL, Algorithms: d.Algorithms}
	// The provider keeps this context for its key set fetches: it carries
	// only the client, never a request's cancellation.
	p.oidc = pc.NewProvider(p.ctx(context.Background()))
	p.verifier = p.oidc.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, Now: p.now, SkipIssuerCheck: p.issuerTemplate != ""})
	p.oauth2.Endpoint = p.oidc.Endpoint()
	return p.oauth2, nil
}

// exchange trades the authorization code (with the PKCE verifier) for
// tokens and answers who signed in.
func (p *provider) exchange(ctx context.Context, code, verifier, nonce string) (profile, error) {
	cfg, err := p.config(ctx)
	if err != nil {
		return profile{}, err
	}
	tok, err := cfg.Exchange(p.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			if cause := p.misconfigured(re.ErrorCode); cause != nil {
				return profile{}, providerError(p.name, cause)
			}
			if re.Response != nil && re.Response.StatusCode < 500 {
				return profile{}, gatehouse.WrapError(gatehouse.CodeOAuthDenied, err,
					"the provider refused the authorization code; start the sign-in again")
			}
		}
		return profile{}, providerError(p.name, fmt.Errorf("token exchange: %w", err))
	}
	if p.kind == kindGitHub {
		return p.githubProfile(ctx, tok.AccessToken)
	}
	return p.oidcProfile(ctx, tok, nonce)
}

// idClaims are the ID token claims we read beyond the verified ones.
type idClaims struct {
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"` // a bool, or "true" from some providers
	Name          string `json:"name"`
	TenantID      string `json:"tid"`
}

func (p *provider) oidcProfile(ctx context.Context, tok *oauth2.Token, nonce string) (profile, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return profile{}, providerError(p.name, errors.New("the token answer has no id_token"))
	}
	idt, err := p.verifier.Verify(p.ctx(ctx), raw)
	if err != nil {
		return profile{}, badIDToken(p.name, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return profile{}, badIDToken(p.name, errors.New("nonce mismatch"))
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return profile{}, badIDToken(p.name, err)
	}
	if p.issuerTemplate != "" {
		if !tenantID.MatchString(c.TenantID) || idt.Issuer != strings.ReplaceAll(p.issuerTemplate, tenantPlaceholder, c.TenantID) {
			return profile{}, badIDToken(p.name, fmt.Errorf("issuer %q does not match the tenant %q", idt.Issuer, c.TenantID))
		}
	}
	if idt.Subject == "" {
		return profile{}, badIDToken(p.name, errors.New("no sub"))
	}
	pr := profile{Subject: idt.Subject, Email: c.Email, EmailVerified: truthy(c.EmailVerified), Name: c.Name}
	if pr.Email == "" && p.oidc.UserInfoEndpoint() != "" {
		ui, err := p.oidc.UserInfo(p.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return profile{}, providerError(p.name, fmt.Errorf("userinfo: %w", err))
		}
		if ui.Subject != idt.Subject {
			return profile{}, badIDToken(p.name, errors.New("userinfo is about another subject"))
		}
		pr.Email, pr.EmailVerified = ui.Email, ui.EmailVerified
	}
	return pr, nil
}

func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// githubProfile reads GET /user and GET /user/emails. Only the primary
// address counts, and it counts as verified only when GitHub says so.
func (p *provider) githubProfile(ctx context.Context, accessToken string) (profile, error) {
	var u struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := p.getJSON(ctx, p.apiBase+"/user", accessToken, &u); err != nil {
		return profile{}, providerError(p.name, fmt.Errorf("GET /user: %w", err))
	}
	if u.ID == 0 {
		return profile{}, providerError(p.name, errors.New("GET /user: no id"))
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := p.getJSON(ctx, p.apiBase+"/user/emails", accessToken, &emails); err != nil {
		return profile{}, providerError(p.name, fmt.Errorf("GET /user/emails: %w", err))
	}
	pr := profile{Subject: strconv.FormatInt(u.ID, 10), Name: u.Name}
	if pr.Name == "" {
		pr.Name = u.Login
	}
	for _, e := range emails {
		if e.Primary {
			pr.Email, pr.EmailVerified = e.Email, e.Verified
		}
	}
	return pr, nil
}

// getJSON GETs url (with a bearer token when given) and decodes a 200
// answer of at most 1 MiB.
func (p *provider) getJSON(ctx context.Context, url, bearer string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// misconfigured names the setting to fix when the token endpoint refused
// Gatehouse itself rather than the person's code (RFC 6749 5.2
// invalid_client and unauthorized_client, GitHub's
// incorrect_client_credentials and redirect_uri_mismatch); nil otherwise.
// Starting again cannot help then: the operator must fix the setting, so
// this is a provider error (502, logged at WARN), not oauth_denied.
func (p *provider) misconfigured(code string) error {
	setting := "GATEHOUSE_OAUTH_" + strings.ToUpper(p.name) // config's GATEHOUSE_OAUTH_<NAME>_* variables
	switch code {
	case "invalid_client", "unauthorized_client", "incorrect_client_credentials":
		return fmt.Errorf("token exchange: %s refused Gatehouse's client credentials (%s): check %s_CLIENT_ID and %s_CLIENT_SECRET",
			p.name, code, setting, setting)
	case "redirect_uri_mismatch":
		return fmt.Errorf("token exchange: %s refused the redirect URI (%s): register %s at the provider, or fix GATEHOUSE_PUBLIC_URL",
			p.name, code, p.oauth2.RedirectURL)
	}
	return nil
}

// providerError is a provider failure: unreachable, slow, 5xx, or an
// answer that makes no sense. Its cause is logged, never shown.
func providerError(name string, cause error) error {
	return gatehouse.WrapError(gatehouse.CodeOAuthProviderError, cause,
		"the identity provider "+name+" failed or is unavailable; try again later")
}

// badIDToken is an ID token that failed verification (signature, issuer,
// audience, expiry or nonce).
func badIDToken(name string, cause error) error {
	return gatehouse.WrapError(gatehouse.CodeOAuthProviderError, cause,
		"the ID token from "+name+" did not verify")
}
