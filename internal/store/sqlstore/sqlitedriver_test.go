package sqlstore

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// openCaching opens a one-connection SQLite pool through the caching
// connector and returns it with its connection's cache.
func openCaching(t *testing.T) (*sql.DB, func() map[string]*cachedStmt) {
	t.Helper()
	c, err := newSQLiteConnector(sqliteDSN(filepath.Join(t.TempDir(), "c.db")))
	require.NoError(t, err)
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	_, err = db.ExecContext(t.Context(), `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE INDEX t_v ON t (v)`)
	require.NoError(t, err)
	return db, func() map[string]*cachedStmt {
		conn, err := db.Conn(t.Context())
		require.NoError(t, err)
		defer conn.Close()
		var stmts map[string]*cachedStmt
		require.NoError(t, conn.Raw(func(dc any) error {
			stmts = dc.(*cachingConn).stmts
			return nil
		}))
		return stmts
	}
}

func TestSQLiteStatementCache(t *testing.T) {
	db, cache := openCaching(t)
	ctx := t.Context()
	const insert = `INSERT INTO t (v) VALUES (?)`
	const sel = `SELECT id, v FROM t WHERE id >= ? ORDER BY id`

	t.Run("statements are prepared once and reused, in and out of transactions", func(t *testing.T) {
		for i := range 3 {
			_, err := db.ExecContext(ctx, insert, string(rune('a'+i)))
			require.NoError(t, err)
		}
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, insert, "d")
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.Len(t, cache(), 2, "the CREATE script and the INSERT")
		st := cache()[insert]
		var n int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n))
		require.Equal(t, 4, n)
		require.Same(t, st, cache()[insert])
	})

	t.Run("a nested query of the same text runs unprepared", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		outer, err := tx.QueryContext(ctx, sel, 1)
		require.NoError(t, err)
		var seen []string
		for outer.Next() {
			var id int
			var v string
			require.NoError(t, outer.Scan(&id, &v))
			// The same text while outer's rows are open: must not reset
			// the statement outer is stepping through.
			inner, err := tx.QueryContext(ctx, sel, id)
			require.NoError(t, err)
			count := 0
			for inner.Next() {
				count++
			}
			require.NoError(t, inner.Err())
			require.NoError(t, inner.Close())
			seen = append(seen, v)
			require.Equal(t, 5-id, count)
		}
		require.NoError(t, outer.Err())
		require.NoError(t, outer.Close())
		require.NoError(t, tx.Rollback())
		require.Equal(t, []string{"a", "b", "c", "d"}, seen)
		require.False(t, cache()[sel].busy, "closing the rows frees the statement")
	})

	t.Run("bad SQL fails as it would unprepared and is not cached", func(t *testing.T) {
		_, err := db.ExecContext(ctx, `INSERT INTO nope (v) VALUES (?)`, "x")
		require.ErrorContains(t, err, "no such table")
		require.NotContains(t, cache(), `INSERT INTO nope (v) VALUES (?)`)
	})

	t.Run("constraint errors come from the cached statement, which stays usable", func(t *testing.T) {
		const dup = `INSERT INTO t (id, v) VALUES (?, ?)`
		_, err := db.ExecContext(ctx, dup, 1, "again")
		require.ErrorContains(t, err, "UNIQUE")
		_, err = db.ExecContext(ctx, dup, 99, "fresh")
		require.NoError(t, err)
	})

	t.Run("column types pass through", func(t *testing.T) {
		rows, err := db.QueryContext(ctx, sel, 1)
		require.NoError(t, err)
		types, err := rows.ColumnTypes()
		require.NoError(t, rows.Close())
		require.NoError(t, err)
		require.Equal(t, "INTEGER", types[0].DatabaseTypeName())
		require.Equal(t, "TEXT", types[1].DatabaseTypeName())
	})
}
