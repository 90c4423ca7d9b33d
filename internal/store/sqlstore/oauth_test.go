package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

func oauthLink(userID, provider, subject string) gatehouse.OAuthAccount {
	return gatehouse.OAuthAccount{ID: gatehouse.NewID(), UserID: userID, Provider: provider, Subject: subject,
		Email: subject + "@example.com", CreatedAt: whT0}
}

func TestOAuthAccounts(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice, bob := whUser(t, db, "alice@example.com"), whUser(t, db, "bob@example.com")
		a := oauthLink(alice, "google", "111")
		require.NoError(t, db.CreateOAuthAccount(ctx, a))

		got, err := db.GetOAuthAccount(ctx, "google", "111")
		require.NoError(t, err)
		require.Equal(t, a.ID, got.ID)
		require.Equal(t, alice, got.UserID)
		require.Equal(t, "111@example.com", got.Email)
		require.True(t, whT0.Truncate(time.Microsecond).Equal(got.CreatedAt))
		require.Equal(t, time.UTC, got.CreatedAt.Location())

		_, err = db.GetOAuthAccount(ctx, "github", "111")
		require.ErrorIs(t, err, store.ErrNotFound, "the subject is per provider")

		// One (provider, subject) links to one user only.
		require.ErrorIs(t, db.CreateOAuthAccount(ctx, oauthLink(bob, "google", "111")), store.ErrConflict)
		require.ErrorIs(t, db.CreateOAuthAccount(ctx, a), store.ErrConflict)
		require.ErrorIs(t, db.CreateOAuthAccount(ctx, oauthLink(gatehouse.NewID(), "google", "999")), store.ErrNotFound)

		b := oauthLink(alice, "github", "111")
		require.NoError(t, db.CreateOAuthAccount(ctx, b))
		list, err := db.ListOAuthAccounts(ctx, alice)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, []string{a.ID, b.ID}, []string{list[0].ID, list[1].ID})
		list, err = db.ListOAuthAccounts(ctx, bob)
		require.NoError(t, err)
		require.Empty(t, list)

		require.ErrorIs(t, db.DeleteOAuthAccount(ctx, bob, a.ID), store.ErrNotFound, "another user's link")
		require.NoError(t, db.DeleteOAuthAccount(ctx, alice, a.ID))
		require.ErrorIs(t, db.DeleteOAuthAccount(ctx, alice, a.ID), store.ErrNotFound)

		// Deleting the user deletes its links.
		require.NoError(t, db.DeleteUser(ctx, alice))
		_, err = db.GetOAuthAccount(ctx, "github", "111")
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestOAuthAccountsConcurrentLink(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		users := make([]string, 8)
		for i := range users {
			users[i] = whUser(t, db, gatehouse.NewID()+"@example.com")
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, u := range users {
			wg.Go(func() {
				if err := db.CreateOAuthAccount(ctx, oauthLink(u, "google", "race")); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, store.ErrConflict) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, wins.Load())
	})
}
