package web

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/fingerprint"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
)

// returnCookie carries return_to across a flow that leaves the browser's
// tab (an emailed magic link opened on the same browser, a social login),
// for 15 minutes.
const returnCookie = "gh_return"

// socialCookie marks a browser that started a social login from these
// pages: only such a browser finishes one, so a link carrying somebody
// else's one-time code cannot sign a visitor in to the wrong account.
const socialCookie = "gh_social"

// loginData is the sign-in page's data.
type loginData struct {
	Email     string
	ReturnTo  string
	Providers []string
	Passkeys  bool
	APIBase   string
}

// mfaData is the MFA step's data.
type mfaData struct {
	ChallengeID string
	Methods     []string
	ReturnTo    string
}

type registerFn func(pattern string, f http.HandlerFunc)

func (p *Pages) registerSignIn(h registerFn) {
	h("GET /login", p.loginPage)
	h("POST /login", p.loginPassword)
	h("POST /login/mfa", p.loginMFA)
	h("POST /login/mfa/send", p.loginMFASend)
	h("POST /login/confirmed", p.loginConfirmed)
	h("POST /login/magic-link", p.loginMagicLink)
	h("POST /login/passkey/begin", p.passkeyBegin)
	h("POST /login/passkey", p.loginPasskey)
	h("GET /login/social/{provider}", p.socialStart)
	h("GET /login/social-done", p.socialDone)
	h("POST /logout", p.logout)
	h("GET /logout", p.logoutPage)
}

func (p *Pages) ipKey(r *http.Request) string {
	ip, _ := netip.ParseAddr(p.d.ClientIP(r.Context()))
	if n := risk.ClientNetwork(ip); n != "" {
		return "ip:" + n
	}
	return "ip:unknown"
}

func (p *Pages) loginView(r *http.Request, email, returnTo string) view {
	d := loginData{Email: email, ReturnTo: returnTo, Passkeys: p.d.Passkeys != nil, APIBase: p.d.APIBase}
	if p.d.OAuth != nil {
		d.Providers = p.d.OAuth.Providers()
	}
	return view{Title: "Sign in", Data: d}
}

func (p *Pages) loginPage(w http.ResponseWriter, r *http.Request) {
	returnTo := p.safeReturn(r, r.URL.Query().Get("return_to"))
	// prompt=login is the OpenID Provider asking for a fresh sign-in
	// (prompt=login, max_age): show the form even to a signed-in browser.
	if _, ok := p.sessions.session(r); ok && r.URL.Query().Get("prompt") != "login" {
		http.Redirect(w, r, orDefault(returnTo, "/account"), http.StatusSeeOther)
		return
	}
	v := p.loginView(r, "", returnTo)
	if r.URL.Query().Get("return_to") != "" && returnTo == "" {
		v.Error = "The page that sent you here asked to return to an address this server does not allow; you will go to your account instead."
	}
	if r.URL.Query().Get("signed_out") != "" {
		v.Notice = "You are signed out."
	}
	p.render(w, r, http.StatusOK, "login", v)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// form parses a posted form and checks its CSRF token; false means it
// answered already.
func (p *Pages) form(w http.ResponseWriter, r *http.Request, page string, mk func() view) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, page, mk(), gatehouse.Errorf(gatehouse.CodeBadRequest, "the form could not be read"))
		return false
	}
	if !p.checkCSRF(r) {
		p.fail(w, r, page, mk(), errCSRF)
		return false
	}
	return true
}

// withDevice passes the browser's device cookie to a sign-in, minting one
// for a browser that has none (see fingerprint.NewCookie), as the API's
// sign-in routes do.
func (p *Pages) withDevice(w http.ResponseWriter, r *http.Request) *http.Request {
	v := ""
	if c, err := r.Cookie(fingerprint.CookieName); err == nil && fingerprint.ValidCookie(c.Value) {
		v = c.Value
	}
	if v == "" {
		v = fingerprint.NewCookie()
		http.SetCookie(w, &http.Cookie{Name: fingerprint.CookieName, Value: v, Path: "/", MaxAge: fingerprint.CookieMaxAge,
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	return r.WithContext(fingerprint.WithCookie(r.Context(), v))
}

func (p *Pages) loginPassword(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "login", func() view { return p.loginView(r, r.PostFormValue("email"), "") }) {
		return
	}
	email := r.PostFormValue("email")
	returnTo := p.safeReturn(r, r.PostFormValue("return_to"))
	v := p.loginView(r, email, returnTo)
	if err := p.limit(r.Context(), "login", p.ipKey(r), p.d.Limits.Login); err != nil {
		p.fail(w, r, "login", v, err)
		return
	}
	if strings.TrimSpace(email) == "" || r.PostFormValue("password") == "" {
		p.fail(w, r, "login", v, gatehouse.InvalidField("email", "enter your email and password"))
		return
	}
	r = p.withDevice(w, r)
	res, err := p.d.SignIn.Password(r.Context(), email, r.PostFormValue("password"), p.client(r))
	if err != nil {
		p.fail(w, r, "login", v, err)
		return
	}
	p.signedIn(w, r, res, returnTo)
}

// signedIn finishes a sign-in step: a held one shows its next step (an MFA
// code, or the wait for an emailed confirmation), a completed one sets the
// browser session and goes to returnTo (default the account page).
func (p *Pages) signedIn(w http.ResponseWriter, r *http.Request, res gatehouse.SignInResult, returnTo string) {
	if ch := res.Challenge; ch != nil {
		d := mfaData{ChallengeID: ch.ID, Methods: ch.Methods, ReturnTo: returnTo}
		if slices.Equal(ch.Methods, []string{"email_confirmation"}) {
			p.render(w, r, http.StatusOK, "confirm-wait", view{Title: "Confirm it is you", Data: d})
			return
		}
		p.render(w, r, http.StatusOK, "mfa", view{Title: "Two-step verification", Data: d})
		return
	}
	p.sessions.start(w, res)
	http.SetCookie(w, &http.Cookie{Name: returnCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, orDefault(returnTo, "/account"), http.StatusSeeOther)
}

func (p *Pages) mfaView(r *http.Request) view {
	methods := r.PostForm["methods"]
	return view{Title: "Two-step verification", Data: mfaData{ChallengeID: r.PostFormValue("challenge_id"), Methods: methods,
		ReturnTo: p.safeReturn(r, r.PostFormValue("return_to"))}}
}

func (p *Pages) loginMFA(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "mfa", func() view { return p.mfaView(r) }) {
		return
	}
	v := p.mfaView(r)
	if err := p.limit(r.Context(), "mfa", p.ipKey(r), p.d.Limits.MFA); err != nil {
		p.fail(w, r, "mfa", v, err)
		return
	}
	method := r.PostFormValue("method")
	code := strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("code")), " ", "")
	if code == "" {
		p.fail(w, r, "mfa", v, gatehouse.InvalidField("code", "enter the code"))
		return
	}
	if method == "" && len(code) > 8 {
		method = "backup_code"
	}
	res, err := p.d.SignIn.MFA(r.Context(), r.PostFormValue("challenge_id"), method, code)
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.CodeInvalidToken {
			lv := p.loginView(r, "", v.Data.(mfaData).ReturnTo)
			p.fail(w, r, "login", lv, gatehouse.Errorf(gatehouse.CodeInvalidToken,
				"this sign-in expired or had too many wrong codes; sign in again"))
			return
		}
		p.fail(w, r, "mfa", v, err)
		return
	}
	p.signedIn(w, r, res, v.Data.(mfaData).ReturnTo)
}

func (p *Pages) loginMFASend(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "mfa", func() view { return p.mfaView(r) }) {
		return
	}
	v := p.mfaView(r)
	if err := p.limit(r.Context(), "mfa", p.ipKey(r), p.d.Limits.MFA); err != nil {
		p.fail(w, r, "mfa", v, err)
		return
	}
	if err := p.d.MFA.Send(r.Context(), r.PostFormValue("challenge_id"), "sms"); err != nil {
		p.fail(w, r, "mfa", v, err)
		return
	}
	v.Notice = "We sent a code by text message to your phone."
	p.render(w, r, http.StatusOK, "mfa", v)
}

func (p *Pages) loginConfirmed(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "confirm-wait", func() view { return p.mfaView(r) }) {
		return
	}
	v := p.mfaView(r)
	v.Title = "Confirm it is you"
	res, err := p.d.SignIn.Confirmed(r.Context(), r.PostFormValue("challenge_id"))
	if err != nil {
		p.fail(w, r, "confirm-wait", v, err)
		return
	}
	if res.Challenge != nil {
		v.Error = "The sign-in is not confirmed yet. Open the link in the email we sent you, then press Continue again."
		p.render(w, r, http.StatusConflict, "confirm-wait", v)
		return
	}
	p.signedIn(w, r, res, v.Data.(mfaData).ReturnTo)
}

func (p *Pages) loginMagicLink(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "login", func() view { return p.loginView(r, r.PostFormValue("email"), "") }) {
		return
	}
	email := r.PostFormValue("email")
	returnTo := p.safeReturn(r, r.PostFormValue("return_to"))
	v := p.loginView(r, email, returnTo)
	if _, err := gatehouse.ParseEmail(email); err != nil {
		p.fail(w, r, "login", v, gatehouse.InvalidField("email", "enter the email address of your account to get a sign-in link"))
		return
	}
	if err := p.limitEmail(r, email); err != nil {
		p.fail(w, r, "login", v, err)
		return
	}
	if err := p.d.MagicLinks.Request(r.Context(), email); err != nil {
		p.fail(w, r, "login", v, err)
		return
	}
	p.rememberReturn(w, returnTo)
	p.render(w, r, http.StatusOK, "sent", view{Title: "Check your email",
		Notice: "If an account uses " + email + ", we emailed it a sign-in link. It works once, for 15 minutes."})
}

// rememberReturn keeps returnTo for a flow that continues from an email or
// another site on this browser.
func (p *Pages) rememberReturn(w http.ResponseWriter, returnTo string) {
	if returnTo == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: returnCookie, Value: url.QueryEscape(returnTo), Path: "/", MaxAge: 15 * 60,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
}

func (p *Pages) rememberedReturn(r *http.Request) string {
	c, err := r.Cookie(returnCookie)
	if err != nil {
		return ""
	}
	v, err := url.QueryUnescape(c.Value)
	if err != nil {
		return ""
	}
	return p.safeReturn(r, v)
}

// passkeyBegin answers the options of a passkey sign-in to the page's
// script, as JSON.
func (p *Pages) passkeyBegin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil || !p.checkCSRF(r) {
		fail(http.StatusForbidden, "This page expired; reload it and try again.")
		return
	}
	if p.d.Passkeys == nil {
		fail(http.StatusNotFound, "Passkeys are not available here.")
		return
	}
	if err := p.limit(r.Context(), "login", p.ipKey(r), p.d.Limits.Login); err != nil {
		fail(http.StatusTooManyRequests, p.explain(r.Context(), err).msg)
		return
	}
	id, opts, err := p.d.Passkeys.BeginLogin(r.Context(), r.PostFormValue("email"))
	if err != nil {
		pe := p.explain(r.Context(), err)
		fail(pe.status, pe.msg)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"challenge_id": id, "options": opts})
}

func (p *Pages) loginPasskey(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "login", func() view { return p.loginView(r, "", "") }) {
		return
	}
	returnTo := p.safeReturn(r, r.PostFormValue("return_to"))
	v := p.loginView(r, "", returnTo)
	if err := p.limit(r.Context(), "login", p.ipKey(r), p.d.Limits.Login); err != nil {
		p.fail(w, r, "login", v, err)
		return
	}
	cred := r.PostFormValue("credential")
	if !json.Valid([]byte(cred)) {
		p.fail(w, r, "login", v, gatehouse.InvalidField("credential", "the passkey answer could not be read; try again"))
		return
	}
	r = p.withDevice(w, r)
	res, err := p.d.SignIn.Passkey(r.Context(), r.PostFormValue("challenge_id"), json.RawMessage(cred), p.client(r))
	if err != nil {
		p.fail(w, r, "login", v, err)
		return
	}
	p.signedIn(w, r, res, returnTo)
}

// socialStart sends the browser to the API's social-login start, which
// comes back to /login/social-done with a one-time code.
func (p *Pages) socialStart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	if p.d.OAuth == nil || !slices.Contains(p.d.OAuth.Providers(), name) {
		p.fail(w, r, "login", p.loginView(r, "", ""), gatehouse.Errorf(gatehouse.CodeNotFound, "no such sign-in provider"))
		return
	}
	p.rememberReturn(w, p.safeReturn(r, r.URL.Query().Get("return_to")))
	http.SetCookie(w, &http.Cookie{Name: socialCookie, Value: "1", Path: "/", MaxAge: 15 * 60, HttpOnly: true,
		Secure: p.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, p.d.APIBase+"/oauth/"+url.PathEscape(name)+"/authorize?"+
		url.Values{"redirect_uri": {p.SocialDoneURL()}}.Encode(), http.StatusSeeOther)
}

// SocialDoneURL is where social logins started from the pages come back
// to; the app adds it to the OAuth redirect allow-list.
func (p *Pages) SocialDoneURL() string { return SocialDoneURL(p.public.String()) }

// SocialDoneURL is the pages' social-login return address under publicURL.
func SocialDoneURL(publicURL string) string {
	return strings.TrimRight(publicURL, "/") + "/login/social-done"
}

func (p *Pages) socialDone(w http.ResponseWriter, r *http.Request) {
	returnTo := p.rememberedReturn(r)
	v := p.loginView(r, "", returnTo)
	if _, err := r.Cookie(socialCookie); err != nil {
		p.fail(w, r, "login", v, gatehouse.Errorf(gatehouse.CodeInvalidToken, "start the social sign-in from this page"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: socialCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	if e := r.URL.Query().Get("error"); e != "" {
		p.fail(w, r, "login", v, gatehouse.Errorf(gatehouse.CodeAccessDenied, "the provider did not sign you in"))
		return
	}
	if err := p.limit(r.Context(), "login", p.ipKey(r), p.d.Limits.Login); err != nil {
		p.fail(w, r, "login", v, err)
		return
	}
	r = p.withDevice(w, r)
	res, err := p.d.SignIn.OAuthExchange(r.Context(), r.URL.Query().Get("code"), p.client(r))
	if err != nil {
		p.fail(w, r, "login", v, err)
		return
	}
	p.signedIn(w, r, res, returnTo)
}

func (p *Pages) logout(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "logout", func() view { return view{Title: "Sign out"} }) {
		return
	}
	if sess, ok := p.sessions.session(r); ok {
		if err := p.d.Accounts.Logout(r.Context(), sess.UserID, sess.ID); err != nil && gatehouse.ErrorCode(err) != gatehouse.CodeNotFound {
			p.fail(w, r, "logout", view{Title: "Sign out"}, err)
			return
		}
	}
	p.sessions.clear(w)
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

// logoutPage asks before signing out: a GET never signs anybody out.
func (p *Pages) logoutPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "logout", view{Title: "Sign out"})
}
