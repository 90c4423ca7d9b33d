package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// CSRF: every form carries the value of a random cookie (double submit).
// A cross-site page can make the browser post a form, but it cannot read
// the cookie to put its value in the form; the __Host- prefix (https)
// keeps sibling subdomains from planting one, and SameSite=Lax keeps the
// session cookie off cross-site posts anyway. A post whose Origin header
// names another origin is refused too.
const (
	csrfCookie         = "__Host-gh_csrf"
	insecureCSRFCookie = "gh_csrf"
	csrfField          = "csrf"
	csrfHeader         = "X-CSRF-Token"
)

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (p *Pages) csrfCookieName() string {
	if p.secure {
		return csrfCookie
	}
	return insecureCSRFCookie
}

// csrfToken returns the browser's CSRF token, setting a new cookie when it
// has none.
func (p *Pages) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.csrfCookieName()); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	v := randomToken()
	http.SetCookie(w, &http.Cookie{Name: p.csrfCookieName(), Value: v, Path: "/", HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteLaxMode})
	return v
}

// checkCSRF reports whether a state-changing request came from one of our
// own pages.
func (p *Pages) checkCSRF(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" && !p.sameOrigin(r, o) {
		return false
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	c, err := r.Cookie(p.csrfCookieName())
	if err != nil || len(c.Value) != 43 {
		return false
	}
	sent := r.PostFormValue(csrfField)
	if sent == "" {
		sent = r.Header.Get(csrfHeader)
	}
	return subtle.ConstantTimeCompare([]byte(sent), []byte(c.Value)) == 1
}

// sameOrigin reports whether origin (scheme://host[:port]) is the public
// URL's, or the origin the request itself was sent to.
func (p *Pages) sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Scheme, p.public.Scheme) && strings.EqualFold(u.Host, p.public.Host) {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// safeReturn answers where a sign-in may send the browser back to: a path
// on this server, an absolute URL of this origin, or one under a prefix of
// GATEHOUSE_OAUTH_REDIRECT_ALLOWLIST; "" for anything else (an open
// redirect would let a phishing link borrow our name).
func (p *Pages) safeReturn(r *http.Request, raw string) string {
	if raw == "" || len(raw) > 2048 || strings.ContainsAny(raw, "\\\r\n\t ") {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return ""
	}
	if u.Scheme == "" && u.Host == "" {
		if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
			return ""
		}
		return u.String()
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return ""
	}
	if p.sameOrigin(r, u.Scheme+"://"+u.Host) {
		return u.String()
	}
	if strings.Contains(u.Path, "..") || u.Fragment != "" {
		return ""
	}
	for _, a := range p.allow {
		if u.Scheme != a.Scheme || !strings.EqualFold(u.Host, a.Host) {
			continue
		}
		if ap := a.Path; ap == "" || strings.HasSuffix(ap, "/") && strings.HasPrefix(u.Path, ap) ||
			u.Path == ap || strings.HasPrefix(u.Path, ap+"/") {
			return u.String()
		}
	}
	return ""
}

// LoginURL is where to send a browser that must sign in before it goes on
// to returnTo (a path of this server, an absolute URL of its origin, or an
// allow-listed one): /login?return_to=..., which comes back to returnTo
// once signed in, after any MFA or confirmation step.
func LoginURL(returnTo string) string {
	if returnTo == "" {
		return "/login"
	}
	return "/login?" + url.Values{"return_to": {returnTo}}.Encode()
}
