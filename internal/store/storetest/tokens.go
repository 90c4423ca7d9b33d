package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// oneTimeTokenCases cover OneTimeTokens (email links and SMS codes).
var oneTimeTokenCases = []testCase{
	{name: "OneTimeTokens/CreateConsume", covers: []string{"CreateOneTimeToken", "ConsumeOneTimeToken"}, fn: testOneTimeTokensCreateConsume},
	{name: "OneTimeTokens/CreateDuplicate", covers: []string{"CreateOneTimeToken"}, fn: testOneTimeTokensCreateDuplicate},
	{name: "OneTimeTokens/ConsumeRefused", covers: []string{"ConsumeOneTimeToken"}, fn: testOneTimeTokensConsumeRefused},
	{name: "OneTimeTokens/ConsumeRace", covers: []string{"ConsumeOneTimeToken"}, fn: testOneTimeTokensConsumeRace},
	{name: "OneTimeTokens/Supersede", fresh: true, covers: []string{"SupersedeOneTimeTokens"}, fn: testOneTimeTokensSupersede},
	{name: "OneTimeTokens/DeleteStale", fresh: true, covers: []string{"DeleteStaleOneTimeTokens"}, fn: testOneTimeTokensDeleteStale},
}

func newOneTimeToken(t *testing.T, userID string, purpose gatehouse.OneTimePurpose) gatehouse.OneTimeToken {
	return gatehouse.OneTimeToken{
		ID:        gatehouse.NewID(),
		UserID:    userID,
		Purpose:   purpose,
		Hash:      secretHash(t),
		CreatedAt: base.Add(-time.Minute),
		ExpiresAt: base.Add(time.Hour),
	}
}

func createOneTimeToken(t *testing.T, s store.Store, userID string, purpose gatehouse.OneTimePurpose) (gatehouse.OneTimeToken, []byte) {
	t.Helper()
	tok := newOneTimeToken(t, userID, purpose)
	require.NoError(t, s.CreateOneTimeToken(t.Context(), tok))
	return tok, tok.Hash
}

func requireOneTimeToken(t *testing.T, want, got gatehouse.OneTimeToken) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.Purpose, got.Purpose)
	require.Equal(t, want.Hash, got.Hash)
	require.Equal(t, want.Data, got.Data)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")
	requireTimePtr(t, want.UsedAt, got.UsedAt, "UsedAt")
}

func testOneTimeTokensCreateConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	for _, purpose := range []gatehouse.OneTimePurpose{gatehouse.PurposeVerifyEmail, gatehouse.PurposeResetPassword, gatehouse.PurposeMagicLink, gatehouse.PurposeMFASMS, gatehouse.PurposeChangeEmail} {
		tok := newOneTimeToken(t, u.ID, purpose)
		if purpose == gatehouse.PurposeChangeEmail {
			tok.Data = "new-address@example.com" // carried back by Consume
		}
		require.NoError(t, s.CreateOneTimeToken(ctx, tok))
		hash := tok.Hash
		now := base.Add(time.Second)
		got, err := s.ConsumeOneTimeToken(ctx, purpose, hash, now)
		require.NoError(t, err, purpose)
		want := tok
		want.UsedAt = &now
		requireOneTimeToken(t, want, got)

		_, err = s.ConsumeOneTimeToken(ctx, purpose, hash, now)
		require.ErrorIs(t, err, store.ErrNotFound, "%s: a consumed token is spent", purpose)
	}
}

func testOneTimeTokensCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	tok, hash := createOneTimeToken(t, s, u.ID, gatehouse.PurposeVerifyEmail)

	sameHash := newOneTimeToken(t, u.ID, gatehouse.PurposeMagicLink)
	sameHash.Hash = hash
	require.ErrorIs(t, s.CreateOneTimeToken(ctx, sameHash), store.ErrConflict)
	sameID := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
	sameID.ID = tok.ID
	require.ErrorIs(t, s.CreateOneTimeToken(ctx, sameID), store.ErrConflict)
	orphan := newOneTimeToken(t, gatehouse.NewID(), gatehouse.PurposeVerifyEmail)
	require.ErrorIs(t, s.CreateOneTimeToken(ctx, orphan), store.ErrConflict, "unknown user")

	got, err := s.ConsumeOneTimeToken(ctx, gatehouse.PurposeVerifyEmail, hash, base)
	require.NoError(t, err)
	require.Equal(t, tok.ID, got.ID)
}

func testOneTimeTokensConsumeRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	now := base
	mk := func(purpose gatehouse.OneTimePurpose, expires time.Time, used *time.Time) gatehouse.OneTimeToken {
		tok := newOneTimeToken(t, u.ID, purpose)
		tok.ExpiresAt, tok.UsedAt = expires, used
		require.NoError(t, s.CreateOneTimeToken(ctx, tok))
		return tok
	}
	valid := mk(gatehouse.PurposeResetPassword, now.Add(time.Hour), nil)
	cases := []struct {
		name    string
		purpose gatehouse.OneTimePurpose
		hash    []byte
	}{
		{"unknown hash", gatehouse.PurposeResetPassword, secretHash(t)},
		{"empty hash", gatehouse.PurposeResetPassword, []byte{}},
		{"wrong purpose", gatehouse.PurposeMagicLink, valid.Hash},
		{"unknown purpose", "sign_up", valid.Hash},
		{"expires exactly now", gatehouse.PurposeResetPassword, mk(gatehouse.PurposeResetPassword, now, nil).Hash},
		{"expired", gatehouse.PurposeResetPassword, mk(gatehouse.PurposeResetPassword, now.Add(-time.Microsecond), nil).Hash},
		{"used", gatehouse.PurposeResetPassword, mk(gatehouse.PurposeResetPassword, now.Add(time.Hour), ptr(now.Add(-time.Minute))).Hash},
		{"used in the future", gatehouse.PurposeResetPassword, mk(gatehouse.PurposeResetPassword, now.Add(time.Hour), ptr(now.Add(time.Minute))).Hash},
	}
	for _, c := range cases {
		_, err := s.ConsumeOneTimeToken(ctx, c.purpose, c.hash, now)
		require.ErrorIs(t, err, store.ErrNotFound, c.name)
		require.NotErrorIs(t, err, store.ErrConflict, c.name)
	}
	// The refused attempts did not spend the valid token.
	got, err := s.ConsumeOneTimeToken(ctx, gatehouse.PurposeResetPassword, valid.Hash, now)
	require.NoError(t, err)
	require.Equal(t, valid.ID, got.ID)
}

func testOneTimeTokensSupersede(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	first, _ := createOneTimeToken(t, s, u.ID, gatehouse.PurposeVerifyEmail)
	second, _ := createOneTimeToken(t, s, u.ID, gatehouse.PurposeVerifyEmail)
	earlier := base.Add(-30 * time.Second)
	spent := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
	spent.UsedAt = &earlier
	require.NoError(t, s.CreateOneTimeToken(ctx, spent))
	otherPurpose, _ := createOneTimeToken(t, s, u.ID, gatehouse.PurposeResetPassword)
	otherUser, _ := createOneTimeToken(t, s, other.ID, gatehouse.PurposeVerifyEmail)

	at := base.Add(time.Second)
	require.NoError(t, s.SupersedeOneTimeTokens(ctx, u.ID, gatehouse.PurposeVerifyEmail, at))
	for _, tok := range []gatehouse.OneTimeToken{first, second, spent} {
		_, err := s.ConsumeOneTimeToken(ctx, gatehouse.PurposeVerifyEmail, tok.Hash, at)
		require.ErrorIs(t, err, store.ErrNotFound, "superseded")
	}
	// A token made after superseding works; so do the untouched ones.
	fresh, _ := createOneTimeToken(t, s, u.ID, gatehouse.PurposeVerifyEmail)
	for _, tok := range []gatehouse.OneTimeToken{fresh, otherPurpose, otherUser} {
		got, err := s.ConsumeOneTimeToken(ctx, tok.Purpose, tok.Hash, at)
		require.NoError(t, err)
		require.Equal(t, tok.ID, got.ID)
	}
	// Nothing to supersede (and an unknown user) is fine.
	require.NoError(t, s.SupersedeOneTimeTokens(ctx, u.ID, gatehouse.PurposeMagicLink, at))
	require.NoError(t, s.SupersedeOneTimeTokens(ctx, gatehouse.NewID(), gatehouse.PurposeMagicLink, at))

	// Superseding left the already-spent token's UsedAt alone, which
	// DeleteStaleOneTimeTokens relies on: a cutoff between the two times
	// removes it and keeps the ones superseded at "at".
	n, err := s.DeleteStaleOneTimeTokens(ctx, earlier.Add(time.Microsecond))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

// testOneTimeTokensConsumeRace: a link clicked (or a code sent) many
// times at once is spent once; the winner gets the token, the others
// ErrNotFound.
func testOneTimeTokensConsumeRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	for _, purpose := range []gatehouse.OneTimePurpose{gatehouse.PurposeMagicLink, gatehouse.PurposeMFASMS} {
		tok, hash := createOneTimeToken(t, s, u.ID, purpose)
		got := raceAll(t, s, store.ErrNotFound, func(ctx context.Context, q store.Queries, i int) (*gatehouse.OneTimeToken, error) {
			consumed, err := q.ConsumeOneTimeToken(ctx, purpose, hash, racerTime(i))
			return &consumed, err
		})
		win := -1
		for i, c := range got {
			if c != nil {
				require.Equal(t, -1, win, "%s: racers %d and %d both consumed the token", purpose, win, i)
				win = i
			}
		}
		require.NotEqual(t, -1, win, "%s: nobody consumed the token", purpose)
		want := tok
		want.UsedAt = ptr(racerTime(win))
		requireOneTimeToken(t, want, *got[win])
	}
}

func testOneTimeTokensDeleteStale(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	cutoff := base
	mk := func(expires time.Time, used *time.Time) gatehouse.OneTimeToken {
		tok := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
		tok.ExpiresAt, tok.UsedAt = expires, used
		require.NoError(t, s.CreateOneTimeToken(ctx, tok))
		return tok
	}
	future := cutoff.Add(time.Hour)
	kept := []gatehouse.OneTimeToken{
		mk(future, nil),
		mk(cutoff, nil),         // "before cutoff" is strict
		mk(future, ptr(cutoff)), // likewise
		mk(future, ptr(cutoff.Add(time.Hour))),
	}
	gone := []gatehouse.OneTimeToken{
		mk(cutoff.Add(-time.Microsecond), nil),
		mk(future, ptr(cutoff.Add(-time.Microsecond))),
		mk(cutoff.Add(-time.Hour), ptr(cutoff.Add(-2*time.Hour))),
	}
	n, err := s.DeleteStaleOneTimeTokens(ctx, cutoff)
	require.NoError(t, err)
	require.Equal(t, int64(len(gone)), n)

	// Deleted hashes are free again; kept ones still conflict.
	for _, tok := range gone {
		again := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
		again.Hash = tok.Hash
		require.NoError(t, s.CreateOneTimeToken(ctx, again))
	}
	for _, tok := range kept {
		again := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
		again.Hash = tok.Hash
		require.ErrorIs(t, s.CreateOneTimeToken(ctx, again), store.ErrConflict)
	}
	// The unused, unexpired one is still consumable.
	_, err = s.ConsumeOneTimeToken(ctx, gatehouse.PurposeVerifyEmail, kept[0].Hash, cutoff)
	require.NoError(t, err)

	n, err = s.DeleteStaleOneTimeTokens(ctx, cutoff.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)

	for range 10 {
		mk(cutoff.Add(-time.Hour), nil)
	}
	requireSweptOnce(t, s, 10, func(ctx context.Context, q store.Queries) (int64, error) {
		return q.DeleteStaleOneTimeTokens(ctx, cutoff)
	})
}
