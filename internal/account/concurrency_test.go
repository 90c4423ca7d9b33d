package account_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/password"
)

// oneWinner checks exactly one answer has status win and every other is
// 400 invalid_token, and returns the winner's index.
func oneWinner(t *testing.T, answers []*apptest.Response, win int) int {
	t.Helper()
	winner := -1
	for i, r := range answers {
		if r.Status == win {
			require.Equal(t, -1, winner, "apptest.Racers %d and %d both succeeded", winner, i)
			winner = i
			continue
		}
		require.Equal(t, http.StatusBadRequest, r.Status, "racer %d: %s", i, r.Raw)
		require.Equal(t, "invalid_token", r.Code(), "racer %d: %s", i, r.Raw)
	}
	require.NotEqual(t, -1, winner, "nobody succeeded")
	return winner
}

func TestConcurrentVerificationTokenUse(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("race-verify")
		register(t, env, email, apptest.StrongPassword, "")
		tok := tokenIn(t, waitMail(t, env, email, 1), verifyLink+"?token=")

		answers := apptest.Race(t, func(int) (*apptest.Response, error) {
			return request(env, "POST", "/auth/verify-email", map[string]any{"token": tok}, nil)
		})
		w := oneWinner(t, answers, http.StatusOK)
		require.Equal(t, true, obj(t, answers[w].JSON, "user")["email_verified"])

		// One verification, so one welcome email.
		welcomes := 0
		for _, j := range emailJobs(t, env, email) {
			if j.Template == "welcome" {
				welcomes++
			}
		}
		require.Equal(t, 1, welcomes)
	})
}

func TestConcurrentResetTokenUse(t *testing.T) {
	hasher := password.NewHasher(password.TestParams)
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email := uniqueEmail("race-reset")
		register(t, env, email, apptest.StrongPassword, "")
		sess := login(t, env, email, apptest.StrongPassword)
		forgot(t, env, email)
		_, tok := waitLink(t, env, email, resetLink+"?token=", 1)

		passwords := make([]string, apptest.Racers)
		for i := range passwords {
			passwords[i] = fmt.Sprintf("Quartz-%02d-lagoon-Meridian-%d", i, 7*i+3)
		}
		answers := apptest.Race(t, func(i int) (*apptest.Response, error) {
			return request(env, "POST", "/auth/password/reset", map[string]any{"token": tok, "password": passwords[i]}, nil)
		})
		w := oneWinner(t, answers, http.StatusNoContent)

		// The winner's password, and only it, is the password now.
		u, err := env.App.DB.GetUserByEmail(context.Background(), gatehouse.Email(email))
		require.NoError(t, err)
		for i, pw := range passwords {
			ok, _, err := hasher.Verify(context.Background(), pw, u.PasswordHash)
			require.NoError(t, err)
			require.Equal(t, i == w, ok, "password of racer %d (winner %d)", i, w)
		}
		apptest.Expect(t, call(t, env, "GET", "/auth/me", nil, sess.Str("access_token")), http.StatusUnauthorized, "unauthorized")
		me := call(t, env, "GET", "/auth/me", nil, login(t, env, email, passwords[w]).Str("access_token"))
		apptest.Expect(t, me, http.StatusOK, "")
		require.Equal(t, true, me.JSON["email_verified"], "a reset proves the mailbox, so it verifies the email")
	})
}
