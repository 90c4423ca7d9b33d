package signin_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
)

// These are the fast layer of the sign-in rules: the Flow called directly
// on a fresh SQLite server, no HTTP. The API's property tests cover the
// same rules through the transport on both engines.

var client = gatehouse.ClientInfo{IP: "192.0.2.10", UserAgent: "signin-test/1.0"}

func register(t *testing.T, env *apptest.Env, email string) string {
	t.Helper()
	u, err := env.App.Accounts.Register(context.Background(), email, apptest.StrongPassword, "")
	require.NoError(t, err)
	return u.ID
}

// After the threshold of wrong passwords the account is locked: even the
// right password is refused until the lockout has passed, and then it
// signs in.
func TestLockoutHoldsTheRightPasswordUntilItPasses(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, "sqlite", map[string]string{
		"GATEHOUSE_LOCKOUT_THRESHOLD": "3", "GATEHOUSE_LOCKOUT_DURATION": "15m",
	})
	ctx := context.Background()
	register(t, env, "lock@example.com")

	for i := range 3 {
		_, err := env.App.SignIn.Password(ctx, "lock@example.com", "not-the-password", client)
		require.Equal(t, gatehouse.CodeInvalidCredentials, gatehouse.ErrorCode(err), "attempt %d: %v", i+1, err)
	}
	_, err := env.App.SignIn.Password(ctx, "lock@example.com", apptest.StrongPassword, client)
	require.Equal(t, gatehouse.CodeAccountLocked, gatehouse.ErrorCode(err), "%v", err)

	env.Clock.Advance(15*time.Minute + time.Second)
	res, err := env.App.SignIn.Password(ctx, "lock@example.com", apptest.StrongPassword, client)
	require.NoError(t, err)
	require.NotEmpty(t, res.AccessToken)
	require.NotEmpty(t, res.RefreshToken)
	require.Nil(t, res.Challenge)
}

// An account with TOTP gets a challenge and no session from its password;
// the session starts, marked MFA, when the challenge is met, and the same
// challenge cannot be met twice.
func TestMFAHoldsTheSessionUntilTheChallengeIsMet(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, "sqlite", nil)
	ctx := context.Background()
	id := register(t, env, "mfa@example.com")
	setup, err := env.App.MFA.Setup(ctx, id, "totp", "")
	require.NoError(t, err)
	code, err := mfa.TOTPCode(setup.Secret, env.Clock.Now())
	require.NoError(t, err)
	_, err = env.App.MFA.Activate(ctx, id, "totp", code)
	require.NoError(t, err)

	held, err := env.App.SignIn.Password(ctx, "mfa@example.com", apptest.StrongPassword, client)
	require.NoError(t, err)
	require.NotNil(t, held.Challenge)
	require.Empty(t, held.AccessToken, "tokens before the second factor")
	require.Empty(t, held.RefreshToken)
	sessions, err := env.App.DB.ListSessions(ctx, id, env.Clock.Now())
	require.NoError(t, err)
	require.Empty(t, sessions, "a session started before the second factor")

	_, err = env.App.SignIn.MFA(ctx, held.Challenge.ID, "totp", "000000")
	require.Equal(t, gatehouse.CodeMFAInvalidCode, gatehouse.ErrorCode(err), "%v", err)

	env.Clock.Advance(30 * time.Second) // the activation spent this step's code
	code, err = mfa.TOTPCode(setup.Secret, env.Clock.Now())
	require.NoError(t, err)
	done, err := env.App.SignIn.MFA(ctx, held.Challenge.ID, "totp", code)
	require.NoError(t, err)
	require.NotEmpty(t, done.AccessToken)
	require.True(t, done.Session.MFA, "the session is not marked MFA")
	require.Contains(t, done.Session.AMR, "otp")

	_, err = env.App.SignIn.MFA(ctx, held.Challenge.ID, "totp", code)
	require.Error(t, err, "a met challenge was met again")
}

// A refused password records user.login_failed with its reason, and a
// success records user.login with the method.
func TestSignInsEmitWhatHappened(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, "sqlite", nil)
	ctx := context.Background()
	id := register(t, env, "events@example.com")

	_, err := env.App.SignIn.Password(ctx, "events@example.com", "wrong-password-here", client)
	require.Error(t, err)
	_, err = env.App.SignIn.Password(ctx, "events@example.com", apptest.StrongPassword, client)
	require.NoError(t, err)

	var failed, ok int
	for _, e := range env.Events() {
		if e.UserID != id {
			continue
		}
		switch e.Type {
		case gatehouse.EventUserLoginFailed:
			failed++
			require.Equal(t, "wrong_password", e.Data["reason"], "%+v", e)
		case gatehouse.EventUserLogin:
			ok++
			require.Equal(t, "password", e.Data["method"], "%+v", e)
		}
	}
	require.Equal(t, 1, failed)
	require.Equal(t, 1, ok)
}
