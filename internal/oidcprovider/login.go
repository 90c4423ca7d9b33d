package oidcprovider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// continueHandler runs the browser part of an authorization request, which
// the library sends to /oauth2/continue?id=...: sign in through /login
// (again, for prompt=login or an exceeded max_age), consent for a
// third-party client, then the code goes to the client's redirect URI.
// Every step comes back here until the request is done.
func (p *Provider) continueHandler(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	req, ok := p.pending(ctx, w, r, id)
	if !ok {
		return
	}
	ar := &authRequest{req}
	cl, err := p.client(ctx, req.ClientID)
	if err != nil {
		p.page(w, http.StatusBadRequest, "This application is no longer registered.")
		return
	}
	b, signedIn := p.browser.Current(r)
	none := slices.Contains(req.Prompt, oidc.PromptNone)
	here := continuePath + "?" + url.Values{"id": {id}}.Encode()
	if !signedIn {
		if none {
			op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired(), p.op)
			return
		}
		http.Redirect(w, r, loginURL(here, false, req.LoginHint), http.StatusSeeOther)
		return
	}
	// A fresh sign-in is due for prompt=login (max_age 0) or an old one.
	fresh := req.LoginAt != nil && !b.AuthTime.Before(*req.LoginAt)
	tooOld := req.MaxAge != nil && (*req.MaxAge == 0 || p.clock().Sub(b.AuthTime) > time.Duration(*req.MaxAge)*time.Second) ||
		slices.Contains(req.Prompt, oidc.PromptLogin)
	if tooOld && !fresh {
		if none {
			op.AuthRequestError(w, r, ar, oidc.ErrLoginRequired(), p.op)
			return
		}
		if req.LoginAt == nil {
			err := p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				return tx.SetAuthRequestLogin(ctx, req.ID, p.now())
			})
			if err != nil {
				p.fail(w, r, err)
				return
			}
		}
		http.Redirect(w, r, loginURL(here, true, req.LoginHint), http.StatusSeeOther)
		return
	}
	if !cl.FirstParty {
		con, err := p.store.GetConsent(ctx, b.UserID, cl.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			p.fail(w, r, err)
			return
		}
		covered := err == nil && !slices.ContainsFunc(req.Scopes, func(s string) bool { return !slices.Contains(con.Scopes, s) })
		asked := slices.Contains(req.Prompt, oidc.PromptConsent) && (err != nil || con.UpdatedAt.Before(req.CreatedAt))
		if !covered || asked {
			if none {
				op.AuthRequestError(w, r, ar, &oidc.Error{ErrorType: "consent_required", Description: "the user has not consented to this client"}, p.op)
				return
			}
			http.Redirect(w, r, consentPath+"?"+url.Values{"id": {id}}.Encode(), http.StatusSeeOther)
			return
		}
	}
	authTime := b.AuthTime.UTC()
	req.UserID, req.SessionID, req.AuthTime, req.AMR = b.UserID, b.SessionID, &authTime, b.AMR
	err = p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CompleteAuthRequest(ctx, req); err != nil {
			return err
		}
		return p.emit(ctx, tx, gatehouse.EventClientAuthorized, b.UserID, map[string]any{
			"client_id": cl.ID, "session_id": b.SessionID, "scope": req.Scopes})
	})
	if errors.Is(err, store.ErrNotFound) {
		p.page(w, http.StatusBadRequest, "This sign-in request was already used. Go back to the application and start again.")
		return
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if r.Header.Get("Sec-Fetch-Mode") != "navigate" {
		op.AuthResponse(&authRequest{req}, p.op, w, r)
		return
	}
	// A browser may have come here through a form's redirects (the
	// sign-in page's), which it holds to that page's form-action: it goes
	// on to the client from a page of its own instead.
	rec := httptest.NewRecorder()
	op.AuthResponse(&authRequest{req}, p.op, rec, r)
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusFound && rec.Code != http.StatusSeeOther || loc == "" {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	p.render(w, http.StatusOK, consentData{Next: loc})
}

// loginURL is the hosted sign-in page, coming back to returnTo; again asks
// for a fresh sign-in even when the browser is signed in.
func loginURL(returnTo string, again bool, hint string) string {
	q := url.Values{"return_to": {returnTo}}
	if again {
		q.Set(promptLoginParam, "login")
	}
	if hint != "" {
		q.Set("login_hint", hint)
	}
	return loginPath + "?" + q.Encode()
}

// pending loads a live request that has no code yet; otherwise it answers
// with a page and false.
func (p *Provider) pending(ctx context.Context, w http.ResponseWriter, r *http.Request, id string) (gatehouse.AuthRequest, bool) {
	if id == "" || len(id) > 64 {
		p.page(w, http.StatusBadRequest, "This sign-in link is incomplete. Go back to the application and start again.")
		return gatehouse.AuthRequest{}, false
	}
	req, err := p.store.GetAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!p.clock().Before(req.ExpiresAt) || req.CodeHash != nil)) {
		p.page(w, http.StatusBadRequest, "This sign-in request has expired or was already used. Go back to the application and start again.")
		return gatehouse.AuthRequest{}, false
	}
	if err != nil {
		p.fail(w, r, err)
		return gatehouse.AuthRequest{}, false
	}
	return req, true
}

func (p *Provider) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.log.ErrorContext(r.Context(), "oidc authorize", "err", err)
	w.Header().Set("Retry-After", "5")
	p.page(w, http.StatusServiceUnavailable, "Something went wrong on our side. Try again in a moment.")
}

// csrf is the consent form's token: bound to the request and to the
// browser session, so it is useless on any other browser.
func (p *Provider) csrf(reqID, sessionID string) string {
	m := hmac.New(sha256.New, p.csrfKey)
	m.Write([]byte(reqID + "\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

type consentData struct {
	Next    string // where a browser goes on to, by itself
	Message string
	// Return is the origin the form's answer redirects to (the client's
	// redirect URI's): browsers hold a form's redirects to form-action.
	Return   string
	Client   string
	Scopes   []string
	ID, CSRF string
}

var scopeText = map[string]string{
	ScopeOpenID:        "Know who you are (your account id)",
	ScopeProfile:       "See your name",
	ScopeEmail:         "See your email address",
	ScopeOfflineAccess: "Stay signed in when you are away",
}

func (p *Provider) consentPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	req, ok := p.pending(ctx, w, r, id)
	if !ok {
		return
	}
	b, signedIn := p.browser.Current(r)
	if !signedIn {
		http.Redirect(w, r, continuePath+"?"+url.Values{"id": {id}}.Encode(), http.StatusSeeOther)
		return
	}
	cl, err := p.client(ctx, req.ClientID)
	if err != nil {
		p.page(w, http.StatusBadRequest, "This application is no longer registered.")
		return
	}
	d := consentData{Client: cl.Name, ID: id, CSRF: p.csrf(id, b.SessionID), Return: cspOrigin(req.RedirectURI)}
	for _, s := range req.Scopes {
		if t, ok := scopeText[s]; ok {
			d.Scopes = append(d.Scopes, t)
		} else {
			d.Scopes = append(d.Scopes, "Permission: "+s)
		}
	}
	p.render(w, http.StatusOK, d)
}

func (p *Provider) consentSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		p.page(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	id := r.PostFormValue("id")
	req, ok := p.pending(ctx, w, r, id)
	if !ok {
		return
	}
	b, signedIn := p.browser.Current(r)
	if !signedIn || !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(p.csrf(id, b.SessionID))) {
		p.page(w, http.StatusForbidden, "This form has expired. Go back to the application and start again.")
		return
	}
	if r.PostFormValue("decision") != "allow" {
		op.AuthRequestError(w, r, &authRequest{req}, oidc.ErrAccessDenied().WithDescription("the user denied the request"), p.op)
		return
	}
	err := p.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		now := p.now()
		con := gatehouse.Consent{UserID: b.UserID, ClientID: req.ClientID, Scopes: req.Scopes, CreatedAt: now, UpdatedAt: now}
		if old, err := tx.GetConsent(ctx, b.UserID, req.ClientID); err == nil {
			for _, s := range old.Scopes {
				if !slices.Contains(con.Scopes, s) {
					con.Scopes = append(con.Scopes, s)
				}
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return tx.PutConsent(ctx, con)
	})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, continuePath+"?"+url.Values{"id": {id}}.Encode(), http.StatusSeeOther)
}

func (p *Provider) page(w http.ResponseWriter, status int, msg string) {
	p.render(w, status, consentData{Message: msg})
}

func (p *Provider) render(w http.ResponseWriter, status int, d consentData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"+d.Return+"; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = consentTmpl.Execute(w, d)
}

// cspOrigin is " <source>" of a redirect URI for form-action: its
// scheme://host[:port], or its private scheme ("com.example.app:").
func cspOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || strings.ContainsAny(raw, " ;,'") {
		return ""
	}
	if u.Host == "" {
		return " " + u.Scheme + ":"
	}
	return " " + u.Scheme + "://" + u.Host
}

var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Next}}<meta http-equiv="refresh" content="0;url={{.Next}}">{{end}}
<title>{{if .Next}}Signing you in{{else if .Message}}Sign in{{else}}Allow {{.Client}}?{{end}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}
ul{padding-left:1.2rem}button{font:inherit;padding:.5rem 1rem;margin-right:.5rem;border-radius:.3rem;border:1px solid #555;cursor:pointer}
button.primary{background:#1a56db;color:#fff;border-color:#1a56db}</style></head><body>
{{if .Next}}<h1>Signing you in</h1><p><a href="{{.Next}}">Continue to the application</a></p>{{else if .Message}}<h1>Sign in</h1><p role="alert">{{.Message}}</p>{{else}}
<h1>Allow {{.Client}}?</h1>
<p><strong>{{.Client}}</strong> asks to:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<p>You can take this back at any time from your account.</p>
<form method="post" action="/oauth2/consent">
<input type="hidden" name="id" value="{{.ID}}"><input type="hidden" name="csrf" value="{{.CSRF}}">
<button class="primary" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>{{end}}
</body></html>`))
