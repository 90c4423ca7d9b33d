package sqlstore

import (
	"context"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// ListAuditLogsPlanned is ListAuditLogs with the plan forced (window first
// or the walk) instead of chosen, so a test can hold the plans to the same
// answer. q.Limit must be at least 1.
func ListAuditLogsPlanned(ctx context.Context, db *DB, q store.AuditQuery, windowFirst bool) ([]gatehouse.AuditLog, error) {
	plan := auditWalk
	if windowFirst {
		plan = auditWindowFirst
	}
	return db.listAuditLogs(ctx, q, plan)
}

// AuditListSQL exposes ListAuditLogs' statement, as it would run for q,
// in the dialect's placeholder style, to the external tests (for EXPLAIN).
func AuditListSQL(ctx context.Context, db *DB, q store.AuditQuery) (string, []any, error) {
	plan, err := db.auditPlanFor(ctx, q)
	if err != nil {
		return "", nil, err
	}
	query, args := auditListQuery(db.dialect, q, plan)
	return rebind(db.dialect, query), args, nil
}

// CountActiveSessionsSQL and CountMFAUsersSQL expose the gauges' count
// statements, in db's placeholder style, to the external tests (for
// EXPLAIN).
func CountActiveSessionsSQL(db *DB, now time.Time) (string, []any) {
	return rebind(db.dialect, countActiveSessionsSQL), []any{timeArg(db.dialect, now)}
}

func CountMFAUsersSQL() string { return countMFAUsersSQL }
