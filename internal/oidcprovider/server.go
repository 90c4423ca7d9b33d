package oidcprovider

import (
	"context"
	"errors"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// server is the library's server with Gatehouse's own token issuance.
type server struct {
	*op.LegacyServer
	p *Provider
}

// idTokenTTL is the life of ID tokens.
const idTokenTTL = time.Hour

var errInvalidGrant = func(desc string) error { return oidc.ErrInvalidGrant().WithDescription("%s", desc) }

// CodeExchange spends an authorization code once: bound to its client,
// redirect URI and PKCE challenge. It starts a Gatehouse session for the
// client, whose refresh family the client's refresh tokens are.
func (s *server) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	p := s.p
	cl, ok := r.Client.(*client)
	if !ok || !cl.has(gatehouse.GrantAuthorizationCode) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use authorization_code")
	}
	if r.Data.Code == "" || len(r.Data.Code) > 1024 {
		return nil, errInvalidGrant("the code is unknown, used or expired")
	}
	var (
		req     gatehouse.AuthRequest
		sess    gatehouse.Session
		refresh string
	)
	err := p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		req, err = tx.ConsumeAuthCode(ctx, token.Hash(r.Data.Code), p.now())
		if errors.Is(err, store.ErrNotFound) {
			return errCodeSpent
		}
		if err != nil {
			return err
		}
		if req.ClientID != cl.ID {
			return errInvalidGrant("the code was issued to another client")
		}
		if r.Data.RedirectURI != req.RedirectURI {
			return errInvalidGrant("redirect_uri does not match the authorization request")
		}
		switch {
		case req.CodeChallenge != "":
			if r.Data.CodeVerifier == "" {
				return errInvalidGrant("code_verifier is required")
			}
			if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, (&authRequest{req}).GetCodeChallenge()); err != nil {
				return errInvalidGrant("code_verifier does not match the code_challenge")
			}
		case cl.Public || r.Data.CodeVerifier != "":
			return errInvalidGrant("PKCE: the authorization request had no code_challenge")
		}
		if !req.Done() {
			return errInvalidGrant("the code is unknown, used or expired")
		}
		sess, refresh, err = p.sessions.StartAt(ctx, tx, req.UserID, p.clientInfo(ctx, requestFrom(ctx), cl.Name), req.AMR, mfa(req.AMR),
			*req.AuthTime)
		if err != nil {
			return err
		}
		if err := tx.CreateClientGrant(ctx, gatehouse.ClientGrant{SessionID: sess.ID, ClientID: cl.ID, UserID: req.UserID,
			Scopes: req.Scopes, CreatedAt: p.now()}); err != nil {
			return err
		}
		if err := tx.SetAuthCodeGrant(ctx, req.ID, sess.ID); err != nil {
			return err
		}
		return p.emit(ctx, tx, gatehouse.EventClientTokenGranted, req.UserID, map[string]any{
			"client_id": cl.ID, "grant_type": gatehouse.GrantAuthorizationCode, "session_id": sess.ID, "scope": req.Scopes})
	})
	if errors.Is(err, errCodeSpent) {
		p.codeReplayed(ctx, r.Data.Code)
		return nil, errInvalidGrant("the code is unknown, used or expired")
	}
	if err != nil {
		return nil, err
	}
	if !slices.Contains(req.Scopes, ScopeOfflineAccess) || !cl.has(gatehouse.GrantRefreshToken) {
		refresh = "" // the family exists but the client gets no refresh token
	}
	return s.tokenResponse(ctx, cl, sess, refresh, req.Scopes, req.Nonce, *req.AuthTime, req.AMR, req.SessionID)
}

// errCodeSpent: the code is unknown, used or expired.
var errCodeSpent = errors.New("authorization code spent")

// codeReplayed ends the session a spent code's exchange started, when the
// code comes again (RFC 6749 §4.1.2): whoever presents it a second time
// has a copy, so the tokens issued for it are not to be trusted.
func (p *Provider) codeReplayed(ctx context.Context, code string) {
	req, err := p.store.GetAuthRequestByCode(ctx, token.Hash(code))
	if err != nil || req.UsedAt == nil || req.GrantSessionID == "" {
		return
	}
	p.log.WarnContext(ctx, "authorization code replayed; its session is ended", "client_id", req.ClientID, "session_id", req.GrantSessionID)
	if err := p.sessions.Revoke(ctx, req.UserID, req.GrantSessionID, "code_reused"); err != nil && gatehouse.ErrorCode(err) != gatehouse.CodeNotFound {
		p.log.ErrorContext(ctx, "end the session of a replayed code", "err", err)
	}
}

// tokenResponse signs the access token and the ID token.
func (s *server) tokenResponse(ctx context.Context, cl *client, sess gatehouse.Session, refresh string, scopes []string,
	nonce string, authTime time.Time, amr []string, sid string) (*op.Response, error) {
	p := s.p
	access, claims, err := p.tokens.IssueScoped(ctx, cl.ID, sess.UserID, sess.ID, sess.AMR, authTime, scopes)
	if err != nil {
		return nil, err
	}
	resp := &oidc.AccessTokenResponse{AccessToken: access, TokenType: oidc.BearerToken, RefreshToken: refresh,
		ExpiresIn: uint64(max(claims.ExpiresAt.Sub(p.clock()).Seconds(), 0)), Scope: scopes}
	if slices.Contains(scopes, ScopeOpenID) {
		if resp.IDToken, err = p.idToken(ctx, cl.ID, sess.UserID, authTime, nonce, amr, sid, scopes, access); err != nil {
			return nil, err
		}
	}
	return op.NewResponse(resp), nil
}

// idToken signs an ID token with the claims the scopes allow.
func (p *Provider) idToken(ctx context.Context, clientID, userID string, authTime time.Time, nonce string, amr []string, sid string,
	scopes []string, access string) (string, error) {
	kid, key, err := p.keys.Signer(ctx)
	if err != nil {
		return "", err
	}
	now := p.clock().UTC()
	claims := oidc.NewIDTokenClaims(p.issuer, userID, nil, now.Add(idTokenTTL), authTime, nonce, acr(amr), amr, clientID, 0)
	claims.IssuedAt = oidc.FromTime(now)
	claims.SessionID = sid
	if access != "" {
		if claims.AccessTokenHash, err = oidc.ClaimHash(access, jose.RS256); err != nil {
			return "", err
		}
	}
	ui := new(oidc.UserInfo)
	if err := p.userinfo(ctx, ui, userID, scopes); err != nil {
		return "", err
	}
	claims.SetUserInfo(ui)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return crypto.Sign(claims, signer)
}

// userinfo fills the claims the scopes allow.
func (p *Provider) userinfo(ctx context.Context, ui *oidc.UserInfo, userID string, scopes []string) error {
	u, err := p.store.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	ui.Subject = u.ID
	if slices.Contains(scopes, ScopeProfile) {
		ui.Name = u.Name
		ui.PreferredUsername = string(u.Email)
		ui.UpdatedAt = oidc.FromTime(u.UpdatedAt)
	}
	if slices.Contains(scopes, ScopeEmail) {
		ui.Email = string(u.Email)
		ui.EmailVerified = oidc.Bool(u.EmailVerified)
	}
	return nil
}

// RefreshToken rotates a refresh token of the client's session family:
// presenting one already rotated ends the family (the session).
func (s *server) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	p := s.p
	cl, ok := r.Client.(*client)
	if !ok || !cl.has(gatehouse.GrantRefreshToken) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use refresh_token")
	}
	res, err := p.sessions.RefreshFor(ctx, cl.ID, r.Data.RefreshToken, p.clientInfo(ctx, requestFrom(ctx), cl.Name))
	switch gatehouse.ErrorCode(err) {
	case gatehouse.CodeInvalidRefreshToken:
		return nil, errInvalidGrant("the refresh token is unknown, expired or revoked")
	case gatehouse.CodeRefreshTokenReused:
		return nil, errInvalidGrant("the refresh token was already used; its session has been ended")
	}
	if err != nil {
		return nil, err
	}
	grant, err := p.store.GetClientGrant(ctx, res.Session.ID)
	if err != nil {
		return nil, err
	}
	scopes := grant.Scopes
	if len(r.Data.Scopes) > 0 {
		for _, sc := range r.Data.Scopes {
			if !slices.Contains(grant.Scopes, sc) {
				return nil, oidc.ErrInvalidScope().WithDescription("a refresh may narrow the scope, never widen it")
			}
		}
		scopes = r.Data.Scopes
	}
	err = p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return p.emit(ctx, tx, gatehouse.EventClientTokenGranted, grant.UserID, map[string]any{
			"client_id": cl.ID, "grant_type": gatehouse.GrantRefreshToken, "session_id": res.Session.ID})
	})
	if err != nil {
		return nil, err
	}
	return s.tokenResponse(ctx, cl, res.Session, res.RefreshToken, scopes, "", res.Session.AuthTime, res.Session.AMR, "")
}

// ClientCredentialsExchange issues a token to a client acting for itself,
// with the permission scopes it is allowed (all of them when it asks for
// none).
func (s *server) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	p := s.p
	cl, ok := r.Client.(*client)
	if !ok || !cl.has(gatehouse.GrantClientCredentials) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use client_credentials")
	}
	var scopes []string
	for _, sc := range r.Data.Scope {
		if !isPermissionScope(sc) || !slices.Contains(cl.Scopes, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not allowed to this client", sc)
		}
		scopes = append(scopes, sc)
	}
	if len(r.Data.Scope) == 0 {
		for _, sc := range cl.Scopes {
			if isPermissionScope(sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	access, claims, err := p.tokens.IssueClient(ctx, cl.ID, scopes)
	if err != nil {
		return nil, err
	}
	err = p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return p.emit(ctx, tx, gatehouse.EventClientTokenGranted, "", map[string]any{
			"client_id": cl.ID, "grant_type": gatehouse.GrantClientCredentials, "scope": scopes})
	})
	if err != nil {
		return nil, err
	}
	return op.NewResponse(&oidc.AccessTokenResponse{AccessToken: access, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(max(claims.ExpiresAt.Sub(p.clock()).Seconds(), 0)), Scope: scopes}), nil
}

// accessToken verifies an access token the provider issued and, when it
// names a session, that the session is alive.
func (p *Provider) accessToken(ctx context.Context, raw string) (token.Claims, bool) {
	if raw == "" || len(raw) > 8192 {
		return token.Claims{}, false
	}
	c, err := p.tokens.VerifyAny(ctx, raw)
	if err != nil {
		return token.Claims{}, false
	}
	if c.SessionID != "" {
		sess, err := p.store.GetSession(ctx, c.SessionID)
		if err != nil || sess.UserID != c.Subject || !sess.Active(p.clock(), 0) {
			return token.Claims{}, false
		}
	}
	return c, true
}

// UserInfo answers the claims an access token's scopes allow.
func (s *server) UserInfo(ctx context.Context, r *op.Request[oidc.UserInfoRequest]) (*op.Response, error) {
	p := s.p
	c, ok := p.accessToken(ctx, r.Data.AccessToken)
	if !ok || c.SessionID == "" || !slices.Contains(c.Scope, ScopeOpenID) {
		return nil, op.NewStatusError(oidc.ErrAccessDenied().WithDescription("invalid access token"), 401)
	}
	ui := new(oidc.UserInfo)
	if err := p.userinfo(ctx, ui, c.Subject, c.Scope); err != nil {
		return nil, op.NewStatusError(oidc.ErrAccessDenied().WithDescription("invalid access token"), 401)
	}
	return op.NewResponse(ui), nil
}

// Introspect answers RFC 7662 for an authenticated client: access tokens
// of any client (resource servers introspect tokens issued to others),
// refresh tokens only of the asking client's own sessions.
func (s *server) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	p := s.p
	if r.Data.ClientCredentials == nil || r.Data.IntrospectionRequest == nil {
		return nil, oidc.ErrInvalidClient()
	}
	cl, err := p.authenticate(ctx, r.Data.ClientID, r.Data.ClientSecret)
	if err != nil {
		return nil, err
	}
	out := new(oidc.IntrospectionResponse)
	if c, ok := p.accessToken(ctx, r.Data.Token); ok {
		out.Active, out.Scope, out.ClientID, out.TokenType = true, c.Scope, c.ClientID, oidc.BearerToken
		out.Expiration, out.IssuedAt, out.Subject, out.JWTID = oidc.FromTime(c.ExpiresAt), oidc.FromTime(c.IssuedAt), c.Subject, c.ID
		out.Issuer, out.Audience = p.issuer, []string{p.issuer}
		if !c.AuthTime.IsZero() {
			out.AuthTime = oidc.FromTime(c.AuthTime)
		}
		out.AuthenticationMethodsReferences = c.AMR
		return op.NewResponse(out), nil
	}
	if g, rt, ok := p.refreshToken(ctx, r.Data.Token); ok && g.ClientID == cl.ID {
		out.Active, out.Scope, out.ClientID, out.TokenType = true, g.Scopes, g.ClientID, "refresh_token"
		out.Subject, out.Expiration, out.IssuedAt = g.UserID, oidc.FromTime(rt.ExpiresAt), oidc.FromTime(rt.CreatedAt)
	}
	return op.NewResponse(out), nil
}

// refreshToken finds a live, unrotated refresh token of a client's session.
func (p *Provider) refreshToken(ctx context.Context, raw string) (gatehouse.ClientGrant, gatehouse.RefreshToken, bool) {
	if raw == "" || len(raw) > 256 {
		return gatehouse.ClientGrant{}, gatehouse.RefreshToken{}, false
	}
	rt, err := p.store.GetRefreshTokenByHash(ctx, token.Hash(raw))
	if err != nil || rt.UsedAt != nil || !p.clock().Before(rt.ExpiresAt) {
		return gatehouse.ClientGrant{}, gatehouse.RefreshToken{}, false
	}
	sess, err := p.store.GetSession(ctx, rt.SessionID)
	if err != nil || !sess.Active(p.clock(), 0) {
		return gatehouse.ClientGrant{}, gatehouse.RefreshToken{}, false
	}
	g, err := p.store.GetClientGrant(ctx, rt.SessionID)
	return g, rt, err == nil
}

// Revocation (RFC 7009) ends the session behind a refresh or access token
// of the asking client; anything else is answered 200 and ignored.
func (s *server) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	p := s.p
	userID, sid := "", ""
	if g, _, ok := p.refreshToken(ctx, r.Data.Token); ok && g.ClientID == r.Client.GetID() {
		userID, sid = g.UserID, g.SessionID
	} else if c, ok := p.accessToken(ctx, r.Data.Token); ok && c.ClientID == r.Client.GetID() && c.SessionID != "" {
		userID, sid = c.Subject, c.SessionID
	}
	if sid != "" {
		if err := p.sessions.Revoke(ctx, userID, sid, "client_revoked"); err != nil && gatehouse.ErrorCode(err) != gatehouse.CodeNotFound {
			return nil, err
		}
	}
	return op.NewResponse(struct{}{}), nil
}

// Discovery is the library's document, narrowed to what this provider
// does: the code flow only, and the three grants clients can be allowed.
func (s *server) Discovery(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	resp, err := s.LegacyServer.Discovery(ctx, r)
	if err != nil {
		return nil, err
	}
	if d, ok := resp.Data.(*oidc.DiscoveryConfiguration); ok {
		d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
		d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFormPost)}
		d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
		d.ACRValuesSupported = []string{ACRSingleFactor, ACRMultiFactor}
		d.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
		d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	}
	return resp, nil
}
