package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// keyCases cover SigningKeys.
var keyCases = []testCase{
	{name: "SigningKeys/CreateList", fresh: true, covers: []string{"CreateSigningKey", "ListSigningKeys"}, fn: testSigningKeysCreateList},
	{name: "SigningKeys/ListEmpty", fresh: true, covers: []string{"ListSigningKeys"}, fn: testSigningKeysListEmpty},
	{name: "SigningKeys/CreateDuplicate", fresh: true, covers: []string{"CreateSigningKey"}, fn: testSigningKeysCreateDuplicate},
	{name: "SigningKeys/Retire", fresh: true, covers: []string{"RetireSigningKey"}, fn: testSigningKeysRetire},
	{name: "SigningKeys/RetireNotFound", covers: []string{"RetireSigningKey"}, fn: testSigningKeysRetireNotFound},
	{name: "SigningKeys/RetireRace", covers: []string{"RetireSigningKey"}, fn: testSigningKeysRetireRace},
	{name: "SigningKeys/DeleteExpired", fresh: true, covers: []string{"DeleteExpiredSigningKeys"}, fn: testSigningKeysDeleteExpired},
}

func newKey(createdAt time.Time) gatehouse.SigningKey {
	return gatehouse.SigningKey{
		ID:            gatehouse.NewID(),
		Algorithm:     "RS256",
		PublicKeyPEM:  "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
		PrivateKeyEnc: []byte{0x00, 0x01, 0xfe, 0xff, 'k', 0x00},
		CreatedAt:     createdAt,
	}
}

func requireKey(t *testing.T, want, got gatehouse.SigningKey) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Algorithm, got.Algorithm)
	require.Equal(t, want.PublicKeyPEM, got.PublicKeyPEM)
	require.Equal(t, want.PrivateKeyEnc, got.PrivateKeyEnc)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTimePtr(t, want.RetiredAt, got.RetiredAt, "RetiredAt")
	requireTimePtr(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")
}

func testSigningKeysCreateList(t *testing.T, s store.Store) {
	ctx := t.Context()
	oldest := newKey(base.Add(-2 * time.Hour))
	oldest.RetiredAt = ptr(base.Add(-time.Hour))
	oldest.ExpiresAt = ptr(base.Add(24 * time.Hour))
	middle := newKey(base.Add(-time.Hour))
	newest := newKey(base)
	// Insert out of order: the store, not insertion order, sorts.
	for _, k := range []gatehouse.SigningKey{middle, newest, oldest} {
		require.NoError(t, s.CreateSigningKey(ctx, k))
	}
	got, err := s.ListSigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, want := range []gatehouse.SigningKey{newest, middle, oldest} {
		requireKey(t, want, got[i])
	}
}

func testSigningKeysListEmpty(t *testing.T, s store.Store) {
	got, err := s.ListSigningKeys(t.Context())
	require.NoError(t, err)
	require.Empty(t, got)
}

func testSigningKeysCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := newKey(base)
	require.NoError(t, s.CreateSigningKey(ctx, k))
	k2 := newKey(base.Add(time.Minute))
	k2.ID = k.ID
	err := s.CreateSigningKey(ctx, k2)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)

	got, err := s.ListSigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	requireKey(t, k, got[0])
}

func testSigningKeysRetire(t *testing.T, s store.Store) {
	ctx := t.Context()
	active := newKey(base)
	retiring := newKey(base.Add(-time.Hour))
	require.NoError(t, s.CreateSigningKey(ctx, active))
	require.NoError(t, s.CreateSigningKey(ctx, retiring))

	retiredAt, expiresAt := base.Add(time.Minute), base.Add(48*time.Hour)
	require.NoError(t, s.RetireSigningKey(ctx, retiring.ID, retiredAt, expiresAt))

	got, err := s.ListSigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	requireKey(t, active, got[0])
	require.True(t, got[0].Active())
	retiring.RetiredAt, retiring.ExpiresAt = &retiredAt, &expiresAt
	requireKey(t, retiring, got[1])
	require.False(t, got[1].Active())

	// Retiring twice is refused: only active keys retire, and the first
	// retirement's times stay.
	err = s.RetireSigningKey(ctx, retiring.ID, base.Add(time.Hour), base.Add(time.Hour))
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err = s.ListSigningKeys(ctx)
	require.NoError(t, err)
	requireKey(t, retiring, got[1])
}

func testSigningKeysRetireNotFound(t *testing.T, s store.Store) {
	err := s.RetireSigningKey(t.Context(), gatehouse.NewID(), base, base)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testSigningKeysDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base
	mk := func(age time.Duration, retired bool, expires *time.Time) gatehouse.SigningKey {
		k := newKey(now.Add(-age))
		if retired {
			k.RetiredAt = ptr(now.Add(-age / 2))
		}
		k.ExpiresAt = expires
		require.NoError(t, s.CreateSigningKey(ctx, k))
		return k
	}
	active := mk(time.Hour, false, nil)
	activeOddExpiry := mk(2*time.Hour, false, ptr(now.Add(-time.Hour))) // not retired: never deleted
	stillPublished := mk(3*time.Hour, true, ptr(now.Add(time.Microsecond)))
	expiresExactlyNow := mk(4*time.Hour, true, ptr(now))   // "before now" is strict
	mk(5*time.Hour, true, ptr(now.Add(-time.Microsecond))) // expired by 1µs
	mk(6*time.Hour, true, ptr(now.Add(-24*time.Hour)))     // long expired

	n, err := s.DeleteExpiredSigningKeys(ctx, now)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)

	got, err := s.ListSigningKeys(ctx)
	require.NoError(t, err)
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	require.Equal(t, []string{active.ID, activeOddExpiry.ID, stillPublished.ID, expiresExactlyNow.ID}, ids)

	n, err = s.DeleteExpiredSigningKeys(ctx, now)
	require.NoError(t, err)
	require.Zero(t, n)

	for range 5 {
		mk(time.Hour, true, ptr(now.Add(-time.Minute)))
	}
	requireSweptOnce(t, s, 5, func(ctx context.Context, q store.Queries) (int64, error) {
		return q.DeleteExpiredSigningKeys(ctx, now)
	})
}

// testSigningKeysRetireRace: instances rotating keys at once retire a key
// once; the others are told it is no longer active.
func testSigningKeysRetireRace(t *testing.T, s store.Store) {
	k := newKey(base)
	require.NoError(t, s.CreateSigningKey(t.Context(), k))
	win := requireOneWinner(t, s, "retire a key", store.ErrNotFound, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return won(q.RetireSigningKey(ctx, k.ID, racerTime(i), racerTime(i).Add(time.Hour)))
	})
	keys, err := s.ListSigningKeys(t.Context())
	require.NoError(t, err)
	i := slices.IndexFunc(keys, func(got gatehouse.SigningKey) bool { return got.ID == k.ID })
	require.GreaterOrEqual(t, i, 0)
	k.RetiredAt, k.ExpiresAt = ptr(racerTime(win)), ptr(racerTime(win).Add(time.Hour))
	requireKey(t, k, keys[i])
}
