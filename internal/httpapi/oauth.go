package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/account"
	"github.com/gatehouse-auth/gatehouse/internal/oauth"
	"github.com/gatehouse-auth/gatehouse/internal/session"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// TagOAuth groups social login and linked accounts.
const TagOAuth = "OAuth"

// OAuth runs social login (an *oauth.Service).
type OAuth interface {
	Authorize(ctx context.Context, provider, redirectURI, linkUserID string) (oauth.Start, error)
	LinkURL(ctx context.Context, provider, redirectURI, userID string) (string, error)
	AuthorizeLink(ctx context.Context, provider, linkTicket string) (oauth.Start, error)
	CallbackURL(provider string) (string, error)
	Callback(ctx context.Context, provider string, in oauth.CallbackInput, meta session.Meta) (oauth.Result, error)
	Exchange(ctx context.Context, code string, meta session.Meta) (account.Tokens, error)
	List(ctx context.Context, userID string) ([]store.OAuthAccount, error)
	Unlink(ctx context.Context, userID, id string) error
}

// OAuthAccount is a linked external account.
type OAuthAccount struct {
	ID             string    `json:"id"`
	Provider       string    `json:"provider" example:"google"`
	ProviderUserID string    `json:"provider_user_id" doc:"The provider's stable id of the account (OIDC sub, GitHub user id)."`
	Email          string    `json:"email" doc:"The address the provider reported when the account was linked."`
	CreatedAt      time.Time `json:"created_at"`
}

type redirectOutput struct {
	Status       int
	Location     string `header:"Location"`
	CacheControl string `header:"Cache-Control"`
	SetCookie    string `header:"Set-Cookie"`
}

// stateCookiePrefix starts the name of the cookie that binds a flow's
// state to the browser that started it. The name also carries a piece of
// the binding, so flows begun in several tabs do not overwrite each other.
const stateCookiePrefix = "gatehouse_oauth_"

func stateCookieName(binding string) string { return stateCookiePrefix + binding[:12] }

// stateCookie is the binding cookie of a flow, on the provider's callback
// path only; maxAge < 0 clears it. It is Secure when the callback is
// https, and SameSite=Lax, which a provider's top-level redirect back
// still carries.
func stateCookie(callback, binding string, maxAge int) *http.Cookie {
	u, err := url.Parse(callback)
	if err != nil {
		u = &url.URL{Path: "/"}
	}
	value := binding
	if maxAge < 0 {
		value = ""
	}
	return &http.Cookie{Name: stateCookieName(binding), Value: value, Path: u.Path, MaxAge: maxAge,
		Secure: strings.EqualFold(u.Scheme, "https"), HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// stateBindingKey carries the browser's binding cookie from bindState to
// the callback.
type stateBindingKey struct{}

// bindState reads the callback's state binding cookie (for the callback,
// through the context) and clears it, whatever the callback answers: the
// state is spent either way.
func (s *Server) bindState(ctx huma.Context, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	state := r.URL.Query().Get("state")
	if state == "" || len(state) > 256 {
		next(ctx)
		return
	}
	binding := oauth.Binding(state)
	if c, err := r.Cookie(stateCookieName(binding)); err == nil {
		ctx = huma.WithValue(ctx, stateBindingKey{}, c.Value)
	}
	if cb, err := s.oauth.CallbackURL(ctx.Param("provider")); err == nil {
		http.SetCookie(w, stateCookie(cb, binding, -1))
	}
	next(ctx)
}

// errorRedirect is where a failed flow with a redirect_uri sends the
// browser: back to the app, with the problem's code as error and its
// detail as error_description (RFC 6749 4.1.2.1's parameters), instead of
// a problem+json page the app never sees. The cause is logged as for any
// problem (WARN for a provider failure).
func errorRedirect(ctx context.Context, back *oauth.RedirectError) string {
	p := finalize(ctx, problemFrom(back.Err))
	u, err := url.Parse(back.RedirectURI)
	if err != nil { // allow-listed when the flow began: cannot happen
		return back.RedirectURI
	}
	q := u.Query()
	q.Set("error", string(p.Code))
	q.Set("error_description", p.Detail)
	u.RawQuery = q.Encode()
	return u.String()
}

// hostCheckedParam marks an authorize request that publicHost already sent
// to the public URL's host, so a proxy that rewrites Host cannot make it
// redirect forever.
const hostCheckedParam = "host_checked"

// publicHost sends a flow started on another host than the public URL's
// (an alias, an address, localhost) to the same authorize URL on the
// public host first: the state cookie is set for the host the browser
// talks to, and the provider returns the browser to the public callback
// URL, where a cookie of another host would be missing. The browser's host
// is X-Forwarded-Host when a trusted proxy sends one, else Host. Once only:
// a request that was redirected already goes on (a proxy that rewrites
// Host to its upstream's name would otherwise loop).
func (s *Server) publicHost(ctx huma.Context, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	cb, err := s.oauth.CallbackURL(ctx.Param("provider"))
	if err != nil || r.URL.Query().Has(hostCheckedParam) {
		next(ctx)
		return
	}
	public, err := url.Parse(cb)
	if err != nil || public.Host == "" {
		next(ctx)
		return
	}
	host := r.Host
	if f := r.Header.Get("X-Forwarded-Host"); f != "" && isTrusted(parseHost(r.RemoteAddr), s.trusted) {
		host, _, _ = strings.Cut(f, ",")
	}
	if sameHost(strings.TrimSpace(host), public) {
		next(ctx)
		return
	}
	target := *public
	target.Path = strings.TrimSuffix(public.Path, "/callback") + "/authorize"
	q := r.URL.Query()
	q.Set(hostCheckedParam, "1")
	target.RawQuery = q.Encode()
	w.Header().Set("Location", target.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// sameHost reports whether host (from Host or X-Forwarded-Host) names the
// public URL's host and port; a default port may be left out either side.
func sameHost(host string, public *url.URL) bool {
	port := public.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(public.Scheme)]
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h, p = host, port
	}
	return strings.EqualFold(strings.Trim(h, "[]"), public.Hostname()) && p == port
}

// OAuthLink is where to send the browser to link a social account.
type OAuthLink struct {
	URL       string `json:"url" doc:"Navigate the browser here (GET); single use."`
	ExpiresIn int    `json:"expires_in" doc:"Seconds the URL works."`
}

type linkOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         OAuthLink
}

// linkingUser is the user a bearer-authorized /authorize links to ("" for
// a plain sign-in, no token).
func (s *Server) linkingUser(ctx context.Context, authorization string) (string, error) {
	if authorization == "" {
		return "", nil
	}
	p, err := s.authenticate(ctx, authorization)
	if err != nil {
		return "", err
	}
	// A linked account signs in without the password or MFA: a stolen
	// access token must not be enough to add one.
	if err := s.accounts.RequireRecentAuth(ctx, p.UserID, p.AuthTime, ""); err != nil {
		return "", err
	}
	return p.UserID, nil
}

type oauthAccountList struct {
	Body struct {
		Items      []OAuthAccount `json:"items"`
		NextCursor *string        `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

func (s *Server) registerOAuth() {
	huma.Register(s.api, huma.Operation{
		OperationID: "oauth-authorize", Method: http.MethodGet, Path: "/oauth/{provider}/authorize", Tags: []string{TagOAuth},
		Summary: "Start a social login",
		Description: "Redirects (302) to the provider with state (single use, 10 minutes), a PKCE S256 code_challenge and, for " +
			"OpenID Connect providers, a nonce. With a bearer token the external account is linked to the caller, which needs " +
			"a sign-in within the last 5 minutes (403 recent_auth_required otherwise); a browser navigation, which cannot send the " +
			"token, uses the link_ticket of a URL from POST /oauth/{provider}/link instead (400 invalid_token once used or expired). " +
			"redirect_uri must start with an entry of GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST; the callback then redirects there with a one-time code. " +
			"Sets an HttpOnly, SameSite=Lax cookie (Secure on https) scoped to the callback path that binds the state to this " +
			"browser: the flow must be started and finished by the same browser (or cookie-keeping client). " +
			"A request to another host than GATEHOUSE_PUBLIC_URL's (X-Forwarded-Host from a trusted proxy, else Host) is first " +
			"redirected (302, once) to this URL on the public host, where the callback and so the cookie live. " +
			"{provider} matches whatever its case. " +
			"Errors: 404 not_found (unknown provider), 422 validation_failed (redirect_uri not allow-listed), 502 oauth_provider_error.",
		DefaultStatus: http.StatusFound,
		Security:      []map[string][]string{{}, {SecurityBearer: {}}},
		Responses: map[string]*huma.Response{"302": {Description: "To the provider's authorization page (Location); " +
			"or, for a request to another host than GATEHOUSE_PUBLIC_URL's, to this URL on the public host."}},
		Middlewares: huma.Middlewares{s.publicHost},
	}, func(ctx context.Context, in *struct {
		Provider      string `path:"provider" maxLength:"64"`
		RedirectURI   string `query:"redirect_uri" maxLength:"2048" doc:"Where the browser goes after the callback, with ?code=."`
		Authorization string `header:"Authorization" doc:"Bearer token, to link the external account to the caller."`
		LinkTicket    string `query:"link_ticket" maxLength:"256" doc:"From POST /oauth/{provider}/link: links the external account to the user who asked for it."`
		HostChecked   string `query:"host_checked" maxLength:"8" hidden:"true"`
	}) (*redirectOutput, error) {
		var st oauth.Start
		var err error
		if in.LinkTicket != "" {
			// The ticket says who links and where the browser goes after.
			switch {
			case in.Authorization != "":
				return nil, Problem(gatehouse.InvalidField("query.link_ticket", "send a link_ticket or a bearer token, not both"))
			case in.RedirectURI != "":
				return nil, Problem(gatehouse.InvalidField("query.redirect_uri", "a link_ticket carries its redirect_uri; leave it out"))
			}
			st, err = s.oauth.AuthorizeLink(ctx, in.Provider, in.LinkTicket)
		} else {
			linkUser, lerr := s.linkingUser(ctx, in.Authorization)
			if lerr != nil {
				return nil, Problem(lerr)
			}
			st, err = s.oauth.Authorize(ctx, in.Provider, in.RedirectURI, linkUser)
		}
		if err != nil {
			return nil, Problem(err)
		}
		return &redirectOutput{Status: http.StatusFound, Location: st.URL, CacheControl: "no-store",
			SetCookie: stateCookie(st.Callback, oauth.Binding(st.State), int(oauth.StateTTL/time.Second)).String()}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "oauth-link", Method: http.MethodPost, Path: "/oauth/{provider}/link", Tags: []string{TagOAuth},
		Summary: "Get a URL that links a social account",
		Description: "For a client that cannot send its bearer token when the browser navigates (a single-page app): answers the URL " +
			"of /oauth/{provider}/authorize on the public host with a link_ticket (single use, 60 seconds, bound to the caller, the " +
			"provider and redirect_uri). Navigating the browser to it starts the flow as a bearer-authorized /authorize does: the " +
			"external account is linked to the caller, and the callback answers tokens, or redirects to redirect_uri with ?code= " +
			"(or ?error=). Needs a sign-in within the last 5 minutes, since a linked account signs in without the password. " +
			"Keep the URL to the navigation: whoever opens it first links their provider account. " +
			"Errors: 403 recent_auth_required, 404 not_found (unknown provider), 422 validation_failed (redirect_uri not allow-listed); " +
			"opening a used or expired URL answers 400 invalid_token.",
	}), func(ctx context.Context, in *struct {
		Provider string `path:"provider" maxLength:"64"`
		Body     *struct {
			RedirectURI string `json:"redirect_uri,omitempty" maxLength:"2048" doc:"Where the browser goes after the callback, with ?code= (allow-listed)."`
		}
	}) (*linkOutput, error) {
		p := mustPrincipal(ctx)
		if err := s.accounts.RequireRecentAuth(ctx, p.UserID, p.AuthTime, ""); err != nil {
			return nil, Problem(err)
		}
		redirect := ""
		if in.Body != nil {
			redirect = in.Body.RedirectURI
		}
		u, err := s.oauth.LinkURL(ctx, in.Provider, redirect, p.UserID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &linkOutput{CacheControl: "no-store"}
		out.Body.URL, out.Body.ExpiresIn = u, int(oauth.TicketTTL/time.Second)
		return out, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "oauth-callback", Method: http.MethodGet, Path: "/oauth/{provider}/callback", Tags: []string{TagOAuth},
		Summary: "Finish a social login",
		Description: "The provider redirects here. Spends the state, exchanges the code with the PKCE verifier and verifies the ID token " +
			"(signature, issuer, audience, expiry, nonce). A known external account signs its user in; a flow started with a bearer " +
			"token links to that user; a provider-verified email matching an account whose email is verified links to it; " +
			"otherwise a new account is made if the provider verified the email. Answers tokens (amr [\"fed\"]) or an MFAChallenge, or, for a flow with a redirect_uri, " +
			"302 there with ?code= to exchange at /oauth/exchange. For such a flow every failure after a valid state is a 302 " +
			"there too, with ?error=<code>&error_description=<detail> (the codes below), never an error page. " +
			"Errors: 400 invalid_token (the state is unknown, used, " +
			"expired, another provider's, or the browser lacks the state cookie /authorize set), 400 oauth_denied (the person or " +
			"the provider refused), 409 oauth_email_not_verified (the email matches an account but is not verified on both sides; " +
			"nothing is linked; also when the provider has not verified the email of what would be a new account: none is made), " +
			"409 conflict (linked to another user), 502 oauth_provider_error (provider down, slow, an ID token " +
			"that does not verify, or the provider refusing Gatehouse's client credentials: fix GATEHOUSE_OAUTH_<NAME>_CLIENT_ID/_SECRET, " +
			"named in the WARN log).",
		Responses: map[string]*huma.Response{
			"200": {Description: "Signed in.", Content: map[string]*huma.MediaType{"application/json": {
				Schema: s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[SignInResponse](), true, "")}}},
			"302": {Description: "To the flow's redirect_uri with ?code= (Location), or with ?error= and error_description when it failed."},
		},
		Middlewares: huma.Middlewares{s.bindState},
	}, func(ctx context.Context, in *struct {
		Provider         string `path:"provider" maxLength:"64"`
		Code             string `query:"code" maxLength:"2048"`
		State            string `query:"state" maxLength:"256"`
		Error            string `query:"error" maxLength:"256"`
		ErrorDescription string `query:"error_description" maxLength:"1024"`
		UserAgent        string `header:"User-Agent"`
	}) (*struct{ Body func(huma.Context) }, error) {
		binding, _ := ctx.Value(stateBindingKey{}).(string)
		res, err := s.oauth.Callback(ctx, in.Provider, oauth.CallbackInput{Code: in.Code, State: in.State,
			Error: in.Error, ErrorDesc: in.ErrorDescription, Binding: binding}, clientMeta(ctx, in.UserAgent, ""))
		var back *oauth.RedirectError
		if errors.As(err, &back) {
			res, err = oauth.Result{Redirect: errorRedirect(ctx, back)}, nil
		}
		if err != nil {
			return nil, Problem(err)
		}
		now := s.now()
		return &struct{ Body func(huma.Context) }{Body: func(hc huma.Context) {
			hc.SetHeader("Cache-Control", "no-store")
			if res.Redirect != "" {
				hc.SetHeader("Location", res.Redirect)
				hc.SetStatus(http.StatusFound)
				return
			}
			body, err := json.Marshal(signInBody(res.Tokens, now).Body)
			if err != nil {
				s.logger.ErrorContext(ctx, "encode sign-in", "err", err)
			}
			hc.SetHeader("Content-Type", "application/json")
			hc.SetHeader("Content-Length", strconv.Itoa(len(body)))
			hc.SetStatus(http.StatusOK)
			_, _ = hc.BodyWriter().Write(body)
		}}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "oauth-exchange", Method: http.MethodPost, Path: "/oauth/exchange", Tags: []string{TagOAuth},
		Summary: "Exchange a social login's one-time code",
		Description: "Spends the code the callback put on the redirect_uri (single use, 60 seconds) and answers tokens, " +
			"or an MFAChallenge. Errors: 400 invalid_token (unknown, used or expired code).",
	}, func(ctx context.Context, in *struct {
		UserAgent string `header:"User-Agent"`
		Body      struct {
			Code string `json:"code" minLength:"1" maxLength:"256"`
		}
	}) (*signInOutput, error) {
		t, err := s.oauth.Exchange(ctx, in.Body.Code, clientMeta(ctx, in.UserAgent, ""))
		if err != nil {
			return nil, Problem(err)
		}
		return signInBody(t, s.now()), nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "list-oauth-accounts", Method: http.MethodGet, Path: "/oauth/accounts", Tags: []string{TagOAuth},
		Summary:     "List my linked accounts",
		Description: "Oldest link first, a page at a time. A cursor whose account has been unlinked since is 422 validation_failed: start again without it.",
	}), func(ctx context.Context, in *pageInput) (*oauthAccountList, error) {
		list, err := s.oauth.List(ctx, mustPrincipal(ctx).UserID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &oauthAccountList{}
		out.Body.Items, out.Body.NextCursor, err = pageList(list, in,
			func(a store.OAuthAccount) OAuthAccount {
				return OAuthAccount{ID: a.ID, Provider: a.Provider, ProviderUserID: a.Subject, Email: a.Email, CreatedAt: a.CreatedAt}
			},
			func(a store.OAuthAccount) string { return a.ID })
		if err != nil {
			return nil, Problem(err)
		}
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "unlink-oauth-account", Method: http.MethodDelete, Path: "/oauth/accounts/{id}", Tags: []string{TagOAuth},
		Summary: "Unlink an external account",
		Description: "Errors: 404 not_found, 409 last_login_method when it is the account's only way to sign in " +
			"(no password, no passkey, no other linked account).",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"64"`
	}) (*noContent, error) {
		if err := s.oauth.Unlink(ctx, mustPrincipal(ctx).UserID, in.ID); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})
}
