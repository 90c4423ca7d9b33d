package sqlstore_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// TestCountsUseTheirIndexes: the counts behind the account gauges, run at
// scrape time, read the partial indexes made for them rather than the
// tables. PostgreSQL is told not to scan tables, since on an empty table a
// sequential scan is cheapest and says nothing of a big one.
func TestCountsUseTheirIndexes(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			db := e.Open(t)
			sessions, args := sqlstore.CountActiveSessionsSQL(db, time.Now())
			require.Contains(t, explain(t, db, sessions, args...), "sessions_active_idx")
			require.Contains(t, explain(t, db, sqlstore.CountMFAUsersSQL()), "mfa_factors_active_user_idx")
		})
	}
}

// explain answers the plan of query, one line per step.
func explain(t *testing.T, db *sqlstore.DB, query string, args ...any) string {
	ctx := t.Context()
	tx, err := db.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	prefix := "EXPLAIN QUERY PLAN "
	if db.Dialect() == store.Postgres {
		prefix = "EXPLAIN "
		_, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off")
		require.NoError(t, err)
	}
	rows, err := tx.QueryContext(ctx, prefix+query, args...)
	require.NoError(t, err)
	out := planLines(t, rows)
	plan := strings.Join(out, "\n")
	t.Logf("%s\n%s", query, plan)
	return plan
}

// planLines reads an EXPLAIN's rows: the last column of each (the step's
// text on both engines).
func planLines(t testing.TB, rows *sql.Rows) []string {
	t.Helper()
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		out = append(out, fmt.Sprint(vals[len(vals)-1]))
	}
	require.NoError(t, rows.Err())
	return out
}
