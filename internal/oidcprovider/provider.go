// Package oidcprovider makes Gatehouse an OpenID Provider: applications
// (Grafana, oauth2-proxy, Auth.js, any OIDC client) sign their users in
// "with Gatehouse" over standard OpenID Connect.
//
// Protocol handling (request parsing and validation, discovery, client
// authentication, error encoding, end-session validation) is the
// OpenID-Certified library github.com/zitadel/oidc/v3/pkg/op, given a
// Storage over our store (storage.go). The token endpoint grants, userinfo,
// introspection and revocation are our own methods on the library's
// server (server.go), because tokens are Gatehouse's own: access tokens are
// the at+jwt of internal/token, and refresh tokens are the refresh family
// of a Gatehouse session started for the client, so rotation and reuse
// detection are the ones the API has. Users sign in through the hosted
// /login page (internal/web and internal/signin), so MFA, risk step-up and
// lockout apply to them exactly as on the pages.
package oidcprovider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
	"github.com/gatehouse-auth/gatehouse/internal/session"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"

	"crypto/rsa"
	jose "github.com/go-jose/go-jose/v4"
)

// Paths of the provider.
const (
	DiscoveryPath    = "/.well-known/openid-configuration"
	JWKSPath         = "/.well-known/jwks.json"
	AuthorizePath    = "/oauth2/authorize"
	TokenPath        = "/oauth2/token"
	UserinfoPath     = "/oauth2/userinfo"
	RevokePath       = "/oauth2/revoke"
	IntrospectPath   = "/oauth2/introspect"
	EndSessionPath   = "/oauth2/end_session"
	continuePath     = "/oauth2/continue"
	consentPath      = "/oauth2/consent"
	signedOutPath    = "/login?signed_out=1"
	loginPath        = "/login"
	promptLoginParam = "prompt"
)

// Store is what the provider needs from the database.
type Store interface {
	GetClient(ctx context.Context, id string) (gatehouse.Client, error)
	GetAuthRequest(ctx context.Context, id string) (gatehouse.AuthRequest, error)
	GetAuthRequestByCode(ctx context.Context, hash []byte) (gatehouse.AuthRequest, error)
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
	GetConsent(ctx context.Context, userID, clientID string) (gatehouse.Consent, error)
	GetRefreshTokenByHash(ctx context.Context, hash []byte) (gatehouse.RefreshToken, error)
	GetSession(ctx context.Context, id string) (gatehouse.Session, error)
	GetClientGrant(ctx context.Context, sessionID string) (gatehouse.ClientGrant, error)
	ListClientGrants(ctx context.Context, clientID, userID string) ([]gatehouse.ClientGrant, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
	Ping(ctx context.Context) error
}

// Keys is the signing key ring (a *keys.Ring).
type Keys interface {
	Signer(ctx context.Context) (kid string, key *rsa.PrivateKey, err error)
	JWKS(ctx context.Context) (jose.JSONWebKeySet, error)
}

// Sessions starts, refreshes and ends Gatehouse sessions (a
// *session.Service).
type Sessions interface {
	SessionRevoker
	StartAt(ctx context.Context, tx store.Tx, userID string, client gatehouse.ClientInfo, amr []string, mfa bool,
		authTime time.Time) (gatehouse.Session, string, error)
	RefreshFor(ctx context.Context, clientID, refresh string, meta gatehouse.ClientInfo) (session.Refreshed, error)
	Revoke(ctx context.Context, userID, sessionID, reason string) error
}

// Browser answers who is signed in on the browser that sent a request
// (the hosted pages' sessions, *web.Sessions).
type Browser interface {
	Current(r *http.Request) (gatehouse.BrowserSession, bool)
}

// Deps are the provider's collaborators.
type Deps struct {
	// Issuer is GATEHOUSE_PUBLIC_URL.
	Issuer   string
	Store    Store
	Keys     Keys
	Tokens   *token.Service
	Sessions Sessions
	Browser  Browser
	Events   store.Emitter
	// Key derives the consent form's CSRF tokens and the library's code
	// encryption key (the master key).
	Key []byte
	// ClientIP answers the request's client address as the HTTP layer
	// established it (trusted proxies).
	ClientIP func(ctx context.Context) string
	// Console, Clients and Permissions serve the admin console's OAuth
	// clients section (optional: without them there is none).
	Console     Console
	Clients     *Clients
	Permissions Permissions
	// Limiter and Limit rate-limit the token, introspection and
	// revocation endpoints per client address and per client (the API's
	// limiter and limit; optional); Metrics counts refusals.
	Limiter ratelimit.Limiter
	Limit   ratelimit.Limit
	Metrics RateLimitMetrics
	Now     func() time.Time
	Logger  *slog.Logger
}

// Provider is the OpenID Provider.
type Provider struct {
	issuer   string
	store    Store
	keys     Keys
	tokens   *token.Service
	sessions Sessions
	browser  Browser
	events   store.Emitter
	csrfKey  []byte
	clientIP func(ctx context.Context) string
	clock    func() time.Time
	log      *slog.Logger
	console  Console
	clients  *Clients
	perms    Permissions
	limiter  ratelimit.Limiter
	limit    ratelimit.Limit
	metrics  RateLimitMetrics

	op      *op.Provider
	handler http.Handler
}

// New builds the provider.
func New(d Deps) (*Provider, error) {
	p := &Provider{issuer: strings.TrimRight(d.Issuer, "/"), store: d.Store, keys: d.Keys, tokens: d.Tokens, sessions: d.Sessions,
		browser: d.Browser, events: d.Events, clientIP: d.ClientIP, clock: d.Now, log: d.Logger,
		console: d.Console, clients: d.Clients, perms: d.Permissions, limiter: d.Limiter, limit: d.Limit, metrics: d.Metrics}
	if p.clock == nil {
		p.clock = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.clientIP == nil {
		p.clientIP = func(context.Context) string { return "" }
	}
	p.csrfKey = derive(d.Key, "oidc-consent-csrf")
	cfg := &op.Config{
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		DefaultLogoutRedirectURI: signedOutPath,
		SupportedScopes:          oidcScopes,
		SupportedClaims: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp",
			"at_hash", "name", "preferred_username", "updated_at", "email", "email_verified"},
	}
	copy(cfg.CryptoKey[:], derive(d.Key, "oidc-code"))
	opts := []op.Option{op.WithLogger(p.log)}
	if u, err := url.Parse(p.issuer); err == nil && u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	prov, err := op.NewProvider(cfg, storage{p}, op.StaticIssuer(p.issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	p.op = prov
	ep := op.Endpoints{
		Authorization: op.NewEndpoint(AuthorizePath),
		Token:         op.NewEndpoint(TokenPath),
		Introspection: op.NewEndpoint(IntrospectPath),
		Userinfo:      op.NewEndpoint(UserinfoPath),
		Revocation:    op.NewEndpoint(RevokePath),
		EndSession:    op.NewEndpoint(EndSessionPath),
		JwksURI:       op.NewEndpoint(JWKSPath),
	}
	srv := &server{LegacyServer: op.NewLegacyServer(prov, ep), p: p}
	p.handler = op.RegisterLegacyServer(srv, p.continueHandler, op.WithFallbackLogger(p.log))
	return p, nil
}

func (p *Provider) now() time.Time { return p.clock().UTC().Truncate(time.Microsecond) }

// derive makes a purpose-bound key from the master key.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Register puts the provider's routes on mux. The JWKS is served by the
// API (the same key ring); discovery points at it.
func (p *Provider) Register(mux *http.ServeMux) {
	h := p.rateLimited(withRequest(p.handler))
	mux.Handle("GET "+DiscoveryPath, h)
	mux.Handle("/oauth2/", h)
	mux.HandleFunc("GET "+continuePath, p.continueHandler)
	mux.HandleFunc("GET "+consentPath, p.consentPage)
	mux.HandleFunc("POST "+consentPath, p.consentSubmit)
	if p.console != nil && p.clients != nil && p.perms != nil {
		p.clients.RegisterConsole(mux, p.console, p.perms)
	}
}

type requestKey struct{}

// withRequest keeps the HTTP request in the context, for the storage's
// end-session step, which the library calls without it and which must
// read the browser's session cookie.
func withRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, r)))
	})
}

func requestFrom(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	return r
}

// clientInfo is the client a token request comes from, for the session.
func (p *Provider) clientInfo(ctx context.Context, r *http.Request, clientName string) gatehouse.ClientInfo {
	ci := gatehouse.ClientInfo{IP: p.clientIP(ctx), DeviceName: clientName}
	if r != nil {
		ci.UserAgent = r.UserAgent()
	}
	return ci
}

func (p *Provider) emit(ctx context.Context, tx store.Tx, t gatehouse.EventType, userID string, data map[string]any) error {
	if p.events == nil {
		return nil
	}
	_, err := p.events.Emit(ctx, tx, gatehouse.Event{Type: t, UserID: userID, ActorID: userID, Data: data})
	return err
}

// endClientSessions ends every session the client was granted for the user.
func (p *Provider) endClientSessions(ctx context.Context, userID, clientID string) error {
	var ended []string
	err := p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		grants, err := tx.ListClientGrants(ctx, clientID, userID)
		if err != nil {
			return err
		}
		ended, err = revokeGrants(ctx, tx, p.sessions, grants, "client_logout")
		return err
	})
	if err == nil {
		p.sessions.Forget(ctx, ended...)
	}
	return err
}

// endSession is RP-initiated logout: the browser's session ends (and the
// one the ID token names, when it is the same user's), and so do the
// client's sessions of that user.
func (p *Provider) endSession(ctx context.Context, req *op.EndSessionRequest) error {
	userID := req.UserID
	var sids []string
	if r := requestFrom(ctx); r != nil {
		if b, ok := p.browser.Current(r); ok && (userID == "" || b.UserID == userID) {
			userID = b.UserID
			sids = append(sids, b.SessionID)
		}
	}
	if c := req.IDTokenHintClaims; c != nil && c.SessionID != "" && c.Subject == userID {
		sids = append(sids, c.SessionID)
	}
	for _, sid := range sids {
		if err := p.sessions.Revoke(ctx, userID, sid, "logout"); err != nil && gatehouse.ErrorCode(err) != gatehouse.CodeNotFound {
			return err
		}
	}
	if userID != "" && req.ClientID != "" {
		return p.endClientSessions(ctx, userID, req.ClientID)
	}
	return nil
}
