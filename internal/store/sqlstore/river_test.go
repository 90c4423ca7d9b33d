package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

type smokeArgs struct{ N int }

func (smokeArgs) Kind() string { return "sqlstore_smoke" }

// TestRiverInsertTx checks the premise of the design on both engines: a job
// inserted with River's InsertTx on Tx.SQLTx commits and rolls back with
// the store's transaction, and River's migrated schema accepts it.
func TestRiverInsertTx(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := e.Open(t)
			client := insertOnlyClient(t, db)

			err := db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := client.InsertTx(ctx, tx.SQLTx(), smokeArgs{N: 1}, nil)
				return err
			})
			require.NoError(t, err)

			boom := errors.New("boom")
			err = db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				if _, err := client.InsertTx(ctx, tx.SQLTx(), smokeArgs{N: 2}, nil); err != nil {
					return err
				}
				return boom
			})
			require.ErrorIs(t, err, boom)

			var n int
			require.NoError(t, db.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM river_job WHERE kind = 'sqlstore_smoke'").Scan(&n))
			require.Equal(t, 1, n)
		})
	}
}

func insertOnlyClient(t *testing.T, db *sqlstore.DB) *river.Client[*sql.Tx] {
	t.Helper()
	var (
		client *river.Client[*sql.Tx]
		err    error
	)
	if db.Dialect() == store.SQLite {
		client, err = river.NewClient(riversqlite.New(db.DB()), &river.Config{})
	} else {
		client, err = river.NewClient(riverdatabasesql.New(db.DB()), &river.Config{})
	}
	require.NoError(t, err)
	return client
}
