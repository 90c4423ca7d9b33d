package passkey_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
)

// enableTOTP turns TOTP on for the signed-in account and answers its
// secret.
func enableTOTP(t *testing.T, e *apptest.Env, access string) string {
	t.Helper()
	r := e.Do("POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	secret := r.Str("secret")
	code, err := mfa.TOTPCode(secret, e.Clock.Now())
	require.NoError(t, err)
	r = e.Do("POST", "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	return secret
}

// TestPasskeyWithoutUVIsOneFactor: an assertion with user presence only
// (no PIN or biometric: the UV flag clear) proves possession of the key
// and nothing more. An account with MFA gets its challenge, and only the
// second factor makes the session MFA; an account without MFA signs in,
// in a session not marked MFA, with the key's amr alone.
func TestPasskeyWithoutUVIsOneFactor(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		// Without MFA: signed in, one factor.
		plain := "no-uv-plain-" + eng + "@example.com"
		_, _, pa, _ := userWithPasskey(t, e, plain)
		pa.NoUV = true
		r := login(t, e, pa, plain)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Nil(t, r.JSON["mfa_required"])
		require.Equal(t, []any{"swk"}, apptest.Claims(t, r.Str("access_token"))["amr"])
		require.Equal(t, false, currentSession(t, e, r.Str("access_token"))["mfa"])

		// With TOTP: a challenge, not tokens (email hint and discoverable).
		email := "no-uv-" + eng + "@example.com"
		_, tok, a, _ := userWithPasskey(t, e, email)
		secret := enableTOTP(t, e, tok.Access)
		a.NoUV = true
		for _, hint := range []string{email, ""} {
			r = login(t, e, a, hint)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.Equal(t, true, r.JSON["mfa_required"], string(r.Raw))
			require.Empty(t, r.Str("access_token"))
			require.NotEmpty(t, r.Str("challenge_id"))
		}

		// Answering the challenge signs in with both factors.
		e.Clock.Advance(30 * time.Second) // a TOTP code is single use
		code, err := mfa.TOTPCode(secret, e.Clock.Now())
		require.NoError(t, err)
		v := e.Do("POST", "/auth/mfa/verify", map[string]any{"challenge_id": r.Str("challenge_id"), "code": code}, "")
		require.Equal(t, http.StatusOK, v.Status, string(v.Raw))
		require.Equal(t, []any{"swk", "otp"}, apptest.Claims(t, v.Str("access_token"))["amr"])
		require.Equal(t, true, currentSession(t, e, v.Str("access_token"))["mfa"])

		// With user verification the passkey alone is still enough.
		a.NoUV = false
		r = login(t, e, a, email)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Nil(t, r.JSON["mfa_required"])
		require.Equal(t, []any{"swk"}, apptest.Claims(t, r.Str("access_token"))["amr"])
		require.Equal(t, true, currentSession(t, e, r.Str("access_token"))["mfa"])
	})
}

// TestOddPasskeyIDsAreNotFound: an id that cannot be one of ours (not a
// UUID: invalid UTF-8, NUL, too long) is 404 not_found, never a 500 from
// the database.
func TestOddPasskeyIDsAreNotFound(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		_, tok := signedIn(e, "odd-ids-"+eng+"@example.com")
		for _, id := range []string{"%FF", "%00", "a%00b", "%C3%28", "nope", "0191d0c4-6b7a-7d3e-9f00-00000000000G",
			"0191D0C4-6B7A-7D3E-9F00-000000000000"} {
			r := e.Do("DELETE", "/auth/webauthn/credentials/"+id, nil, tok.Access)
			apptest.Expect(t, r, http.StatusNotFound, "not_found", id)
			r = e.Do("PATCH", "/auth/webauthn/credentials/"+id, map[string]any{"name": "x"}, tok.Access)
			apptest.Expect(t, r, http.StatusNotFound, "not_found", id)
			r = e.Do("DELETE", "/oauth/accounts/"+id, nil, tok.Access)
			apptest.Expect(t, r, http.StatusNotFound, "not_found", id)
		}
		// A well-formed id that names nothing is not_found too.
		r := e.Do("DELETE", "/auth/webauthn/credentials/0191d0c4-6b7a-7d3e-9f00-000000000000", nil, tok.Access)
		apptest.Expect(t, r, http.StatusNotFound, "not_found")
	})
}
