package signin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// blocklisted writes a blocklist naming 203.0.113.0/24 and answers the
// configuration of a server using it with action.
func blocklisted(t *testing.T, action string) map[string]string {
	bl := filepath.Join(t.TempDir(), "blocklist.txt")
	require.NoError(t, os.WriteFile(bl, []byte("203.0.113.0/24\n"), 0o600))
	return map[string]string{"GATEHOUSE_IP_BLOCKLIST": bl, "GATEHOUSE_IP_BLOCKLIST_ACTION": action}
}

var risky = gatehouse.ClientInfo{IP: "203.0.113.9", UserAgent: "signin-test/1.0"}

// A sign-in from a blocklisted address steps up: an account without MFA
// is held for an emailed confirmation; polling before the click answers
// only the challenge, the click itself gives no tokens, and the waiting
// client's next poll starts the session, once.
func TestRiskyPasswordSignInWaitsForTheEmailedConfirmation(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, "sqlite", blocklisted(t, "step_up"))
	ctx := context.Background()
	register(t, env, "risky@example.com")

	held, err := env.App.SignIn.Password(ctx, "risky@example.com", apptest.StrongPassword, risky)
	require.NoError(t, err)
	require.NotNil(t, held.Challenge, "a blocklisted address signed in without a step-up")
	require.Empty(t, held.AccessToken)

	early, err := env.App.SignIn.Confirmed(ctx, held.Challenge.ID)
	require.NoError(t, err)
	require.Empty(t, early.AccessToken, "tokens before the confirmation")
	require.NotNil(t, early.Challenge)

	var text string
	for text == "" {
		m := env.Mail.WaitFor(t, "risky@example.com", 20*time.Second)
		if strings.Contains(m.Subject, "Confirm your") {
			text = m.Text
		}
	}
	secret := apptest.TokenFromLink(text, "http://gatehouse.test/confirm-sign-in?")
	require.NotEmpty(t, secret)
	require.NoError(t, env.App.SignIn.ConfirmLink(ctx, secret))

	done, err := env.App.SignIn.Confirmed(ctx, held.Challenge.ID)
	require.NoError(t, err)
	require.NotEmpty(t, done.AccessToken)
	require.Equal(t, risky.IP, done.Session.IPAddress, "the session is not the waiting client's")

	_, err = env.App.SignIn.Confirmed(ctx, held.Challenge.ID)
	require.Error(t, err, "a confirmed sign-in started a second session")
	require.Error(t, env.App.SignIn.ConfirmLink(ctx, secret), "the link worked twice")
}

// With the deny action a blocklisted address gets the same refusal for the
// right and a wrong password, and nobody's lockout counter moves.
func TestDeniedAddressLearnsNothing(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, "sqlite", blocklisted(t, "deny"))
	ctx := context.Background()
	id := register(t, env, "denied@example.com")

	_, right := env.App.SignIn.Password(ctx, "denied@example.com", apptest.StrongPassword, risky)
	_, wrong := env.App.SignIn.Password(ctx, "denied@example.com", "not-the-password", risky)
	require.Equal(t, gatehouse.CodeAccessDenied, gatehouse.ErrorCode(right), "%v", right)
	require.Equal(t, gatehouse.ErrorCode(right), gatehouse.ErrorCode(wrong))
	require.Equal(t, right.Error(), wrong.Error())

	u, err := env.App.DB.GetUser(ctx, id)
	require.NoError(t, err)
	require.Zero(t, u.FailedLogins, "a refused address counted toward the lockout")
	_, err = env.App.SignIn.Password(ctx, "denied@example.com", apptest.StrongPassword, client)
	require.NoError(t, err, "another address is refused too")
}
