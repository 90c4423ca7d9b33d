package mfa_test

import (
	"encoding/base32"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
)

// TestChallengeDiesAfterFiveWrongCodes: after five wrong codes even the
// right one fails; the code itself is not spent and works on a new
// challenge.
func TestChallengeDiesAfterFiveWrongCodes(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolTOTP(t, s)
		ch := u.challenge(t, s).Str("challenge_id")
		code := u.totp(t, s)
		wrong := "000000"
		if code == wrong {
			wrong = "000001"
		}
		for i := range 5 {
			apptest.Expect(t, s.verify(t, ch, "totp", wrong), http.StatusUnauthorized, "mfa_invalid_code", "wrong code ", i+1)
		}
		apptest.Expect(t, s.verify(t, ch, "totp", code), http.StatusUnauthorized, "mfa_invalid_code")
		apptest.Expect(t, s.verify(t, ch, "backup_code", u.backup[0]), http.StatusUnauthorized, "mfa_invalid_code")
		apptest.Expect(t, s.verify(t, u.challenge(t, s).Str("challenge_id"), "totp", code), http.StatusOK, "")
		require.Equal(t, 10, s.remaining(t, u.access))
	})
}

// TestChallengeExpires: a challenge lives five minutes.
func TestChallengeExpires(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolTOTP(t, s)
		early, late := u.challenge(t, s).Str("challenge_id"), u.challenge(t, s).Str("challenge_id")
		s.Clock.Advance(5*time.Minute - time.Second)
		apptest.Expect(t, s.verify(t, early, "", u.totp(t, s)), http.StatusOK, "", "just before the end")
		s.Clock.Advance(time.Second)
		apptest.Expect(t, s.verify(t, late, "backup_code", u.backup[0]), http.StatusUnauthorized, "mfa_invalid_code")
		require.Equal(t, 10, s.remaining(t, u.access), "an expired challenge spent a backup code")
	})
}

// TestDisableWrongPasswordCountsTowardLockout: a wrong password given to
// confirm a disable is a failed sign-in.
func TestDisableWrongPasswordCountsTowardLockout(t *testing.T) {
	forEachEngine(t, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "3"}, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolTOTP(t, s)
		s.Clock.Advance(6 * time.Minute)
		body := map[string]any{"method": "totp", "code": u.backup[0], "password": "not-the-password-at-all"}
		for range 3 {
			apptest.Expect(t, s.call(t, "POST", "/auth/mfa/disable", body, u.access), http.StatusForbidden, "recent_auth_required")
		}
		apptest.Expect(t, s.login(t, u.email, apptest.StrongPassword), http.StatusLocked, "account_locked")
		body["password"] = apptest.StrongPassword
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/disable", body, u.access), http.StatusLocked, "account_locked")
		require.Equal(t, true, s.me(t, u.access)["mfa_enabled"])
	})
}

// TestDisableLastFactor: removing one of two factors keeps MFA and the
// backup codes; removing the last turns MFA off and deletes them. Each
// change is an event and a security email.
func TestDisableLastFactor(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolTOTP(t, s)
		u.enrolSMS(t, s)
		me := s.me(t, u.access)
		require.Equal(t, true, me["mfa_enabled"])
		require.ElementsMatch(t, []string{"sms", "totp"}, strs(t, me["mfa_methods"]))

		disable := func(method, code string) *apptest.Response {
			return s.call(t, "POST", "/auth/mfa/disable", map[string]any{"method": method, "code": code}, u.access)
		}
		apptest.Expect(t, disable("sms", u.totp(t, s)), http.StatusNoContent, "")
		me = s.me(t, u.access)
		require.Equal(t, true, me["mfa_enabled"])
		require.Equal(t, []string{"totp"}, strs(t, me["mfa_methods"]))
		require.Equal(t, 10, s.remaining(t, u.access))
		apptest.Expect(t, disable("sms", u.backup[0]), http.StatusNotFound, "not_found")

		apptest.Expect(t, disable("totp", u.backup[1]), http.StatusNoContent, "")
		me = s.me(t, u.access)
		require.Equal(t, false, me["mfa_enabled"])
		require.Empty(t, me["mfa_methods"])
		require.Zero(t, s.remaining(t, u.access))
		require.Empty(t, s.query(t, "SELECT id FROM mfa_backup_codes WHERE user_id = ?", u.id))
		require.NotEmpty(t, s.login(t, u.email, apptest.StrongPassword).Str("access_token"))

		events := s.query(t, "SELECT action FROM audit_logs WHERE user_id = ? AND action LIKE 'user.mfa%' ORDER BY seq", u.id)
		require.Equal(t, []string{"user.mfa_enabled", "user.mfa_enabled", "user.mfa_disabled", "user.mfa_disabled"}, events)
		var subjects []string
		for range 4 {
			m := s.Mail.WaitFor(t, u.email, 10*time.Second)
			subjects = append(subjects, m.Subject)
			require.NotContains(t, m.Text, u.backup[2], "an email holds a backup code")
		}
		require.ElementsMatch(t, []string{ // the mail workers deliver in any order
			"Gatehouse security alert: Two-step verification was turned on",
			"Gatehouse security alert: Two-step verification was turned on",
			"Gatehouse security alert: A second sign-in step was removed",
			"Gatehouse security alert: A second sign-in step was removed",
		}, subjects)
	})
}

// TestRegenerateBackupCodes: regeneration needs a valid code (a backup
// code of the old set will do) and kills the old set.
func TestRegenerateBackupCodes(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		regenerate := func(code string) *apptest.Response {
			return s.call(t, "POST", "/auth/mfa/backup-codes", map[string]any{"code": code}, u.access)
		}
		apptest.Expect(t, regenerate("123456"), http.StatusConflict, "conflict")
		u.enrolTOTP(t, s)

		requireField(t, s.call(t, "POST", "/auth/mfa/backup-codes", map[string]any{}, u.access), "body.code")
		apptest.Expect(t, regenerate("AAAA-BBBB-CCCC"), http.StatusUnauthorized, "mfa_invalid_code")
		r := regenerate(u.backup[0])
		apptest.Expect(t, r, http.StatusOK, "")
		old, fresh := u.backup, strs(t, r.JSON["backup_codes"])
		require.Len(t, fresh, 10)
		require.Equal(t, 10, s.remaining(t, u.access))
		apptest.Expect(t, s.verify(t, u.challenge(t, s).Str("challenge_id"), "backup_code", old[1]), http.StatusUnauthorized, "mfa_invalid_code")
		apptest.Expect(t, s.verify(t, u.challenge(t, s).Str("challenge_id"), "backup_code", fresh[0]), http.StatusOK, "")

		// Out of the recent-auth window it needs the password as well.
		s.Clock.Advance(6 * time.Minute)
		apptest.Expect(t, regenerate(u.totp(t, s)), http.StatusForbidden, "recent_auth_required")
	})
}

// TestTOTPSecretEncryptedAtRest: the stored secret is neither the base32
// text nor the raw key, before and after activation; SMS codes are stored
// and queued only in sealed or hashed form.
func TestTOTPSecretEncryptedAtRest(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		r := s.call(t, "POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, u.access)
		apptest.Expect(t, r, http.StatusOK, "")
		u.secret = r.Str("secret")
		key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(u.secret, "="))
		require.NoError(t, err)
		check := func() {
			stored := s.query(t, "SELECT secret FROM mfa_factors WHERE user_id = ? AND method = 'totp'", u.id)
			require.Len(t, stored, 1)
			require.NotEmpty(t, stored[0])
			require.NotContains(t, stored[0], u.secret)
			require.NotContains(t, strings.ToUpper(stored[0]), u.secret[:16])
			require.NotContains(t, stored[0], string(key))
		}
		check()
		u.activate(t, s, "totp", u.totp(t, s))
		check()

		u.enrolSMS(t, s)
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"method": "sms"}, u.access), http.StatusAccepted, "")
		code := u.nextText(t, s)
		for _, args := range s.query(t, "SELECT args FROM river_job WHERE kind = ?", sms.JobKind) {
			require.NotContains(t, args, code, "a queued text holds the code")
		}
		for _, h := range s.query(t, "SELECT hash FROM one_time_tokens WHERE user_id = ?", u.id) {
			require.NotContains(t, h, code)
		}
	})
}
