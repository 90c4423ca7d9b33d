// Package storetest is the conformance suite for store.Store: every dialect
// must pass Run, so a behaviour that differs between engines shows up as a
// failing subtest on one of them. Every store method added to the contract
// gets its cases here.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Run runs the suite. open must return a fresh, migrated, empty store for
// each call, released when t ends; subtests run in parallel, so open must be
// safe to call concurrently (sqltest's openers are).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"SigningKeys/CreateList", testSigningKeysCreateList},
		{"SigningKeys/ListEmpty", testSigningKeysListEmpty},
		{"SigningKeys/CreateDuplicate", testSigningKeysCreateDuplicate},
		{"SigningKeys/Retire", testSigningKeysRetire},
		{"SigningKeys/RetireNotFound", testSigningKeysRetireNotFound},
		{"SigningKeys/DeleteExpired", testSigningKeysDeleteExpired},
		{"Events/CreateGet", testEventsCreateGet},
		{"Events/OptionalFieldsEmpty", testEventsOptionalFieldsEmpty},
		{"Events/GetNotFound", testEventsGetNotFound},
		{"Events/Delete", testEventsDelete},
		{"Events/CreateDuplicate", testEventsCreateDuplicate},
		{"Events/DataRoundTrip", testEventsDataRoundTrip},
		{"Timestamps/UTCMicroseconds", testTimestampsUTCMicroseconds},
		{"InTx/Commit", testInTxCommit},
		{"InTx/RollbackOnError", testInTxRollbackOnError},
		{"InTx/RollbackOnPanic", testInTxRollbackOnPanic},
		{"InTx/ConflictInside", testInTxConflictInside},
		{"InTx/SQLTx", testInTxSQLTx},
		{"InTx/CanceledContext", testInTxCanceledContext},
	}
	tests = append(tests, accountTests...)
	tests = append(tests, roleTests...)
	tests = append(tests, auditTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// base is a fixed instant with nanoseconds and a non-UTC zone, so every
// round trip also checks normalisation to UTC microseconds.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*60*60))

// norm is what the store must hand back for t.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func ptr[T any](v T) *T { return &v }

// requireTime checks got is want at microsecond precision and in UTC.
func requireTime(t *testing.T, want, got time.Time, field string) {
	t.Helper()
	require.Truef(t, norm(want).Equal(got), "%s: want %s, got %s", field, norm(want), got)
	require.Equalf(t, time.UTC, got.Location(), "%s: location", field)
}

func requireTimePtr(t *testing.T, want, got *time.Time, field string) {
	t.Helper()
	if want == nil {
		require.Nilf(t, got, "%s", field)
		return
	}
	require.NotNilf(t, got, "%s", field)
	requireTime(t, *want, *got, field)
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

func newEvent(data map[string]any) gatehouse.Event {
	return gatehouse.Event{
		ID:        gatehouse.NewID(),
		Type:      gatehouse.EventUserLogin,
		UserID:    gatehouse.NewID(),
		ActorID:   gatehouse.NewID(),
		Data:      data,
		CreatedAt: base,
	}
}

func requireEvent(t *testing.T, want, got gatehouse.Event) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Type, got.Type)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.ActorID, got.ActorID)
	require.Equal(t, want.Data, got.Data)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
}

func testPing(t *testing.T, s store.Store) {
	ctx := t.Context()
	require.NoError(t, s.Ping(ctx))
	require.Contains(t, []store.Dialect{store.SQLite, store.Postgres}, s.Dialect())
	require.NotNil(t, s.DB())
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
}

func testEventsCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := newEvent(map[string]any{
		"ip":      "203.0.113.7",
		"success": true,
		"count":   float64(3),
		"ratio":   0.25,
		"missing": nil,
		"nested": map[string]any{
			"deeper": map[string]any{"list": []any{"a", float64(1), false, nil, map[string]any{}}},
			"empty":  []any{},
		},
		"unicode": "Grüße, 世界 🌍 — \"quoted\" \\ back\\slash\n\ttab",
		"日本語のキー":  "ключ",
	})
	require.NoError(t, s.CreateEvent(ctx, e))
	got, err := s.GetEvent(ctx, e.ID)
	require.NoError(t, err)
	requireEvent(t, e, got)
}

func testEventsOptionalFieldsEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := newEvent(nil)
	e.UserID, e.ActorID, e.Type = "", "", gatehouse.EventSecurityAlert
	require.NoError(t, s.CreateEvent(ctx, e))
	got, err := s.GetEvent(ctx, e.ID)
	require.NoError(t, err)
	// A nil Data comes back as an empty, non-nil map.
	require.NotNil(t, got.Data)
	e.Data = map[string]any{}
	requireEvent(t, e, got)
}

func testEventsGetNotFound(t *testing.T, s store.Store) {
	_, err := s.GetEvent(t.Context(), gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
}

func testEventsDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	e, other := newEvent(nil), newEvent(nil)
	require.NoError(t, s.CreateEvent(ctx, e))
	require.NoError(t, s.CreateEvent(ctx, other))
	require.NoError(t, s.DeleteEvent(ctx, e.ID))
	_, err := s.GetEvent(ctx, e.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteEvent(ctx, e.ID), store.ErrNotFound)
	_, err = s.GetEvent(ctx, other.ID)
	require.NoError(t, err, "only the one event goes")
}

func testEventsCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := newEvent(map[string]any{"v": "first"})
	require.NoError(t, s.CreateEvent(ctx, e))
	dup := newEvent(map[string]any{"v": "second"})
	dup.ID = e.ID
	err := s.CreateEvent(ctx, dup)
	require.ErrorIs(t, err, store.ErrConflict)

	got, err := s.GetEvent(ctx, e.ID)
	require.NoError(t, err)
	requireEvent(t, e, got)
}

// testEventsDataRoundTrip: any JSON-shaped data map (the values
// encoding/json produces: string, float64, bool, nil, []any, map[string]any)
// comes back equal, on every engine.
func testEventsDataRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	rapid.Check(t, func(rt *rapid.T) {
		data := rapid.MapOf(jsonKey(), jsonValue(3)).Draw(rt, "data")
		e := newEvent(data)
		e.CreatedAt = rapid.Custom(func(rt *rapid.T) time.Time {
			return time.Unix(rapid.Int64Range(0, 4102444800).Draw(rt, "sec"), rapid.Int64Range(0, 999999999).Draw(rt, "nsec"))
		}).Draw(rt, "createdAt")
		if err := s.CreateEvent(ctx, e); err != nil {
			rt.Fatalf("create: %v", err)
		}
		got, err := s.GetEvent(ctx, e.ID)
		if err != nil {
			rt.Fatalf("get: %v", err)
		}
		if !norm(e.CreatedAt).Equal(got.CreatedAt) || got.CreatedAt.Location() != time.UTC {
			rt.Fatalf("created_at: want %s, got %s", norm(e.CreatedAt), got.CreatedAt)
		}
		if !reflect.DeepEqual(e.Data, got.Data) {
			rt.Fatalf("data: want %#v, got %#v", e.Data, got.Data)
		}
	})
}

// jsonString draws valid UTF-8 without U+0000, which PostgreSQL's JSONB
// cannot store (the store documents this).
func jsonString() *rapid.Generator[string] {
	return rapid.StringOf(rapid.Rune().Filter(func(r rune) bool { return r != 0 }))
}

func jsonKey() *rapid.Generator[string] { return jsonString() }

func jsonValue(depth int) *rapid.Generator[any] {
	leaves := []*rapid.Generator[any]{
		rapid.Map(jsonString(), func(s string) any { return s }),
		rapid.Map(rapid.Float64().Filter(func(f float64) bool { return f == f && f-f == 0 }), func(f float64) any { return f }),
		rapid.Map(rapid.Int64Range(-1<<53, 1<<53), func(i int64) any { return float64(i) }),
		rapid.Map(rapid.Bool(), func(b bool) any { return b }),
		rapid.Just[any](nil),
	}
	if depth == 0 {
		return rapid.OneOf(leaves...)
	}
	return rapid.OneOf(append(leaves,
		rapid.Map(rapid.SliceOfN(jsonValue(depth-1), 0, 4), func(v []any) any { return v }),
		rapid.Map(rapid.MapOfN(jsonKey(), jsonValue(depth-1), 0, 4), func(v map[string]any) any { return v }),
	)...)
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
