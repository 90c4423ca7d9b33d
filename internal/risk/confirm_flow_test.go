package risk_test

import (
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest/risktest"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// heldSignIn signs the account in from the blocklist with a new browser,
// which steps up to an emailed confirmation, and answers the waiting
// browser, its challenge id and the link's token.
func heldSignIn(t *testing.T, env *apptest.Env, email string) (*risktest.Browser, string, string) {
	t.Helper()
	waiting := &risktest.Browser{UA: uaChrome, IP: blocked.IP}
	r := waiting.Do(env, "POST", "/auth/login", map[string]any{"email": email, "password": apptest.StrongPassword}, "")
	apptest.Expect(t, r, http.StatusOK, "")
	require.Equal(t, []any{risk.MethodEmailConfirmation}, r.JSON["methods"], string(r.Raw))
	tok := apptest.TokenFromLink(waitMail(t, env, email, "Confirm your"), "http://gatehouse.test/confirm-sign-in?")
	require.NotEmpty(t, tok)
	return waiting, r.Str("challenge_id"), tok
}

// poll is the waiting client's POST /auth/mfa/verify for an emailed
// confirmation.
func poll(b *risktest.Browser, env *apptest.Env, challengeID string) *apptest.Response {
	return b.Do(env, "POST", "/auth/mfa/verify", map[string]any{"challenge_id": challengeID, "method": risk.MethodEmailConfirmation}, "")
}

// The step-up by email finishes on the device that is waiting, not in the
// browser that clicks the link: the waiting client polls POST
// /auth/mfa/verify with method email_confirmation, 202 with Retry-After
// until the click, then 200 with tokens exactly once, however many polls
// race; the click answers 204 without tokens. The session is the waiting
// client's. A link whose held sign-in expired is invalid_token.
func TestEmailConfirmationFinishesOnTheWaitingClient(t *testing.T) {
	// On PostgreSQL the held sign-in lives in Redis when a test Redis
	// runs, as in production: its single use rests on the cache's Take.
	withRedis := func(t *testing.T) map[string]string {
		cfg := riskConfig(t)
		if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" && strings.HasSuffix(t.Name(), "/postgres") {
			cfg["GATEHOUSE_REDIS_URL"] = u
		}
		return cfg
	}
	risktest.ForEachEngine(t, withRedis, func(t *testing.T, env *apptest.Env) {
		email, uid := newUser(t, env)
		require.Equal(t, http.StatusOK, signIn(env, email, apptest.StrongPassword, risktest.Berlin.IP, uaFirefox).Status)
		env.Clock.Advance(time.Hour)
		waiting, id, tok := heldSignIn(t, env, email)

		// Before the click: 202, the challenge again, and when to ask next.
		for range 2 {
			p := poll(waiting, env, id)
			apptest.Expect(t, p, http.StatusAccepted, "")
			require.Equal(t, "5", p.Header.Get("Retry-After"))
			require.Equal(t, id, p.Str("challenge_id"))
			require.Equal(t, true, p.JSON["mfa_required"])
			require.Empty(t, p.Str("access_token"))
		}
		apptest.Expect(t, poll(waiting, env, "no-such-challenge"), http.StatusUnauthorized, "mfa_invalid_code")
		// Other methods still need a code.
		apptest.Expect(t, waiting.Do(env, "POST", "/auth/mfa/verify", map[string]any{"challenge_id": id, "method": "totp"}, ""),
			http.StatusUnprocessableEntity, "validation_failed")

		// The click, from another browser somewhere else: no tokens.
		clicker := &risktest.Browser{UA: uaSafari, IP: risktest.Paris.IP}
		c := clicker.Do(env, "POST", "/auth/login/confirm", map[string]any{"token": tok}, "")
		apptest.Expect(t, c, http.StatusNoContent, "")
		require.NotContains(t, string(c.Raw), "access_token")
		require.Len(t, audits(t, env, uid, string(gatehouse.EventUserLogin)), 1, "the click starts no session")

		// Twenty polls race: one session.
		answers := make([]*apptest.Response, 20)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() {
				r, err := env.Send("POST", "/auth/mfa/verify", map[string]any{"challenge_id": id, "method": risk.MethodEmailConfirmation}, "",
					map[string]string{"User-Agent": uaChrome, "X-Forwarded-For": blocked.IP})
				if err == nil {
					answers[i] = r
				}
			})
		}
		wg.Wait()
		var access string
		for i, r := range answers {
			require.NotNil(t, r, "poll %d failed", i)
			if r.Status == http.StatusOK {
				require.Empty(t, access, "a second session from one confirmation")
				access = r.Str("access_token")
				require.NotEmpty(t, access, string(r.Raw))
				continue
			}
			apptest.Expect(t, r, http.StatusUnauthorized, "mfa_invalid_code", "poll %d", i)
		}
		require.NotEmpty(t, access, "no poll got the session")
		require.Equal(t, []any{"pwd", "email"}, apptest.Claims(t, access)["amr"])
		logins := audits(t, env, uid, string(gatehouse.EventUserLogin))
		require.Len(t, logins, 2)
		require.Equal(t, blocked.IP, logins[0].IPAddress, "the waiting client's session")
		require.Equal(t, uaChrome, logins[0].UserAgent)
		apptest.Expect(t, poll(waiting, env, id), http.StatusUnauthorized, "mfa_invalid_code")
		apptest.Expect(t, clicker.Do(env, "POST", "/auth/login/confirm", map[string]any{"token": tok}, ""), http.StatusBadRequest, "invalid_token")

		// A held sign-in that expired: its link and its polls are refused.
		env.Clock.Advance(time.Hour)
		waiting, id, tok = heldSignIn(t, env, email)
		env.Clock.Advance(risk.ConfirmTTL + time.Second)
		apptest.Expect(t, clicker.Do(env, "POST", "/auth/login/confirm", map[string]any{"token": tok}, ""), http.StatusBadRequest, "invalid_token")
		apptest.Expect(t, poll(waiting, env, id), http.StatusUnauthorized, "mfa_invalid_code")

		// A held sign-in the cache no longer has (lost, or gone with its
		// challenge) while its link is still valid: invalid_token too.
		env.Clock.Advance(time.Hour)
		_, id, tok = heldSignIn(t, env, email)
		require.NoError(t, env.App.Cache.Delete(t.Context(), "risk:held:"+hex.EncodeToString(token.Hash(id))))
		apptest.Expect(t, clicker.Do(env, "POST", "/auth/login/confirm", map[string]any{"token": tok}, ""), http.StatusBadRequest, "invalid_token")
		require.Len(t, audits(t, env, uid, string(gatehouse.EventUserLogin)), 2)
	})
}
