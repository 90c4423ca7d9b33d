package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// eventCases cover Events.
var eventCases = []testCase{
	{name: "Events/CreateGet", covers: []string{"CreateEvent", "GetEvent"}, fn: testEventsCreateGet},
	{name: "Events/OptionalFieldsEmpty", covers: []string{"CreateEvent", "GetEvent"}, fn: testEventsOptionalFieldsEmpty},
	{name: "Events/GetNotFound", covers: []string{"GetEvent"}, fn: testEventsGetNotFound},
	{name: "Events/Delete", covers: []string{"DeleteEvent"}, fn: testEventsDelete},
	{name: "Events/DeleteRace", covers: []string{"DeleteEvent"}, fn: testEventsDeleteRace},
	{name: "Events/CreateDuplicate", covers: []string{"CreateEvent"}, fn: testEventsCreateDuplicate},
	{name: "Events/DataRoundTrip", covers: []string{"CreateEvent", "GetEvent"}, fn: testEventsDataRoundTrip},
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

// testEventsDeleteRace: of workers fanning out one event at once, one
// deletes it; the others are told it is gone.
func testEventsDeleteRace(t *testing.T, s store.Store) {
	e := newEvent(nil)
	require.NoError(t, s.CreateEvent(t.Context(), e))
	requireOneWinner(t, s, "delete an event", store.ErrNotFound, func(ctx context.Context, q store.Queries, _ int) (bool, error) {
		return won(q.DeleteEvent(ctx, e.ID))
	})
	_, err := s.GetEvent(t.Context(), e.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
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
