package mfa_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
)

// requireLimited checks r is 429 rate_limited with a Retry-After of at
// most max.
func requireLimited(t *testing.T, r *apptest.Response, max time.Duration, msgAndArgs ...any) {
	t.Helper()
	apptest.Expect(t, r, http.StatusTooManyRequests, "rate_limited", msgAndArgs...)
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
	require.Positive(t, retry)
	require.LessOrEqual(t, retry, int(max.Seconds()))
}

// memoryCache reports whether s's cache follows s.Clock (Redis keeps its
// own time, so expiry cannot be tested there by moving the clock).
func memoryCache(s *suite) bool {
	_, ok := s.App.Cache.(*cache.Memory)
	return ok
}

// TestSetupTextsCappedPerUser: SMS setups text at most five codes per user
// an hour, whatever the numbers; the sixth is 429 rate_limited with
// Retry-After and texts nothing. /auth/mfa/setup is under the MFA limit.
func TestSetupTextsCappedPerUser(t *testing.T) {
	forEachEngine(t, map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "true"}, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		setup := func(i int) *apptest.Response {
			return s.call(t, "POST", "/auth/mfa/setup", map[string]any{"method": "sms", "phone_number": "+1415" + strconv.Itoa(3_000_000+i)}, u.access)
		}
		before := s.smsJobs(t)
		for i := range 5 {
			r := setup(i)
			apptest.Expect(t, r, http.StatusOK, "", "setup ", i+1)
			require.Equal(t, "30", r.Header.Get("RateLimit-Limit"), "setup is not under the MFA limit")
		}
		requireLimited(t, setup(5), time.Hour, "sixth setup")
		require.Equal(t, 5, s.smsJobs(t)-before, "texts queued")

		// The cap is on texts: TOTP setup still works, and other users
		// still text.
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, u.access), http.StatusOK, "")
		v := newUser(t, s)
		v.enrolSMS(t, s)

		if memoryCache(s) {
			s.Clock.Advance(time.Hour)
			u.access = s.login(t, u.email, apptest.StrongPassword).Str("access_token")
			apptest.Expect(t, setup(6), http.StatusOK, "", "an hour later")
		}
	})
}

// TestSessionTextsCappedPerUser: codes texted to a signed-in session (to
// confirm disable or regeneration) share the setup texts' cap.
func TestSessionTextsCappedPerUser(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolSMS(t, s) // one text
		send := func() *apptest.Response {
			return s.call(t, "POST", "/auth/mfa/send", map[string]any{"method": "sms"}, u.access)
		}
		for i := range 4 {
			apptest.Expect(t, send(), http.StatusAccepted, "", "send ", i+1)
		}
		before := s.smsJobs(t)
		requireLimited(t, send(), time.Hour)
		require.Equal(t, before, s.smsJobs(t), "a refused send queued a text")

		// Sign-in challenges have their own cap and still text.
		u.challenge(t, s)
		require.Equal(t, before+1, s.smsJobs(t))
	})
}

// TestWrongCodesOutsideChallengeLimited: codes checked outside a sign-in
// (disable, backup-code regeneration, activation) share a per-user limit:
// after five wrong ones even the right code is refused with 429
// rate_limited and Retry-After, and nothing changes; a right code before
// that resets the count.
func TestWrongCodesOutsideChallengeLimited(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolTOTP(t, s)
		disable := func(code string) *apptest.Response {
			return s.call(t, "POST", "/auth/mfa/disable", map[string]any{"method": "totp", "code": code}, u.access)
		}
		regenerate := func(code string) *apptest.Response {
			return s.call(t, "POST", "/auth/mfa/backup-codes", map[string]any{"code": code}, u.access)
		}
		wrong := func(i int) string { return "WRNG-CODE-" + strconv.Itoa(1000+i) }

		// Four wrong codes, then a right one: the count starts again.
		for i := range 4 {
			apptest.Expect(t, regenerate(wrong(i)), http.StatusUnauthorized, "mfa_invalid_code", "wrong code ", i+1)
		}
		r := regenerate(u.backup[0])
		apptest.Expect(t, r, http.StatusOK, "")
		u.backup = strs(t, r.JSON["backup_codes"])

		// Five wrong codes, across operations: then the right code is refused.
		for i := range 5 {
			do := disable
			if i%2 == 1 {
				do = regenerate
			}
			apptest.Expect(t, do(wrong(i)), http.StatusUnauthorized, "mfa_invalid_code", "wrong code ", i+1)
		}
		requireLimited(t, disable(u.backup[0]), 15*time.Minute, "disable with the right code")
		requireLimited(t, regenerate(u.backup[1]), 15*time.Minute, "regenerate with the right code")
		require.Equal(t, true, s.me(t, u.access)["mfa_enabled"])
		require.Equal(t, 10, s.remaining(t, u.access), "a refused attempt spent a backup code")

		// Sign-in challenges keep their own count.
		apptest.Expect(t, s.verify(t, u.challenge(t, s).Str("challenge_id"), "backup_code", u.backup[2]), http.StatusOK, "")

		if memoryCache(s) {
			s.Clock.Advance(15 * time.Minute)
			r := s.verify(t, u.challenge(t, s).Str("challenge_id"), "backup_code", u.backup[3])
			apptest.Expect(t, r, http.StatusOK, "")
			u.access = r.Str("access_token")
			apptest.Expect(t, disable(u.backup[4]), http.StatusNoContent, "", "after the window")
		}
	})
}

// TestWrongActivationCodesLimited: activation codes count too; after five
// wrong ones the right code does not enable the factor.
func TestWrongActivationCodesLimited(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		for _, method := range []string{"totp", "sms"} {
			u := newUser(t, s)
			body := map[string]any{"method": method}
			if method == "sms" {
				body["phone_number"] = u.phone
			}
			r := s.call(t, "POST", "/auth/mfa/setup", body, u.access)
			apptest.Expect(t, r, http.StatusOK, "")
			var code string
			if method == "totp" {
				u.secret = r.Str("secret")
				code = u.totp(t, s)
			} else {
				code = u.nextText(t, s)
			}
			wrong := "000000"
			if code == wrong {
				wrong = "000001"
			}
			activate := func(code string) *apptest.Response {
				return s.call(t, "POST", "/auth/mfa/activate", map[string]any{"method": method, "code": code}, u.access)
			}
			for i := range 5 {
				apptest.Expect(t, activate(wrong), http.StatusUnauthorized, "mfa_invalid_code", method, " wrong code ", i+1)
			}
			requireLimited(t, activate(code), 15*time.Minute, method)
			require.Equal(t, false, s.me(t, u.access)["mfa_enabled"], method)
		}
	})
}
