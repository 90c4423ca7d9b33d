package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// record writes n rows through a Recorder, an hour apart from t0, each in
// its own transaction.
func record(t *testing.T, db *sqlstore.DB, n int) {
	t.Helper()
	rec := audit.New(db, nil)
	for i := range n {
		require.NoError(t, db.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			return rec.Record(ctx, tx, gatehouse.AuditLog{
				Action: "user.login", UserID: gatehouse.NewID(), Resource: "session:x",
				Metadata: map[string]any{"i": i, "method": "password"}, RiskScore: i % 101,
				CreatedAt: t0.Add(time.Duration(i) * time.Hour),
			})
		}))
	}
}

// bypass runs stmt with the append-only triggers out of the way, as
// someone with the database's keys could.
func bypass(t *testing.T, db *sqlstore.DB, stmt string) {
	t.Helper()
	ctx := t.Context()
	if db.Dialect() == store.Postgres {
		_, err := db.DB().ExecContext(ctx, `ALTER TABLE audit_logs DISABLE TRIGGER USER`)
		require.NoError(t, err)
	} else {
		_, err := db.DB().ExecContext(ctx, `DROP TRIGGER audit_logs_no_update; DROP TRIGGER audit_logs_no_delete`)
		require.NoError(t, err)
	}
	_, err := db.DB().ExecContext(ctx, stmt)
	require.NoError(t, err)
}

func verify(t *testing.T, db *sqlstore.DB, pageSize int) audit.Report {
	t.Helper()
	rep, err := audit.Verify(t.Context(), db, pageSize)
	require.NoError(t, err)
	return rep
}
