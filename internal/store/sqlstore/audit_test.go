package sqlstore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// TestAuditPlansAgree holds ListAuditLogs' two statement shapes (walking
// newest first, and reading a time window first) to the same answer as
// ListAuditLogs itself, for any mix of filters. The conformance suite's
// tables are too small to reach the walk with a time window, so this forces
// each plan.
func TestAuditPlansAgree(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			db := e.Open(t)
			ctx := t.Context()
			t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			users := []string{gatehouse.NewID(), gatehouse.NewID(), ""}
			actions := []string{"user.login", "user.login_failed", "session.revoked"}
			ids := make([]string, 120)
			for i := range ids {
				ids[i] = gatehouse.NewID()
			}
			slices.Sort(ids)
			for i, id := range ids {
				require.NoError(t, db.CreateAuditLog(ctx, gatehouse.AuditLog{
					ID: id, UserID: users[i%3], Action: actions[(i/3)%3], RiskScore: (i * 37) % 101,
					// Times mostly rise with ids, with some out of step.
					CreatedAt: t0.Add(time.Duration(i+(i%7)*5) * time.Minute),
				}))
			}
			optTime := rapid.Custom(func(rt *rapid.T) *time.Time {
				if !rapid.Bool().Draw(rt, "set") {
					return nil
				}
				tm := t0.Add(time.Duration(rapid.IntRange(-5, 160).Draw(rt, "min")) * time.Minute)
				return &tm
			})
			rapid.Check(t, func(rt *rapid.T) {
				q := store.AuditQuery{
					UserID:  rapid.SampledFrom(users).Draw(rt, "user"),
					Action:  rapid.SampledFrom(append([]string{""}, actions...)).Draw(rt, "action"),
					From:    optTime.Draw(rt, "from"),
					To:      optTime.Draw(rt, "to"),
					MinRisk: rapid.IntRange(0, 100).Draw(rt, "minRisk"),
					Limit:   rapid.IntRange(1, 130).Draw(rt, "limit"),
				}
				if rapid.Bool().Draw(rt, "paged") {
					q.Before = rapid.SampledFrom(ids).Draw(rt, "before")
				}
				want, err := db.ListAuditLogs(ctx, q)
				if err != nil {
					rt.Fatal(err)
				}
				for _, windowFirst := range []bool{false, true} {
					got, err := sqlstore.ListAuditLogsPlanned(ctx, db, q, windowFirst)
					if err != nil {
						rt.Fatal(err)
					}
					if !slices.EqualFunc(want, got, func(a, b gatehouse.AuditLog) bool { return a.ID == b.ID }) {
						rt.Fatalf("windowFirst=%v, query %+v: %d rows, ListAuditLogs %d", windowFirst, q, len(got), len(want))
					}
				}
			})
		})
	}
}
