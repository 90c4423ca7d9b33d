package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/gatehouse-auth/gatehouse"
)

// The emailed-link pages. Opening one spends nothing: its token is posted
// only when the person presses its button, so mail scanners that open
// links cannot use them up (or finish somebody's sign-in).

// ConfirmSignInPath is the page the step-up confirmation email links to.
const ConfirmSignInPath = "/confirm-sign-in"

// ConfirmEmailPath is the page the link confirming a new email address
// opens.
const ConfirmEmailPath = "/confirm-email"

// tokenData is an emailed-link page's data.
type tokenData struct {
	Token string
	Email string
	Done  bool
}

func (p *Pages) registerLinks(h registerFn) {
	h("GET /register", p.registerPage)
	h("POST /register", p.register)
	h("GET /verify-email", p.tokenPage("verify-email", "Verify your email"))
	h("POST /verify-email", p.verifyEmail)
	h("POST /verify-email/resend", p.resendVerification)
	h("GET /forgot-password", p.forgotPage)
	h("POST /forgot-password", p.forgot)
	h("GET /reset-password", p.tokenPage("reset-password", "Choose a new password"))
	h("POST /reset-password", p.resetPassword)
	h("GET /magic-link", p.tokenPage("magic-link", "Sign in with your email link"))
	h("POST /magic-link", p.magicLink)
	h("GET "+ConfirmSignInPath, p.tokenPage("confirm-sign-in", "Confirm sign-in"))
	h("POST "+ConfirmSignInPath, p.confirmSignIn)
	h("GET "+ConfirmEmailPath, p.tokenPage("confirm-email", "Confirm your new email address"))
	h("POST "+ConfirmEmailPath, p.confirmEmail)
}

func (p *Pages) tokenPage(name, title string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		v := view{Title: title, Data: tokenData{Token: tok}}
		if tok == "" || len(tok) > 256 {
			v.Error = "This link has no token. Open the link from the email again."
			p.render(w, r, http.StatusBadRequest, name, v)
			return
		}
		p.render(w, r, http.StatusOK, name, v)
	}
}

// limitEmail applies the EMAIL limit to the address a form names.
func (p *Pages) limitEmail(r *http.Request, email string) error {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		return nil //nolint:nilerr // the service rejects it in words
	}
	sum := sha256.Sum256([]byte(addr))
	return p.limit(r.Context(), "email", "to:"+hex.EncodeToString(sum[:16]), p.d.Limits.Email)
}

func (p *Pages) registerPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "register", view{Title: "Create your account", Data: registerData{}})
}

type registerData struct{ Email, Name string }

func (p *Pages) register(w http.ResponseWriter, r *http.Request) {
	mk := func() view {
		return view{Title: "Create your account", Data: registerData{Email: r.PostFormValue("email"), Name: r.PostFormValue("name")}}
	}
	if !p.form(w, r, "register", mk) {
		return
	}
	v := mk()
	if err := p.limit(r.Context(), "register", p.ipKey(r), p.d.Limits.Register); err != nil {
		p.fail(w, r, "register", v, err)
		return
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		p.fail(w, r, "register", v, gatehouse.InvalidField("password2", "the two passwords differ"))
		return
	}
	email := r.PostFormValue("email")
	if _, err := p.d.Accounts.Register(r.Context(), email, pw, r.PostFormValue("name")); err != nil {
		p.fail(w, r, "register", v, err)
		return
	}
	p.render(w, r, http.StatusCreated, "sent", view{Title: "Check your email",
		Notice: "Your account is created. We emailed a link to " + email + ": open it to verify your address, then sign in."})
}

// verifyEmail spends a verification link.
func (p *Pages) verifyEmail(w http.ResponseWriter, r *http.Request) {
	p.mailboxProof(w, r, "verify-email", "Verify your email", "verified", p.d.Accounts.VerifyEmail,
		func(gatehouse.User) string { return "Thank you: your email address is verified. You can sign in now." })
}

// mailboxProof spends the token of an emailed link that proves a mailbox
// (verification, email change) with do. That proves the mailbox, not the
// password: it signs nobody in. A browser already signed in goes back to
// its account page with notice; any other sees the page done with the
// words of done.
func (p *Pages) mailboxProof(w http.ResponseWriter, r *http.Request, page, title, notice string,
	do func(ctx context.Context, token string) (gatehouse.User, error), done func(u gatehouse.User) string) {
	mk := func() view { return view{Title: title, Data: tokenData{Token: r.PostFormValue("token")}} }
	if !p.form(w, r, page, mk) {
		return
	}
	v := mk()
	if err := p.limit(r.Context(), "login", p.ipKey(r), p.d.Limits.Login); err != nil {
		p.fail(w, r, page, v, err)
		return
	}
	u, err := do(r.Context(), r.PostFormValue("token"))
	if err != nil {
		p.fail(w, r, page, v, err)
		return
	}
	if _, ok := p.sessions.session(r); ok {
		http.Redirect(w, r, "/account?notice="+notice, http.StatusSeeOther)
		return
	}
	v.Data = tokenData{Done: true, Email: string(u.Email)}
	v.Notice = done(u)
	p.render(w, r, http.StatusOK, page, v)
}

func (p *Pages) resendVerification(w http.ResponseWriter, r *http.Request) {
	mk := func() view { return view{Title: "Verify your email", Data: tokenData{}} }
	if !p.form(w, r, "verify-email", mk) {
		return
	}
	email := r.PostFormValue("email")
	if err := p.limitEmail(r, email); err != nil {
		p.fail(w, r, "verify-email", mk(), err)
		return
	}
	if err := p.d.Accounts.ResendVerification(r.Context(), email); err != nil {
		p.fail(w, r, "verify-email", mk(), err)
		return
	}
	p.render(w, r, http.StatusOK, "sent", view{Title: "Check your email",
		Notice: "If " + email + " has an account that is not verified yet, we emailed it a new link."})
}

func (p *Pages) forgotPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "forgot-password", view{Title: "Forgot your password?", Data: registerData{}})
}

func (p *Pages) forgot(w http.ResponseWriter, r *http.Request) {
	mk := func() view {
		return view{Title: "Forgot your password?", Data: registerData{Email: r.PostFormValue("email")}}
	}
	if !p.form(w, r, "forgot-password", mk) {
		return
	}
	email := r.PostFormValue("email")
	if _, err := gatehouse.ParseEmail(email); err != nil {
		p.fail(w, r, "forgot-password", mk(), gatehouse.InvalidField("email", "enter the email address of your account"))
		return
	}
	if err := p.limitEmail(r, email); err != nil {
		p.fail(w, r, "forgot-password", mk(), err)
		return
	}
	if err := p.d.Accounts.ForgotPassword(r.Context(), email); err != nil {
		p.fail(w, r, "forgot-password", mk(), err)
		return
	}
	p.render(w, r, http.StatusOK, "sent", view{Title: "Check your email",
		Notice: "If an account uses " + email + ", we emailed it a link to choose a new password. It works once, for a limited time."})
}

func (p *Pages) resetPassword(w http.ResponseWriter, r *http.Request) {
	mk := func() view {
		return view{Title: "Choose a new password", Data: tokenData{Token: r.PostFormValue("token")}}
	}
	if !p.form(w, r, "reset-password", mk) {
		return
	}
	v := mk()
	if err := p.limit(r.Context(), "login", p.ipKey(r), p.d.Limits.Login); err != nil {
		p.fail(w, r, "reset-password", v, err)
		return
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		p.fail(w, r, "reset-password", v, gatehouse.InvalidField("password2", "the two passwords differ"))
		return
	}
	if err := p.d.Accounts.ResetPassword(r.Context(), r.PostFormValue("token"), pw); err != nil {
		p.fail(w, r, "reset-password", v, err)
		return
	}
	// A reset ends every session, this browser's too: sign in anew with the
	// new password (and the second factor, which a reset does not skip).
	p.sessions.clear(w)
	lv := p.loginView(r, "", "")
	lv.Notice = "Your password is set, and every session was signed out. Sign in with your new password."
	p.render(w, r, http.StatusOK, "login", lv)
}

func (p *Pages) magicLink(w http.ResponseWriter, r *http.Request) {
	mk := func() view {
		return view{Title: "Sign in with your email link", Data: tokenData{Token: r.PostFormValue("token")}}
	}
	if !p.form(w, r, "magic-link", mk) {
		return
	}
	v := mk()
	if err := p.limit(r.Context(), "login", p.ipKey(r), p.d.Limits.Login); err != nil {
		p.fail(w, r, "magic-link", v, err)
		return
	}
	r = p.withDevice(w, r)
	res, err := p.d.SignIn.MagicLink(r.Context(), r.PostFormValue("token"), p.client(r))
	if err != nil {
		p.fail(w, r, "magic-link", v, err)
		return
	}
	p.signedIn(w, r, res, p.rememberedReturn(r))
}

// confirmSignIn marks a risky sign-in confirmed. Whoever clicked gets no
// session: the browser that signed in finishes its own sign-in.
func (p *Pages) confirmSignIn(w http.ResponseWriter, r *http.Request) {
	mk := func() view { return view{Title: "Confirm sign-in", Data: tokenData{Token: r.PostFormValue("token")}} }
	if !p.form(w, r, "confirm-sign-in", mk) {
		return
	}
	v := mk()
	if err := p.d.SignIn.ConfirmLink(r.Context(), r.PostFormValue("token")); err != nil {
		p.fail(w, r, "confirm-sign-in", v, err)
		return
	}
	v.Data = tokenData{Done: true}
	v.Notice = "The sign-in is confirmed. Go back to the browser or app where you were signing in and continue there. You can close this page."
	p.render(w, r, http.StatusOK, "confirm-sign-in", v)
}

// confirmEmail makes the link's address the account's email.
func (p *Pages) confirmEmail(w http.ResponseWriter, r *http.Request) {
	p.mailboxProof(w, r, "confirm-email", "Confirm your new email address", "email-changed", p.d.Accounts.ConfirmEmailChange,
		func(u gatehouse.User) string {
			return "Your email address is now " + string(u.Email) + ". Use it to sign in."
		})
}
