package account_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
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
		require.Contains(t, string(body), "/auth/magic-link/verify?token=")

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
		env.Register(email, apptest.StrongPassword)
		tokens := env.Login(email, apptest.StrongPassword)
		enableTOTP(t, env, tokens.Access)

		r := verifyMagicLink(env, requestMagicLink(t, env, email))
		require.Equal(t, http.StatusOK, r.Status, r.Raw)
		require.Equal(t, true, r.JSON["mfa_required"], string(r.Raw))
		require.Empty(t, r.Str("access_token"))
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

