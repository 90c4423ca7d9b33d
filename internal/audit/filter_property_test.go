package audit_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// TestProperty68_AuditFiltering: any mix of the query's filters (user,
// action, time window, minimum risk), read a page at a time, answers
// exactly the rows a plain filter over everything written selects, newest
// first, each once.
func TestProperty68_AuditFiltering(t *testing.T) {
	users := []string{gatehouse.NewID(), gatehouse.NewID(), gatehouse.NewID()}
	actions := []string{"user.login", "user.login_failed", "session.revoked", "authz.denied"}
	for _, eng := range sqltest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			rec := audit.New(db, nil)
			var all []gatehouse.AuditLog
			for i := range 120 {
				l := gatehouse.AuditLog{
					ID: gatehouse.NewID(), UserID: users[i%3], Action: actions[(i/3)%4], Resource: "user:x",
					RiskScore: (i * 37) % 101, CreatedAt: t0.Add(time.Duration(i) * 10 * time.Minute),
					Metadata: map[string]any{"i": i},
				}
				require.NoError(t, db.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
					return rec.Record(ctx, tx, l)
				}))
				all = append(all, l)
			}
			// Newest first is id order, descending (UUIDv7 ids).
			slices.SortFunc(all, func(a, b gatehouse.AuditLog) int { return strings.Compare(b.ID, a.ID) })
			rapid.Check(t, func(rt *rapid.T) {
				q := store.AuditQuery{
					UserID:  rapid.SampledFrom(append([]string{""}, users...)).Draw(rt, "user"),
					Action:  rapid.SampledFrom(append([]string{"", "user.unknown"}, actions...)).Draw(rt, "action"),
					MinRisk: rapid.IntRange(0, 101).Draw(rt, "min_risk"),
					Limit:   rapid.IntRange(1, 50).Draw(rt, "limit"),
				}
				if rapid.Bool().Draw(rt, "from") {
					f := t0.Add(time.Duration(rapid.IntRange(-10, 1300).Draw(rt, "from_min")) * time.Minute)
					q.From = &f
				}
				if rapid.Bool().Draw(rt, "to") {
					to := t0.Add(time.Duration(rapid.IntRange(-10, 1300).Draw(rt, "to_min")) * time.Minute)
					q.To = &to
				}
				var want []string
				for _, l := range all {
					if (q.UserID == "" || l.UserID == q.UserID) && (q.Action == "" || l.Action == q.Action) &&
						l.RiskScore >= q.MinRisk && (q.From == nil || !l.CreatedAt.Before(*q.From)) &&
						(q.To == nil || l.CreatedAt.Before(*q.To)) {
						want = append(want, l.ID)
					}
				}
				var got []string
				for {
					page, err := db.ListAuditLogs(t.Context(), q)
					if err != nil {
						rt.Fatalf("list %+v: %v", q, err)
					}
					for _, l := range page {
						got = append(got, l.ID)
					}
					if len(page) < q.Limit {
						break
					}
					q.Before = page[len(page)-1].ID
				}
				if !slices.Equal(want, got) {
					rt.Fatalf("query %+v: want %d rows, got %d (first %v, %v)", q, len(want), len(got), first(want), first(got))
				}
			})
		})
	}
}

func first(ids []string) []string { return ids[:min(3, len(ids))] }
