package oidcprovider

import (
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// The library's Storage over our store. Token issuance (code, refresh,
// client credentials), userinfo, introspection and revocation are our own
// server methods (server.go), so the storage methods for them are never
// called and refuse.

// requestTTL is how long the browser has to sign in and consent; codeTTL
// how long a code lives once issued.
const (
	requestTTL = 10 * time.Minute
	codeTTL    = 60 * time.Second
)

var errUnused = errors.New("oidcprovider: not used by this provider")

type storage struct{ p *Provider }

var (
	_ op.Storage                        = storage{}
	_ op.ClientCredentialsStorage       = storage{}
	_ op.CanTerminateSessionFromRequest = storage{}
)

// client adapts a registered client to the library.
type client struct{ gatehouse.Client }

func (c *client) GetID() string                    { return c.ID }
func (c *client) RedirectURIs() []string           { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.Client.PostLogoutRedirectURIs }
func (c *client) ApplicationType() op.ApplicationType {
	for _, u := range c.Client.RedirectURIs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return op.ApplicationTypeNative // private-use scheme (RFC 8252)
		}
	}
	return op.ApplicationTypeWeb
}
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.Client.GrantTypes))
	for _, g := range c.Client.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}
func (c *client) has(grant string) bool               { return slices.Contains(c.Client.GrantTypes, grant) }
func (c *client) LoginURL(id string) string           { return continuePath + "?id=" + id }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return time.Hour }

// DevMode only relaxes the scheme checks of redirect URIs, which
// registration already made (http only on loopback hosts); matching stays
// exact.
func (c *client) DevMode() bool { return true }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool     { return slices.Contains(c.Scopes, scope) }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

// authRequest adapts a stored authorization request to the library.
type authRequest struct{ gatehouse.AuthRequest }

func (a *authRequest) GetID() string         { return a.ID }
func (a *authRequest) GetACR() string        { return acr(a.AMR) }
func (a *authRequest) GetAMR() []string      { return a.AMR }
func (a *authRequest) GetAudience() []string { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	if a.AuthTime == nil {
		return time.Time{}
	}
	return *a.AuthTime
}
func (a *authRequest) GetClientID() string { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.ResponseType) }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.ResponseMode) }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.UserID }
func (a *authRequest) Done() bool                         { return a.AuthRequest.Done() }

// acr is the authentication context class: two factors or one.
func acr(amr []string) string {
	if mfa(amr) {
		return ACRMultiFactor
	}
	return ACRSingleFactor
}

// The acr values of ID tokens.
const (
	ACRSingleFactor = "urn:gatehouse:loa:1"
	ACRMultiFactor  = "urn:gatehouse:loa:2"
)

// mfa reports whether the methods prove two factors.
func mfa(amr []string) bool {
	return slices.Contains(amr, "mfa") || len(amr) >= 2
}

func (s storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	cl, err := s.p.client(ctx, r.ClientID)
	if err != nil {
		return nil, err
	}
	if r.CodeChallenge == "" && cl.Public {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required: public clients must use PKCE with S256")
	}
	if r.CodeChallenge != "" && r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	var scopes []string
	for _, sc := range r.Scopes {
		if cl.IsScopeAllowed(sc) && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if !slices.Contains(scopes, ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required (and must be allowed to the client)")
	}
	now := s.p.now()
	req := gatehouse.AuthRequest{
		ID: gatehouse.NewID(), ClientID: cl.ID, RedirectURI: r.RedirectURI, Scopes: scopes, State: r.State, Nonce: r.Nonce,
		ResponseType: string(r.ResponseType), ResponseMode: string(r.ResponseMode),
		CodeChallenge: r.CodeChallenge, CodeChallengeMethod: string(r.CodeChallengeMethod),
		Prompt: r.Prompt, LoginHint: r.LoginHint, CreatedAt: now, ExpiresAt: now.Add(requestTTL),
	}
	if r.MaxAge != nil {
		v := int(min(*r.MaxAge, 1<<30))
		req.MaxAge = &v
	}
	if err := s.p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateAuthRequest(ctx, req) }); err != nil {
		return nil, fmt.Errorf("create auth request: %w", err)
	}
	return &authRequest{req}, nil
}

func (s storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.p.store.GetAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.p.now().Before(r.ExpiresAt)) {
		return nil, oidc.ErrInvalidRequest().WithDescription("the authorization request is unknown or expired; start again")
	}
	if err != nil {
		return nil, err
	}
	return &authRequest{r}, nil
}

func (s storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnused
}

// SaveAuthCode stores the code's hash, once per request, for codeTTL.
func (s storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		err := tx.SetAuthRequestCode(ctx, id, token.Hash(code), s.p.now().Add(codeTTL))
		if errors.Is(err, store.ErrNotFound) {
			return oidc.ErrInvalidRequest().WithDescription("this authorization request has its code already; start again")
		}
		return err
	})
}

func (s storage) DeleteAuthRequest(context.Context, string) error { return nil }
func (s storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errUnused
}
func (s storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnused
}
func (s storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errUnused
}

// TerminateSession ends the client's sessions of the user.
func (s storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	return s.p.endClientSessions(ctx, userID, clientID)
}

// TerminateSessionFromRequest ends the browser session of the request
// (RP-initiated logout) and the client's sessions of that user.
func (s storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if err := s.p.endSession(ctx, req); err != nil {
		return "", err
	}
	return req.RedirectURI, nil
}

func (s storage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError()
}
func (s storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.kid }

func (s storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	kid, key, err := s.p.keys.Signer(ctx)
	if err != nil {
		return nil, err
	}
	return signingKey{kid, key}, nil
}

func (s storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

type publicKey struct{ jose.JSONWebKey }

func (k publicKey) ID() string                         { return k.KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.JSONWebKey.Key }

func (s storage) KeySet(ctx context.Context) ([]op.Key, error) {
	set, err := s.p.keys.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, 0, len(set.Keys))
	for _, k := range set.Keys {
		out = append(out, publicKey{k.Public()})
	}
	return out, nil
}

func (s storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	return s.p.client(ctx, id)
}

// AuthorizeClientIDSecret checks a confidential client's secret against
// its SHA-256, in constant time.
func (s storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.p.authenticate(ctx, id, secret)
	return err
}

func (s storage) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, _ string, scopes []string) error {
	return s.p.userinfo(ctx, ui, userID, scopes)
}
func (s storage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errUnused
}
func (s storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnused
}
func (s storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}
func (s storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnused
}
func (s storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errUnused
}
func (s storage) Health(ctx context.Context) error { return s.p.store.Ping(ctx) }

// ClientCredentials authenticates a client for the client_credentials grant.
func (s storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	cl, err := s.p.authenticate(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	if !cl.has(gatehouse.GrantClientCredentials) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use client_credentials")
	}
	return cl, nil
}

func (s storage) ClientCredentialsTokenRequest(context.Context, string, []string) (op.TokenRequest, error) {
	return nil, errUnused
}

// errClientAuth answers a failed client authentication: 401 (RFC 6749
// §5.2), the same for an unknown client and a wrong secret.
var errClientAuth = op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized)

// authenticate finds a confidential client and checks its secret.
func (p *Provider) authenticate(ctx context.Context, id, secret string) (*client, error) {
	cl, err := p.client(ctx, id)
	if err != nil {
		return nil, errClientAuth
	}
	if cl.Public || len(cl.SecretHash) == 0 || secret == "" ||
		subtle.ConstantTimeCompare(token.Hash(secret), cl.SecretHash) != 1 {
		return nil, errClientAuth
	}
	return cl, nil
}

// client finds a registered client.
func (p *Provider) client(ctx context.Context, id string) (*client, error) {
	if id == "" || len(id) > 64 {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	c, err := p.store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if err != nil {
		return nil, err
	}
	return &client{c}, nil
}
