package account_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/account"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail/mailtest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// fieldErrors returns the errors[] of a problem answer.
func fieldErrors(t require.TestingT, r *apptest.Response) []map[string]any {
	raw, ok := r.JSON["errors"].([]any)
	require.True(t, ok, "no errors[] in %s", r.Raw)
	out := make([]map[string]any, 0, len(raw))
	for _, e := range raw {
		out = append(out, e.(map[string]any))
	}
	return out
}

// requireField fails unless one of r's errors[] is at location.
func requireField(t require.TestingT, r *apptest.Response, location string) {
	var seen []any
	for _, e := range fieldErrors(t, r) {
		if e["location"] == location {
			require.NotEmpty(t, e["message"], "errors[] entry without a message: %s", r.Raw)
			return
		}
		seen = append(seen, e["location"])
	}
	require.Failf(t, "no error at "+location, "locations %v in %s", seen, r.Raw)
}

func TestRegisterValidation(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		for _, bad := range []string{"not-an-email", "a@b", "@example.com", "a b@example.com", "Alice <alice@example.com>"} {
			r := call(t, env, "POST", "/auth/register", map[string]any{"email": bad, "password": apptest.StrongPassword}, "")
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "invalid_email", bad)
			requireField(t, r, "body.email")
		}
		for _, missing := range []string{"", "   "} {
			r := call(t, env, "POST", "/auth/register", map[string]any{"email": missing, "password": apptest.StrongPassword}, "")
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "%q", missing)
			requireField(t, r, "body.email")
		}

		email := uniqueEmail("validation")
		r := call(t, env, "POST", "/auth/register", map[string]any{"email": email}, "")
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "missing password")
		require.Contains(t, string(r.Raw), "password")
		r = call(t, env, "POST", "/auth/register", map[string]any{"password": apptest.StrongPassword}, "")
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "missing email")

		for pw, reasons := range map[string]int{
			"short":        1, // too short, and too guessable
			"password1234": 1, // common
			strings.Split(email, "@")[0] + "-Zq8#vW3!pL0x": 1, // contains the email
			"aaaa": 2, // too short and too guessable
		} {
			r := call(t, env, "POST", "/auth/register", map[string]any{"email": email, "password": pw}, "")
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password", pw)
			errs := fieldErrors(t, r)
			require.GreaterOrEqual(t, len(errs), reasons, "reasons for %q: %s", pw, r.Raw)
			for _, e := range errs {
				require.Equal(t, "body.password", e["location"], "%s", r.Raw)
				require.NotEmpty(t, e["message"])
			}
			require.NotContains(t, string(r.Raw), pw, "the answer echoes the password")
		}
		r = call(t, env, "POST", "/auth/register", map[string]any{"email": email, "password": "Vq3!zR8#mW2@kL5$", "name": "Kowalczyk"}, "")
		apptest.Expect(t, r, http.StatusCreated, "", "a strong password")
		r = call(t, env, "POST", "/auth/register", map[string]any{"email": uniqueEmail("named"), "password": "kowalczyk-Vq3!zR8#", "name": "Anna Kowalczyk"}, "")
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password", "a password containing the name")

		// Refused registrations leave nothing behind.
		require.Equal(t, 1, countUsers(t, env, email))
		require.Len(t, emailJobs(t, env, email), 1)
	})
}

// A look-alike of an existing address (issue #16: a zero-width space, a
// Cyrillic letter, fullwidth characters, a dotless ı) is no account of its
// own and gets no mail: registration answers 422 invalid_email naming the
// field; sign-in answers as for any wrong email, so nothing is revealed;
// the emailed-link requests refuse it. A spelling that is the same address
// (the domain in fullwidth) reaches the existing account.
func TestLookAlikeEmails(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		orig := uniqueEmail("admin")
		local, domain, _ := strings.Cut(orig, "@")
		register(t, env, orig, apptest.StrongPassword, "")
		users, jobs := totalUsers(t, env), totalEmailJobs(t, env)

		for _, fake := range []string{
			strings.Replace(local, "m", "m\u200b", 1) + "@" + domain,
			local + "@" + strings.Replace(domain, "a", "\u0430", 1),
			strings.Replace(local, "i", "\u0131", 1) + "@" + domain,
			strings.Replace(local, "a", "\uff41", 1) + "@" + domain,
		} {
			r := call(t, env, "POST", "/auth/register", map[string]any{"email": fake, "password": apptest.StrongPassword}, "")
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "invalid_email", "register %q", fake)
			requireField(t, r, "body.email")
			apptest.Expect(t, loginStatus(t, env, fake, apptest.StrongPassword), http.StatusUnauthorized, "invalid_credentials", "login %q", fake)
			for _, path := range []string{"/auth/password/forgot", "/auth/magic-link", "/auth/verify-email/resend"} {
				r := call(t, env, "POST", path, map[string]any{"email": fake}, "")
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "invalid_email", "%s %q", path, fake)
				requireField(t, r, "body.email")
			}
		}
		require.Equal(t, users, totalUsers(t, env), "no look-alike account")
		require.Equal(t, jobs, totalEmailJobs(t, env), "no mail to a look-alike")

		wide := strings.ToUpper(local) + "@" + strings.Map(func(r rune) rune { return r + 0xff01 - '!' }, domain)
		apptest.Expect(t, call(t, env, "POST", "/auth/register", map[string]any{"email": wide, "password": apptest.StrongPassword}, ""),
			http.StatusConflict, "email_taken", "%q is %q", wide, orig)
		require.Equal(t, orig, obj(t, login(t, env, wide, apptest.StrongPassword).JSON, "user")["email"])
	})
}

// totalUsers counts every account.
func totalUsers(t require.TestingT, env *apptest.Env) int {
	var n int
	require.NoError(t, env.App.DB.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM users").Scan(&n))
	return n
}

// totalEmailJobs counts every email ever queued.
func totalEmailJobs(t require.TestingT, env *apptest.Env) int {
	var n int
	require.NoError(t, env.App.DB.DB().QueryRowContext(context.Background(),
		"SELECT count(*) FROM river_job WHERE kind = '"+mail.JobKind+"'").Scan(&n))
	return n
}

func TestLogout(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("logout")
		register(t, env, email, apptest.StrongPassword, "")
		a := login(t, env, email, apptest.StrongPassword)
		b := login(t, env, email, apptest.StrongPassword)
		apptest.Expect(t, call(t, env, "GET", "/auth/me", nil, a.Str("access_token")), http.StatusOK, "")

		apptest.Expect(t, call(t, env, "POST", "/auth/logout", nil, a.Str("access_token")), http.StatusNoContent, "")
		r := call(t, env, "GET", "/auth/me", nil, a.Str("access_token"))
		apptest.Expect(t, r, http.StatusUnauthorized, "unauthorized")
		require.NotEmpty(t, r.Header.Get("WWW-Authenticate"))
		apptest.Expect(t, call(t, env, "POST", "/auth/refresh", map[string]any{"refresh_token": a.Str("refresh_token")}, ""), http.StatusUnauthorized, "invalid_refresh_token")
		apptest.Expect(t, call(t, env, "POST", "/auth/logout", nil, a.Str("access_token")), http.StatusUnauthorized, "unauthorized")

		// The other session is untouched.
		apptest.Expect(t, call(t, env, "GET", "/auth/me", nil, b.Str("access_token")), http.StatusOK, "")
		list := sessionsOf(t, env, b.Str("access_token"))
		require.Len(t, list, 1)
		require.Equal(t, b.Str("session_id"), list[0]["id"])
		apptest.Expect(t, call(t, env, "POST", "/auth/refresh", map[string]any{"refresh_token": b.Str("refresh_token")}, ""), http.StatusOK, "")
	})
}

func TestMeNeedsAToken(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		r := call(t, env, "GET", "/auth/me", nil, "")
		apptest.Expect(t, r, http.StatusUnauthorized, "unauthorized")
		require.True(t, strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer"), "WWW-Authenticate: %q", r.Header.Get("WWW-Authenticate"))

		for _, h := range []string{"Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer"} {
			r, err := request(env, "GET", "/auth/me", nil, map[string]string{"Authorization": h})
			require.NoError(t, err)
			apptest.Expect(t, r, http.StatusUnauthorized, "unauthorized", h)
			require.True(t, strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer"), "%s: WWW-Authenticate %q", h, r.Header.Get("WWW-Authenticate"))
		}
	})
}

func TestChangePassword(t *testing.T) {
	const next = "Orchid-lantern-57-Meridian"
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("change")
		register(t, env, email, apptest.StrongPassword, "")
		cur := login(t, env, email, apptest.StrongPassword)
		other := login(t, env, email, apptest.StrongPassword)
		access := cur.Str("access_token")

		r := call(t, env, "POST", "/users/password/change", map[string]any{"current_password": "wrong-" + apptest.StrongPassword, "new_password": next}, access)
		apptest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
		r = call(t, env, "POST", "/users/password/change", map[string]any{"current_password": apptest.StrongPassword, "new_password": "password1234"}, access)
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "weak_password")
		requireField(t, r, "body.new_password")
		r = call(t, env, "POST", "/users/password/change", map[string]any{"current_password": apptest.StrongPassword, "new_password": apptest.StrongPassword}, access)
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "the same password again is no change")
		require.Contains(t, string(r.Raw), "body.new_password")
		r = call(t, env, "POST", "/users/password/change", map[string]any{"current_password": apptest.StrongPassword, "new_password": next}, "")
		apptest.Expect(t, r, http.StatusUnauthorized, "unauthorized")
		// Nothing changed so far.
		apptest.Expect(t, call(t, env, "GET", "/auth/me", nil, other.Str("access_token")), http.StatusOK, "")

		r = call(t, env, "POST", "/users/password/change", map[string]any{"current_password": apptest.StrongPassword, "new_password": next}, access)
		apptest.Expect(t, r, http.StatusNoContent, "")

		// Every other session ends; the current one keeps working.
		apptest.Expect(t, call(t, env, "GET", "/auth/me", nil, other.Str("access_token")), http.StatusUnauthorized, "unauthorized")
		apptest.Expect(t, call(t, env, "POST", "/auth/refresh", map[string]any{"refresh_token": other.Str("refresh_token")}, ""), http.StatusUnauthorized, "")
		apptest.Expect(t, call(t, env, "GET", "/auth/me", nil, access), http.StatusOK, "")
		list := sessionsOf(t, env, access)
		require.Len(t, list, 1)
		require.Equal(t, cur.Str("session_id"), list[0]["id"])
		apptest.Expect(t, call(t, env, "POST", "/auth/refresh", map[string]any{"refresh_token": cur.Str("refresh_token")}, ""), http.StatusOK, "")

		apptest.Expect(t, loginStatus(t, env, email, apptest.StrongPassword), http.StatusUnauthorized, "invalid_credentials")
		login(t, env, email, next)

		m := waitSubject(t, env, email, "password was changed")
		requireNoSecret(t, []mailtest.Received{m}, next)
		requireNoSecret(t, []mailtest.Received{m}, apptest.StrongPassword)
	})
}

func TestProfileUpdate(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("profile")
		register(t, env, email, apptest.StrongPassword, "")
		access := login(t, env, email, apptest.StrongPassword).Str("access_token")
		put := func(body map[string]any) *apptest.Response {
			return call(t, env, "PUT", "/users/profile", body, access)
		}

		r := put(map[string]any{"name": "  Ada Lovelace  "})
		apptest.Expect(t, r, http.StatusOK, "")
		require.Equal(t, "Ada Lovelace", r.JSON["name"])
		require.Nil(t, r.JSON["phone_number"])

		r = put(map[string]any{"phone_number": "+1 415 555 0100"})
		apptest.Expect(t, r, http.StatusOK, "")
		require.Equal(t, "+14155550100", r.JSON["phone_number"], "stored in E.164")
		require.Equal(t, "Ada Lovelace", r.JSON["name"], "a field left out changed")

		for _, bad := range []string{"4155550100", "+0123456789", "phone", "+1", "+999123456789"} {
			r := put(map[string]any{"phone_number": bad})
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", bad)
			requireField(t, r, "body.phone_number")
		}

		prefs := map[string]any{"security.new_device_login": []any{"email", "websocket"}, "security.password_changed": []any{"email"}}
		r = put(map[string]any{"notification_preferences": prefs})
		apptest.Expect(t, r, http.StatusOK, "")
		require.Equal(t, prefs, r.JSON["notification_preferences"])
		for _, bad := range []any{[]any{"sms"}, []any{"email", "pigeon"}, []any{""}} {
			r := put(map[string]any{"notification_preferences": map[string]any{"security.alert": bad}})
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", bad)
			require.Contains(t, fieldErrors(t, r)[0]["location"], "body.notification_preferences")
		}
		r = put(map[string]any{"notification_preferences": map[string]any{"security.bogus": []any{"email"}}})
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "an unknown alert type")
		requireField(t, r, "body.notification_preferences.security.bogus")
		r = put(map[string]any{"name": strings.Repeat("n", 201)})
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "a 201-character name")

		// Refused updates changed nothing, and GET agrees with the answers.
		r = call(t, env, "GET", "/users/profile", nil, access)
		apptest.Expect(t, r, http.StatusOK, "")
		require.Equal(t, "Ada Lovelace", r.JSON["name"])
		require.Equal(t, "+14155550100", r.JSON["phone_number"])
		require.Equal(t, prefs, r.JSON["notification_preferences"])

		r = put(map[string]any{"phone_number": ""})
		apptest.Expect(t, r, http.StatusOK, "")
		require.Nil(t, r.JSON["phone_number"], "an empty phone_number clears it")
		apptest.Expect(t, call(t, env, "PUT", "/users/profile", map[string]any{"name": "x"}, ""), http.StatusUnauthorized, "unauthorized")
	})
}

func TestDeleteAccount(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("delete")
		id := register(t, env, email, apptest.StrongPassword, "")["id"]
		a := login(t, env, email, apptest.StrongPassword)
		b := login(t, env, email, apptest.StrongPassword)

		r := call(t, env, "DELETE", "/users/account", map[string]any{"password": "wrong-" + apptest.StrongPassword}, a.Str("access_token"))
		apptest.Expect(t, r, http.StatusForbidden, "recent_auth_required")
		apptest.Expect(t, call(t, env, "GET", "/auth/me", nil, a.Str("access_token")), http.StatusOK, "")

		r = call(t, env, "DELETE", "/users/account", map[string]any{"password": apptest.StrongPassword}, a.Str("access_token"))
		apptest.Expect(t, r, http.StatusNoContent, "")
		for _, s := range []apptest.Response{*a, *b} {
			apptest.Expect(t, call(t, env, "GET", "/auth/me", nil, s.Str("access_token")), http.StatusUnauthorized, "unauthorized")
			apptest.Expect(t, call(t, env, "POST", "/auth/refresh", map[string]any{"refresh_token": s.Str("refresh_token")}, ""), http.StatusUnauthorized, "")
		}
		apptest.Expect(t, loginStatus(t, env, email, apptest.StrongPassword), http.StatusUnauthorized, "invalid_credentials")
		require.Equal(t, 0, countUsers(t, env, email))
		_, err := env.App.DB.GetUser(context.Background(), id.(string))
		require.Error(t, err)

		// The address is free again, for a new account.
		again := register(t, env, email, apptest.StrongPassword, "")
		require.NotEqual(t, id, again["id"])
		login(t, env, email, apptest.StrongPassword)
	})
}

// Display names go into emails and admin screens: control characters are
// refused where a name is set.
func TestNamesRefuseControlCharacters(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("names")
		for _, name := range []string{"Eve\r\nBcc: evil@example.com", "\x1b[31mred", "tab\there"} {
			r := call(t, env, "POST", "/auth/register", map[string]any{"email": email, "password": apptest.StrongPassword, "name": name}, "")
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "%q", name)
			require.Contains(t, string(r.Raw), "body.name")
		}
		register(t, env, email, apptest.StrongPassword, "  Ada Lovelace ")
		access := login(t, env, email, apptest.StrongPassword).Str("access_token")
		r := call(t, env, "PUT", "/users/profile", map[string]any{"name": "line\nbreak"}, access)
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed")
		require.Contains(t, string(r.Raw), "body.name")
		r = call(t, env, "GET", "/auth/me", nil, access)
		require.Equal(t, "Ada Lovelace", r.Str("name"))
	})
}

// An account without a password (social login, passkeys, magic links) is
// deleted on a recent sign-in instead, and refused on an older one.
func TestDeletePasswordlessAccount(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		addr, err := gatehouse.ParseEmail(uniqueEmail("nopassword"))
		require.NoError(t, err)
		require.NoError(t, env.App.DB.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			_, err := env.App.Accounts.CreateExternalUserTx(ctx, tx, addr, "", true)
			return err
		}))
		r := verifyMagicLink(env, requestMagicLink(t, env, addr.String()))
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		access := r.Str("access_token")

		env.Clock.Advance(account.RecentAuthWindow + time.Minute)
		apptest.Expect(t, call(t, env, "DELETE", "/users/account", map[string]any{}, access), http.StatusForbidden, "recent_auth_required")
		apptest.Expect(t, call(t, env, "DELETE", "/users/account", map[string]any{"password": "anything-at-all"}, access),
			http.StatusForbidden, "recent_auth_required")

		r = verifyMagicLink(env, requestMagicLink(t, env, addr.String()))
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		apptest.Expect(t, call(t, env, "DELETE", "/users/account", map[string]any{}, r.Str("access_token")), http.StatusNoContent, "")
		require.Equal(t, 0, countUsers(t, env, addr.String()))
	})
}

func TestVerificationSendsWelcome(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("welcome")
		register(t, env, email, apptest.StrongPassword, "Grace")
		tok := tokenIn(t, waitMail(t, env, email, 1), verifyLink+"?token=")
		apptest.Expect(t, verify(t, env, tok), http.StatusOK, "")
		m := waitSubject(t, env, email, "welcome")
		require.Contains(t, m.Text, "Welcome")

		// A verified account gets no further verification emails.
		apptest.Expect(t, call(t, env, "POST", "/auth/verify-email/resend", map[string]any{"email": email}, ""), http.StatusAccepted, "")
		var templates []string
		for _, j := range emailJobs(t, env, email) {
			templates = append(templates, j.Template)
		}
		require.ElementsMatch(t, []string{"verify_email", "welcome"}, templates)

		// Malformed or unknown tokens.
		for _, bad := range []string{"x", strings.Repeat("A", 256), tok + "x"} {
			apptest.Expect(t, verify(t, env, bad), http.StatusBadRequest, "invalid_token", bad)
		}
		apptest.Expect(t, verify(t, env, ""), http.StatusUnprocessableEntity, "validation_failed")
	})
}

// TestEmailsNeverContainPassword walks an account through every flow that
// emails it and checks no email carries any password it ever had.
func TestEmailsNeverContainPassword(t *testing.T) {
	const (
		first  = "Juniper-cobalt-48-Harbor"
		second = "Saffron-glacier-16-Willow"
		third  = "Tundra-mosaic-73-Quiver"
	)
	forEachEngine(t, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "2"}, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("secrets")
		register(t, env, email, first, "Pat")
		// Wait for the first link before asking for the second: emails
		// queued together may arrive in either order.
		waitLink(t, env, email, verifyLink+"?token=", 1)
		apptest.Expect(t, call(t, env, "POST", "/auth/verify-email/resend", map[string]any{"email": email}, ""), http.StatusAccepted, "")
		_, tok := waitLink(t, env, email, verifyLink+"?token=", 2)
		apptest.Expect(t, verify(t, env, tok), http.StatusOK, "")

		forgot(t, env, email)
		_, tok = waitLink(t, env, email, resetLink+"?token=", 1)
		apptest.Expect(t, reset(t, env, tok, second), http.StatusNoContent, "")

		access := login(t, env, email, second).Str("access_token")
		apptest.Expect(t, call(t, env, "POST", "/users/password/change", map[string]any{"current_password": second, "new_password": third}, access), http.StatusNoContent, "")

		for range 2 {
			apptest.Expect(t, loginStatus(t, env, email, first), http.StatusUnauthorized, "invalid_credentials")
		}
		waitSubject(t, env, email, "locked")
		waitMailIdle(t, env)

		msgs := mailsTo(env, email)
		var templates []string
		for _, j := range emailJobs(t, env, email) {
			templates = append(templates, j.Template)
		}
		require.Len(t, msgs, len(templates), "every queued email arrived: %v", templates)
		require.Subset(t, templates, []string{"verify_email", "welcome", "reset_password", "security_alert"})
		for _, pw := range []string{first, second, third} {
			requireNoSecret(t, msgs, pw)
		}
	})
}

// TestLockoutCountRestartsAfterExpiry: wrong passwords sent while the
// account is locked must not count towards the next lock once it expired
// (gatehouse.User.RecordFailedLogin says "an expired lock starts a fresh
// count"). Otherwise whoever keeps guessing during a lock gets the owner
// locked out again by a single typo right after it ends.
func TestLockoutCountRestartsAfterExpiry(t *testing.T) {
	forEachEngine(t, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "3", "GATEHOUSE_LOCKOUT_DURATION": "15m"}, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("relock")
		register(t, env, email, apptest.StrongPassword, "")
		for range 3 + 2 { // lock, then two more guesses during the lock
			apptest.Expect(t, loginStatus(t, env, email, "wrong-"+apptest.StrongPassword), http.StatusUnauthorized, "invalid_credentials")
		}
		apptest.Expect(t, loginStatus(t, env, email, apptest.StrongPassword), http.StatusLocked, "account_locked")
		env.Clock.Advance(15 * time.Minute)

		// One typo after the lock ended is one failure, not the third.
		apptest.Expect(t, loginStatus(t, env, email, "wrong-"+apptest.StrongPassword), http.StatusUnauthorized, "invalid_credentials")
		login(t, env, email, apptest.StrongPassword)
	})
}

// TestDeviceIDKeptWhole: a device_id the API accepts (at most 128
// characters) is stored and listed as sent.
func TestDeviceIDKeptWhole(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("device")
		register(t, env, email, apptest.StrongPassword, "")
		device := strings.Repeat("é", 100) // 100 characters, 200 bytes
		r := loginUA(t, env, email, apptest.StrongPassword, "device-test/1.0", device)
		list := sessionsOf(t, env, r.Str("access_token"))
		require.Len(t, list, 1)
		require.Equal(t, device, list[0]["device_id"])
	})
}
