// Package web is Gatehouse's hosted pages: sign-in (password, MFA, passkey,
// emailed link, social), sign-up and the emailed-link flows, the account
// page and the admin console, served by the same binary at the root of the
// public URL.
//
// Pages are server-rendered html/template with embedded assets and a
// strict Content-Security-Policy; every form works without JavaScript, and
// the one script (passkeys need the WebAuthn browser API) is served from
// the binary. A sign-in goes through internal/signin's Flow like any API
// sign-in and starts a normal Gatehouse session, which the browser holds
// by an opaque cookie (see Sessions). Every form carries a CSRF token;
// errors are shown in words.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Limits are the rate limits pages apply, the same as the API's (see
// GATEHOUSE_RATE_LIMIT_*), counted in the same buckets.
type Limits struct {
	Login, Register, Email, MFA ratelimit.Limit
}

// Deps is what the pages are made of. PublicURL, SignIn, Store and
// Accounts are required; a nil optional service hides its part of the
// pages.
type Deps struct {
	// PublicURL is GATEHOUSE_PUBLIC_URL; https makes the cookies Secure
	// and __Host- prefixed.
	PublicURL string
	// ServiceName brands the pages (GATEHOUSE_BRAND_NAME, else
	// GATEHOUSE_SERVICE_NAME).
	ServiceName string
	// Brand is the optional logo and colour (GATEHOUSE_BRAND_*).
	Brand Brand
	// ReturnAllowlist are the prefixes besides this origin that return_to
	// may name (GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST).
	ReturnAllowlist []string
	// APIBase is the API's path prefix ("/api/v1"), for the social-login
	// start and the WebAuthn script.
	APIBase string
	// ClientIP returns the client address the HTTP middleware computed for
	// the request ("" when unknown).
	ClientIP func(ctx context.Context) string
	// IdleTimeout is the sessions' idle timeout (0: none).
	IdleTimeout time.Duration

	SignIn     SignIn
	Store      SessionStore
	Accounts   Accounts
	MagicLinks MagicLinks
	MFA        MFA
	Passkeys   Passkeys
	OAuth      OAuth
	Sessions   UserSessions
	Devices    Devices
	Admin      Admin
	// AdminLinks add sections served by other packages to the admin
	// console's menu (the OpenID Provider's OAuth clients).
	AdminLinks []AdminLink

	Limiter ratelimit.Limiter
	Limits  Limits
	// Metrics counts refusals in gatehouse_rate_limited_total{limit}, as
	// the API's limits do (a *telemetry.Metrics; nil counts nothing).
	Metrics RateLimitMetrics

	Now    func() time.Time
	Logger *slog.Logger
}

// Pages serves the hosted pages.
type Pages struct {
	d        Deps
	public   *url.URL
	allow    []*url.URL
	secure   bool
	sessions *Sessions
	tmpl     map[string]*template.Template
	now      func() time.Time
	log      *slog.Logger
}

// New makes the pages; it fails only on a bad public URL or allow-list.
func New(d Deps) (*Pages, error) {
	pub, err := url.Parse(strings.TrimRight(d.PublicURL, "/"))
	if err != nil || pub.Host == "" {
		return nil, fmt.Errorf("web: public URL %q is not an absolute URL", d.PublicURL)
	}
	p := &Pages{d: d, public: pub, secure: pub.Scheme == "https", now: d.Now, log: d.Logger}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.d.ClientIP == nil {
		p.d.ClientIP = func(context.Context) string { return "" }
	}
	if p.d.ServiceName == "" {
		p.d.ServiceName = "Gatehouse"
	}
	for _, raw := range d.ReturnAllowlist {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("web: allow-list entry %q is not an absolute http(s) URL", raw)
		}
		p.allow = append(p.allow, u)
	}
	p.sessions = newSessions(d.Store, p.secure, d.IdleTimeout, p.now)
	if p.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	return p, nil
}

// Sessions are the browser sessions of these pages.
func (p *Pages) Sessions() *Sessions { return p.sessions }

var funcs = template.FuncMap{
	"join": strings.Join,
	"date": func(v any) string {
		var t time.Time
		switch x := v.(type) {
		case time.Time:
			t = x
		case *time.Time:
			if x != nil {
				t = *x
			}
		}
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
	"dataText": func(lines []string) template.URL {
		return template.URL("data:text/plain;charset=utf-8," + url.PathEscape(strings.Join(lines, "\n"))) //nolint:gosec // escaped text
	},
	"safeURL": func(s string) template.URL {
		if strings.HasPrefix(s, "data:image/png;base64,") {
			return template.URL(s) //nolint:gosec // our own QR code
		}
		return ""
	},
}

func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" {
			continue
		}
		files := []string{"templates/layout.html", n}
		if strings.HasPrefix(base, "admin-") {
			files = []string{"templates/layout.html", "templates/admin.html", n}
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", base, err)
		}
		out[strings.TrimSuffix(base, ".html")] = t
	}
	return out, nil
}

// Register adds the pages' routes to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	h := func(pattern string, f http.HandlerFunc) { mux.HandleFunc(pattern, f) }
	h("GET /assets/", p.assets)
	h("GET "+brandLogoPath, p.brandLogo)
	h("GET /assets/brand.css", p.brandCSS)
	h("GET /{$}", p.home)
	p.registerSignIn(h)
	p.registerLinks(h)
	p.registerAccount(h)
	p.registerAdmin(h)
}

// view is what every template gets.
type view struct {
	Title   string
	Service string
	CSRF    string
	Me      *gatehouse.User
	Admin   bool
	Notice  string
	Error   string
	Fields  []string
	Data    any
	// Nonce is this answer's CSP nonce: only script tags carrying it run.
	Nonce string
	// Brand is the service's look (logo, colour).
	Brand Brand
}

// render writes a page with status.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t := p.tmpl[name]
	if t == nil {
		panic("web: no template " + name)
	}
	v.Service = p.d.ServiceName
	v.Brand = p.d.Brand
	v.CSRF = p.csrfToken(w, r)
	v.Nonce = randomToken()
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", p.csp(v.Nonce))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", v); err != nil {
		p.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
	}
}

// csp allows only our own assets, and only the scripts this answer tagged
// with its nonce; forms may post to ourselves and, since a post may answer
// a redirect to return_to, to the allow-listed origins.
func (p *Pages) csp(nonce string) string {
	formAction := "'self'"
	for _, a := range p.allow {
		formAction += " " + a.Scheme + "://" + a.Host
	}
	img := "'self' data:"
	if o := p.d.Brand.logoOrigin(); o != "" {
		img += " " + o
	}
	return "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'self'; img-src " + img + "; connect-src 'self'; " +
		"form-action " + formAction + "; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
}

func (p *Pages) assets(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/assets/")
	b, err := assetFS.ReadFile("assets/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}

func (p *Pages) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.sessions.session(r); ok {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// client describes the browser for a sign-in.
func (p *Pages) client(r *http.Request) gatehouse.ClientInfo {
	return gatehouse.ClientInfo{IP: p.d.ClientIP(r.Context()), UserAgent: r.UserAgent()}
}

// pageError is an error put in words for a page, with its status.
type pageError struct {
	status int
	msg    string
	fields []string
	retry  int
}

// explain puts err in words. Unknown errors are logged and said vaguely.
func (p *Pages) explain(ctx context.Context, err error) pageError {
	var e *gatehouse.Error
	if !errors.As(err, &e) {
		if errors.Is(err, gatehouse.ErrUnavailable) {
			return pageError{status: http.StatusServiceUnavailable, retry: 5,
				msg: "The service is busy or partly down right now. Try again in a few seconds."}
		}
		p.log.ErrorContext(ctx, "page error", "err", err)
		return pageError{status: http.StatusInternalServerError, msg: "Something went wrong on our side. Try again in a moment."}
	}
	var fields []string
	for _, f := range e.Fields {
		if f.Message != e.Message {
			fields = append(fields, f.Message)
		}
	}
	pe := pageError{status: http.StatusBadRequest, msg: sentence(e.Message), fields: fields}
	switch e.Code {
	case gatehouse.CodeInvalidCredentials:
		pe.status, pe.msg = http.StatusUnauthorized, "The email or password is wrong."
	case gatehouse.CodeAccountLocked:
		pe.status, pe.msg = http.StatusLocked, "This account is locked, after too many failed sign-ins or by an administrator. "+
			"Try again later, or reset your password."
	case gatehouse.CodeRateLimited:
		pe.status, pe.msg = http.StatusTooManyRequests, "Too many attempts. "+sentence(strings.TrimPrefix(e.Message, "too many requests; "))
	case gatehouse.CodeMFAInvalidCode:
		pe.status, pe.msg = http.StatusUnauthorized, "That code is wrong, expired or already used."
	case gatehouse.CodeInvalidToken:
		pe.msg = "This link or step is invalid, expired or already used. Start again to get a new one."
	case gatehouse.CodeEmailTaken:
		pe.status, pe.msg = http.StatusConflict, "An account with this email already exists. Sign in, or reset its password."
	case gatehouse.CodeWeakPassword:
		pe.status, pe.msg = http.StatusUnprocessableEntity, "Choose a stronger password."
	case gatehouse.CodeValidationFailed, gatehouse.CodeInvalidEmail:
		pe.status = http.StatusUnprocessableEntity
	case gatehouse.CodeRecentAuthRequired:
		pe.status, pe.msg = http.StatusForbidden, "For this change, enter your current password."
	case gatehouse.CodePermissionDenied, gatehouse.CodeAccessDenied:
		pe.status = http.StatusForbidden
	case gatehouse.CodeNotFound:
		pe.status = http.StatusNotFound
	case gatehouse.CodeUnauthorized:
		pe.status = http.StatusUnauthorized
	case gatehouse.CodeConflict, gatehouse.CodeSystemRole, gatehouse.CodeLastLoginMethod:
		pe.status = http.StatusConflict
	case gatehouse.CodeUnavailable:
		pe.status, pe.retry = http.StatusServiceUnavailable, 5
	case gatehouse.CodeInternal:
		p.log.ErrorContext(ctx, "page error", "err", err)
		pe.status, pe.msg, pe.fields = http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment.", nil
	}
	if e.Code == gatehouse.CodeRateLimited {
		var n int
		if _, err := fmt.Sscanf(e.Message, "too many requests; retry in %d seconds", &n); err == nil {
			pe.retry = n
		}
	}
	return pe
}

// fail renders page with err in words.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, name string, v view, err error) {
	pe := p.explain(r.Context(), err)
	if pe.retry > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(pe.retry))
	}
	v.Error, v.Fields = pe.msg, pe.fields
	p.render(w, r, pe.status, name, v)
}

func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// errCSRF answers a form post that did not come from our pages.
var errCSRF = gatehouse.Errorf(gatehouse.CodeAccessDenied,
	"this form expired or did not come from this site; reload the page and try again")

// RateLimitMetrics counts requests refused by a limit, by the limit's name
// (login, register, email, mfa).
type RateLimitMetrics interface {
	RateLimited(limit string)
}

// limit spends one request of the named limit under key.
func (p *Pages) limit(ctx context.Context, name, key string, l ratelimit.Limit) error {
	if p.d.Limiter == nil || !l.Valid() {
		return nil
	}
	res, err := p.d.Limiter.Allow(ctx, name+":"+key, l)
	if err != nil || res.Allowed {
		return nil //nolint:nilerr // a failing limiter lets requests through, as the API's does
	}
	if p.d.Metrics != nil {
		p.d.Metrics.RateLimited(name)
	}
	return gatehouse.Errorf(gatehouse.CodeRateLimited, "too many requests; retry in %d seconds", max(int(res.RetryAfter.Seconds()+0.999), 1))
}
