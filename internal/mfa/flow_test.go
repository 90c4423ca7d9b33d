package mfa_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
)

// TestTOTPFlow walks the whole TOTP life: setup, activation, a login that
// answers a challenge, verification, replay refused, disable.
func TestTOTPFlow(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, nil)
			email := "totp-" + eng + "@example.com"
			e.Register(email, apptest.StrongPassword)
			tok := e.Login(email, apptest.StrongPassword)

			r := e.Do("POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			secret := r.Str("secret")
			require.NotEmpty(t, secret)
			require.Contains(t, r.Str("otpauth_url"), "otpauth://totp/")
			require.Contains(t, r.Str("qr_code"), "data:image/png;base64,")

			code, err := mfa.TOTPCode(secret, e.Clock.Now())
			require.NoError(t, err)
			r = e.Do("POST", "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			backup := r.JSON["backup_codes"].([]any)
			require.Len(t, backup, 10)

			me := e.Do("GET", "/auth/me", nil, tok.Access)
			require.Equal(t, true, me.JSON["mfa_enabled"])
			require.Equal(t, []any{"totp"}, me.JSON["mfa_methods"])

			r = e.Do("POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.Equal(t, true, r.JSON["mfa_required"])
			require.Empty(t, r.Str("access_token"))
			ch := r.Str("challenge_id")
			require.Equal(t, []any{"totp", "backup_code"}, r.JSON["methods"])

			// The activation code's step is spent: it cannot sign in.
			r = e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": ch, "code": code}, "")
			require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))
			require.Equal(t, "mfa_invalid_code", r.Code())

			e.Clock.Advance(30 * time.Second)
			code, _ = mfa.TOTPCode(secret, e.Clock.Now())
			r = e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": ch, "code": code, "method": "totp"}, "")
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.NotEmpty(t, r.Str("access_token"))

			// Replay of the same code, on a new challenge.
			r = e.Do("POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
			ch2 := r.Str("challenge_id")
			r = e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": ch2, "code": code}, "")
			require.Equal(t, "mfa_invalid_code", r.Code())

			// A backup code works once.
			r = e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": ch2, "code": backup[0]}, "")
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			r = e.Do("GET", "/auth/mfa/backup-codes", nil, r.Str("access_token"))
			require.EqualValues(t, 9, r.JSON["remaining"])

			// Disable: the login of tok is older than five minutes now? Not
			// yet, so a code alone suffices.
			e.Clock.Advance(30 * time.Second)
			code, _ = mfa.TOTPCode(secret, e.Clock.Now())
			r = e.Do("POST", "/auth/mfa/disable", map[string]any{"method": "totp", "code": code}, tok.Access)
			require.Equal(t, http.StatusNoContent, r.Status, string(r.Raw))
			me = e.Do("GET", "/auth/me", nil, tok.Access)
			require.Equal(t, false, me.JSON["mfa_enabled"])
			r = e.Do("POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
			require.NotEmpty(t, r.Str("access_token"))
		})
	}
}
