package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// txCases cover the Store's own methods (Ping, InTx, Close, ...) and what
// every table shares: timestamps and transactions.
var txCases = []testCase{
	{name: "Ping", covers: []string{"Ping", "Dialect", "DB"}, fn: testPing},
	{name: "Close", fresh: true, covers: []string{"Close"}, fn: testClose},
	{name: "Timestamps/UTCMicroseconds", fresh: true, covers: []string{"CreateEvent", "GetEvent", "CreateSigningKey", "ListSigningKeys"}, fn: testTimestampsUTCMicroseconds},
	{name: "InTx/Commit", fresh: true, covers: []string{"InTx"}, fn: testInTxCommit},
	{name: "InTx/RollbackOnError", fresh: true, covers: []string{"InTx"}, fn: testInTxRollbackOnError},
	{name: "InTx/RollbackOnPanic", fresh: true, covers: []string{"InTx"}, fn: testInTxRollbackOnPanic},
	{name: "InTx/ConflictInside", covers: []string{"InTx"}, fn: testInTxConflictInside},
	{name: "InTx/AfterCommit", fresh: true, covers: []string{"AfterCommit"}, fn: testInTxAfterCommit},
	{name: "InTx/SQLTx", fresh: true, covers: []string{"SQLTx", "Dialect"}, fn: testInTxSQLTx},
	{name: "InTx/CanceledContext", covers: []string{"InTx"}, fn: testInTxCanceledContext},
}

func testPing(t *testing.T, s store.Store) {
	ctx := t.Context()
	require.NoError(t, s.Ping(ctx))
	require.Contains(t, []store.Dialect{store.SQLite, store.Postgres}, s.Dialect())
	require.NotNil(t, s.DB())
}

func testClose(t *testing.T, s store.Store) {
	require.NoError(t, s.Ping(t.Context()))
	require.NoError(t, s.Close())
	require.Error(t, s.Ping(t.Context()), "a closed store does not answer")
}

func testTimestampsUTCMicroseconds(t *testing.T, s store.Store) {
	ctx := t.Context()
	zones := []*time.Location{time.UTC, time.FixedZone("west", -7*60*60-30*60), time.FixedZone("east", 13*60*60)}
	instants := []time.Time{
		base,
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, zones[0]), // truncates, never rounds into 2000
		time.Date(2038, 1, 19, 3, 14, 8, 1000, zones[2]),
		time.Date(2024, 2, 29, 0, 0, 0, 999, zones[1]),
	}
	for i, at := range instants {
		e := newEvent(map[string]any{"i": float64(i)})
		e.CreatedAt = at
		require.NoError(t, s.CreateEvent(ctx, e))
		got, err := s.GetEvent(ctx, e.ID)
		require.NoError(t, err)
		requireTime(t, at, got.CreatedAt, fmt.Sprintf("event %d", i))
		require.Equal(t, norm(at).Year(), got.CreatedAt.Year())

		k := newKey(at)
		k.RetiredAt, k.ExpiresAt = ptr(at.Add(time.Nanosecond*1500)), ptr(at.In(zones[2]).Add(time.Hour))
		require.NoError(t, s.CreateSigningKey(ctx, k))
	}
	keys, err := s.ListSigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, len(instants))
	for _, k := range keys {
		require.Equal(t, time.UTC, k.CreatedAt.Location())
		require.Equal(t, time.UTC, k.RetiredAt.Location())
		require.Equal(t, time.UTC, k.ExpiresAt.Location())
		require.Zero(t, k.CreatedAt.Nanosecond()%1000)
		require.Zero(t, k.RetiredAt.Nanosecond()%1000)
	}
	// Newest first holds across zones: ordering is by instant, not text.
	for i := 1; i < len(keys); i++ {
		require.False(t, keys[i].CreatedAt.After(keys[i-1].CreatedAt), "keys out of order at %d", i)
	}
}

func testInTxCommit(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := newEvent(map[string]any{"tx": "commit"})
	k := newKey(base)
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.NoError(t, tx.CreateEvent(ctx, e))
		require.NoError(t, tx.CreateSigningKey(ctx, k))
		// The transaction sees its own writes.
		got, err := tx.GetEvent(ctx, e.ID)
		require.NoError(t, err)
		requireEvent(t, e, got)
		keys, err := tx.ListSigningKeys(ctx)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		return nil
	})
	require.NoError(t, err)
	got, err := s.GetEvent(ctx, e.ID)
	require.NoError(t, err)
	requireEvent(t, e, got)
	keys, err := s.ListSigningKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	requireKey(t, k, keys[0])
}

var errBoom = errors.New("boom")

func testInTxRollbackOnError(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := newEvent(nil)
	k := newKey(base)
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.NoError(t, tx.CreateEvent(ctx, e))
		require.NoError(t, tx.CreateSigningKey(ctx, k))
		return fmt.Errorf("service: %w", errBoom)
	})
	require.ErrorIs(t, err, errBoom)
	requireNothing(t, s, e.ID)
}

// AfterCommit hooks run, in order, only once the change is visible; a
// rolled-back transaction runs none.
func testInTxAfterCommit(t *testing.T, s store.Store) {
	outside := t.Context()
	e := newEvent(nil)
	var ran []string
	require.NoError(t, s.InTx(outside, func(ctx context.Context, tx store.Tx) error {
		require.NoError(t, tx.CreateEvent(ctx, e))
		tx.AfterCommit(func() {
			_, err := s.GetEvent(outside, e.ID) // committed: readable outside the transaction
			require.NoError(t, err)
			ran = append(ran, "first")
		})
		tx.AfterCommit(func() { ran = append(ran, "second") })
		require.Empty(t, ran, "nothing runs before the commit")
		return nil
	}))
	require.Equal(t, []string{"first", "second"}, ran)

	ran = nil
	err := s.InTx(outside, func(ctx context.Context, tx store.Tx) error {
		tx.AfterCommit(func() { ran = append(ran, "rolled back") })
		require.NoError(t, tx.CreateEvent(ctx, newEvent(nil)))
		return errBoom
	})
	require.ErrorIs(t, err, errBoom)
	require.Empty(t, ran)
}

func testInTxRollbackOnPanic(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := newEvent(nil)
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		_ = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			require.NoError(t, tx.CreateEvent(ctx, e))
			require.NoError(t, tx.CreateSigningKey(ctx, newKey(base)))
			panic(errBoom)
		})
	}()
	require.Equal(t, errBoom, recovered, "InTx must re-panic with fn's value")
	// The store is still usable (the connection was released: a leaked
	// transaction would block SQLite's single connection, so bound the
	// wait) and the writes are gone.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	requireNothingCtx(ctx, t, s, e.ID)
	require.NoError(t, s.CreateEvent(ctx, newEvent(nil)))
}

func requireNothing(t *testing.T, s store.Store, eventID string) {
	t.Helper()
	requireNothingCtx(t.Context(), t, s, eventID)
}

func requireNothingCtx(ctx context.Context, t *testing.T, s store.Store, eventID string) {
	t.Helper()
	_, err := s.GetEvent(ctx, eventID)
	require.ErrorIs(t, err, store.ErrNotFound)
	keys, err := s.ListSigningKeys(ctx)
	require.NoError(t, err)
	require.Empty(t, keys)
}

func testInTxConflictInside(t *testing.T, s store.Store) {
	ctx := t.Context()
	existing := newEvent(nil)
	require.NoError(t, s.CreateEvent(ctx, existing))
	fresh := newEvent(nil)
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.NoError(t, tx.CreateEvent(ctx, fresh))
		dup := newEvent(nil)
		dup.ID = existing.ID
		return tx.CreateEvent(ctx, dup)
	})
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.GetEvent(ctx, fresh.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetEvent(ctx, existing.ID)
	require.NoError(t, err)
}

func testInTxSQLTx(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := newEvent(nil)
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.NotNil(t, tx.SQLTx())
		require.Equal(t, s.Dialect(), tx.Dialect())
		require.NoError(t, tx.CreateEvent(ctx, e))
		// Raw SQL on SQLTx sees the same transaction (River relies on it).
		var n int
		require.NoError(t, tx.SQLTx().QueryRowContext(ctx, "SELECT COUNT(*) FROM events").Scan(&n))
		require.Equal(t, 1, n)
		return nil
	})
	require.NoError(t, err)
}

func testInTxCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := s.InTx(ctx, func(context.Context, store.Tx) error {
		called = true
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, called)
	require.NoError(t, s.Ping(t.Context()))
}
