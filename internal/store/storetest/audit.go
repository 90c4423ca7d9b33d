package storetest

import (
	"cmp"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// auditCases cover AuditLogs. The audit log and its hash chain are one
// per database, so almost every case has a store of its own.
var auditCases = []testCase{
	{name: "Audit/CreateList", fresh: true, covers: []string{"CreateAuditLog", "ListAuditLogs"}, fn: testAuditCreateList},
	{name: "Audit/CreateDuplicate", fresh: true, covers: []string{"CreateAuditLog"}, fn: testAuditCreateDuplicate},
	{name: "Audit/OptionalFieldsEmpty", fresh: true, covers: []string{"CreateAuditLog", "ListAuditLogs"}, fn: testAuditOptionalFieldsEmpty},
	{name: "Audit/RiskScoreOutOfRange", covers: []string{"CreateAuditLog"}, fn: testAuditRiskScoreOutOfRange},
	{name: "Audit/Filters", fresh: true, covers: []string{"ListAuditLogs"}, fn: testAuditFilters},
	{name: "Audit/FiltersProperty", fresh: true, covers: []string{"ListAuditLogs"}, fn: testAuditFiltersProperty},
	{name: "Audit/OrderIsByID", fresh: true, covers: []string{"ListAuditLogs"}, fn: testAuditOrderIsByID},
	{name: "Audit/Pagination", fresh: true, covers: []string{"ListAuditLogs"}, fn: testAuditPagination},
	{name: "Audit/TimeWindowBounds", fresh: true, covers: []string{"ListAuditLogs"}, fn: testAuditTimeWindowBounds},
	{name: "Audit/MinRisk", fresh: true, covers: []string{"ListAuditLogs"}, fn: testAuditMinRisk},
	{name: "Audit/MetadataRoundTrip", fresh: true, covers: []string{"CreateAuditLog", "ListAuditLogs"}, fn: testAuditMetadataRoundTrip},
	{name: "Audit/MetadataProperty", covers: []string{"CreateAuditLog", "ListAuditLogs"}, fn: testAuditMetadataProperty},
	{name: "Audit/Empty", fresh: true, covers: []string{"ListAuditLogs"}, fn: testAuditEmpty},
	{name: "Audit/InvalidLimit", covers: []string{"ListAuditLogs"}, fn: testAuditInvalidLimit},
	{name: "Audit/OutlivesUser", covers: []string{"CreateAuditLog", "ListAuditLogs"}, fn: testAuditOutlivesUser},
	{name: "Audit/InTx", fresh: true, covers: []string{"CreateAuditLog", "ListAuditLogs"}, fn: testAuditInTx},
	{name: "Audit/Chain", fresh: true, covers: []string{"CreateAuditLog", "ListAuditLogsBySeq"}, fn: testAuditChain},
	{name: "Audit/ChainRollback", fresh: true, covers: []string{"CreateAuditLog", "ListAuditLogsBySeq"}, fn: testAuditChainRollback},
	{name: "Audit/ChainConcurrentWriters", fresh: true, covers: []string{"CreateAuditLog", "ListAuditLogsBySeq"}, fn: testAuditChainConcurrentWriters},
	{name: "Audit/ListBySeq", fresh: true, covers: []string{"ListAuditLogsBySeq"}, fn: testAuditListBySeq},
	{name: "Audit/AppendOnly", fresh: true, covers: []string{"DB", "SQLTx"}, fn: testAuditAppendOnly},
	{name: "Audit/Prune", fresh: true, covers: []string{"PruneAuditLogs"}, fn: testAuditPrune},
	{name: "Audit/LinkNothingWaiting", fresh: true, covers: []string{"LinkAuditLogs"}, fn: testAuditLinkNothingWaiting},
	{name: "Audit/LinkRace", fresh: true, covers: []string{"LinkAuditLogs"}, fn: testAuditLinkRace},
}

// sortedIDs returns n fresh ids in ascending order. NewID orders ids only
// across milliseconds, so ids made in one burst are sorted rather than
// assumed to be in creation order.
func sortedIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = gatehouse.NewID()
	}
	slices.Sort(ids)
	return ids
}

func newAuditLog(id string) gatehouse.AuditLog {
	return gatehouse.AuditLog{
		ID:        id,
		ActorID:   gatehouse.NewID(),
		UserID:    gatehouse.NewID(),
		Action:    "user.login",
		Resource:  "session:" + id,
		IPAddress: "2001:db8::1",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Grüße 🌍",
		Metadata:  map[string]any{"method": "password", "new_device": true},
		RiskScore: 42,
		CreatedAt: base,
	}
}

// requireAuditLog compares every field. want.Metadata nil means the store
// must hand back an empty, non-nil map.
func requireAuditLog(t *testing.T, want, got gatehouse.AuditLog) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.ActorID, got.ActorID, "ActorID")
	require.Equal(t, want.UserID, got.UserID, "UserID")
	require.Equal(t, want.Action, got.Action, "Action")
	require.Equal(t, want.Resource, got.Resource, "Resource")
	require.Equal(t, want.IPAddress, got.IPAddress, "IPAddress")
	require.Equal(t, want.UserAgent, got.UserAgent, "UserAgent")
	require.Equal(t, want.RiskScore, got.RiskScore, "RiskScore")
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	require.NotNil(t, got.Metadata, "Metadata is never nil")
	if want.Metadata == nil {
		require.Empty(t, got.Metadata, "Metadata")
	} else {
		require.Equal(t, want.Metadata, got.Metadata, "Metadata")
	}
}

func auditIDs(logs []gatehouse.AuditLog) []string {
	return idsOf(logs, func(x gatehouse.AuditLog) string { return x.ID })
}

// listAudit is ListAuditLogs that fails the test on error.
func listAudit(t *testing.T, s store.AuditLogs, q store.AuditQuery) []gatehouse.AuditLog {
	t.Helper()
	logs, err := s.ListAuditLogs(t.Context(), q)
	require.NoError(t, err)
	require.NotNil(t, logs, "an empty result is an empty slice, not nil")
	return logs
}

func testAuditCreateList(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := sortedIDs(2)
	older, newer := newAuditLog(ids[0]), newAuditLog(ids[1])
	newer.CreatedAt = base.Add(time.Second)
	newer.RiskScore = 100
	require.NoError(t, s.CreateAuditLog(ctx, older))
	require.NoError(t, s.CreateAuditLog(ctx, newer))

	got := listAudit(t, s, store.AuditQuery{Limit: 10})
	require.Len(t, got, 2)
	requireAuditLog(t, newer, got[0])
	requireAuditLog(t, older, got[1])
}

func testAuditCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := newAuditLog(gatehouse.NewID())
	require.NoError(t, s.CreateAuditLog(ctx, l))
	dup := newAuditLog(l.ID)
	dup.Action = "user.logout"
	err := s.CreateAuditLog(ctx, dup)
	require.ErrorIs(t, err, store.ErrConflict)
	require.Contains(t, err.Error(), "create audit log")

	got := listAudit(t, s, store.AuditQuery{Limit: 10})
	require.Len(t, got, 1)
	requireAuditLog(t, l, got[0])
}

// testAuditOptionalFieldsEmpty: a row with only id, action and time (a
// system action about no account) reads back with "" for the absent
// references and an empty metadata map.
func testAuditOptionalFieldsEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := gatehouse.AuditLog{ID: gatehouse.NewID(), Action: "keys.rotated", CreatedAt: base}
	require.NoError(t, s.CreateAuditLog(ctx, l))
	got := listAudit(t, s, store.AuditQuery{Limit: 1})
	require.Len(t, got, 1)
	requireAuditLog(t, l, got[0])
	require.Equal(t, map[string]any{}, got[0].Metadata)

	// An empty map is stored like nil.
	l2 := gatehouse.AuditLog{ID: gatehouse.NewID(), Action: "keys.rotated", Metadata: map[string]any{}, CreatedAt: base}
	require.NoError(t, s.CreateAuditLog(ctx, l2))
	got = listAudit(t, s, store.AuditQuery{Limit: 10})
	require.Len(t, got, 2)
	for _, g := range got {
		require.Equal(t, map[string]any{}, g.Metadata)
	}
}

func testAuditRiskScoreOutOfRange(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, risk := range []int{-1, 101} {
		l := newAuditLog(gatehouse.NewID())
		l.RiskScore = risk
		err := s.CreateAuditLog(ctx, l)
		require.Error(t, err, "risk %d", risk)
		require.NotErrorIs(t, err, store.ErrConflict)
		require.NotErrorIs(t, err, store.ErrNotFound)
	}
	for _, risk := range []int{0, 100} {
		l := newAuditLog(gatehouse.NewID())
		l.RiskScore = risk
		require.NoError(t, s.CreateAuditLog(ctx, l), "risk %d", risk)
	}
}

// auditFixture is a set of rows covering every filter's values: three
// users and rows about no user, four actions, a minute apart, risk scores
// 0 to 100. Rows are inserted in shuffled order so insertion order cannot
// pass for id order. It returns the rows in ascending id order.
func auditFixture(t *testing.T, s store.Store) []gatehouse.AuditLog {
	t.Helper()
	ctx := t.Context()
	users := []string{gatehouse.NewID(), gatehouse.NewID(), gatehouse.NewID(), ""}
	actions := []string{"user.login", "user.login_failed", "user.password_changed", "session.revoked"}
	risks := []int{0, 10, 35, 50, 51, 75, 99, 100}
	ids := sortedIDs(48)
	logs := make([]gatehouse.AuditLog, len(ids))
	for i, id := range ids {
		l := newAuditLog(id)
		l.UserID = users[i%len(users)]
		l.Action = actions[(i/3)%len(actions)]
		l.RiskScore = risks[(i*5)%len(risks)]
		l.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		l.Metadata = map[string]any{"i": float64(i)}
		logs[i] = l
	}
	shuffled := slices.Clone(logs)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, l := range shuffled {
		require.NoError(t, s.CreateAuditLog(ctx, l))
	}
	return logs
}

// auditModel is what ListAuditLogs must return for q over rows given in
// ascending id order: the matching rows, newest (greatest id) first.
func auditModel(rows []gatehouse.AuditLog, q store.AuditQuery) []gatehouse.AuditLog {
	var out []gatehouse.AuditLog
	for i := len(rows) - 1; i >= 0 && len(out) < q.Limit; i-- {
		l := rows[i]
		switch {
		case q.UserID != "" && l.UserID != q.UserID,
			q.Action != "" && l.Action != q.Action,
			q.From != nil && norm(l.CreatedAt).Before(norm(*q.From)),
			q.To != nil && !norm(l.CreatedAt).Before(norm(*q.To)),
			l.RiskScore < q.MinRisk,
			q.Before != "" && l.ID >= q.Before:
			continue
		}
		out = append(out, l)
	}
	return out
}

func requireAuditQuery(t *testing.T, s store.AuditLogs, rows []gatehouse.AuditLog, q store.AuditQuery, name string) {
	t.Helper()
	want := auditModel(rows, q)
	got := listAudit(t, s, q)
	require.Equal(t, auditIDs(want), auditIDs(got), "%s: %+v", name, q)
	for i := range got {
		requireAuditLog(t, want[i], got[i])
	}
}

func testAuditFilters(t *testing.T, s store.Store) {
	rows := auditFixture(t, s)
	user := rows[1].UserID
	at := func(i int) *time.Time { return ptr(rows[i].CreatedAt) }
	for _, tc := range []struct {
		name string
		q    store.AuditQuery
		n    int // expected matches, so a wrong model cannot pass vacuously
	}{
		{"none", store.AuditQuery{}, 48},
		{"user", store.AuditQuery{UserID: user}, 12},
		{"unknown user", store.AuditQuery{UserID: gatehouse.NewID()}, 0},
		{"action", store.AuditQuery{Action: "user.login_failed"}, 12},
		{"unknown action", store.AuditQuery{Action: "user.login_"}, 0},
		{"from", store.AuditQuery{From: at(40)}, 8},
		{"to", store.AuditQuery{To: at(5)}, 5},
		{"from to", store.AuditQuery{From: at(10), To: at(20)}, 10},
		{"empty window", store.AuditQuery{From: at(20), To: at(20)}, 0},
		{"min risk", store.AuditQuery{MinRisk: 75}, 18},
		{"before", store.AuditQuery{Before: rows[10].ID}, 10},
		{"user action", store.AuditQuery{UserID: user, Action: "user.login_failed"}, 4},
		{"user action min risk", store.AuditQuery{UserID: user, Action: "user.login_failed", MinRisk: 50}, 2},
		{"all", store.AuditQuery{UserID: user, Action: "user.login_failed", From: at(3), To: at(40), MinRisk: 50, Before: rows[30].ID}, 1},
		{"action window risk", store.AuditQuery{Action: "user.login", From: at(8), MinRisk: 1}, 8},
	} {
		tc.q.Limit = 100
		require.Len(t, auditModel(rows, tc.q), tc.n, "%s: the fixture changed; adjust n", tc.name)
		requireAuditQuery(t, s, rows, tc.q, tc.name)
		// The limit applies after the filters.
		tc.q.Limit = 2
		requireAuditQuery(t, s, rows, tc.q, tc.name+" limit 2")
	}
}

// testAuditFiltersProperty: any mix of filters, cursor and limit returns
// what the model says.
func testAuditFiltersProperty(t *testing.T, s store.Store) {
	rows := auditFixture(t, s)
	users, actions := []string{""}, []string{""}
	for _, l := range rows {
		if !slices.Contains(users, l.UserID) {
			users = append(users, l.UserID)
		}
		if !slices.Contains(actions, l.Action) {
			actions = append(actions, l.Action)
		}
	}
	optTime := rapid.Custom(func(rt *rapid.T) *time.Time {
		if !rapid.Bool().Draw(rt, "set") {
			return nil
		}
		// Around the rows' times, off by -1, 0 or +1 µs, so bounds land on
		// rows exactly and just beside them.
		i := rapid.IntRange(-1, len(rows)).Draw(rt, "row")
		tm := base.Add(time.Duration(i)*time.Minute + time.Duration(rapid.IntRange(-1, 1).Draw(rt, "µs"))*time.Microsecond)
		return &tm
	})
	rapid.Check(t, func(rt *rapid.T) {
		q := store.AuditQuery{
			UserID:  rapid.SampledFrom(users).Draw(rt, "user"),
			Action:  rapid.SampledFrom(actions).Draw(rt, "action"),
			From:    optTime.Draw(rt, "from"),
			To:      optTime.Draw(rt, "to"),
			MinRisk: rapid.IntRange(-1, 101).Draw(rt, "minRisk"),
			Limit:   rapid.IntRange(1, 60).Draw(rt, "limit"),
		}
		if rapid.Bool().Draw(rt, "paged") {
			q.Before = rows[rapid.IntRange(0, len(rows)-1).Draw(rt, "before")].ID
		}
		got, err := s.ListAuditLogs(t.Context(), q)
		if err != nil {
			rt.Fatalf("list: %v", err)
		}
		if want := auditIDs(auditModel(rows, q)); !slices.Equal(want, auditIDs(got)) {
			rt.Fatalf("query %+v:\nwant %v\ngot  %v", q, want, auditIDs(got))
		}
	})
}

// testAuditOrderIsByID: newest first means id order, not created_at order
// (the two agree for rows the services write; when a clock steps back they
// need not, and the cursor is an id).
func testAuditOrderIsByID(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := sortedIDs(3)
	for i, id := range ids {
		l := newAuditLog(id)
		l.CreatedAt = base.Add(-time.Duration(i) * time.Hour) // later ids, earlier times
		require.NoError(t, s.CreateAuditLog(ctx, l))
	}
	got := listAudit(t, s, store.AuditQuery{Limit: 10})
	require.Equal(t, []string{ids[2], ids[1], ids[0]}, auditIDs(got))
}

func testAuditPagination(t *testing.T, s store.Store) {
	rows := auditFixture(t, s)
	for _, q := range []store.AuditQuery{
		{},
		{UserID: rows[2].UserID},
		{Action: "session.revoked", MinRisk: 10},
		{From: ptr(rows[7].CreatedAt), To: ptr(rows[41].CreatedAt)},
	} {
		want := auditIDs(auditModel(rows, store.AuditQuery{
			UserID: q.UserID, Action: q.Action, From: q.From, To: q.To, MinRisk: q.MinRisk, Limit: len(rows),
		}))
		require.NotEmpty(t, want)
		for _, limit := range []int{1, 3, 7, len(want), len(want) + 1} {
			var (
				got   []string
				pages int
			)
			q.Before = ""
			q.Limit = limit
			for {
				page := listAudit(t, s, q)
				require.LessOrEqual(t, len(page), limit)
				got = append(got, auditIDs(page)...)
				pages++
				require.LessOrEqual(t, pages, len(rows)+1, "pagination does not end")
				if len(page) < limit {
					break
				}
				q.Before = page[len(page)-1].ID
			}
			// No gaps, no duplicates, newest first across pages.
			require.Equal(t, want, got, "query %+v limit %d", q, limit)
			require.True(t, slices.IsSortedFunc(got, func(a, b string) int { return cmp.Compare(b, a) }))
		}
	}

	// Before is exclusive and need not be an existing id: a row written
	// between two page reads with a smaller id than the cursor still shows.
	ids := auditIDs(rows)
	page := listAudit(t, s, store.AuditQuery{Before: ids[10], Limit: 2})
	require.Equal(t, []string{ids[9], ids[8]}, auditIDs(page))
	page = listAudit(t, s, store.AuditQuery{Before: ids[10] + "x", Limit: 1})
	require.Equal(t, []string{ids[10]}, auditIDs(page))
	page = listAudit(t, s, store.AuditQuery{Before: ids[0], Limit: 5})
	require.Empty(t, page)
}

// testAuditTimeWindowBounds: From is inclusive and To exclusive, at
// microsecond precision (the stored precision; nanoseconds are truncated
// on both sides alike).
func testAuditTimeWindowBounds(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := sortedIDs(3)
	at := norm(base)
	times := []time.Time{at.Add(-time.Microsecond), at, at.Add(time.Microsecond)}
	for i, id := range ids {
		l := newAuditLog(id)
		l.CreatedAt = times[i]
		require.NoError(t, s.CreateAuditLog(ctx, l))
	}
	list := func(q store.AuditQuery) []string {
		q.Limit = 10
		return auditIDs(listAudit(t, s, q))
	}
	require.Equal(t, []string{ids[2], ids[1]}, list(store.AuditQuery{From: &at}))
	require.Equal(t, []string{ids[0]}, list(store.AuditQuery{To: &at}))
	require.Equal(t, []string{ids[1]}, list(store.AuditQuery{From: &at, To: ptr(at.Add(time.Microsecond))}))
	require.Empty(t, list(store.AuditQuery{From: &at, To: &at}))
	require.Empty(t, list(store.AuditQuery{From: ptr(at.Add(time.Microsecond)), To: &at}))
	// The window's own zone and nanoseconds do not matter: base is UTC+2
	// with nanoseconds, and is the same microsecond as at.
	require.Equal(t, []string{ids[2], ids[1]}, list(store.AuditQuery{From: &base}))
	require.Equal(t, []string{ids[0]}, list(store.AuditQuery{To: &base}))
}

func testAuditMinRisk(t *testing.T, s store.Store) {
	ctx := t.Context()
	risks := []int{0, 1, 49, 50, 99, 100}
	ids := sortedIDs(len(risks))
	for i, id := range ids {
		l := newAuditLog(id)
		l.RiskScore = risks[i]
		require.NoError(t, s.CreateAuditLog(ctx, l))
	}
	riskOf := func(minRisk int) []int {
		var out []int
		for _, l := range listAudit(t, s, store.AuditQuery{MinRisk: minRisk, Limit: 10}) {
			out = append(out, l.RiskScore)
		}
		return out
	}
	require.Equal(t, []int{100, 99, 50, 49, 1, 0}, riskOf(-5), "MinRisk ≤ 0 filters nothing")
	require.Equal(t, []int{100, 99, 50, 49, 1, 0}, riskOf(0))
	require.Equal(t, []int{100, 99, 50, 49, 1}, riskOf(1))
	require.Equal(t, []int{100, 99, 50}, riskOf(50))
	require.Equal(t, []int{100}, riskOf(100))
	require.Empty(t, riskOf(101))
}

func testAuditMetadataRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	l := newAuditLog(gatehouse.NewID())
	l.Metadata = map[string]any{
		"reason":  "impossible travel — Zürich → 東京 🌍",
		"ключ":    "значение",
		"quote":   `he said "hi" \ and left`,
		"newline": "a\nb\tc",
		"count":   float64(3),
		"score":   0.125,
		"big":     float64(1 << 53),
		"neg":     float64(-7),
		"ok":      true,
		"none":    nil,
		"empty":   map[string]any{},
		"list":    []any{"a", float64(1), false, nil, []any{}, map[string]any{"k": "v"}},
		"nested": map[string]any{
			"geo":    map[string]any{"from": "CH", "to": "JP", "km": float64(9580)},
			"emoji":  "👩‍💻",
			"deeper": map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": "d"}}}},
		},
	}
	require.NoError(t, s.CreateAuditLog(ctx, l))
	got := listAudit(t, s, store.AuditQuery{Limit: 1})
	require.Len(t, got, 1)
	require.Equal(t, l.Metadata, got[0].Metadata)
}

func testAuditMetadataProperty(t *testing.T, s store.Store) {
	ctx := t.Context()
	rapid.Check(t, func(rt *rapid.T) {
		l := newAuditLog(gatehouse.NewID())
		l.UserID = gatehouse.NewID() // one row per user: the query finds just it
		l.Metadata = rapid.MapOf(jsonKey(), jsonValue(3)).Draw(rt, "metadata")
		if err := s.CreateAuditLog(ctx, l); err != nil {
			rt.Fatalf("create: %v", err)
		}
		got, err := s.ListAuditLogs(ctx, store.AuditQuery{UserID: l.UserID, Limit: 2})
		if err != nil || len(got) != 1 {
			rt.Fatalf("list: %v (%d rows)", err, len(got))
		}
		want := l.Metadata
		if len(want) == 0 {
			want = map[string]any{}
		}
		if !reflect.DeepEqual(want, got[0].Metadata) {
			rt.Fatalf("metadata: want %#v, got %#v", want, got[0].Metadata)
		}
	})
}

func testAuditEmpty(t *testing.T, s store.Store) {
	require.Empty(t, listAudit(t, s, store.AuditQuery{Limit: 50}))
	require.Empty(t, listAudit(t, s, store.AuditQuery{UserID: gatehouse.NewID(), Action: "user.login", MinRisk: 10, Limit: 1}))
}

func testAuditInvalidLimit(t *testing.T, s store.Store) {
	require.NoError(t, s.CreateAuditLog(t.Context(), newAuditLog(gatehouse.NewID())))
	for _, limit := range []int{0, -1} {
		_, err := s.ListAuditLogs(t.Context(), store.AuditQuery{Limit: limit})
		require.Error(t, err, "limit %d", limit)
		require.NotErrorIs(t, err, store.ErrNotFound)
		require.NotErrorIs(t, err, store.ErrConflict)
	}
}

// testAuditOutlivesUser: audit rows reference users by id without a
// foreign key: a row may name a user that does not exist, and deleting a
// user leaves its history in place.
func testAuditOutlivesUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	l := newAuditLog(gatehouse.NewID())
	l.UserID, l.ActorID = u.ID, u.ID
	require.NoError(t, s.CreateAuditLog(ctx, l))
	ghost := newAuditLog(gatehouse.NewID())
	require.NoError(t, s.CreateAuditLog(ctx, ghost), "no foreign key to users")

	require.NoError(t, s.DeleteUser(ctx, u.ID))
	got := listAudit(t, s, store.AuditQuery{UserID: u.ID, Limit: 10})
	require.Len(t, got, 1)
	requireAuditLog(t, l, got[0])
}

func testAuditInTx(t *testing.T, s store.Store) {
	ctx := t.Context()
	kept, dropped := newAuditLog(gatehouse.NewID()), newAuditLog(gatehouse.NewID())
	require.NoError(t, s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateAuditLog(ctx, kept); err != nil {
			return err
		}
		got, err := tx.ListAuditLogs(ctx, store.AuditQuery{Limit: 10})
		if err != nil {
			return err
		}
		require.Equal(t, []string{kept.ID}, auditIDs(got), "visible inside its transaction")
		return nil
	}))
	errRollback := errors.New("roll back")
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateAuditLog(ctx, dropped); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.Equal(t, []string{kept.ID}, auditIDs(listAudit(t, s, store.AuditQuery{Limit: 10})))
}

// requireChain checks the whole table is one unbroken chain from seq
// first: seqs consecutive, each prev_hash the hash before, each hash its
// row's ChainHash. It returns the rows in seq order.
func requireChain(t *testing.T, s store.Store, first int64) []gatehouse.AuditLog {
	t.Helper()
	rows, err := s.ListAuditLogsBySeq(t.Context(), 0, 100_000)
	require.NoError(t, err)
	for i, l := range rows {
		require.Equal(t, first+int64(i), l.Seq, "seq of row %d", i)
		if i > 0 {
			require.Equal(t, rows[i-1].Hash, l.PrevHash, "prev_hash of seq %d", l.Seq)
		}
		h, err := l.ChainHash()
		require.NoError(t, err)
		require.Equal(t, h, l.Hash, "hash of seq %d", l.Seq)
	}
	return rows
}

// testAuditChain: the store appends every row to the chain, on the Store
// and in a Tx alike, whatever chain fields the caller passes; the reads
// hand the chain back.
func testAuditChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := sortedIDs(4)
	for i, id := range ids {
		l := newAuditLog(id)
		l.Metadata = map[string]any{"i": i, "neg_zero": math.Copysign(0, -1), "big": 1e21, "html": "<&>"}
		l.Seq, l.PrevHash, l.Hash = 99, "forged", "forged" // ignored
		if i%2 == 0 {
			require.NoError(t, s.CreateAuditLog(ctx, l))
		} else {
			require.NoError(t, s.InTx(ctx, func(ctx context.Context, tx store.Tx) error { return tx.CreateAuditLog(ctx, l) }))
		}
	}
	rows := requireChain(t, s, 1)
	require.Len(t, rows, 4)
	require.Empty(t, rows[0].PrevHash, "the first row links to nothing")
	require.Equal(t, ids, auditIDs(rows))
	listed := listAudit(t, s, store.AuditQuery{Limit: 10})
	require.Equal(t, rows[3].Hash, listed[0].Hash)
	require.Equal(t, int64(4), listed[0].Seq)
	require.Equal(t, rows[2].Hash, listed[0].PrevHash)
}

// testAuditChainRollback: a rolled-back append leaves no row and no gap.
func testAuditChainRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	require.NoError(t, s.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID())))
	errRollback := errors.New("roll back")
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID())); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.NoError(t, s.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID())))
	require.Len(t, requireChain(t, s, 1), 2)
}

// testAuditChainConcurrentWriters: 20 transactions appending at once
// (each also writing an event, as a service does) never fork the chain.
func testAuditChainConcurrentWriters(t *testing.T, s store.Store) {
	ctx := t.Context()
	const writers, perWriter = 20, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				errs <- s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
					if err := tx.CreateEvent(ctx, gatehouse.Event{ID: gatehouse.NewID(), Type: gatehouse.EventUserLogin, CreatedAt: base}); err != nil {
						return err
					}
					l := newAuditLog(gatehouse.NewID())
					l.Metadata = map[string]any{"writer": w, "i": i}
					return tx.CreateAuditLog(ctx, l)
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, requireChain(t, s, 1), writers*perWriter)
}

func testAuditListBySeq(t *testing.T, s store.Store) {
	ctx := t.Context()
	for range 7 {
		require.NoError(t, s.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID())))
	}
	var seqs []int64
	for after := int64(0); ; {
		page, err := s.ListAuditLogsBySeq(ctx, after, 3)
		require.NoError(t, err)
		require.NotNil(t, page)
		for _, l := range page {
			seqs = append(seqs, l.Seq)
			require.Equal(t, "user.login", l.Action)
			require.Equal(t, map[string]any{"method": "password", "new_device": true}, l.Metadata)
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].Seq
	}
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, seqs)
	for _, limit := range []int{0, -1} {
		_, err := s.ListAuditLogsBySeq(ctx, 0, limit)
		require.Error(t, err)
		require.NotErrorIs(t, err, store.ErrNotFound)
		require.NotErrorIs(t, err, store.ErrConflict)
	}
}

// testAuditAppendOnly: the database itself refuses to change or remove
// audit rows, whatever SQL reaches it.
func testAuditAppendOnly(t *testing.T, s store.Store) {
	ctx := t.Context()
	require.NoError(t, s.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID())))
	before := requireChain(t, s, 1)
	stmts := []string{
		`UPDATE audit_logs SET action = 'user.logout'`,
		`UPDATE audit_logs SET hash = ''`,
		`DELETE FROM audit_logs`,
	}
	if s.Dialect() == store.Postgres {
		stmts = append(stmts, `TRUNCATE audit_logs`)
	}
	for _, stmt := range stmts {
		_, err := s.DB().ExecContext(ctx, stmt)
		require.ErrorContains(t, err, "append-only", stmt)
	}
	// Nor in a transaction, nor after a prune has come and gone.
	_, err := s.PruneAuditLogs(ctx, 0)
	require.NoError(t, err)
	err = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.SQLTx().ExecContext(ctx, `DELETE FROM audit_logs`)
		return err
	})
	require.ErrorContains(t, err, "append-only")
	require.Equal(t, before, requireChain(t, s, 1))
}

// testAuditPrune: pruning removes exactly the front of the chain, and
// what remains is still a chain (anchored at its first row's prev_hash).
func testAuditPrune(t *testing.T, s store.Store) {
	ctx := t.Context()
	for range 5 {
		require.NoError(t, s.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID())))
	}
	all := requireChain(t, s, 1)
	n, err := s.PruneAuditLogs(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	rest := requireChain(t, s, 4)
	require.Equal(t, all[3:], rest)
	require.Equal(t, all[2].Hash, rest[0].PrevHash, "the anchor is the last pruned row's hash")
	n, err = s.PruneAuditLogs(ctx, 3)
	require.NoError(t, err)
	require.Zero(t, n)
	// The chain goes on from its head.
	require.NoError(t, s.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID())))
	require.Len(t, requireChain(t, s, 4), 3)
	// In a caller's transaction too, and rolled back with it.
	errRollback := errors.New("roll back")
	err = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.PruneAuditLogs(ctx, 6); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.Len(t, requireChain(t, s, 4), 3)
}

// testAuditLinkNothingWaiting: rows written through the interface are
// linked by the time their write (or transaction) returns, so LinkAuditLogs
// finds nothing to do and leaves the chain as it was.
func testAuditLinkNothingWaiting(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.LinkAuditLogs(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "an empty log")
	require.NoError(t, s.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID())))
	require.NoError(t, s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID()))
	}))
	before := requireChain(t, s, 1)
	require.Len(t, before, 2)
	n, err = s.LinkAuditLogs(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, before, requireChain(t, s, 1))
}

// testAuditLinkRace: linkers running while transactions write audit rows
// (the periodic job beside every committing writer) link each row once:
// one chain, no seq twice, none skipped.
func testAuditLinkRace(t *testing.T, s store.Store) {
	links := raceAll(t, s, nil, func(ctx context.Context, q store.Queries, i int) (int, error) {
		if i%4 == 2 {
			// An even racer runs on the Store, which alone links: this
			// one is the periodic job.
			return s.LinkAuditLogs(ctx)
		}
		return 0, q.CreateAuditLog(ctx, newAuditLog(gatehouse.NewID()))
	})
	var linked int
	for _, n := range links {
		require.GreaterOrEqual(t, n, 0)
		linked += n
	}
	rows := requireChain(t, s, 1)
	require.Len(t, rows, racers-racers/4)
	require.LessOrEqual(t, linked, len(rows), "no row linked twice")
	n, err := s.LinkAuditLogs(t.Context())
	require.NoError(t, err)
	require.Zero(t, n, "nothing left waiting")
}
