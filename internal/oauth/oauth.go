// Package oauth is social login: Gatehouse as an OAuth 2 / OpenID Connect
// client of Google, Microsoft, GitHub and any configured OIDC provider.
//
// A flow starts at Authorize, which keeps its state (single use, 10
// minutes) in the cache, bound to the provider, the PKCE verifier, the
// OIDC nonce, the allow-listed redirect_uri and, for linking, the
// signed-in user. The state is also bound to the browser that started the
// flow: the HTTP layer gives it a cookie holding Binding(state), and
// Callback refuses a state presented without it, so nobody can finish
// their own sign-in in somebody else's browser (login CSRF). Callback
// spends the state, exchanges the code with the verifier, verifies the ID
// token, and finds the local account by (provider, subject), never by
// email alone. A new account is made only for an email the provider has
// verified. Provider calls have a timeout and go through a circuit breaker
// per provider.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Lifetimes of the flow's secrets.
const (
	StateTTL = 10 * time.Minute // from Authorize to Callback
	CodeTTL  = 60 * time.Second // the one-time code handed to redirect_uri
	// TicketTTL is how long a link URL (LinkURL) works.
	TicketTTL = 60 * time.Second
	// DefaultTimeout bounds every call to a provider.
	DefaultTimeout = 10 * time.Second
)

// Store is what social login needs from the database.
type Store interface {
	ListOAuthAccounts(ctx context.Context, userID string) ([]gatehouse.OAuthAccount, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Accounts creates the accounts of new external identities (an
// *account.Service).
type Accounts interface {
	CreateExternalUserTx(ctx context.Context, tx store.Tx, email gatehouse.Email, name string, verified bool) (gatehouse.User, error)
}

// Options tune the service.
type Options struct {
	// CallbackBase is the public URL under which the callback lives:
	// {CallbackBase}/{provider}/callback is the redirect URI registered
	// at each provider.
	CallbackBase string
	// RedirectAllowlist holds the URL prefixes a flow's redirect_uri may
	// start with (same scheme and host, path under the prefix's).
	RedirectAllowlist []string
	// Timeout bounds each provider call (default DefaultTimeout).
	Timeout time.Duration
	// Transport is the base transport of provider calls (default
	// http.DefaultTransport).
	Transport http.RoundTripper
	Now       func() time.Time
}

// Service runs social login.
type Service struct {
	store     Store
	cache     cache.Cache
	accounts  Accounts
	events    store.Emitter
	providers map[string]*provider
	allow     []*url.URL
	opts      Options
}

// New makes the service with the configured providers.
func New(st Store, c cache.Cache, acc Accounts, ev store.Emitter, providers []ProviderConfig, o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	s := &Service{store: st, cache: c, accounts: acc, events: ev, providers: map[string]*provider{}, opts: o}
	for _, raw := range o.RedirectAllowlist {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("oauth: redirect allow-list entry %q is not an absolute http(s) URL", raw)
		}
		s.allow = append(s.allow, u)
	}
	for _, pc := range providers {
		s.providers[pc.Name] = newProvider(pc, strings.TrimRight(o.CallbackBase, "/")+"/"+pc.Name+"/callback", o.Timeout, o.Transport, o.Now)
	}
	return s, nil
}

// Providers lists the configured provider names, sorted.
func (s *Service) Providers() []string {
	names := make([]string, 0, len(s.providers))
	for n := range s.providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// flow is what the cache holds between Authorize and Callback, under a
// hash of the state.
type flow struct {
	Provider    string `json:"provider"`
	Verifier    string `json:"verifier"`
	Nonce       string `json:"nonce,omitempty"`
	RedirectURI string `json:"redirect_uri,omitempty"`
	LinkUserID  string `json:"link_user_id,omitempty"`
}

// grant is what the cache holds for a one-time code, under its hash: the
// sign-in to perform when the code is exchanged.
type grant struct {
	UserID string               `json:"user_id"`
	Method string               `json:"method"`
	Meta   gatehouse.ClientInfo `json:"meta"`
}

// ticket is what the cache holds for a link ticket, under its hash: who
// links which provider, and where the browser goes afterwards.
type ticket struct {
	Provider    string `json:"provider"`
	UserID      string `json:"user_id"`
	RedirectURI string `json:"redirect_uri,omitempty"`
}

func stateKey(state string) string { return "oauth:state:" + hex.EncodeToString(token.Hash(state)) }
func codeKey(code string) string   { return "oauth:code:" + hex.EncodeToString(token.Hash(code)) }
func ticketKey(t string) string    { return "oauth:ticket:" + hex.EncodeToString(token.Hash(t)) }

// LinkTicketParam is the query parameter of /authorize that carries a
// link ticket.
const LinkTicketParam = "link_ticket"

var (
	errUnknownProvider = gatehouse.Errorf(gatehouse.CodeNotFound, "no such identity provider")
	errInvalidState    = gatehouse.Errorf(gatehouse.CodeInvalidToken, "the sign-in state is unknown, expired or already used; start the sign-in again")
	errOtherBrowser    = gatehouse.Errorf(gatehouse.CodeInvalidToken,
		"the sign-in state was not started in this browser (its cookie is missing or does not match); start the sign-in again")
	errInvalidCode   = gatehouse.Errorf(gatehouse.CodeInvalidToken, "the code is invalid, expired or already used")
	errInvalidTicket = gatehouse.Errorf(gatehouse.CodeInvalidToken, "the link is invalid, expired or already used; ask for a new one")
)

// Binding is what the browser that started the flow with state must
// present at the callback (the HTTP layer keeps it in a cookie): a hash of
// the state, so the cookie never holds the state itself.
func Binding(state string) string {
	h := sha256.Sum256([]byte("gatehouse oauth browser binding\x00" + state))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// provider finds a provider by name, whatever its case: names are
// configured upper-case (GATEHOUSE_OAUTH_<NAME>_*) and kept lower-case.
func (s *Service) provider(name string) (*provider, error) {
	p, ok := s.providers[strings.ToLower(name)]
	if !ok {
		return nil, errUnknownProvider
	}
	return p, nil
}

func random() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Start is a begun flow.
type Start struct {
	// URL is the provider's authorization URL to send the browser to.
	URL string
	// State is the flow's state; the browser must present Binding(State)
	// at the callback.
	State string
	// Callback is the flow's redirect URI at Gatehouse (the public URL of
	// the provider's callback).
	Callback string
}

// CallbackURL answers the public URL of a provider's callback: the
// redirect URI registered at the provider.
func (s *Service) CallbackURL(providerName string) (string, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return "", err
	}
	return p.oauth2.RedirectURL, nil
}

// Authorize starts a flow and answers where to send the browser, and the
// state it must be bound to. redirectURI ("" for none) must be
// allow-listed; linkUserID ("" for none) is the signed-in user who links
// the external account.
func (s *Service) Authorize(ctx context.Context, providerName, redirectURI, linkUserID string) (Start, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return Start{}, err
	}
	if redirectURI != "" && !s.allowed(redirectURI) {
		return Start{}, gatehouse.InvalidField("redirect_uri", "redirect_uri is not in GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST")
	}
	cfg, err := p.config(ctx)
	if err != nil {
		return Start{}, err
	}
	state := random()
	f := flow{Provider: p.name, Verifier: oauth2.GenerateVerifier(), RedirectURI: redirectURI, LinkUserID: linkUserID}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.Verifier)}
	if p.kind == kindOIDC {
		f.Nonce = random()
		opts = append(opts, oidc.Nonce(f.Nonce))
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return Start{}, err
	}
	if err := s.cache.Set(ctx, stateKey(state), raw, StateTTL); err != nil {
		return Start{}, fmt.Errorf("oauth: store state: %w", err)
	}
	return Start{URL: cfg.AuthCodeURL(state, opts...), State: state, Callback: cfg.RedirectURL}, nil
}

// LinkURL begins linking an external account to the signed-in userID for
// a client that cannot send a bearer token when the browser navigates (a
// single-page app): it answers the public URL of the provider's
// /authorize with a link ticket, which the browser opens. The ticket is
// 256 random bits, kept hashed in the cache for TicketTTL, bound to the
// user, the provider and redirectURI ("" for none, else allow-listed: the
// body's redirect_uri), and spent by the first AuthorizeLink. The caller
// checks that the user signed in recently.
func (s *Service) LinkURL(ctx context.Context, providerName, redirectURI, userID string) (string, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return "", err
	}
	if redirectURI != "" && !s.allowed(redirectURI) {
		return "", gatehouse.InvalidField("redirect_uri", "redirect_uri is not in GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST")
	}
	raw, err := json.Marshal(ticket{Provider: p.name, UserID: userID, RedirectURI: redirectURI})
	if err != nil {
		return "", err
	}
	t := random()
	if err := s.cache.Set(ctx, ticketKey(t), raw, TicketTTL); err != nil {
		return "", fmt.Errorf("oauth: store link ticket: %w", err)
	}
	authorize := strings.TrimSuffix(p.oauth2.RedirectURL, "/callback") + "/authorize"
	return withQuery(authorize, LinkTicketParam, t), nil
}

// AuthorizeLink spends a link ticket (once: of concurrent uses one wins)
// and starts its flow, as Authorize does for a bearer token: the
// external account will be linked to the ticket's user. A ticket unknown,
// used, expired or of another provider is invalid_token.
func (s *Service) AuthorizeLink(ctx context.Context, providerName, linkTicket string) (Start, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return Start{}, err
	}
	if linkTicket == "" {
		return Start{}, errInvalidTicket
	}
	raw, err := s.cache.Take(ctx, ticketKey(linkTicket))
	if errors.Is(err, cache.ErrMiss) {
		return Start{}, errInvalidTicket
	} else if err != nil {
		return Start{}, fmt.Errorf("oauth: take link ticket: %w", err)
	}
	var t ticket
	if err := json.Unmarshal(raw, &t); err != nil || t.Provider != p.name || t.UserID == "" {
		return Start{}, errInvalidTicket
	}
	return s.Authorize(ctx, p.name, t.RedirectURI, t.UserID)
}

// allowed reports whether redirectURI starts with an allow-listed prefix:
// the same scheme and host, and a path at or under the prefix's path.
func (s *Service) allowed(redirectURI string) bool {
	u, err := url.Parse(redirectURI)
	if err != nil || u.User != nil || u.Fragment != "" || u.Opaque != "" || strings.Contains(u.Path, "..") ||
		strings.ContainsAny(redirectURI, "\\\r\n\t ") {
		return false
	}
	for _, a := range s.allow {
		if u.Scheme != a.Scheme || !strings.EqualFold(u.Host, a.Host) {
			continue
		}
		if p := a.Path; p == "" || strings.HasSuffix(p, "/") && strings.HasPrefix(u.Path, p) ||
			u.Path == p || strings.HasPrefix(u.Path, p+"/") {
			return true
		}
	}
	return false
}

// CallbackInput is what the provider sent back to the callback, and the
// browser's binding of the state (its cookie's value, "" without one).
type CallbackInput struct {
	Code, State      string
	Error, ErrorDesc string
	Binding          string
}

// Result is a finished callback: the sign-in to complete, or, for a flow
// with a redirect_uri, where to send the browser with a one-time code
// (Exchange answers the sign-in for it).
type Result struct {
	SignIn   *gatehouse.PendingSignIn
	Redirect string // redirect_uri with ?code=; empty when SignIn is set
}

// RedirectError is a failure of a flow that was started with a
// redirect_uri, after its state proved valid: the browser goes back to the
// app at RedirectURI with the error (the HTTP layer adds ?error=<code> and
// error_description), never to an error page of Gatehouse's.
type RedirectError struct {
	RedirectURI string
	Err         error
}

// Error implements error.
func (e *RedirectError) Error() string { return e.Err.Error() }

// Unwrap exposes the failure.
func (e *RedirectError) Unwrap() error { return e.Err }

// Callback finishes a flow: spends the state, checks that the browser
// started it (in.Binding is Binding(in.State)), exchanges the code,
// verifies who signed in and links or creates the local account. A state
// that is unknown, used, expired, another provider's or not this
// browser's is invalid_token; a new account needs an email the provider
// verified (oauth_email_not_verified otherwise). Once the state is valid,
// every failure of a flow with a redirect_uri is a *RedirectError.
func (s *Service) Callback(ctx context.Context, providerName string, in CallbackInput, meta gatehouse.ClientInfo) (Result, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return Result{}, err
	}
	if in.State == "" {
		return Result{}, errInvalidState
	}
	raw, err := s.cache.Take(ctx, stateKey(in.State))
	if errors.Is(err, cache.ErrMiss) {
		return Result{}, errInvalidState
	}
	if err != nil {
		return Result{}, fmt.Errorf("oauth: take state: %w", err)
	}
	var f flow
	if err := json.Unmarshal(raw, &f); err != nil || f.Provider != p.name {
		return Result{}, errInvalidState
	}
	if subtle.ConstantTimeCompare([]byte(in.Binding), []byte(Binding(in.State))) != 1 {
		return Result{}, errOtherBrowser
	}
	res, err := s.finish(ctx, p, f, in, meta)
	if err != nil && f.RedirectURI != "" {
		return Result{}, &RedirectError{RedirectURI: f.RedirectURI, Err: err}
	}
	return res, err
}

// finish is Callback once the flow f is known to be this browser's.
func (s *Service) finish(ctx context.Context, p *provider, f flow, in CallbackInput, meta gatehouse.ClientInfo) (Result, error) {
	if in.Error != "" {
		return Result{}, gatehouse.Errorf(gatehouse.CodeOAuthDenied, "the sign-in at %s did not complete (%s)", p.name, clip(in.Error, 64))
	}
	if in.Code == "" {
		return Result{}, gatehouse.InvalidField("code", "the provider sent no code")
	}
	pr, err := p.exchange(ctx, in.Code, f.Verifier, f.Nonce)
	if err != nil {
		return Result{}, err
	}
	userID, err := s.resolve(ctx, p.name, pr, f.LinkUserID)
	if err != nil {
		return Result{}, err
	}
	method := "oauth:" + p.name
	if f.RedirectURI == "" {
		return Result{SignIn: &gatehouse.PendingSignIn{UserID: userID, Client: meta, AMR: []string{"fed"}, Method: method}}, nil
	}
	code := random()
	g, err := json.Marshal(grant{UserID: userID, Method: method, Meta: meta})
	if err != nil {
		return Result{}, err
	}
	if err := s.cache.Set(ctx, codeKey(code), g, CodeTTL); err != nil {
		return Result{}, fmt.Errorf("oauth: store code: %w", err)
	}
	return Result{Redirect: withQuery(f.RedirectURI, "code", code)}, nil
}

// Exchange spends a one-time code from a redirect and answers its sign-in,
// for the caller to complete. Of
// concurrent exchanges of one code exactly one succeeds.
func (s *Service) Exchange(ctx context.Context, code string, meta gatehouse.ClientInfo) (gatehouse.PendingSignIn, error) {
	if code == "" {
		return gatehouse.PendingSignIn{}, errInvalidCode
	}
	raw, err := s.cache.Take(ctx, codeKey(code))
	if errors.Is(err, cache.ErrMiss) {
		return gatehouse.PendingSignIn{}, errInvalidCode
	}
	if err != nil {
		return gatehouse.PendingSignIn{}, fmt.Errorf("oauth: take code: %w", err)
	}
	var g grant
	if err := json.Unmarshal(raw, &g); err != nil {
		return gatehouse.PendingSignIn{}, errInvalidCode
	}
	// The browser that finished the flow is the one signing in; the
	// exchanging client (often the app's backend) is recorded only when
	// the flow left no trace of it.
	if g.Meta.IP == "" {
		g.Meta = meta
	}
	return gatehouse.PendingSignIn{UserID: g.UserID, Client: g.Meta, AMR: []string{"fed"}, Method: g.Method}, nil
}

// resolve finds or makes the local account of an external one, in one
// transaction: a known (provider, subject) is its user; a flow started by
// a signed-in user links to that user; a verified email matching an
// account whose email is verified links to it; an unverified match is
// refused; a verified email matching no account is a new account, and an
// unverified one is refused.
func (s *Service) resolve(ctx context.Context, providerName string, pr profile, linkUserID string) (string, error) {
	var userID string
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		existing, err := tx.GetOAuthAccount(ctx, providerName, pr.Subject)
		switch {
		case err == nil:
			if linkUserID != "" && existing.UserID != linkUserID {
				return gatehouse.Errorf(gatehouse.CodeConflict, "this %s account is linked to another user", providerName)
			}
			userID = existing.UserID
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		case linkUserID != "":
			userID = linkUserID
			return s.linkTx(ctx, tx, linkUserID, providerName, pr, "linked")
		}
		if pr.Email == "" {
			return gatehouse.Errorf(gatehouse.CodeOAuthDenied, "%s shared no email address; allow access to it and try again", providerName)
		}
		addr, err := gatehouse.ParseEmail(pr.Email)
		if err != nil {
			return gatehouse.Errorf(gatehouse.CodeOAuthDenied, "%s shared an email address Gatehouse cannot use", providerName)
		}
		u, err := tx.GetUserByEmail(ctx, addr)
		switch {
		case err == nil && pr.EmailVerified && u.EmailVerified:
			userID = u.ID
			return s.linkTx(ctx, tx, u.ID, providerName, pr, "email_match")
		case err == nil:
			// Linking on an address either side has not proven would let
			// whoever controls the other side take the account over.
			return gatehouse.Errorf(gatehouse.CodeOAuthEmailUnverified,
				"an account with this email exists, but the email is not verified by %s or by the account; sign in to the account and link %s from there",
				providerName, providerName)
		case !errors.Is(err, store.ErrNotFound):
			return err
		case !pr.EmailVerified:
			// An account made on an address nobody proved would be
			// squatted: whoever claimed it at the provider could keep
			// signing in after the real owner recovers the account.
			return gatehouse.Errorf(gatehouse.CodeOAuthEmailUnverified,
				"%s has not verified this email address; verify it at %s and try again, or register with the email and link %s from there",
				providerName, providerName, providerName)
		}
		u, err = s.accounts.CreateExternalUserTx(ctx, tx, addr, clip(pr.Name, 200), true)
		if err != nil {
			return err
		}
		userID = u.ID
		return s.linkTx(ctx, tx, u.ID, providerName, pr, "new_user")
	})
	return userID, err
}

func (s *Service) linkTx(ctx context.Context, tx store.Tx, userID, providerName string, pr profile, how string) error {
	a := gatehouse.OAuthAccount{ID: gatehouse.NewID(), UserID: userID, Provider: providerName, Subject: pr.Subject,
		Email: pr.Email, CreatedAt: s.opts.Now().UTC()}
	if err := tx.CreateOAuthAccount(ctx, a); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return gatehouse.Errorf(gatehouse.CodeConflict, "this %s account was linked meanwhile; try again", providerName)
		}
		return fmt.Errorf("link %s account: %w", providerName, err)
	}
	_, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserOAuthLinked, UserID: userID, ActorID: userID,
		Data: map[string]any{"provider": providerName, "oauth_account_id": a.ID, "email": pr.Email, "via": how}})
	return err
}

// List returns the user's linked accounts, oldest first.
func (s *Service) List(ctx context.Context, userID string) ([]gatehouse.OAuthAccount, error) {
	return s.store.ListOAuthAccounts(ctx, userID)
}

// Unlink removes one of the user's linked accounts, refused with
// last_login_method when the user would be left without a way to sign in:
// no password, no passkey and no other linked account. The unlink and its
// user.oauth_unlinked event commit together.
func (s *Service) Unlink(ctx context.Context, userID, id string) error {
	return s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		// The row lock serialises concurrent unlinks of one user, so two
		// cannot each leave the other as the last.
		u, err := tx.GetUserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		links, err := tx.ListOAuthAccounts(ctx, userID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(links, func(a gatehouse.OAuthAccount) bool { return a.ID == id })
		if i < 0 {
			return gatehouse.Errorf(gatehouse.CodeNotFound, "no such linked account")
		}
		if !u.HasPassword() && len(links) == 1 {
			passkeys, err := tx.CountWebAuthnCredentials(ctx, userID)
			if err != nil {
				return err
			}
			if passkeys == 0 {
				return gatehouse.Errorf(gatehouse.CodeLastLoginMethod,
					"this is the account's only way to sign in; set a password, add a passkey or link another provider first")
			}
		}
		if err := tx.DeleteOAuthAccount(ctx, userID, id); err != nil {
			return err
		}
		_, err = s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserOAuthUnlinked, UserID: userID, ActorID: userID,
			Data: map[string]any{"provider": links[i].Provider, "oauth_account_id": id}})
		return err
	})
}

func withQuery(raw, key, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// clip cuts s to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
