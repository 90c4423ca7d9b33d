package account_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail/mailtest"
	"github.com/gatehouse-auth/gatehouse/internal/password"
)

// Property 1: a valid registration creates an unverified account with the
// default role and the lower-cased email, stores an Argon2id hash of the
// password (never the password) and emails a verification link.
func TestProperty1_ValidRegistrationCreatesHashedAccount(t *testing.T) {
	hasher := password.NewHasher(password.TestParams)
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			spelled := drawCase(rt, "email_case", email)
			name := drawName(rt)
			pw := drawPassword(rt, "password", email, spelled, name)

			r := call(rt, env, "POST", "/auth/register", map[string]any{"email": spelled, "password": pw, "name": name}, "")
			apptest.Expect(rt, r, http.StatusCreated, "")
			u := obj(rt, r.JSON, "user")
			id, _ := u["id"].(string)
			require.NotEmpty(rt, id)
			require.Equal(rt, email, u["email"], "the email is not lower-cased")
			require.Equal(rt, false, u["email_verified"])
			require.Equal(rt, strings.TrimSpace(name), u["name"])
			require.Equal(rt, []any{"user"}, u["roles"])
			require.Equal(rt, false, u["locked"])
			require.Equal(rt, false, u["mfa_enabled"])
			require.NotContains(rt, string(r.Raw), pw, "the answer echoes the password")
			require.NotContains(rt, string(r.Raw), "argon2", "the answer leaks the hash")

			stored, err := env.App.DB.GetUser(context.Background(), id)
			require.NoError(rt, err)
			require.Equal(rt, email, stored.Email.String())
			require.Equal(rt, []string{"user"}, stored.Roles)
			require.False(rt, stored.EmailVerified)
			require.True(rt, strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$m="), "hash %q is not an argon2id PHC string", stored.PasswordHash)
			require.Len(rt, strings.Split(stored.PasswordHash, "$"), 6, "PHC string %q", stored.PasswordHash)
			require.NotEqual(rt, pw, stored.PasswordHash)
			require.NotContains(rt, stored.PasswordHash, pw)
			ok, _, err := hasher.Verify(context.Background(), pw, stored.PasswordHash)
			require.NoError(rt, err)
			require.True(rt, ok, "the stored hash does not verify the password")
			ok, _, err = hasher.Verify(context.Background(), pw+"x", stored.PasswordHash)
			require.NoError(rt, err)
			require.False(rt, ok, "the stored hash verifies another password")

			m := waitMail(rt, env, email, 1)
			require.NotEmpty(rt, tokenIn(rt, m, verifyLink+"?token="))
			requireNoSecret(rt, []mailtest.Received{m}, pw)
		})
	})
}

// Property 2: registering again with any spelling of a taken email (case,
// surrounding spaces) answers 409 email_taken and changes nothing.
func TestProperty2_DuplicateEmailRejected(t *testing.T) {
	hasher := password.NewHasher(password.TestParams)
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			id := register(rt, env, drawCase(rt, "first_case", email), pw, "")["id"]

			again := drawCase(rt, "second_case", email)
			if rapid.Bool().Draw(rt, "pad") {
				again = "  " + again + " "
			}
			pw2 := drawPassword(rt, "password2", email)
			r := call(rt, env, "POST", "/auth/register", map[string]any{"email": again, "password": pw2, "name": drawName(rt)}, "")
			apptest.Expect(rt, r, http.StatusConflict, "email_taken")

			require.Equal(rt, 1, countUsers(rt, env, email), "a second account exists")
			u, err := env.App.DB.GetUserByEmail(context.Background(), gatehouse.Email(email))
			require.NoError(rt, err)
			require.Equal(rt, id, u.ID, "the account changed")
			ok, _, err := hasher.Verify(context.Background(), pw, u.PasswordHash)
			require.NoError(rt, err)
			require.True(rt, ok, "the refused registration changed the password")
			require.Len(rt, emailJobs(rt, env, email), 1, "the refused registration queued an email")
		})
	})
}

func verify(t require.TestingT, env *apptest.Env, tok string) *apptest.Response {
	return call(t, env, "POST", "/auth/verify-email", map[string]any{"token": tok}, "")
}

// Property 6: the emailed token verifies the email, once.
func TestProperty6_ValidTokenVerifiesEmail(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			id := register(rt, env, email, pw, "")["id"]
			tok := tokenIn(rt, waitMail(rt, env, email, 1), verifyLink+"?token=")

			garbage := rapid.StringMatching(`[A-Za-z0-9_-]{1,64}`).Draw(rt, "garbage")
			if garbage != tok {
				apptest.Expect(rt, verify(rt, env, garbage), http.StatusBadRequest, "invalid_token")
			}
			r := verify(rt, env, tok)
			apptest.Expect(rt, r, http.StatusOK, "")
			u := obj(rt, r.JSON, "user")
			require.Equal(rt, id, u["id"])
			require.Equal(rt, true, u["email_verified"])

			access := login(rt, env, email, pw).Str("access_token")
			me := call(rt, env, "GET", "/auth/me", nil, access)
			apptest.Expect(rt, me, http.StatusOK, "")
			require.Equal(rt, true, me.JSON["email_verified"])

			apptest.Expect(rt, verify(rt, env, tok), http.StatusBadRequest, "invalid_token")
		})
	})
}

// Property 7: each resend supersedes every earlier link; only the newest
// works. A resend for an unknown email answers 202 and sends nothing.
func TestProperty7_TokenRegenerationInvalidatesPrevious(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		var unknown []string
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			id := register(rt, env, email, pw, "")["id"].(string)
			n := rapid.IntRange(1, 3).Draw(rt, "resends")
			for range n {
				r := call(rt, env, "POST", "/auth/verify-email/resend", map[string]any{"email": drawCase(rt, "resend_case", email)}, "")
				apptest.Expect(rt, r, http.StatusAccepted, "")
			}
			// The links as queued, in order (Property 6 follows delivered
			// ones; waiting for delivery here would only add latency).
			tokens := queuedTokens(rt, env, email, verifyLink+"?token=")
			require.Len(rt, tokens, n+1, "one verification email per registration and resend")
			sorted := slices.Clone(tokens)
			slices.Sort(sorted)
			require.Len(rt, slices.Compact(sorted), n+1, "a resend reused a token")

			newest, older := tokens[n], rapid.Permutation(tokens[:n]).Draw(rt, "try_order")
			newestFirst := rapid.Bool().Draw(rt, "newest_first")
			if newestFirst {
				apptest.Expect(rt, verify(rt, env, newest), http.StatusOK, "")
			}
			for _, old := range older {
				apptest.Expect(rt, verify(rt, env, old), http.StatusBadRequest, "invalid_token", "a superseded token")
			}
			u, err := env.App.DB.GetUser(context.Background(), id)
			require.NoError(rt, err)
			require.Equal(rt, newestFirst, u.EmailVerified, "a superseded token verified the email")
			if !newestFirst {
				apptest.Expect(rt, verify(rt, env, newest), http.StatusOK, "")
			}

			stranger := drawEmail(rt, "unknown")
			unknown = append(unknown, stranger)
			apptest.Expect(rt, call(rt, env, "POST", "/auth/verify-email/resend", map[string]any{"email": stranger}, ""), http.StatusAccepted, "")
			require.Empty(rt, emailJobs(rt, env, stranger), "an email was queued for an unknown address")
		})
		waitMailIdle(t, env)
		for _, a := range unknown {
			require.Empty(t, mailsTo(env, a), "an email was sent to the unknown %s", a)
		}
	})
}

// Property 8: the right credentials start a session: a TokenResponse, and
// the session is listed, current for its own token.
func TestProperty8_ValidCredentialsCreateSession(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			id := newAccount(rt, env, email, pw)

			k := rapid.IntRange(1, 3).Draw(rt, "logins")
			var access, sids []string
			for range k {
				r := login(rt, env, drawCase(rt, "login_case", email), pw)
				require.Equal(rt, "Bearer", r.JSON["token_type"])
				require.Equal(rt, float64(900), r.JSON["expires_in"])
				require.Len(rt, strings.Split(r.Str("access_token"), "."), 3, "access token %q is not a JWT", r.Str("access_token"))
				require.NotEmpty(rt, r.Str("refresh_token"))
				require.NotEmpty(rt, r.Str("session_id"))
				u := obj(rt, r.JSON, "user")
				require.Equal(rt, id, u["id"])
				require.Equal(rt, email, u["email"])
				require.NotNil(rt, u["last_login_at"])
				access = append(access, r.Str("access_token"))
				sids = append(sids, r.Str("session_id"))
			}
			require.Len(rt, slices.Compact(slices.Sorted(slices.Values(sids))), k, "sessions share an id")

			pick := rapid.IntRange(0, k-1).Draw(rt, "pick")
			list := sessionsOf(rt, env, access[pick])
			var listed []string
			for _, s := range list {
				listed = append(listed, s["id"].(string))
				require.Equal(rt, s["id"] == sids[pick], s["current"], "session %v", s)
			}
			require.ElementsMatch(rt, sids, listed)
		})
	})
}

// Property 9: an unknown email and a wrong password get the very same
// answer, so the answer cannot tell whether an account exists.
func TestProperty9_InvalidCredentialsRejected(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			newAccount(rt, env, email, pw)

			wrong := rapid.OneOf(
				rapid.Just(pw+"!"),
				rapid.Just(pw[:len(pw)-1]),
				rapid.Just(strings.ToUpper(pw)),
				rapid.Just(""),
				rapid.Custom(func(t *rapid.T) string { return drawPassword(t, "other") }),
			).Draw(rt, "wrong")
			if wrong == pw {
				wrong += "?"
			}
			unknownEmail := drawEmail(rt, "unknown")
			malformed := rapid.SampledFrom([]string{"not-an-email", "a@b", "@example.com", "x y@example.com"}).Draw(rt, "malformed")

			answers := map[string]*apptest.Response{
				"wrong password": loginStatus(rt, env, email, wrong),
				"unknown email":  loginStatus(rt, env, unknownEmail, wrong),
				"malformed":      loginStatus(rt, env, malformed, wrong),
			}
			ref := answers["wrong password"]
			apptest.Expect(rt, ref, http.StatusUnauthorized, "invalid_credentials")
			for what, a := range answers {
				apptest.Expect(rt, a, http.StatusUnauthorized, "invalid_credentials", what)
				require.Equal(rt, ref.JSON["title"], a.JSON["title"], what)
				require.Equal(rt, ref.JSON["detail"], a.JSON["detail"], what)
				require.Equal(rt, ref.JSON["code"], a.JSON["code"], what)
				require.Equal(rt, string(ref.Raw), string(a.Raw), "%s answers differently from a wrong password", what)
				require.Equal(rt, ref.Header.Get("Content-Type"), a.Header.Get("Content-Type"), what)
				require.Empty(rt, a.JSON["errors"], what)
			}
		})
	})
}

// setAdminLock locks or unlocks an account the way an administrator would.
func setAdminLock(t require.TestingT, env *apptest.Env, id string, locked bool) {
	ctx := context.Background()
	u, err := env.App.DB.GetUser(ctx, id)
	require.NoError(t, err)
	if locked {
		u.LockByAdmin("test", time.Now())
	} else {
		u.Unlock(time.Now())
	}
	require.NoError(t, env.App.DB.UpdateUser(ctx, u))
}

// Property 10: a locked account answers 423 account_locked to the right
// password only; a wrong password still answers 401 invalid_credentials.
func TestProperty10_LockedAccountRejected(t *testing.T) {
	const threshold = 4
	forEachEngine(t, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": fmt.Sprint(threshold)}, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			wrong := drawOther(rt, "wrong", pw, email)
			id := newAccount(rt, env, email, pw)

			switch rapid.SampledFrom([]string{"lockout", "admin"}).Draw(rt, "lock") {
			case "lockout":
				for range threshold {
					apptest.Expect(rt, loginStatus(rt, env, email, wrong), http.StatusUnauthorized, "invalid_credentials")
				}
			case "admin":
				setAdminLock(rt, env, id, true)
			}
			tries := append([]bool{true, false}, rapid.SliceOfN(rapid.Bool(), 0, 2).Draw(rt, "more_tries")...)
			for _, right := range rapid.Permutation(tries).Draw(rt, "tries") {
				if right {
					apptest.Expect(rt, loginStatus(rt, env, drawCase(rt, "case", email), pw), http.StatusLocked, "account_locked")
				} else {
					apptest.Expect(rt, loginStatus(rt, env, email, wrong), http.StatusUnauthorized, "invalid_credentials")
				}
			}

			require.Zero(rt, liveSessions(rt, env, id), "a refused attempt started a session")
		})
	})
}

// Property 12: T consecutive failures lock the account for the lockout
// duration (with an email saying so); a success before T resets the count.
// T is fixed per server: a server per drawn T multiplies the job pollers,
// which under -race made this property take minutes. Property 10 runs with
// T=4 and TestEmailsNeverContainPassword with T=2.
func TestProperty12_FailedLoginLockout(t *testing.T) {
	const (
		threshold = 3
		duration  = 15 * time.Minute
	)
	forEachEngine(t, map[string]string{
		"GATEHOUSE_LOCKOUT_THRESHOLD": fmt.Sprint(threshold),
		"GATEHOUSE_LOCKOUT_DURATION":  duration.String(),
	}, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			wrong := drawOther(rt, "wrong", pw, email)
			newAccount(rt, env, email, pw)
			fail := func(n int) {
				for range n {
					apptest.Expect(rt, loginStatus(rt, env, email, wrong), http.StatusUnauthorized, "invalid_credentials")
				}
			}

			// Fewer than T failures, a success, then up to T-1 more: no
			// lock, since the success reset the count.
			before := rapid.IntRange(1, threshold-1).Draw(rt, "before_success")
			fail(before)
			login(rt, env, email, pw)
			after := rapid.IntRange(threshold-before, threshold-1).Draw(rt, "after_success")
			fail(after)
			login(rt, env, email, pw)

			// T in a row lock it; the answer to a wrong password does not
			// change.
			fail(threshold)
			apptest.Expect(rt, loginStatus(rt, env, email, pw), http.StatusLocked, "account_locked")
			fail(rapid.IntRange(0, 2).Draw(rt, "during_lock"))

			// It unlocks by itself after the duration, not before.
			early := time.Duration(rapid.IntRange(1, int(duration/time.Second)).Draw(rt, "early_seconds")) * time.Second
			env.Clock.Advance(duration - early)
			apptest.Expect(rt, loginStatus(rt, env, email, pw), http.StatusLocked, "account_locked")
			env.Clock.Advance(early)
			login(rt, env, email, pw)

			locks := 0
			for _, j := range emailJobs(rt, env, email) {
				if j.Template == "security_alert" && strings.Contains(fmt.Sprint(j.Data["Title"]), "locked") {
					locks++
				}
			}
			require.Equal(rt, 1, locks, "lock emails queued (TestEmailsNeverContainPassword sees one delivered)")
		})
	})
}

// loginUA signs in with a chosen User-Agent and device id.
func loginUA(t require.TestingT, env *apptest.Env, email, pw, ua, device string) *apptest.Response {
	body := map[string]any{"email": email, "password": pw}
	if device != "" {
		body["device_id"] = device
	}
	r, err := request(env, "POST", "/auth/login", body, map[string]string{"User-Agent": ua})
	require.NoError(t, err)
	apptest.Expect(t, r, http.StatusOK, "")
	return r
}

// Property 13: a session records the client's IP, User-Agent and device id.
func TestProperty13_SessionMetadataRecorded(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			newAccount(rt, env, email, pw)

			ua := rapid.StringMatching(`[A-Za-z0-9]([A-Za-z0-9 ()/;.,:_+=-]{0,200}[A-Za-z0-9)])?`).Draw(rt, "user_agent")
			device := rapid.StringMatching(`[A-Za-z0-9._:-]{0,128}`).Draw(rt, "device_id")
			r := loginUA(rt, env, email, pw, ua, device)
			sid := r.Str("session_id")

			var found map[string]any
			for _, s := range sessionsOf(rt, env, r.Str("access_token")) {
				if s["id"] == sid {
					found = s
				}
			}
			require.NotNil(rt, found, "session %s is not listed", sid)
			require.Equal(rt, "127.0.0.1", found["ip_address"])
			require.Equal(rt, ua, found["user_agent"])
			if device == "" {
				require.Nil(rt, found["device_id"])
			} else {
				require.Equal(rt, device, found["device_id"])
			}
			require.Equal(rt, true, found["current"])
		})
	})
}

func forgot(t require.TestingT, env *apptest.Env, email string) {
	apptest.Expect(t, call(t, env, "POST", "/auth/password/forgot", map[string]any{"email": email}, ""), http.StatusAccepted, "")
}

func reset(t require.TestingT, env *apptest.Env, tok, pw string) *apptest.Response {
	return call(t, env, "POST", "/auth/password/reset", map[string]any{"token": tok, "password": pw}, "")
}

// waitLink waits for the n-th (1-based) message to addr holding a link
// starting with prefix, and returns it and the link's token.
func waitLink(t require.TestingT, env *apptest.Env, addr, prefix string, n int) (mailtest.Received, string) {
	deadline := time.Now().Add(mailTimeout)
	for {
		seen := 0
		for _, m := range mailsTo(env, addr) {
			if strings.Contains(m.Text, prefix) {
				if seen++; seen == n {
					return m, tokenIn(t, m, prefix)
				}
			}
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "email did not arrive", "want %d messages to %s with %s within %s, got %d", n, addr, prefix, mailTimeout, seen)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Property 48: forgot-password emails a reset link to an existing account
// and answers the same 202, sending nothing, for an unknown email.
func TestProperty48_ResetEmailSent(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		var unknown []string
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			newAccount(rt, env, email, pw)

			forgot(rt, env, drawCase(rt, "case", email))
			m, tok := waitLink(rt, env, email, resetLink+"?token=", 1)
			require.NotEmpty(rt, tok)
			requireNoSecret(rt, []mailtest.Received{m}, pw)

			stranger := drawEmail(rt, "unknown")
			unknown = append(unknown, stranger)
			forgot(rt, env, drawCase(rt, "unknown_case", stranger))
			require.Empty(rt, emailJobs(rt, env, stranger), "an email was queued for an unknown address")
		})
		waitMailIdle(t, env)
		for _, a := range unknown {
			require.Empty(t, mailsTo(env, a), "an email was sent to the unknown %s", a)
		}
	})
}

// Property 49: a valid reset token sets the new password, once; a weak
// password leaves the token usable; an expired token is refused.
func TestProperty49_ValidResetTokenUpdatesPassword(t *testing.T) {
	hasher := password.NewHasher(password.TestParams)
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			id := newAccount(rt, env, email, pw)
			forgot(rt, env, email)
			toks := queuedTokens(rt, env, email, resetLink+"?token=")
			require.Len(rt, toks, 1)
			tok := toks[0]

			weak := drawWeakPassword(rt, email)
			r := reset(rt, env, tok, weak)
			apptest.Expect(rt, r, http.StatusUnprocessableEntity, "weak_password")
			require.NotEmpty(rt, r.JSON["errors"], "weak_password without reasons: %s", r.Raw)

			next := drawOther(rt, "new_password", pw, email)
			apptest.Expect(rt, reset(rt, env, tok, next), http.StatusNoContent, "")
			apptest.Expect(rt, loginStatus(rt, env, email, pw), http.StatusUnauthorized, "invalid_credentials")
			login(rt, env, email, next)
			apptest.Expect(rt, reset(rt, env, tok, drawPassword(rt, "again", email)), http.StatusBadRequest, "invalid_token")

			// A link older than an hour is refused.
			forgot(rt, env, email)
			toks = queuedTokens(rt, env, email, resetLink+"?token=")
			require.Len(rt, toks, 2)
			old := toks[1]
			env.Clock.Advance(time.Hour + time.Duration(rapid.IntRange(1, 7200).Draw(rt, "late_seconds"))*time.Second)
			apptest.Expect(rt, reset(rt, env, old, drawPassword(rt, "late", email)), http.StatusBadRequest, "invalid_token")
			stored, err := env.App.DB.GetUser(context.Background(), id)
			require.NoError(rt, err)
			ok, _, err := hasher.Verify(context.Background(), next, stored.PasswordHash)
			require.NoError(rt, err)
			require.True(rt, ok, "the expired token changed the password")
		})
	})
}

// Property 51: a password reset ends every session of the account: their
// access and refresh tokens stop working at once.
func TestProperty51_ResetTerminatesSessions(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		env.Check(t, func(rt *rapid.T) {
			email := drawEmail(rt, "email")
			pw := drawPassword(rt, "password", email)
			id := newAccount(rt, env, email, pw)

			var access, refresh []string
			for range rapid.IntRange(1, 4).Draw(rt, "sessions") {
				r := login(rt, env, email, pw)
				access = append(access, r.Str("access_token"))
				rtok := r.Str("refresh_token")
				if rapid.Bool().Draw(rt, "refreshed") {
					// A rotated session: its older access token stays
					// valid until the reset, its new refresh token too.
					nr := call(rt, env, "POST", "/auth/refresh", map[string]any{"refresh_token": rtok}, "")
					apptest.Expect(rt, nr, http.StatusOK, "")
					access = append(access, nr.Str("access_token"))
					rtok = nr.Str("refresh_token")
				}
				refresh = append(refresh, rtok)
			}
			// Every token works before, so the "alive" cache knows them.
			for _, a := range access {
				apptest.Expect(rt, call(rt, env, "GET", "/auth/me", nil, a), http.StatusOK, "")
			}

			forgot(rt, env, email)
			toks := queuedTokens(rt, env, email, resetLink+"?token=")
			require.Len(rt, toks, 1)
			next := drawOther(rt, "new_password", pw, email)
			apptest.Expect(rt, reset(rt, env, toks[0], next), http.StatusNoContent, "")

			for i, a := range access {
				r := call(rt, env, "GET", "/auth/me", nil, a)
				apptest.Expect(rt, r, http.StatusUnauthorized, "unauthorized", "access token ", i)
			}
			for i, rtok := range refresh {
				r := call(rt, env, "POST", "/auth/refresh", map[string]any{"refresh_token": rtok}, "")
				apptest.Expect(rt, r, http.StatusUnauthorized, "", "refresh token ", i)
				require.Contains(rt, []string{"invalid_refresh_token", "refresh_token_reused"}, r.Code())
			}
			require.Zero(rt, liveSessions(rt, env, id), "a session survived the reset")
		})
	})
}
