package passkey_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/passkey"
	"github.com/gatehouse-auth/gatehouse/internal/passkey/passkeytest"
)

// genAuthenticator draws a device: platform or roaming, synced or not,
// with or without a signature counter.
func genAuthenticator(t *rapid.T) *passkeytest.Authenticator {
	a := passkeytest.New(origin)
	a.Attachment = rapid.SampledFrom([]string{"platform", "cross-platform", ""}).Draw(t, "attachment")
	a.BackupEligible = rapid.Bool().Draw(t, "backup_eligible")
	a.NoCounter = rapid.Bool().Draw(t, "no_counter")
	return a
}

// TestProperty40_WebAuthnRegistrationStoresTheCredential: whatever the
// authenticator and the name, a finished registration stores exactly that
// credential (id, flags, attachment, trimmed name) for the user, and lists it.
func TestProperty40_WebAuthnRegistrationStoresTheCredential(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		userID, tok := signedIn(e, "prop40-"+eng+"@example.com")
		e.Check(t, func(rt *rapid.T) {
			a := genAuthenticator(rt)
			name := rapid.StringMatching(`[ ]{0,2}[\p{L}\p{N} '._-]{0,96}[ ]{0,2}`).Draw(rt, "name")
			r, c := register(t, e, a, tok.Access, name)
			if strings.TrimSpace(name) == "" && name != "" {
				require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
				return
			}
			require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
			stored, err := e.App.DB.GetWebAuthnCredential(t.Context(), userID, r.Str("id"))
			require.NoError(t, err)
			require.Equal(t, c.ID, stored.CredentialID)
			require.Equal(t, userID, stored.UserID)
			require.Equal(t, a.Attachment, stored.Attachment)
			require.Equal(t, a.BackupEligible, stored.BackupEligible)
			require.Zero(t, stored.SignCount)
			require.NotEmpty(t, stored.PublicKey)
			want := strings.TrimSpace(name)
			if want == "" {
				want = "Passkey"
				if passkey.AMR(a.Attachment, a.BackupEligible) == passkey.AMRHard {
					want = "Security key"
				}
			}
			require.Equal(t, want, stored.Name)
			require.Equal(t, want, r.Str("name"))
			found, err := e.App.DB.GetWebAuthnCredentialByCredentialID(t.Context(), c.ID)
			require.NoError(t, err)
			require.Equal(t, stored.ID, found.ID)
			// Keep the user's list short so every case costs the same.
			require.NoError(t, e.App.DB.DeleteWebAuthnCredential(t.Context(), userID, stored.ID))
		})
	})
}

// TestProperty39_WebAuthnAuthenticationCreatesASession: whatever the
// authenticator, a verified assertion (with an email hint or
// discoverable) starts an MFA session for the passkey's owner whose amr
// follows the documented rule, and the counter is stored.
func TestProperty39_WebAuthnAuthenticationCreatesASession(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		email := "prop39-" + eng + "@example.com"
		userID, tok := signedIn(e, email)
		e.Check(t, func(rt *rapid.T) {
			a := genAuthenticator(rt)
			r, c := register(t, e, a, tok.Access, "")
			require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
			hint := ""
			if rapid.Bool().Draw(rt, "email_hint") {
				hint = email
			}
			for range rapid.IntRange(1, 2).Draw(rt, "sign_ins") {
				r = login(t, e, a, hint)
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				require.Equal(t, userID, r.JSON["user"].(map[string]any)["id"])
				require.Equal(t, []any{passkey.AMR(a.Attachment, a.BackupEligible)}, apptest.Claims(t, r.Str("access_token"))["amr"])
				s, err := e.App.DB.GetSession(t.Context(), r.Str("session_id"))
				require.NoError(t, err)
				require.True(t, s.MFA)
				require.Equal(t, userID, s.UserID)
			}
			stored, err := e.App.DB.GetWebAuthnCredentialByCredentialID(t.Context(), c.ID)
			require.NoError(t, err)
			require.Equal(t, c.Counter, stored.SignCount)
			require.NotNil(t, stored.LastUsedAt)
			require.NoError(t, e.App.DB.DeleteWebAuthnCredential(t.Context(), userID, stored.ID))
		})
	})
}
