package account_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

const changeLink = "http://gatehouse.test/confirm-email?token="

// changeToken asks for an email change of userID (signed in just now) and
// answers the token of the link sent to the new address.
func changeToken(t *testing.T, env *apptest.Env, userID, newEmail string, nth int) string {
	t.Helper()
	require.NoError(t, env.App.Accounts.RequestEmailChange(t.Context(), userID, newEmail, "", env.Clock.Now()))
	return tokenIn(t, waitMail(t, env, newEmail, nth), changeLink)
}

// The new address gets a link, the old one a notice; nothing changes until
// the link is spent; then the account is the new address, verified, the
// cached profile says so, the event is emitted, the old address is told,
// its pending links stop working, and the link works once.
func TestEmailChange(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		ctx := t.Context()
		old, next := uniqueEmail("change-old"), uniqueEmail("change-new")
		id := newAccount(t, env, old, apptest.StrongPassword)
		before, err := env.App.Accounts.Profile(ctx, id) // warms the cache
		require.NoError(t, err)
		require.Equal(t, gatehouse.Email(old), before.Email)

		// A magic link sent to the old address before the change.
		require.NoError(t, env.App.MagicLinks.Request(ctx, old))
		magic := tokenIn(t, waitSubject(t, env, old, "sign-in link"), "http://gatehouse.test/magic-link?token=")

		tok := changeToken(t, env, id, next, 1)
		require.Contains(t, waitSubject(t, env, old, "change of your email address was requested").Text, next)
		u, err := env.App.Accounts.Profile(ctx, id)
		require.NoError(t, err)
		require.Equal(t, gatehouse.Email(old), u.Email, "nothing changes before the link is opened")

		u, err = env.App.Accounts.ConfirmEmailChange(ctx, tok)
		require.NoError(t, err)
		require.Equal(t, gatehouse.Email(next), u.Email)
		require.True(t, u.EmailVerified)
		cached, err := env.App.Accounts.Profile(ctx, id)
		require.NoError(t, err)
		require.Equal(t, gatehouse.Email(next), cached.Email, "the cached profile was invalidated")
		require.True(t, cached.EmailVerified)

		var changed *gatehouse.Event
		for _, e := range env.Events() {
			if e.Type == gatehouse.EventUserEmailChanged && e.UserID == id {
				changed = &e
			}
		}
		require.NotNil(t, changed, "user.email_changed emitted")
		require.Equal(t, old, changed.Data["old_email"])
		require.Equal(t, next, changed.Data["new_email"])
		require.Contains(t, waitSubject(t, env, old, "email address was changed").Text, next)

		_, err = env.App.Accounts.ConfirmEmailChange(ctx, tok)
		require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err), "the link works once")
		_, err = env.App.MagicLinks.Spend(ctx, magic, true)
		require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err), "links sent to the old address are superseded")

		apptest.Expect(t, loginStatus(t, env, old, apptest.StrongPassword), http.StatusUnauthorized, "invalid_credentials")
		login(t, env, next, apptest.StrongPassword)
	})
}

// What RequestEmailChange refuses, and links that no longer work.
func TestEmailChangeRefusals(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		ctx := t.Context()
		acc := env.App.Accounts
		email, other := uniqueEmail("change-refused"), uniqueEmail("change-other")
		id := newAccount(t, env, email, apptest.StrongPassword)
		newAccount(t, env, other, apptest.StrongPassword)
		stale := env.Clock.Now().Add(-time.Hour)
		fresh := uniqueEmail("change-target")

		err := acc.RequestEmailChange(ctx, id, fresh, "", stale)
		require.Equal(t, gatehouse.CodeRecentAuthRequired, gatehouse.ErrorCode(err), "an old sign-in needs the password")
		err = acc.RequestEmailChange(ctx, id, fresh, "wrong-password-here", stale)
		require.Equal(t, gatehouse.CodeRecentAuthRequired, gatehouse.ErrorCode(err))
		err = acc.RequestEmailChange(ctx, id, other, apptest.StrongPassword, stale)
		require.Equal(t, gatehouse.CodeEmailTaken, gatehouse.ErrorCode(err))
		err = acc.RequestEmailChange(ctx, id, email, apptest.StrongPassword, stale)
		require.Equal(t, gatehouse.CodeValidationFailed, gatehouse.ErrorCode(err), "the same address")
		err = acc.RequestEmailChange(ctx, id, "not an address", apptest.StrongPassword, stale)
		require.Equal(t, gatehouse.CodeInvalidEmail, gatehouse.ErrorCode(err), "a bad address: %v", err)
		require.Empty(t, emailJobs(t, env, fresh), "no link for a refused request")

		// The password instead of a recent sign-in; a second request
		// supersedes the first link.
		require.NoError(t, acc.RequestEmailChange(ctx, id, fresh, apptest.StrongPassword, stale))
		first := tokenIn(t, waitMail(t, env, fresh, 1), changeLink)
		second := changeToken(t, env, id, fresh, 2)
		_, err = acc.ConfirmEmailChange(ctx, first)
		require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err), "superseded")

		// Taken meanwhile: refused, and the link stays usable.
		taker := newAccount(t, env, uniqueEmail("change-taker"), apptest.StrongPassword)
		thirdAddr := uniqueEmail("change-contested")
		third := changeToken(t, env, taker, thirdAddr, 1)
		newToken := changeToken(t, env, id, thirdAddr, 2)
		_, err = acc.ConfirmEmailChange(ctx, third)
		require.NoError(t, err)
		_, err = acc.ConfirmEmailChange(ctx, newToken)
		require.Equal(t, gatehouse.CodeEmailTaken, gatehouse.ErrorCode(err))

		// Expired.
		env.Clock.Advance(24*time.Hour + time.Second)
		_, err = acc.ConfirmEmailChange(ctx, second)
		require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err), "expired after 24 hours")
		u, err := acc.GetUser(ctx, id)
		require.NoError(t, err)
		require.Equal(t, gatehouse.Email(email), u.Email)
	})
}

// Goroutines racing to spend one link: exactly one changes the email, the
// others get invalid_token, and one event is emitted.
func TestConcurrentEmailChangeTokenUse(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, env *apptest.Env) {
		email, next := uniqueEmail("race-change"), uniqueEmail("race-change-new")
		id := newAccount(t, env, email, apptest.StrongPassword)
		tok := changeToken(t, env, id, next, 1)

		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, apptest.Racers)
		)
		for i := range apptest.Racers {
			wg.Go(func() {
				<-start
				_, errs[i] = env.App.Accounts.ConfirmEmailChange(context.Background(), tok)
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for i, err := range errs {
			if err == nil {
				wins++
				continue
			}
			require.Equal(t, gatehouse.CodeInvalidToken, gatehouse.ErrorCode(err), "racer %d: %v", i, err)
		}
		require.Equal(t, 1, wins)
		events := 0
		for _, e := range env.Events() {
			if e.Type == gatehouse.EventUserEmailChanged && e.UserID == id {
				events++
			}
		}
		require.Equal(t, 1, events)
	})
}
