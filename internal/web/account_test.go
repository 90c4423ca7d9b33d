package web_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest/risktest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/web"
)

// attr is the value of the first name="..." value="..." pair of a page
// after marker.
func after(t *testing.T, page, marker, until string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, marker)
	require.True(t, ok, "%q not on the page:\n%s", marker, page)
	v, _, _ := strings.Cut(rest, until)
	return v
}

// The account page's actions, each through its form: notifications,
// sessions, devices, MFA off and backup codes, password change and
// deletion; and Current answers the browser's session.
func TestAccountActions(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newBrowser(t, env)
	b.login(email, apptest.StrongPassword)

	// Current, as the OpenID Provider asks.
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/", nil)
	req.AddCookie(b.cookie(web.InsecureSessionCookie))
	bs, ok := env.App.Pages.Sessions().Current(req)
	require.True(t, ok)
	require.Equal(t, []string{"pwd"}, bs.AMR)
	require.NotEmpty(t, bs.SessionID)
	require.False(t, bs.AuthTime.IsZero())
	_, ok = env.App.Pages.Sessions().Current(httptestRequest())
	require.False(t, ok)

	// Notifications: only email for new-device sign-ins.
	b.get("/account")
	b.post("/account/notifications", url.Values{"security.new_device_login": {"email"}})
	require.Contains(t, b.last, "notification preferences are saved")
	u, err := env.App.Accounts.GetUser(context.Background(), bs.UserID)
	require.NoError(t, err)
	require.Equal(t, []string{"email"}, u.NotificationPreferences["security.new_device_login"])
	require.Equal(t, []string{}, u.NotificationPreferences["security.alert"])

	// Another session, signed out from here; a device trusted, then removed.
	other := newBrowser(t, env)
	other.login(email, apptest.StrongPassword)
	b.get("/account")
	sid := after(t, b.last, `action="/account/sessions/`, "/")
	b.post("/account/sessions/"+sid+"/revoke", nil)
	require.Contains(t, b.last, "The session is signed out.")
	other.get("/account")
	require.Contains(t, other.url, "/login", "the other browser is signed out")
	dev := after(t, b.last, `action="/account/devices/`, "/")
	b.post("/account/devices/"+dev+"/trust", url.Values{"trusted": {"true"}})
	require.Contains(t, b.last, "Stop trusting")

	// MFA by TOTP: a wrong activation code is said in words; then on,
	// new backup codes, off.
	b.post("/account/mfa/totp", nil)
	secret := after(t, b.last, `id="totp-secret">`, "<")
	require.Contains(t, b.last, `src="data:image/png;base64,`)
	resp := b.post("/account/mfa/activate", url.Values{"method": {"totp"}, "code": {"000000"}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	code, err := mfa.TOTPCode(secret, env.Clock.Now())
	require.NoError(t, err)
	b.post("/account/mfa/activate", url.Values{"method": {"totp"}, "code": {code}})
	require.Contains(t, b.last, "Two-step verification is on.")
	require.Contains(t, b.last, `download="backup-codes.txt" href="data:text/plain`)
	env.Clock.Advance(30 * time.Second)
	code, _ = mfa.TOTPCode(secret, env.Clock.Now())
	b.get("/account")
	b.post("/account/mfa/backup-codes", url.Values{"code": {code}})
	require.Contains(t, b.last, "New backup codes are made")
	env.Clock.Advance(10 * time.Minute) // no longer a recent sign-in: the password is asked for
	code, _ = mfa.TOTPCode(secret, env.Clock.Now())
	b.get("/account")
	resp = b.post("/account/mfa/disable", url.Values{"method": {"totp"}, "code": {code}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, b.last, "enter your current password")
	env.Clock.Advance(30 * time.Second)
	code, _ = mfa.TOTPCode(secret, env.Clock.Now())
	b.post("/account/mfa/disable", url.Values{"method": {"totp"}, "code": {code}, "password": {apptest.StrongPassword}})
	require.Contains(t, b.last, "is turned off")

	b.post("/account/devices/"+dev+"/remove", nil)
	if strings.Contains(b.url, "/login") { // it was this browser's device
		b.login(email, apptest.StrongPassword)
	} else {
		require.Contains(t, b.last, "The device is removed")
	}
	b.get("/account")

	// Password: a weak one is refused with the policy's words; then changed.
	resp = b.post("/account/password", url.Values{"current_password": {apptest.StrongPassword}, "new_password": {"short"}, "new_password2": {"short"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, b.last, "Choose a stronger password.")
	const next = "mossy-Lantern-quiet-58-Harbor"
	b.post("/account/password", url.Values{"current_password": {apptest.StrongPassword}, "new_password": {next}, "new_password2": {next}})
	require.Contains(t, b.last, "Your password is changed.")

	// Deletion needs the box ticked and the password.
	resp = b.post("/account/delete", url.Values{"password": {next}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	b.post("/account/delete", url.Values{"password": {next}, "confirm": {"delete"}})
	require.Contains(t, b.last, "Your account and everything it held are deleted.")
	require.Nil(t, b.cookie(web.InsecureSessionCookie))
	b.get("/login")
	resp = b.post("/login", url.Values{"email": {email}, "password": {next}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://gatehouse.test/", nil)
	r.AddCookie(&http.Cookie{Name: web.InsecureSessionCookie, Value: "not-a-session"})
	return r
}

// A risky sign-in of an account without MFA waits for the emailed
// confirmation on the browser that signed in. The link's page only
// confirms: whoever clicks gets no session; the waiting browser presses
// Continue and is signed in (and not before the click).
func TestConfirmSignInFinishesOnTheWaitingBrowser(t *testing.T) {
	bl := filepath.Join(t.TempDir(), "blocklist.txt")
	require.NoError(t, os.WriteFile(bl, []byte(risktest.Sydney.Network+"\n"), 0o600))
	env, email := newEnv(t, map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1", "GATEHOUSE_IP_BLOCKLIST": bl})
	first := newBrowser(t, env)
	first.xff = risktest.Berlin.IP
	first.login(email, apptest.StrongPassword)
	env.Clock.Advance(time.Hour)

	waiting := newBrowser(t, env)
	waiting.xff = risktest.Sydney.IP
	waiting.get("/login?return_to=%2Faccount%3Fvia%3Dconfirm")
	waiting.post("/login", url.Values{"email": {email}, "password": {apptest.StrongPassword}, "return_to": {"/account?via=confirm"}})
	require.Contains(t, waiting.last, "we emailed you a link to confirm it is you")
	resp := waiting.post("/login/confirmed", url.Values{"challenge_id": {challengeID(t, waiting.last)}, "return_to": {"/account?via=confirm"}})
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Contains(t, waiting.last, "not confirmed yet")
	require.Nil(t, waiting.cookie(web.InsecureSessionCookie))

	tok := apptest.TokenFromLink(risktest.WaitMail(t, env, email, "Confirm your"), "http://gatehouse.test/confirm-sign-in?")
	require.NotEmpty(t, tok)
	clicker := newBrowser(t, env)
	clicker.get("/confirm-sign-in?token=" + url.QueryEscape(tok))
	clicker.post("/confirm-sign-in", url.Values{"token": {tok}})
	require.Contains(t, clicker.last, "The sign-in is confirmed.")
	require.Nil(t, clicker.cookie(web.InsecureSessionCookie), "no session for whoever clicked")

	waiting.post("/login/confirmed", url.Values{"challenge_id": {challengeID(t, waiting.last)}, "return_to": {"/account?via=confirm"}})
	require.Contains(t, waiting.url, "/account?via=confirm")
	require.NotNil(t, waiting.cookie(web.InsecureSessionCookie))
	require.Contains(t, waiting.last, email)
}
