package oidcprovider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// The OpenID scopes a client may be allowed besides permission strings.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

var oidcScopes = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}

// isPermissionScope reports whether a scope names a permission (anything
// but the OpenID scopes).
func isPermissionScope(s string) bool { return !slices.Contains(oidcScopes, s) }

// ClientStore is what client management needs from the database.
type ClientStore interface {
	GetClient(ctx context.Context, id string) (gatehouse.Client, error)
	ListClients(ctx context.Context, q store.ClientQuery) ([]gatehouse.Client, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// SessionRevoker ends sessions (a *session.Service): a deleted client's
// sessions, a revoked consent's.
type SessionRevoker interface {
	RevokeIDsTx(ctx context.Context, tx store.Tx, userID string, ids []string, reason string) error
	Forget(ctx context.Context, ids ...string)
}

// Clients manages registered clients: the admin API and the CLI.
type Clients struct {
	store    ClientStore
	events   store.Emitter
	sessions SessionRevoker
	perms    Permissions
	now      func() time.Time
}

// NewClients makes the client manager. perms (optional) checks that an
// administrator gives a client only permission scopes they hold.
func NewClients(st ClientStore, ev store.Emitter, sessions SessionRevoker, perms Permissions, now func() time.Time) *Clients {
	if now == nil {
		now = time.Now
	}
	return &Clients{store: st, events: ev, sessions: sessions, perms: perms, now: now}
}

// mayGrant checks that the administrator holds every permission scope
// the client is being given (besides those it had): a client's
// client_credentials tokens carry them, so an administrator who could
// give one any permission could reach beyond their own. The operator
// (CLI, no actor) may give any.
func (c *Clients) mayGrant(ctx context.Context, actorID string, scopes, had []string) error {
	if actorID == "" || c.perms == nil {
		return nil
	}
	for _, s := range scopes {
		if !isPermissionScope(s) || slices.Contains(had, s) {
			continue
		}
		ok, err := c.perms.Can(ctx, actorID, s)
		if err != nil {
			return err
		}
		if !ok {
			e := gatehouse.Errorf(gatehouse.CodePermissionDenied, "you do not hold the permission %q, so you cannot give it to a client", s)
			e.Fields = []gatehouse.FieldError{{Location: "scopes", Message: e.Message}}
			return e
		}
	}
	return nil
}

// ClientInput is what an administrator gives for a client. Nil lists
// take the defaults on create (grant types authorization_code and
// refresh_token; scopes openid, profile, email, offline_access) and keep
// the stored value on update.
type ClientInput = struct {
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	Scopes                 []string
	Public                 bool
	FirstParty             bool
}

var errNoClient = gatehouse.Errorf(gatehouse.CodeNotFound, "no such client")

// Create registers a client and returns it with its secret (empty for a
// public client), shown this once.
func (c *Clients) Create(ctx context.Context, actorID string, in ClientInput) (gatehouse.Client, string, error) {
	now := c.now().UTC()
	cl := gatehouse.Client{ID: gatehouse.NewID(), Public: in.Public, CreatedAt: now, UpdatedAt: now}
	if in.GrantTypes == nil {
		in.GrantTypes = []string{gatehouse.GrantAuthorizationCode, gatehouse.GrantRefreshToken}
	}
	if in.Scopes == nil {
		in.Scopes = slices.Clone(oidcScopes)
	}
	if err := apply(&cl, in); err != nil {
		return gatehouse.Client{}, "", err
	}
	if err := c.mayGrant(ctx, actorID, cl.Scopes, nil); err != nil {
		return gatehouse.Client{}, "", err
	}
	var secret string
	if !cl.Public {
		secret, cl.SecretHash = token.NewOpaque()
	}
	err := c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateClient(ctx, cl); err != nil {
			return fmt.Errorf("create client: %w", err)
		}
		return c.emit(ctx, tx, gatehouse.EventClientCreated, actorID, cl, nil)
	})
	if err != nil {
		return gatehouse.Client{}, "", err
	}
	return cl, secret, nil
}

// Get returns one client. not_found when there is none.
func (c *Clients) Get(ctx context.Context, id string) (gatehouse.Client, error) {
	cl, err := c.store.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return gatehouse.Client{}, errNoClient
	}
	return cl, err
}

// List returns up to limit clients with ids after after, in id order.
func (c *Clients) List(ctx context.Context, after string, limit int) ([]gatehouse.Client, error) {
	return c.store.ListClients(ctx, store.ClientQuery{After: after, Limit: limit})
}

// Update replaces a client's settings (not its secret nor whether it is
// public: that changes how it authenticates, so it is a new client).
func (c *Clients) Update(ctx context.Context, actorID, id string, in ClientInput) (gatehouse.Client, error) {
	var out gatehouse.Client
	err := c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		cl, err := tx.GetClient(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return errNoClient
		}
		if err != nil {
			return err
		}
		if in.Name == "" {
			in.Name = cl.Name
		}
		if in.RedirectURIs == nil {
			in.RedirectURIs = cl.RedirectURIs
		}
		if in.PostLogoutRedirectURIs == nil {
			in.PostLogoutRedirectURIs = cl.PostLogoutRedirectURIs
		}
		if in.GrantTypes == nil {
			in.GrantTypes = cl.GrantTypes
		}
		if in.Scopes == nil {
			in.Scopes = cl.Scopes
		}
		in.Public = cl.Public
		had := cl.Scopes
		if err := apply(&cl, in); err != nil {
			return err
		}
		if err := c.mayGrant(ctx, actorID, cl.Scopes, had); err != nil {
			return err
		}
		cl.UpdatedAt = c.now().UTC()
		if err := tx.UpdateClient(ctx, cl); err != nil {
			return fmt.Errorf("update client: %w", err)
		}
		out = cl
		return c.emit(ctx, tx, gatehouse.EventClientUpdated, actorID, cl, nil)
	})
	return out, err
}

// RotateSecret gives a confidential client a new secret; the old one stops
// working at once. A public client has none: validation_failed.
func (c *Clients) RotateSecret(ctx context.Context, actorID, id string) (string, error) {
	var secret string
	err := c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		cl, err := tx.GetClient(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return errNoClient
		}
		if err != nil {
			return err
		}
		if cl.Public {
			return gatehouse.InvalidField("public", "a public client has no secret to rotate")
		}
		var hash []byte
		secret, hash = token.NewOpaque()
		if err := tx.SetClientSecret(ctx, id, hash, c.now().UTC()); err != nil {
			return fmt.Errorf("rotate client secret: %w", err)
		}
		return c.emit(ctx, tx, gatehouse.EventClientUpdated, actorID, cl, map[string]any{"secret_rotated": true})
	})
	return secret, err
}

// Delete removes a client; every session it was granted ends.
func (c *Clients) Delete(ctx context.Context, actorID, id string) error {
	var ended []string
	err := c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		cl, err := tx.GetClient(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return errNoClient
		}
		if err != nil {
			return err
		}
		grants, err := tx.ListClientGrants(ctx, id, "")
		if err != nil {
			return err
		}
		if ended, err = revokeGrants(ctx, tx, c.sessions, grants, "client_deleted"); err != nil {
			return err
		}
		if err := tx.DeleteClient(ctx, id); err != nil {
			return fmt.Errorf("delete client: %w", err)
		}
		return c.emit(ctx, tx, gatehouse.EventClientDeleted, actorID, cl, nil)
	})
	if err == nil && c.sessions != nil {
		c.sessions.Forget(ctx, ended...)
	}
	return err
}

// revokeGrants ends the sessions of grants, per user, and returns their ids.
func revokeGrants(ctx context.Context, tx store.Tx, sessions SessionRevoker, grants []gatehouse.ClientGrant, reason string) ([]string, error) {
	if sessions == nil {
		return nil, nil
	}
	byUser := map[string][]string{}
	var all []string
	for _, g := range grants {
		byUser[g.UserID] = append(byUser[g.UserID], g.SessionID)
		all = append(all, g.SessionID)
	}
	for user, ids := range byUser {
		if err := sessions.RevokeIDsTx(ctx, tx, user, ids, reason); err != nil {
			return nil, err
		}
	}
	return all, nil
}

func (c *Clients) emit(ctx context.Context, tx store.Tx, t gatehouse.EventType, actorID string, cl gatehouse.Client, extra map[string]any) error {
	if c.events == nil {
		return nil
	}
	data := map[string]any{"client_id": cl.ID, "name": cl.Name}
	for k, v := range extra {
		data[k] = v
	}
	_, err := c.events.Emit(ctx, tx, gatehouse.Event{Type: t, ActorID: actorID, Data: data})
	return err
}

// apply validates in and writes it onto cl.
func apply(cl *gatehouse.Client, in ClientInput) error {
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 200 {
		return gatehouse.InvalidField("name", "name is required, at most 200 characters")
	}
	grants, err := validGrants(in.GrantTypes, in.Public)
	if err != nil {
		return err
	}
	redirects, err := validURIs("redirect_uris", in.RedirectURIs)
	if err != nil {
		return err
	}
	if slices.Contains(grants, gatehouse.GrantAuthorizationCode) && len(redirects) == 0 {
		return gatehouse.InvalidField("redirect_uris", "at least one redirect URI is required for the authorization_code grant")
	}
	post, err := validURIs("post_logout_redirect_uris", in.PostLogoutRedirectURIs)
	if err != nil {
		return err
	}
	scopes, err := validScopes(in.Scopes)
	if err != nil {
		return err
	}
	cl.Name, cl.RedirectURIs, cl.PostLogoutRedirectURIs, cl.GrantTypes, cl.Scopes = name, redirects, post, grants, scopes
	cl.Public, cl.FirstParty = in.Public, in.FirstParty
	return nil
}

func validGrants(in []string, public bool) ([]string, error) {
	if len(in) == 0 {
		return nil, gatehouse.InvalidField("grant_types", "at least one grant type is required")
	}
	var out []string
	for _, g := range in {
		switch g {
		case gatehouse.GrantAuthorizationCode, gatehouse.GrantRefreshToken, gatehouse.GrantClientCredentials:
		default:
			return nil, gatehouse.InvalidField("grant_types", fmt.Sprintf("unknown grant type %q: use authorization_code, refresh_token or client_credentials", g))
		}
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if public && slices.Contains(out, gatehouse.GrantClientCredentials) {
		return nil, gatehouse.InvalidField("grant_types", "a public client has no secret, so it cannot use client_credentials")
	}
	if slices.Contains(out, gatehouse.GrantRefreshToken) && !slices.Contains(out, gatehouse.GrantAuthorizationCode) {
		return nil, gatehouse.InvalidField("grant_types", "refresh_token needs authorization_code")
	}
	return out, nil
}

// validURIs checks redirect URIs: absolute, no fragment, https or http on
// a loopback host, or a private-use scheme (native apps, RFC 8252).
func validURIs(field string, in []string) ([]string, error) {
	if len(in) > 20 {
		return nil, gatehouse.InvalidField(field, "at most 20 URIs")
	}
	var out []string
	for _, raw := range in {
		if err := validRedirectURI(raw); err != nil {
			return nil, gatehouse.InvalidField(field, fmt.Sprintf("%q: %s", raw, err))
		}
		if !slices.Contains(out, raw) {
			out = append(out, raw)
		}
	}
	return out, nil
}

func validRedirectURI(raw string) error {
	if raw == "" || len(raw) > 2000 {
		return errors.New("must be 1 to 2000 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return errors.New("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return errors.New("must name a host")
		}
	case "http":
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" && !strings.HasSuffix(h, ".localhost") {
			return errors.New("http is allowed only on a loopback host; use https")
		}
	case "javascript", "data", "file", "vbscript":
		return errors.New("scheme not allowed")
	default:
		// A private-use scheme of a native app: reverse domain name.
		if !strings.Contains(u.Scheme, ".") {
			return errors.New("a custom scheme must be a reverse domain name (com.example.app)")
		}
	}
	return nil
}

func validScopes(in []string) ([]string, error) {
	if len(in) > 100 {
		return nil, gatehouse.InvalidField("scopes", "at most 100 scopes")
	}
	var out []string
	for _, s := range in {
		if isPermissionScope(s) {
			if s == "*" || !gatehouse.ValidPermission(s) || strings.HasSuffix(s, ":*") {
				return nil, gatehouse.InvalidField("scopes", fmt.Sprintf("%q is neither openid, profile, email, offline_access nor a permission \"resource:action\" (wildcards are not allowed)", s))
			}
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}
