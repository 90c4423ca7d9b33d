package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// oauthCases cover OAuthAccounts: links to external identity providers.
var oauthCases = []testCase{
	{name: "OAuthAccounts/CreateGet", covers: []string{"CreateOAuthAccount", "GetOAuthAccount"}, fn: testOAuthCreateGet},
	{name: "OAuthAccounts/CreateRefused", covers: []string{"CreateOAuthAccount"}, fn: testOAuthCreateRefused},
	{name: "OAuthAccounts/LinkRace", covers: []string{"CreateOAuthAccount"}, fn: testOAuthLinkRace},
	{name: "OAuthAccounts/List", covers: []string{"ListOAuthAccounts"}, fn: testOAuthList},
	{name: "OAuthAccounts/Delete", covers: []string{"DeleteOAuthAccount"}, fn: testOAuthDelete},
	{name: "OAuthAccounts/DeleteRace", covers: []string{"DeleteOAuthAccount"}, fn: testOAuthDeleteRace},
	{name: "OAuthAccounts/DeletedWithUser", covers: []string{"DeleteUser"}, fn: testOAuthDeletedWithUser},
}

// newOAuthAccount links userID to a fresh subject at provider, so cases
// sharing a store never collide.
func newOAuthAccount(userID, provider string) gatehouse.OAuthAccount {
	subject := "sub-" + gatehouse.NewID()
	return gatehouse.OAuthAccount{ID: gatehouse.NewID(), UserID: userID, Provider: provider, Subject: subject,
		Email: "Grüße+" + subject + "@example.com", CreatedAt: base}
}

func createOAuthAccount(t *testing.T, s store.Store, userID, provider string) gatehouse.OAuthAccount {
	t.Helper()
	a := newOAuthAccount(userID, provider)
	require.NoError(t, s.CreateOAuthAccount(t.Context(), a))
	return a
}

func requireOAuthAccount(t *testing.T, want, got gatehouse.OAuthAccount) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.Provider, got.Provider)
	require.Equal(t, want.Subject, got.Subject)
	require.Equal(t, want.Email, got.Email)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
}

func testOAuthCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	a := createOAuthAccount(t, s, u.ID, "google")
	got, err := s.GetOAuthAccount(ctx, "google", a.Subject)
	require.NoError(t, err)
	requireOAuthAccount(t, a, got)

	// The subject is per provider: the same one elsewhere is another link.
	gh := newOAuthAccount(u.ID, "github")
	gh.Subject, gh.Email = a.Subject, ""
	_, err = s.GetOAuthAccount(ctx, "github", a.Subject)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, s.CreateOAuthAccount(ctx, gh))
	got, err = s.GetOAuthAccount(ctx, "github", a.Subject)
	require.NoError(t, err)
	requireOAuthAccount(t, gh, got)

	// Lookups are exact: no case folding, no prefixes.
	for _, c := range [][2]string{{"Google", a.Subject}, {"google", a.Subject[:5]}, {"google", a.Subject + " "}, {"google", gatehouse.NewID()}} {
		_, err := s.GetOAuthAccount(ctx, c[0], c[1])
		require.ErrorIs(t, err, store.ErrNotFound, "%q %q", c[0], c[1])
		require.NotErrorIs(t, err, store.ErrConflict)
	}
}

func testOAuthCreateRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	a := createOAuthAccount(t, s, u.ID, "google")

	sameID := newOAuthAccount(u.ID, "github")
	sameID.ID = a.ID
	require.ErrorIs(t, s.CreateOAuthAccount(ctx, sameID), store.ErrConflict)
	// One provider account links to one user only.
	sameSubject := newOAuthAccount(other.ID, "google")
	sameSubject.Subject = a.Subject
	err := s.CreateOAuthAccount(ctx, sameSubject)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)
	orphan := newOAuthAccount(gatehouse.NewID(), "google")
	err = s.CreateOAuthAccount(ctx, orphan)
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown user")
	require.NotErrorIs(t, err, store.ErrConflict)
	_, err = s.GetOAuthAccount(ctx, "google", orphan.Subject)
	require.ErrorIs(t, err, store.ErrNotFound)

	got, err := s.GetOAuthAccount(ctx, "google", a.Subject)
	require.NoError(t, err)
	requireOAuthAccount(t, a, got)
	list, err := s.ListOAuthAccounts(ctx, other.ID)
	require.NoError(t, err)
	require.Empty(t, list)
}

// testOAuthLinkRace: one provider account linked from several sessions at
// once (two tabs finishing the same callback) links to one user.
func testOAuthLinkRace(t *testing.T, s store.Store) {
	subject := "sub-" + gatehouse.NewID()
	links := make([]gatehouse.OAuthAccount, racers)
	for i := range links {
		links[i] = newOAuthAccount(createUser(t, s).ID, "google")
		links[i].Subject = subject
	}
	win := requireOneWinner(t, s, "link one provider account", store.ErrConflict, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return won(q.CreateOAuthAccount(ctx, links[i]))
	})
	got, err := s.GetOAuthAccount(t.Context(), "google", subject)
	require.NoError(t, err)
	requireOAuthAccount(t, links[win], got)
}

func testOAuthList(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	list, err := s.ListOAuthAccounts(ctx, u.ID)
	require.NoError(t, err)
	require.Empty(t, list)

	ids := sortedIDs(3)
	var want []gatehouse.OAuthAccount
	for i, provider := range []string{"microsoft", "github", "google"} {
		a := newOAuthAccount(u.ID, provider)
		a.ID, a.CreatedAt = ids[i], base.Add(time.Duration(i)*time.Minute)
		want = append(want, a)
	}
	for _, i := range []int{2, 0, 1} { // out of order: the store sorts
		require.NoError(t, s.CreateOAuthAccount(ctx, want[i]))
	}
	createOAuthAccount(t, s, other.ID, "google")
	list, err = s.ListOAuthAccounts(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, list, 3, "only the user's own links")
	for i := range want {
		requireOAuthAccount(t, want[i], list[i])
	}
}

func testOAuthDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	a, kept := createOAuthAccount(t, s, u.ID, "google"), createOAuthAccount(t, s, u.ID, "github")
	theirs := createOAuthAccount(t, s, other.ID, "google")

	require.ErrorIs(t, s.DeleteOAuthAccount(ctx, u.ID, theirs.ID), store.ErrNotFound, "another user's link")
	require.NoError(t, s.DeleteOAuthAccount(ctx, u.ID, a.ID))
	require.ErrorIs(t, s.DeleteOAuthAccount(ctx, u.ID, a.ID), store.ErrNotFound)
	_, err := s.GetOAuthAccount(ctx, "google", a.Subject)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := s.ListOAuthAccounts(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireOAuthAccount(t, kept, list[0])
	got, err := s.GetOAuthAccount(ctx, "google", theirs.Subject)
	require.NoError(t, err)
	requireOAuthAccount(t, theirs, got)
	// The provider account may be linked again, to anyone.
	again := newOAuthAccount(other.ID, "google")
	again.Subject = a.Subject
	require.NoError(t, s.CreateOAuthAccount(ctx, again))
}

func testOAuthDeleteRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	a := createOAuthAccount(t, s, u.ID, "google")
	requireOneWinner(t, s, "unlink an account", store.ErrNotFound, func(ctx context.Context, q store.Queries, _ int) (bool, error) {
		return won(q.DeleteOAuthAccount(ctx, u.ID, a.ID))
	})
	list, err := s.ListOAuthAccounts(t.Context(), u.ID)
	require.NoError(t, err)
	require.Empty(t, list)
}

func testOAuthDeletedWithUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, kept := createUser(t, s), createUser(t, s)
	a, k := createOAuthAccount(t, s, u.ID, "google"), createOAuthAccount(t, s, kept.ID, "google")
	require.NoError(t, s.DeleteUser(ctx, u.ID))
	_, err := s.GetOAuthAccount(ctx, "google", a.Subject)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := s.ListOAuthAccounts(ctx, u.ID)
	require.NoError(t, err)
	require.Empty(t, list)
	got, err := s.GetOAuthAccount(ctx, "google", k.Subject)
	require.NoError(t, err)
	requireOAuthAccount(t, k, got)
}
