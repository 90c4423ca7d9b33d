package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/account"
)

// signedIn is the browser's session and user on a page that needs one.
type signedIn struct {
	sess gatehouse.Session
	user gatehouse.User
}

// requireUser answers the signed-in user, or sends the browser to sign in
// and come back (GET), or refuses (other methods).
func (p *Pages) requireUser(w http.ResponseWriter, r *http.Request) (signedIn, bool) {
	sess, ok := p.sessions.session(r)
	if ok {
		u, err := p.d.Accounts.GetUser(r.Context(), sess.UserID)
		if err == nil {
			return signedIn{sess: sess, user: u}, true
		}
		if gatehouse.ErrorCode(err) != gatehouse.CodeNotFound {
			p.fail(w, r, "sent", view{Title: "Something went wrong"}, err)
			return signedIn{}, false
		}
	}
	p.sessions.clear(w)
	if r.Method == http.MethodGet {
		http.Redirect(w, r, LoginURL(r.URL.RequestURI()), http.StatusSeeOther)
		return signedIn{}, false
	}
	v := p.loginView(r, "", "")
	v.Error = "You are signed out. Sign in again."
	p.render(w, r, http.StatusUnauthorized, "login", v)
	return signedIn{}, false
}

// me is the view of a signed-in page.
func (p *Pages) me(r *http.Request, si signedIn, title string) view {
	u := si.user
	v := view{Title: title, Me: &u}
	v.Admin = p.isAdmin(r, u.ID)
	return v
}

// accountData is the account page's data.
type accountData struct {
	Sessions         []gatehouse.Session
	Current          string
	Devices          []gatehouse.Device
	Passkeys         []gatehouse.WebAuthnCredential
	PasskeysOn       bool
	Linked           []gatehouse.OAuthAccount
	Providers        []string
	BackupRemaining  int
	MFAOn            bool
	Prefs            []prefRow
	SMSPending       bool
	SMSPhone         string
	NotificationsOff bool
}

// prefRow is one alert type's channels on the account page.
type prefRow struct {
	Type, Label string
	Email, Live bool
}

var alertLabels = map[string]string{
	gatehouse.NotifyNewDeviceLogin:  "Sign-in from a new device",
	gatehouse.NotifyPasswordChanged: "Password changed",
	gatehouse.NotifyMFAChanged:      "Two-step verification changed",
	gatehouse.NotifySessionRevoked:  "Session signed out",
	gatehouse.NotifySecurityAlert:   "Unusual activity",
}

// notices are the messages an action's redirect may show, by key (the
// query names a key, never the text, so a link cannot put words in our
// mouth).
var notices = map[string]string{
	"profile":         "Your profile is saved.",
	"password":        "Your password is changed. Your other sessions were signed out.",
	"mfa-off":         "Two-step verification by that method is turned off.",
	"session":         "The session is signed out.",
	"device-trust":    "The device is updated.",
	"device-remove":   "The device is removed and its sessions are signed out.",
	"passkey":         "Your passkey is saved.",
	"passkey-del":     "The passkey is deleted.",
	"unlinked":        "The account is unlinked.",
	"prefs":           "Your notification preferences are saved.",
	"verified":        "Your email address is verified.",
	"email-sent":      "We emailed a link to the new address. Your email changes when you open it; until then, keep using the current one.",
	"email-changed":   "Your email address is changed.",
	"linked":          "The account is linked.",
	"role":            "Saved.",
	"locked":          "The account is locked.",
	"unlocked":        "The account is unlocked.",
	"role-deleted":    "The role is deleted.",
	"webhook":         "The webhook is updated.",
	"webhook-deleted": "The webhook is deleted.",
	"retried":         "The delivery is queued to be sent again.",
}

func (p *Pages) registerAccount(h registerFn) {
	h("GET /account", p.accountPage)
	h("POST /account/profile", p.accountAction("profile", p.saveProfile))
	h("POST /account/email", p.accountAction("email-sent", p.changeEmail))
	h("POST /account/notifications", p.accountAction("prefs", p.savePrefs))
	h("POST /account/password", p.accountAction("password", p.changePassword))
	h("POST /account/sessions/{id}/revoke", p.accountAction("session", p.revokeSession))
	h("POST /account/devices/{id}/trust", p.accountAction("device-trust", p.trustDevice))
	h("POST /account/devices/{id}/remove", p.accountAction("device-remove", p.removeDevice))
	h("POST /account/passkeys/{id}/rename", p.accountAction("passkey", p.renamePasskey))
	h("POST /account/passkeys/{id}/delete", p.accountAction("passkey-del", p.deletePasskey))
	h("POST /account/passkeys/begin", p.passkeyAddBegin)
	h("POST /account/passkeys", p.accountAction("passkey", p.addPasskey))
	h("POST /account/linked/{id}/unlink", p.accountAction("unlinked", p.unlink))
	h("GET /account/link/{provider}", p.link)
	h("POST /account/mfa/totp", p.mfaSetup("totp"))
	h("POST /account/mfa/sms", p.mfaSetup("sms"))
	h("POST /account/mfa/activate", p.mfaActivate)
	h("POST /account/mfa/disable", p.accountAction("mfa-off", p.mfaDisable))
	h("POST /account/mfa/backup-codes", p.backupCodes)
	h("POST /account/delete", p.deleteAccount)
}

func (p *Pages) accountView(r *http.Request, si signedIn) view {
	ctx := r.Context()
	v := p.me(r, si, "Your account")
	d := accountData{Current: si.sess.ID, MFAOn: si.user.MFAEnabled, PasskeysOn: p.d.Passkeys != nil}
	if p.d.Sessions != nil {
		d.Sessions, _ = p.d.Sessions.List(ctx, si.user.ID)
	}
	if p.d.Devices != nil {
		d.Devices, _ = p.d.Devices.List(ctx, si.user.ID)
	}
	if p.d.Passkeys != nil {
		d.Passkeys, _ = p.d.Passkeys.List(ctx, si.user.ID)
	}
	if p.d.OAuth != nil {
		d.Linked, _ = p.d.OAuth.List(ctx, si.user.ID)
		d.Providers = p.d.OAuth.Providers()
	}
	if p.d.MFA != nil && si.user.MFAEnabled {
		d.BackupRemaining, _ = p.d.MFA.RemainingBackupCodes(ctx, si.user.ID)
	}
	for _, t := range gatehouse.NotificationTypes {
		d.Prefs = append(d.Prefs, prefRow{Type: t, Label: alertLabels[t],
			Email: gatehouse.WantsNotification(si.user.NotificationPreferences, t, gatehouse.ChannelEmail),
			Live:  gatehouse.WantsNotification(si.user.NotificationPreferences, t, gatehouse.ChannelWebSocket)})
	}
	v.Data = d
	return v
}

func (p *Pages) accountPage(w http.ResponseWriter, r *http.Request) {
	si, ok := p.requireUser(w, r)
	if !ok {
		return
	}
	v := p.accountView(r, si)
	v.Notice = notices[r.URL.Query().Get("notice")]
	p.render(w, r, http.StatusOK, "account", v)
}

// accountAction runs a signed-in form post, then goes back to the account
// page with its notice, or shows the page with the error in words.
func (p *Pages) accountAction(notice string, do func(r *http.Request, si signedIn) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		si, ok := p.postSignedIn(w, r)
		if !ok {
			return
		}
		if err := do(r, si); err != nil {
			if gatehouse.ErrorCode(err) == gatehouse.CodeUnauthorized {
				p.sessions.clear(w)
				http.Redirect(w, r, LoginURL("/account"), http.StatusSeeOther)
				return
			}
			p.fail(w, r, "account", p.accountView(r, si), err)
			return
		}
		http.Redirect(w, r, "/account?notice="+notice, http.StatusSeeOther)
	}
}

// postSignedIn checks a signed-in form post: the form's CSRF token and the
// browser session.
func (p *Pages) postSignedIn(w http.ResponseWriter, r *http.Request) (signedIn, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil || !p.checkCSRF(r) {
		v := view{Title: "This form expired"}
		p.fail(w, r, "sent", v, errCSRF)
		return signedIn{}, false
	}
	return p.requireUser(w, r)
}

func (p *Pages) saveProfile(r *http.Request, si signedIn) error {
	name, phone := r.PostFormValue("name"), r.PostFormValue("phone_number")
	_, err := p.d.Accounts.UpdateProfile(r.Context(), si.user.ID, account.ProfileUpdate{Name: &name, PhoneNumber: &phone})
	return err
}

// changeEmail sends the link that confirms a new address; the EMAIL limit
// counts toward that address.
func (p *Pages) changeEmail(r *http.Request, si signedIn) error {
	email := r.PostFormValue("new_email")
	if err := p.limitEmail(r, email); err != nil {
		return err
	}
	return p.d.Accounts.RequestEmailChange(r.Context(), si.user.ID, email, r.PostFormValue("password"), si.sess.AuthTime)
}

func (p *Pages) savePrefs(r *http.Request, si signedIn) error {
	prefs := map[string][]string{}
	for _, t := range gatehouse.NotificationTypes {
		chans := []string{}
		for _, c := range r.PostForm[t] {
			if c == gatehouse.ChannelEmail || c == gatehouse.ChannelWebSocket {
				chans = append(chans, c)
			}
		}
		prefs[t] = chans
	}
	_, err := p.d.Accounts.UpdateProfile(r.Context(), si.user.ID, account.ProfileUpdate{NotificationPreferences: prefs})
	return err
}

func (p *Pages) changePassword(r *http.Request, si signedIn) error {
	next := r.PostFormValue("new_password")
	if next != r.PostFormValue("new_password2") {
		return gatehouse.InvalidField("new_password2", "the two new passwords differ")
	}
	return p.d.Accounts.ChangePassword(r.Context(), si.user.ID, si.sess.ID, r.PostFormValue("current_password"), next)
}

func (p *Pages) revokeSession(r *http.Request, si signedIn) error {
	return p.d.Sessions.Revoke(r.Context(), si.user.ID, r.PathValue("id"), "user_revoked")
}

func (p *Pages) trustDevice(r *http.Request, si signedIn) error {
	_, err := p.d.Devices.SetTrusted(r.Context(), si.user.ID, r.PathValue("id"), r.PostFormValue("trusted") == "true")
	return err
}

func (p *Pages) removeDevice(r *http.Request, si signedIn) error {
	return p.d.Devices.Remove(r.Context(), si.user.ID, r.PathValue("id"))
}

func (p *Pages) renamePasskey(r *http.Request, si signedIn) error {
	_, err := p.d.Passkeys.Rename(r.Context(), si.user.ID, r.PathValue("id"), r.PostFormValue("name"))
	return err
}

func (p *Pages) deletePasskey(r *http.Request, si signedIn) error {
	return p.d.Passkeys.Delete(r.Context(), si.user.ID, r.PathValue("id"))
}

func (p *Pages) unlink(r *http.Request, si signedIn) error {
	return p.d.OAuth.Unlink(r.Context(), si.user.ID, r.PathValue("id"))
}

// passkeyAddBegin answers the options of a passkey registration to the
// page's script, as JSON.
func (p *Pages) passkeyAddBegin(w http.ResponseWriter, r *http.Request) {
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
	sess, ok := p.sessions.session(r)
	if !ok || p.d.Passkeys == nil {
		fail(http.StatusUnauthorized, "You are signed out; sign in again.")
		return
	}
	opts, err := p.d.Passkeys.BeginRegistration(r.Context(), sess.UserID)
	if err != nil {
		pe := p.explain(r.Context(), err)
		fail(pe.status, pe.msg)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"options": opts})
}

func (p *Pages) addPasskey(r *http.Request, si signedIn) error {
	cred := r.PostFormValue("credential")
	if !json.Valid([]byte(cred)) {
		return gatehouse.InvalidField("credential", "the passkey answer could not be read; try again")
	}
	_, err := p.d.Passkeys.FinishRegistration(r.Context(), si.user.ID, json.RawMessage(cred), r.PostFormValue("name"))
	return err
}

// link starts linking a social account: the provider comes back to the
// pages' social return, which signs in as this user and returns here.
func (p *Pages) link(w http.ResponseWriter, r *http.Request) {
	si, ok := p.requireUser(w, r)
	if !ok {
		return
	}
	u, err := p.d.OAuth.LinkURL(r.Context(), r.PathValue("provider"), p.SocialDoneURL(), si.user.ID)
	if err != nil {
		p.fail(w, r, "account", p.accountView(r, si), err)
		return
	}
	p.rememberReturn(w, "/account?notice=linked")
	http.SetCookie(w, &http.Cookie{Name: socialCookie, Value: "1", Path: "/", MaxAge: 15 * 60, HttpOnly: true,
		Secure: p.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// mfaSetupData is the MFA setup page's data.
type mfaSetupData struct {
	Method, Secret, QR, OTPAuth, Phone string
	Codes                              []string
}

func (p *Pages) mfaSetup(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		si, ok := p.postSignedIn(w, r)
		if !ok {
			return
		}
		if err := p.limit(r.Context(), "mfa", p.ipKey(r), p.d.Limits.MFA); err != nil {
			p.fail(w, r, "account", p.accountView(r, si), err)
			return
		}
		res, err := p.d.MFA.Setup(r.Context(), si.user.ID, method, r.PostFormValue("phone_number"))
		if err != nil {
			p.fail(w, r, "account", p.accountView(r, si), err)
			return
		}
		v := p.me(r, si, "Set up two-step verification")
		v.Data = mfaSetupData{Method: res.Method, Secret: res.Secret, QR: res.QRCode, OTPAuth: res.OTPAuthURL, Phone: res.PhoneNumber}
		p.render(w, r, http.StatusOK, "mfa-setup", v)
	}
}

func (p *Pages) mfaActivate(w http.ResponseWriter, r *http.Request) {
	si, ok := p.postSignedIn(w, r)
	if !ok {
		return
	}
	method := r.PostFormValue("method")
	d := mfaSetupData{Method: method, Secret: r.PostFormValue("secret"), Phone: r.PostFormValue("phone")}
	v := p.me(r, si, "Set up two-step verification")
	v.Data = d
	if err := p.limit(r.Context(), "mfa", p.ipKey(r), p.d.Limits.MFA); err != nil {
		p.fail(w, r, "mfa-setup", v, err)
		return
	}
	codes, err := p.d.MFA.Activate(r.Context(), si.user.ID, method, strings.TrimSpace(r.PostFormValue("code")))
	if err != nil {
		p.fail(w, r, "mfa-setup", v, err)
		return
	}
	v = p.me(r, si, "Your backup codes")
	v.Notice = "Two-step verification is on."
	v.Data = mfaSetupData{Codes: codes}
	p.render(w, r, http.StatusOK, "backup-codes", v)
}

func (p *Pages) mfaDisable(r *http.Request, si signedIn) error {
	return p.d.MFA.Disable(r.Context(), si.user.ID, si.sess.ID, si.sess.AuthTime, r.PostFormValue("method"),
		strings.TrimSpace(r.PostFormValue("code")), r.PostFormValue("password"))
}

func (p *Pages) backupCodes(w http.ResponseWriter, r *http.Request) {
	si, ok := p.postSignedIn(w, r)
	if !ok {
		return
	}
	codes, err := p.d.MFA.RegenerateBackupCodes(r.Context(), si.user.ID, si.sess.ID, si.sess.AuthTime,
		strings.TrimSpace(r.PostFormValue("code")), r.PostFormValue("password"))
	if err != nil {
		p.fail(w, r, "account", p.accountView(r, si), err)
		return
	}
	v := p.me(r, si, "Your backup codes")
	v.Notice = "New backup codes are made; the old ones no longer work."
	v.Data = mfaSetupData{Codes: codes}
	p.render(w, r, http.StatusOK, "backup-codes", v)
}

func (p *Pages) deleteAccount(w http.ResponseWriter, r *http.Request) {
	si, ok := p.postSignedIn(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != "delete" {
		p.fail(w, r, "account", p.accountView(r, si), gatehouse.InvalidField("confirm", "tick the box to confirm that the account should be deleted"))
		return
	}
	if err := p.d.Accounts.DeleteAccount(r.Context(), si.user.ID, r.PostFormValue("password"), si.sess.AuthTime); err != nil {
		p.fail(w, r, "account", p.accountView(r, si), err)
		return
	}
	p.sessions.clear(w)
	p.render(w, r, http.StatusOK, "sent", view{Title: "Account deleted", Notice: "Your account and everything it held are deleted."})
}
