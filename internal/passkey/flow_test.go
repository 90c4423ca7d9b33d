package passkey_test

import (
	"encoding/json"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/passkey/passkeytest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// eachEngine runs fn on SQLite with the in-process cache, and on
// PostgreSQL with Redis when the test URLs are set.
func eachEngine(t *testing.T, fn func(t *testing.T, e *apptest.Env, eng string)) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			extra := map[string]string{}
			if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" && eng == "postgres" {
				extra["GATEHOUSE_REDIS_URL"] = u
			}
			fn(t, apptest.New(t, eng, extra), eng)
		})
	}
}

// TestRegisterAndSignInWithEmailHint: the options follow the policy, the
// passkey is stored, and a sign-in with an email hint answers tokens for
// a session marked MFA, amr swk for a platform authenticator.
func TestRegisterAndSignInWithEmailHint(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		email := "hint-" + eng + "@example.com"
		userID, tok := signedIn(e, email)

		r := e.Do("POST", "/auth/webauthn/register/begin", nil, tok.Access)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		pk := publicKey(t, r)
		require.Equal(t, "gatehouse.test", pk["rp"].(map[string]any)["id"])
		require.Equal(t, "Gatehouse", pk["rp"].(map[string]any)["name"])
		require.Equal(t, email, pk["user"].(map[string]any)["name"])
		require.NotEmpty(t, pk["challenge"])
		sel := pk["authenticatorSelection"].(map[string]any)
		require.Equal(t, "preferred", sel["residentKey"])
		require.Equal(t, "preferred", sel["userVerification"])
		var algs []float64
		for _, p := range pk["pubKeyCredParams"].([]any) {
			algs = append(algs, p.(map[string]any)["alg"].(float64))
		}
		require.Equal(t, []float64{-7, -257, -8}, algs) // ES256, RS256, EdDSA
		require.Empty(t, pk["excludeCredentials"])

		a := passkeytest.New(origin)
		cred, c, err := a.Create(options(t, r))
		require.NoError(t, err)
		r = e.Do("POST", "/auth/webauthn/register/finish", map[string]any{"credential": json.RawMessage(cred), "name": "  Laptop "}, tok.Access)
		require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
		require.NotEmpty(t, r.Str("id"))
		require.Equal(t, "Laptop", r.Str("name"))
		require.NotEmpty(t, r.Str("created_at"))
		stored, err := e.App.DB.GetWebAuthnCredential(t.Context(), userID, r.Str("id"))
		require.NoError(t, err)
		require.Equal(t, c.ID, stored.CredentialID)
		require.Equal(t, "platform", stored.Attachment)
		require.Equal(t, []string{"internal", "hybrid"}, stored.Transports)

		// The same answer again: its challenge is spent.
		r = e.Do("POST", "/auth/webauthn/register/finish", map[string]any{"credential": json.RawMessage(cred)}, tok.Access)
		require.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))
		require.Equal(t, "invalid_token", r.Code())

		id, opts := begin(t, e, email)
		var hinted map[string]map[string]any
		require.NoError(t, json.Unmarshal(opts, &hinted))
		require.Len(t, hinted["publicKey"]["allowCredentials"], 1)
		assertion, err := a.Get(opts, nil)
		require.NoError(t, err)
		r = finish(e, id, assertion)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Equal(t, "Bearer", r.Str("token_type"))
		require.NotEmpty(t, r.Str("refresh_token"))
		require.Equal(t, userID, r.JSON["user"].(map[string]any)["id"])
		require.Equal(t, []any{"swk"}, apptest.Claims(t, r.Str("access_token"))["amr"])
		require.Equal(t, true, currentSession(t, e, r.Str("access_token"))["mfa"])

		// Replaying the assertion: the challenge is gone.
		r = finish(e, id, assertion)
		require.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))
		require.Equal(t, "invalid_token", r.Code())

		stored, err = e.App.DB.GetWebAuthnCredential(t.Context(), userID, stored.ID)
		require.NoError(t, err)
		require.Equal(t, uint32(1), stored.SignCount)
		require.NotNil(t, stored.LastUsedAt)

		logs, err := e.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: userID, Action: "user.passkey_added", Limit: 5})
		require.NoError(t, err)
		require.Len(t, logs, 1)
	})
}

// TestDiscoverableSignIn: no email, an empty allow list, the account found
// by the user handle; a device-bound security key gives amr hwk.
func TestDiscoverableSignIn(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		userID, tok := signedIn(e, "disc-"+eng+"@example.com")
		key := passkeytest.New(origin)
		key.Attachment = "cross-platform"
		r, _ := register(t, e, key, tok.Access, "")
		require.Equal(t, "Security key", r.Str("name"))

		r = e.Do("POST", "/auth/webauthn/authenticate/begin", nil, "") // no body at all
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Empty(t, publicKey(t, r)["allowCredentials"])
		assertion, err := key.Get(options(t, r), nil)
		require.NoError(t, err)
		r = finish(e, r.Str("challenge_id"), assertion)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Equal(t, userID, r.JSON["user"].(map[string]any)["id"])
		require.Equal(t, []any{"hwk"}, apptest.Claims(t, r.Str("access_token"))["amr"])

		// A synced passkey on a phone (cross-platform but backup eligible) is swk.
		phone := passkeytest.New(origin)
		phone.Attachment, phone.BackupEligible = "cross-platform", true
		r, _ = register(t, e, phone, tok.Access, "")
		require.Equal(t, "Passkey", r.Str("name"))
		r = login(t, e, phone, "")
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Equal(t, []any{"swk"}, apptest.Claims(t, r.Str("access_token"))["amr"])
	})
}

// TestUnknownEmailLooksLikeAnAccount: an email without an account or
// without passkeys gets options of the same shape, stable across asks,
// and no assertion finishes that sign-in.
func TestUnknownEmailLooksLikeAnAccount(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		email := "known-" + eng + "@example.com"
		_, _, a, _ := userWithPasskey(t, e, email)
		e.Register("nopasskey-"+eng+"@example.com", apptest.StrongPassword)

		shape := func(email string) (map[string]bool, any) {
			r := e.Do("POST", "/auth/webauthn/authenticate/begin", map[string]any{"email": email}, "")
			pk := publicKey(t, r)
			keys := map[string]bool{}
			for k := range pk {
				keys[k] = true
			}
			allow := pk["allowCredentials"].([]any)
			require.Len(t, allow, 1)
			d := allow[0].(map[string]any)
			require.Equal(t, "public-key", d["type"])
			return keys, d["id"]
		}
		known, _ := shape(email)
		unknown, id1 := shape("nobody-" + eng + "@example.com")
		_, id2 := shape("Nobody-" + eng + "@example.com")
		noPasskey, _ := shape("nopasskey-" + eng + "@example.com")
		require.Equal(t, known, unknown)
		require.Equal(t, known, noPasskey)
		require.Equal(t, id1, id2, "the stand-in is stable")

		id, _ := begin(t, e, "nobody-"+eng+"@example.com")
		_, opts := begin(t, e, email)
		assertion, err := a.Get(opts, nil)
		require.NoError(t, err)
		r := finish(e, id, assertion)
		require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))
		require.Equal(t, "invalid_credentials", r.Code())

		// A bad email is a validation error naming the field.
		r = e.Do("POST", "/auth/webauthn/authenticate/begin", map[string]any{"email": "not an email"}, "")
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
		require.Contains(t, string(r.Raw), "body.email")
	})
}

// TestChallengeSingleUseUnderConcurrency: twenty finishes of one
// challenge at once: exactly one session, the rest invalid_token.
func TestChallengeSingleUseUnderConcurrency(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		email := "race-" + eng + "@example.com"
		_, _, a, _ := userWithPasskey(t, e, email)

		id, opts := begin(t, e, email)
		assertion, err := a.Get(opts, nil)
		require.NoError(t, err)
		statuses := make([]int, 20)
		codes := make([]string, 20)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Go(func() {
				r := finish(e, id, assertion)
				statuses[i], codes[i] = r.Status, r.Code()
			})
		}
		wg.Wait()
		ok := 0
		for i, s := range statuses {
			if s == http.StatusOK {
				ok++
				continue
			}
			require.Equal(t, http.StatusBadRequest, s)
			require.Equal(t, "invalid_token", codes[i])
		}
		require.Equal(t, 1, ok)
	})
}

// TestWrongOriginOrRPIDRefused: a page on another origin, or an
// authenticator scoped to another relying party, cannot register or sign in.
func TestWrongOriginOrRPIDRefused(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		email := "origin-" + eng + "@example.com"
		_, tok := signedIn(e, email)

		evil := passkeytest.New("http://gatehouse.test.evil.example")
		r, _ := register(t, e, evil, tok.Access, "")
		require.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))
		require.Equal(t, "bad_request", r.Code())
		other := passkeytest.New(origin)
		other.RPID = "evil.example"
		r, _ = register(t, e, other, tok.Access, "")
		require.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))

		a := passkeytest.New(origin)
		mustRegister(t, e, a, tok.Access)
		a.Origin = "http://evil.example"
		r = login(t, e, a, email)
		require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))
		require.Equal(t, "invalid_credentials", r.Code())
		a.Origin, a.RPID = origin, "evil.example"
		r = login(t, e, a, "")
		require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))
		a.RPID = ""
		r = login(t, e, a, email)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	})
}

// TestCounterGoingBackwardsIsRefused: an assertion whose counter is not
// above the stored one is refused and raises security.alert; an
// authenticator without a counter (always zero) keeps working.
func TestCounterGoingBackwardsIsRefused(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		email := "clone-" + eng + "@example.com"
		userID, tok, a, c := userWithPasskey(t, e, email)
		for range 3 {
			r := login(t, e, a, email)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		}
		c.Counter = 1 // a clone made after the first use: it signs with 2 < 3
		r := login(t, e, a, email)
		require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))
		require.Equal(t, "invalid_credentials", r.Code())
		c.Counter = 2 // equal to the stored 3 after its increment: refused too
		r = login(t, e, a, "")
		require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))

		logs, err := e.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: userID, Action: "security.alert", Limit: 10})
		require.NoError(t, err)
		require.Len(t, logs, 2)
		require.Equal(t, "passkey_clone_suspected", logs[0].Metadata["reason"])
		require.EqualValues(t, 3, logs[0].Metadata["stored_count"])

		c.Counter = 10 // the real authenticator, ahead of the stored counter, still works
		r = login(t, e, a, email)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))

		zero := passkeytest.New(origin)
		zero.NoCounter = true
		mustRegister(t, e, zero, tok.Access)
		for range 2 {
			r = login(t, e, zero, "")
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		}
	})
}

// TestSecondRegistrationExcludesTheFirst: the options list the user's
// passkeys, so the authenticator that holds one declines; another
// authenticator registers.
func TestSecondRegistrationExcludesTheFirst(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		_, tok := signedIn(e, "exclude-"+eng+"@example.com")
		a := passkeytest.New(origin)
		c := mustRegister(t, e, a, tok.Access)

		r := e.Do("POST", "/auth/webauthn/register/begin", nil, tok.Access)
		ex := publicKey(t, r)["excludeCredentials"].([]any)
		require.Len(t, ex, 1)
		_, _, err := a.Create(options(t, r))
		require.ErrorIs(t, err, passkeytest.ErrExcluded)

		b := passkeytest.New(origin)
		cred, _, err := b.Create(options(t, r))
		require.NoError(t, err)
		r = e.Do("POST", "/auth/webauthn/register/finish", map[string]any{"credential": json.RawMessage(cred)}, tok.Access)
		require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))

		// Another account cannot claim a registered credential id.
		_, other := signedIn(e, "exclude2-"+eng+"@example.com")
		thief := passkeytest.New(origin)
		thief.NextID = c.ID
		r, _ = register(t, e, thief, other.Access, "")
		require.Equal(t, http.StatusConflict, r.Status, string(r.Raw))
		require.Equal(t, "conflict", r.Code())
	})
}

// TestManagePasskeys: list, rename, delete; another user's passkey is
// not_found; the last way to sign in cannot be deleted.
func TestManagePasskeys(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		userID, tok := signedIn(e, "manage-"+eng+"@example.com")
		_, other := signedIn(e, "manage-other-"+eng+"@example.com")
		a, b := passkeytest.New(origin), passkeytest.New(origin)
		r1, _ := register(t, e, a, tok.Access, "One")
		r2, _ := register(t, e, b, tok.Access, "Two")
		require.Equal(t, http.StatusCreated, r1.Status, string(r1.Raw))
		require.Equal(t, http.StatusCreated, r2.Status, string(r2.Raw))
		id1, id2 := r1.Str("id"), r2.Str("id")

		r := e.Do("GET", "/auth/webauthn/credentials", nil, tok.Access)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		items := r.JSON["items"].([]any)
		require.Len(t, items, 2)
		require.Equal(t, "One", items[0].(map[string]any)["name"])
		require.Nil(t, items[0].(map[string]any)["last_used_at"])
		require.Nil(t, r.JSON["next_cursor"])
		r = e.Do("GET", "/auth/webauthn/credentials", nil, other.Access)
		require.Empty(t, r.JSON["items"])

		r = e.Do("PATCH", "/auth/webauthn/credentials/"+id1, map[string]any{"name": "Work laptop"}, tok.Access)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Equal(t, "Work laptop", r.Str("name"))
		r = e.Do("PATCH", "/auth/webauthn/credentials/"+id1, map[string]any{"name": ""}, tok.Access)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
		r = e.Do("PATCH", "/auth/webauthn/credentials/"+id1, map[string]any{"name": "   "}, tok.Access)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
		require.Contains(t, string(r.Raw), "body.name")

		// Somebody else's passkey does not exist for them.
		r = e.Do("PATCH", "/auth/webauthn/credentials/"+id1, map[string]any{"name": "mine"}, other.Access)
		require.Equal(t, http.StatusNotFound, r.Status, string(r.Raw))
		require.Equal(t, "not_found", r.Code())
		r = e.Do("DELETE", "/auth/webauthn/credentials/"+id1, nil, other.Access)
		require.Equal(t, http.StatusNotFound, r.Status, string(r.Raw))
		r = e.Do("DELETE", "/auth/webauthn/credentials/nope", nil, tok.Access)
		require.Equal(t, http.StatusNotFound, r.Status, string(r.Raw))

		// Without a password, the last passkey stays.
		u, err := e.App.DB.GetUser(t.Context(), userID)
		require.NoError(t, err)
		u.PasswordHash = ""
		require.NoError(t, e.App.DB.UpdateUser(t.Context(), u))
		r = e.Do("DELETE", "/auth/webauthn/credentials/"+id1, nil, tok.Access)
		require.Equal(t, http.StatusNoContent, r.Status, string(r.Raw))
		r = e.Do("DELETE", "/auth/webauthn/credentials/"+id2, nil, tok.Access)
		require.Equal(t, http.StatusConflict, r.Status, string(r.Raw))
		require.Equal(t, "last_login_method", r.Code())

		// A linked social account is another way in.
		require.NoError(t, e.App.DB.CreateOAuthAccount(t.Context(), gatehouse.OAuthAccount{ID: "oa-" + eng, UserID: userID,
			Provider: "github", Subject: "42", Email: "x@example.com", CreatedAt: e.Clock.Now()}))
		r = e.Do("DELETE", "/auth/webauthn/credentials/"+id2, nil, tok.Access)
		require.Equal(t, http.StatusNoContent, r.Status, string(r.Raw))
		r = e.Do("GET", "/auth/webauthn/credentials", nil, tok.Access)
		require.Empty(t, r.JSON["items"])

		logs, err := e.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: userID, Action: "user.passkey_removed", Limit: 5})
		require.NoError(t, err)
		require.Len(t, logs, 2)

		// The deleted passkey no longer signs in.
		r = login(t, e, a, "")
		require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))
	})
}

// TestPasskeySkipsTheMFAChallenge: an account with TOTP gets a challenge
// for its password, but a passkey sign-in with user verification answers
// tokens at once (without it, see TestPasskeyWithoutUVIsOneFactor).
func TestPasskeySkipsTheMFAChallenge(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		email := "totp-" + eng + "@example.com"
		_, tok, a, _ := userWithPasskey(t, e, email)

		r := e.Do("POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, tok.Access)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		code, err := mfa.TOTPCode(r.Str("secret"), e.Clock.Now())
		require.NoError(t, err)
		r = e.Do("POST", "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, tok.Access)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		r = e.Do("POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
		require.Equal(t, true, r.JSON["mfa_required"])

		r = login(t, e, a, email)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Nil(t, r.JSON["mfa_required"])
		require.NotEmpty(t, r.Str("access_token"))
		require.Equal(t, true, currentSession(t, e, r.Str("access_token"))["mfa"])
	})
}

// TestBadInput: malformed credentials are 422 naming the field, unknown
// or expired challenges 400 invalid_token, never a 500.
func TestBadInput(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *apptest.Env, eng string) {
		email := "bad-" + eng + "@example.com"
		_, tok := signedIn(e, email)
		for _, cred := range []any{"a string", map[string]any{"id": "x"}, 42, map[string]any{}} {
			r := e.Do("POST", "/auth/webauthn/register/finish", map[string]any{"credential": cred}, tok.Access)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
			require.Contains(t, string(r.Raw), "body.credential")
			id, _ := begin(t, e, "")
			r = finish(e, id, mustJSON(t, cred))
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
			require.Contains(t, string(r.Raw), "body.credential")
		}
		r := e.Do("POST", "/auth/webauthn/register/finish", map[string]any{}, tok.Access)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
		r = e.Do("POST", "/auth/webauthn/register/begin", nil, "")
		require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))

		// A registration that was never begun (another user's options).
		_, other := signedIn(e, "bad-other-"+eng+"@example.com")
		opts := options(t, e.Do("POST", "/auth/webauthn/register/begin", nil, other.Access))
		a := passkeytest.New(origin)
		cred, _, err := a.Create(opts)
		require.NoError(t, err)
		r = e.Do("POST", "/auth/webauthn/register/finish", map[string]any{"credential": json.RawMessage(cred)}, tok.Access)
		require.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))
		require.Equal(t, "invalid_token", r.Code())

		// Unknown challenge id; and one that expired after five minutes.
		mustRegister(t, e, passkeytest.New(origin), tok.Access)
		b := passkeytest.New(origin)
		mustRegister(t, e, b, tok.Access)
		id, opts := begin(t, e, email)
		assertion, err := b.Get(opts, nil)
		require.NoError(t, err)
		r = finish(e, "unknown", assertion)
		require.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))
		require.Equal(t, "invalid_token", r.Code())
		if _, ok := e.App.Cache.(*cache.Memory); ok { // it follows the test clock
			e.Clock.Advance(5*time.Minute + time.Second)
			r = finish(e, id, assertion)
			require.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))
			require.Equal(t, "invalid_token", r.Code())
		}

		// A passkey signs in without the password: adding one needs a
		// sign-in within the last five minutes, not just a live token.
		e.Clock.Advance(5*time.Minute + time.Second)
		r = e.Do("POST", "/auth/webauthn/register/begin", nil, tok.Access)
		require.Equal(t, http.StatusForbidden, r.Status, string(r.Raw))
		require.Equal(t, "recent_auth_required", r.Code())
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
