package sqlstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// rowCounts maps each table to its row count.
func rowCounts(t *testing.T, db *sqlstore.DB) map[string]int64 {
	t.Helper()
	tables, err := db.Tables(t.Context())
	require.NoError(t, err)
	out := map[string]int64{}
	for _, tb := range tables {
		out[tb.Name] = tb.Rows
	}
	return out
}

// A SQLite backup is a copy of one snapshot; installing it replaces the
// target only when no other process has that open, and drops the old WAL.
func TestSQLiteBackupAndInstall(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := sqltest.SQLite(t)
	whHook(t, db, whUser(t, db, "copy@example.com"), false, "*")
	gh, river, err := db.SchemaVersions(ctx)
	require.NoError(t, err)
	latest, err := sqlstore.LatestSchemaVersion(store.SQLite)
	require.NoError(t, err)
	require.Equal(t, latest, gh)
	require.Positive(t, river)

	dir := t.TempDir()
	copyPath := filepath.Join(dir, "copy.db")
	require.NoError(t, db.BackupSQLite(ctx, copyPath))
	require.Error(t, db.BackupSQLite(ctx, copyPath), "VACUUM INTO does not overwrite")

	target := filepath.Join(dir, "gatehouse.db")
	other, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.SQLite, DSN: target})
	require.NoError(t, err)
	require.Empty(t, rowCounts(t, other), "a new file is an empty database")
	err = sqlstore.InstallSQLite(ctx, copyPath, target)
	require.ErrorIs(t, err, sqlstore.ErrDatabaseInUse, "another connection has the target open")
	require.FileExists(t, copyPath, "nothing was moved")
	require.NoError(t, other.Close())

	require.NoError(t, os.WriteFile(target+"-wal", []byte("stale"), 0o600))
	require.NoError(t, sqlstore.InstallSQLite(ctx, copyPath, target))
	require.NoFileExists(t, target+"-wal")
	restored, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.SQLite, DSN: target})
	require.NoError(t, err)
	defer restored.Close()
	want := rowCounts(t, db)
	require.Equal(t, int64(1), want["webhooks"])
	require.Equal(t, want, rowCounts(t, restored))
}

// pg_dump's custom format restores into an empty database in one
// transaction; ClearSchema empties a database for restore --force.
func TestPostgresDumpRestoreAndClear(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srcURL := sqltest.PostgresURL(t) // skips without PostgreSQL
	dstURL := sqltest.PostgresURL(t)
	src, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.Postgres, DSN: srcURL, MaxConns: 1})
	require.NoError(t, err)
	defer src.Close()
	require.NoError(t, src.MigrateUp(ctx))
	whHook(t, src, whUser(t, src, "dump@example.com"), false, "*")
	schema, err := src.CurrentSchema(ctx)
	require.NoError(t, err)
	require.Equal(t, "public", schema)

	pgDump, err := sqlstore.FindPGTool("pg_dump", "")
	require.NoError(t, err, "the PostgreSQL client programs belong to the test environment")
	pgRestore, err := sqlstore.FindPGTool("pg_restore", "")
	require.NoError(t, err)
	dump := filepath.Join(t.TempDir(), "db.pgdump")
	require.NoError(t, sqlstore.DumpPostgres(ctx, pgDump, srcURL, schema, dump))

	dst, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.Postgres, DSN: dstURL, MaxConns: 1})
	require.NoError(t, err)
	defer dst.Close()
	require.Empty(t, rowCounts(t, dst))
	n, err := dst.OtherSessions(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoError(t, sqlstore.RestorePostgres(ctx, pgRestore, dstURL, dump))
	want := rowCounts(t, src)
	require.Equal(t, int64(1), want["users"])
	require.Equal(t, want, rowCounts(t, dst))
	v, _, err := dst.SchemaVersions(ctx)
	require.NoError(t, err)
	require.Positive(t, v)

	// Restoring again over the tables fails as a whole and leaves them.
	require.ErrorContains(t, sqlstore.RestorePostgres(ctx, pgRestore, dstURL, dump), "pg_restore")
	require.Equal(t, want, rowCounts(t, dst))

	n, err = src.OtherSessions(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	other, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.Postgres, DSN: dstURL, MaxConns: 1})
	require.NoError(t, err)
	require.NoError(t, other.Ping(ctx))
	n, err = dst.OtherSessions(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "another pool's connection counts")
	require.NoError(t, other.Close())

	require.NoError(t, dst.ClearSchema(ctx))
	require.Empty(t, rowCounts(t, dst), "every table is gone")
	require.NoError(t, sqlstore.RestorePostgres(ctx, pgRestore, dstURL, dump), "types and functions went too")
	require.Equal(t, want, rowCounts(t, dst))
}
