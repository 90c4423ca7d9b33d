package account_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

const magicLink = "http://gatehouse.test/magic-link"

// requestMagicLink asks for a link and returns the token from the email.
func requestMagicLink(t *testing.T, env *apptest.Env, email string) string {
	t.Helper()
	r := env.Do(http.MethodPost, "/auth/magic-link", map[string]any{"email": email}, "")
	require.Equal(t, http.StatusAccepted, r.Status, r.Raw)
	for { // skipping the other emails (verification, security alerts)
		if tok := apptest.TokenFromLink(env.Mail.WaitFor(t, email, mailTimeout).Text, magicLink); tok != "" {
			return tok
		}
	}
}

func verifyMagicLink(env *apptest.Env, tok string) *apptest.Response {
	return env.Do(http.MethodGet, "/auth/magic-link/verify?token="+url.QueryEscape(tok), nil, "")
}

func TestMagicLink(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("magic")
		env.Register(email, apptest.StrongPassword)

		// The link signs in once, with amr ["email"], and verifies the email.
		tok := requestMagicLink(t, env, email)
		r := verifyMagicLink(env, tok)
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		require.NotEmpty(t, r.Str("access_token"))
		require.NotEmpty(t, r.Str("refresh_token"))
		require.Equal(t, true, r.JSON["user"].(map[string]any)["email_verified"])
		require.Equal(t, []any{"email"}, apptest.Claims(t, r.Str("access_token"))["amr"])
		r = verifyMagicLink(env, tok)
		require.Equal(t, http.StatusBadRequest, r.Status, r.Raw)
		require.Equal(t, "invalid_token", r.Code())

		// A new link supersedes the earlier one.
		first := requestMagicLink(t, env, email)
		second := requestMagicLink(t, env, email)
		r = verifyMagicLink(env, first)
		require.Equal(t, "invalid_token", r.Code(), r.Raw)
		require.Equal(t, http.StatusOK, verifyMagicLink(env, second).Status)

		// 15 minutes, not a second more.
		tok = requestMagicLink(t, env, email)
		env.Clock.Advance(15*time.Minute - time.Second)
		require.Equal(t, http.StatusOK, verifyMagicLink(env, tok).Status)
		tok = requestMagicLink(t, env, email)
		env.Clock.Advance(15 * time.Minute)
		require.Equal(t, "invalid_token", verifyMagicLink(env, tok).Code())

		// The emailed link opens a page that spends the token only on a click.
		page, err := env.Server.Client().Get(env.Server.URL + "/magic-link?token=" + url.QueryEscape(tok))
		require.NoError(t, err)
		body, _ := io.ReadAll(page.Body)
		page.Body.Close()
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, string(body), `<form method="post" action="/magic-link"`)
		require.Contains(t, string(body), `name="token" value="`+tok+`"`)

		// Unknown addresses get the same answer and no email.
		r = env.Do(http.MethodPost, "/auth/magic-link", map[string]any{"email": uniqueEmail("nobody")}, "")
		require.Equal(t, http.StatusAccepted, r.Status, r.Raw)
		require.Equal(t, "invalid_token", verifyMagicLink(env, "not-a-token").Code())
	})
}

// An account with a second factor gets a challenge, not tokens.
func TestMagicLinkMFAChallenge(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("magic-mfa")
		newAccount(t, env, email, apptest.StrongPassword)
		tokens := env.Login(email, apptest.StrongPassword)
		enableTOTP(t, env, tokens.Access)

		r := verifyMagicLink(env, requestMagicLink(t, env, email))
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		require.Equal(t, true, r.JSON["mfa_required"], string(r.Raw))
		require.Empty(t, r.Str("access_token"))
	})
}

// Whoever first proves an address from the mailbox gets its account as
// the owner: someone who registered it without owning it, set a password
// and turned MFA on loses all of that and their sessions, whether the
// owner comes by magic link or by password reset.
func TestMailboxProofClaimsUnverifiedAccount(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		for _, via := range []string{"magic_link", "reset"} {
			email := uniqueEmail("claim-" + via)
			id := env.Register(email, apptest.StrongPassword) // the squatter
			squatter := env.Login(email, apptest.StrongPassword)
			enableTOTP(t, env, squatter.Access)

			switch via {
			case "magic_link":
				r := verifyMagicLink(env, requestMagicLink(t, env, email))
				require.Equal(t, http.StatusOK, r.Status, r.Raw)
				require.NotEmpty(t, r.Str("access_token"), "no MFA challenge from the squatter's factor: %s", r.Raw)
				require.Equal(t, true, obj(t, r.JSON, "user")["email_verified"])
			case "reset":
				forgot(t, env, email)
				_, tok := waitLink(t, env, email, resetLink+"?token=", 1)
				apptest.Expect(t, reset(t, env, tok, apptest.StrongPassword+"-owner"), http.StatusNoContent, "")
				r := login(t, env, email, apptest.StrongPassword+"-owner")
				require.NotEmpty(t, r.Str("access_token"), "no MFA challenge from the squatter's factor: %s", r.Raw)
			}
			require.Equal(t, http.StatusUnauthorized, env.Do(http.MethodGet, "/auth/me", nil, squatter.Access).Status, via)
			apptest.Expect(t, loginStatus(t, env, email, apptest.StrongPassword), http.StatusUnauthorized, "invalid_credentials", via)
			factors, err := env.App.DB.ListMFAFactors(t.Context(), id)
			require.NoError(t, err)
			require.Empty(t, factors, via)
			logs, err := env.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: id, Limit: 50})
			require.NoError(t, err)
			require.True(t, slices.ContainsFunc(logs, func(l gatehouse.AuditLog) bool {
				removed, _ := l.Metadata["removed"].([]any)
				return slices.Contains(removed, any("mfa"))
			}), "the audit trail says what the claim removed (%s)", via)
		}
	})
}

// enableTOTP turns TOTP on for the signed-in user.
func enableTOTP(t *testing.T, env *apptest.Env, access string) {
	t.Helper()
	r := env.Do(http.MethodPost, "/auth/mfa/setup", map[string]any{"method": "totp"}, access)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	code, err := mfa.TOTPCode(r.Str("secret"), env.Clock.Now())
	require.NoError(t, err)
	r = env.Do(http.MethodPost, "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, access)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
}

// magicChecks is how many cases each magic-link property runs unless
// -rapid.checks says otherwise: a case is several requests against a
// running server.
const magicChecks = 10

// magicUser makes an account with a drawn email, password and verification
// state, and returns its id and email.
func magicUser(rt *rapid.T, env *apptest.Env) (id, email string) {
	email = drawEmail(rt, "email")
	u, err := env.App.Accounts.CreateUser(context.Background(), email, drawPassword(rt, "password", email),
		nil, rapid.Bool().Draw(rt, "verified"))
	require.NoError(rt, err)
	return u.ID, email
}

// oneLink makes an account with magicUser and requests one link for it.
func oneLink(rt *rapid.T, env *apptest.Env) (id, email, tok string) {
	id, email = magicUser(rt, env)
	apptest.Expect(rt, call(rt, env, http.MethodPost, "/auth/magic-link", map[string]any{"email": email}, ""), http.StatusAccepted, "")
	toks := queuedTokens(rt, env, email, magicLink+"?token=")
	require.Len(rt, toks, 1)
	return id, email, toks[0]
}

// base64url256 is a secret of at least 256 bits in unpadded base64url.
var base64url256 = regexp.MustCompile(`^[A-Za-z0-9_-]{43,}$`)

// Property 36: each request for an existing account (in any letter case)
// answers 202 and queues exactly one email to it with a fresh 256-bit
// token; only the newest token works. An unknown address gets the same
// answer and no email.
func TestProperty36_MagicLinkGeneration(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		var mu sync.Mutex
		seen := map[string]bool{}
		apptest.CheckN(t, magicChecks, func(rt *rapid.T) {
			_, email := magicUser(rt, env)
			unknown := drawEmail(rt, "unknown")
			none := call(rt, env, http.MethodPost, "/auth/magic-link", map[string]any{"email": unknown}, "")
			apptest.Expect(rt, none, http.StatusAccepted, "")
			require.Empty(rt, emailJobs(rt, env, unknown), "an unknown address got an email")

			n := rapid.IntRange(1, 3).Draw(rt, "requests")
			for i := range n {
				r := call(rt, env, http.MethodPost, "/auth/magic-link", map[string]any{"email": drawCase(rt, "spelling", email)}, "")
				apptest.Expect(rt, r, http.StatusAccepted, "")
				require.Equal(rt, string(none.Raw), string(r.Raw), "the answer tells accounts apart")
				require.Len(rt, queuedTokens(rt, env, email, magicLink+"?token="), i+1)
			}
			toks := queuedTokens(rt, env, email, magicLink+"?token=")
			mu.Lock()
			for _, tok := range toks {
				require.Regexp(rt, base64url256, tok)
				require.False(rt, seen[tok], "token %q issued twice", tok)
				seen[tok] = true
			}
			mu.Unlock()
			for _, old := range toks[:n-1] {
				apptest.Expect(rt, verifyMagicLink(env, old), http.StatusBadRequest, "invalid_token", "a superseded link works")
			}
			apptest.Expect(rt, verifyMagicLink(env, toks[n-1]), http.StatusOK, "")
		})
	})
}

// Property 37: a valid link signs its account in: a live session whose
// access token names the user, with amr ["email"]; the email is verified
// afterwards; the link works once.
func TestProperty37_ValidMagicLinkCreatesSession(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		apptest.CheckN(t, magicChecks, func(rt *rapid.T) {
			id, email, tok := oneLink(rt, env)
			before := liveSessions(rt, env, id)

			r := verifyMagicLink(env, tok)
			apptest.Expect(rt, r, http.StatusOK, "")
			u := obj(rt, r.JSON, "user")
			require.Equal(rt, id, u["id"])
			require.Equal(rt, email, u["email"])
			require.Equal(rt, true, u["email_verified"])
			claims := apptest.Claims(t, r.Str("access_token"))
			require.Equal(rt, id, claims["sub"])
			require.Equal(rt, r.Str("session_id"), claims["sid"])
			require.Equal(rt, []any{"email"}, claims["amr"])
			require.NotEmpty(rt, r.Str("refresh_token"))
			require.Equal(rt, before+1, liveSessions(rt, env, id))
			me := call(rt, env, http.MethodGet, "/auth/me", nil, r.Str("access_token"))
			apptest.Expect(rt, me, http.StatusOK, "")
			require.Equal(rt, id, me.Str("id"), "body: %s", me.Raw)

			apptest.Expect(rt, verifyMagicLink(env, tok), http.StatusBadRequest, "invalid_token", "the link works twice")
			require.Equal(rt, before+1, liveSessions(rt, env, id))
		})
	})
}

// Property 38: a link works for 15 minutes after it was sent, and not a
// second longer; an expired link creates no session.
func TestProperty38_MagicLinkExpiry(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		apptest.CheckN(t, magicChecks, func(rt *rapid.T) {
			id, _, tok := oneLink(rt, env)
			age := time.Duration(rapid.OneOf(rapid.IntRange(0, 1800), rapid.IntRange(895, 905)).Draw(rt, "age_seconds")) * time.Second
			env.Clock.Advance(age)

			r := verifyMagicLink(env, tok)
			if age < 15*time.Minute {
				apptest.Expect(rt, r, http.StatusOK, "", "age ", age)
				require.Equal(rt, id, obj(rt, r.JSON, "user")["id"])
				return
			}
			apptest.Expect(rt, r, http.StatusBadRequest, "invalid_token", "age ", age)
			require.Zero(rt, liveSessions(rt, env, id))
		})
	})
}
