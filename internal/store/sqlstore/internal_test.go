package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// These tests sit inside the package (they reach unexported helpers), so
// they cannot use sqltest (it imports this package); engine-level tests
// live in sqlstore_test.go.

func TestMigrationVersionsMatch(t *testing.T) {
	lite, err := migrationVersions(store.SQLite)
	require.NoError(t, err)
	pg, err := migrationVersions(store.Postgres)
	require.NoError(t, err)
	require.NotEmpty(t, lite)

	var onlyLite, onlyPG []int64
	for _, v := range lite {
		if !slices.Contains(pg, v) {
			onlyLite = append(onlyLite, v)
		}
	}
	for _, v := range pg {
		if !slices.Contains(lite, v) {
			onlyPG = append(onlyPG, v)
		}
	}
	if len(onlyLite) > 0 || len(onlyPG) > 0 {
		t.Fatalf("migration versions differ between dialects: only in sqlite %v, only in postgres %v; every version needs a file in both migrations/sqlite and migrations/postgres", onlyLite, onlyPG)
	}
	// No version twice in a directory (goose would refuse it at run time).
	require.Len(t, slices.Compact(slices.Clone(lite)), len(lite))
}

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"},
		{"INSERT INTO t VALUES (?, '?', ?)", "INSERT INTO t VALUES ($1, '?', $2)"},
		{`SELECT "we?ird" FROM t WHERE x = ?`, `SELECT "we?ird" FROM t WHERE x = $1`},
		{"SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , $1"},
		{"SELECT ? -- what?\n, ?", "SELECT $1 -- what?\n, $2"},
		{"SELECT ? -- trailing?", "SELECT $1 -- trailing?"},
		{"SELECT 'unterminated ?", "SELECT 'unterminated ?"},
		{"SELECT a - ? - b", "SELECT a - $1 - b"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, rebind(store.Postgres, tc.in), tc.in)
		require.Equal(t, tc.want, rebind(store.Postgres, tc.in), "cached: %s", tc.in)
		require.Equal(t, tc.in, rebind(store.SQLite, tc.in))
	}
}

func TestTimeArgs(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6007008, time.FixedZone("x", 3600))
	require.Equal(t, "2025-01-02T02:04:05.006007Z", timeArg(store.SQLite, at))
	require.Equal(t, time.Date(2025, 1, 2, 2, 4, 5, 6007000, time.UTC), timeArg(store.Postgres, at))
	require.Nil(t, nullTimeArg(store.SQLite, nil))
	require.Equal(t, "2025-01-02T02:04:05.006007Z", nullTimeArg(store.SQLite, &at))
	// Fixed width keeps text order equal to time order.
	require.Less(t, timeArg(store.SQLite, at).(string), timeArg(store.SQLite, at.Add(time.Microsecond)).(string))
	require.Less(t, timeArg(store.SQLite, at.Truncate(time.Second)).(string), timeArg(store.SQLite, at).(string))
}

func TestTimeScanner(t *testing.T) {
	want := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, src := range []any{
		"2025-01-02T03:04:05.000006Z",
		[]byte("2025-01-02T03:04:05.000006Z"),
		"2025-01-02T04:04:05.000006+01:00",
		want.In(time.FixedZone("y", -3600)),
	} {
		var s timeScanner
		require.NoError(t, s.Scan(src), "%v", src)
		require.True(t, s.Valid)
		require.True(t, want.Equal(s.Time), "%v: got %v", src, s.Time)
		require.Equal(t, time.UTC, s.Time.Location())
		require.NotNil(t, s.ptr())
	}
	var s timeScanner
	require.NoError(t, s.Scan("2025-01-02 03:04:05")) // SQLite CURRENT_TIMESTAMP
	require.Equal(t, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), s.Time)
	require.NoError(t, s.Scan(nil))
	require.False(t, s.Valid)
	require.Nil(t, s.ptr())
	require.ErrorContains(t, s.Scan("yesterday"), `"yesterday"`)
	require.ErrorContains(t, s.Scan(42), "unsupported type int")
}

func TestPools(t *testing.T) {
	lite, err := Open(t.Context(), Config{Dialect: store.SQLite, DSN: filepath.Join(t.TempDir(), "p.db"), MaxConns: 50})
	require.NoError(t, err)
	t.Cleanup(func() { _ = lite.Close() })
	require.Equal(t, 1, lite.db.Stats().MaxOpenConnections)
	require.Nil(t, lite.Pool())

	url := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_URL is not set")
	}
	pg, err := Open(t.Context(), Config{Dialect: store.Postgres, DSN: url, StatementTimeout: 1500 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close() })
	cfg := pg.Pool().Config()
	require.EqualValues(t, defaultMaxConns, cfg.MaxConns)
	require.Equal(t, pgConnMaxIdleTime, cfg.MaxConnIdleTime)
	require.Equal(t, pgConnMaxLifetime, cfg.MaxConnLifetime)
	var timeout, idleInTx string
	require.NoError(t, pg.db.QueryRowContext(t.Context(), "SHOW statement_timeout").Scan(&timeout))
	require.NoError(t, pg.db.QueryRowContext(t.Context(), "SHOW idle_in_transaction_session_timeout").Scan(&idleInTx))
	require.Equal(t, "1500ms", timeout)
	require.Equal(t, "1min", idleInTx)
	require.Zero(t, pg.db.Stats().Idle, "database/sql keeps no connection from the pool")

	small, err := Open(t.Context(), Config{Dialect: store.Postgres, DSN: url, MaxConns: 3})
	require.NoError(t, err)
	t.Cleanup(func() { _ = small.Close() })
	require.EqualValues(t, 3, small.Pool().Config().MaxConns)
}

// A request that cannot get a connection because the pool is exhausted
// waits AcquireTimeout, then fails with ErrUnavailable, alone: the
// requests holding connections finish normally.
func TestPoolWaitIsBounded(t *testing.T) {
	url := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_URL is not set")
	}
	db, err := Open(t.Context(), Config{Dialect: store.Postgres, DSN: url, MaxConns: 1, AcquireTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	// succeeds waits out a slow first connect on a loaded machine, which
	// the 100 ms bound would otherwise count against the pool.
	succeeds := func(msg string) {
		t.Helper()
		require.Eventually(t, func() bool {
			return db.InTx(t.Context(), func(context.Context, store.Tx) error { return nil }) == nil
		}, 10*time.Second, 10*time.Millisecond, msg)
	}
	succeeds("the pool's one connection is made")
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- db.InTx(t.Context(), func(context.Context, store.Tx) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	err = db.InTx(t.Context(), func(context.Context, store.Tx) error { return nil })
	require.ErrorIs(t, err, gatehouse.ErrUnavailable)
	require.ErrorContains(t, err, "for a database connection")
	close(release)
	require.NoError(t, <-done)
	succeeds("the pool recovers")
}

func TestRedact(t *testing.T) {
	base := errors.New("auth failed for hunter2 at db")
	err := redact(base, "hunter2")
	require.Equal(t, "auth failed for xxxxx at db", err.Error())
	require.ErrorIs(t, err, base)
	require.Same(t, base, redact(base, ""))
	require.NoError(t, redact(nil, "x"))
}

func TestTranslate(t *testing.T) {
	require.NoError(t, translate("op", nil))

	err := translate("get thing", sql.ErrNoRows)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.EqualError(t, err, "get thing: store: not found")

	for _, code := range []string{pgUniqueViolation, pgForeignKeyViolation} {
		err := translate("create thing", fmt.Errorf("driver: %w", &pgconn.PgError{Code: code, Message: "violates " + code}))
		require.ErrorIs(t, err, store.ErrConflict, code)
		require.ErrorContains(t, err, "create thing: store: conflict")
		require.ErrorContains(t, err, "violates "+code)
	}

	other := &pgconn.PgError{Code: "23502"} // not_null_violation is a bug, not a conflict
	err = translate("create thing", other)
	require.NotErrorIs(t, err, store.ErrConflict)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)

	plain := errors.New("disk on fire")
	err = translate("x", plain)
	require.ErrorIs(t, err, plain)
	require.False(t, isConflict(plain))
}

// TestTranslateDriverErrors provokes real constraint errors on each engine
// to check the codes we match are the ones the drivers return.
func TestTranslateDriverErrors(t *testing.T) {
	ctx := t.Context()
	type engine struct {
		name string
		open func(t *testing.T) *DB
	}
	engines := []engine{{"sqlite", func(t *testing.T) *DB {
		db, err := Open(ctx, Config{Dialect: store.SQLite, DSN: filepath.Join(t.TempDir(), "x.db")})
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		return db
	}}}
	if url := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL"); url != "" {
		engines = append(engines, engine{"postgres", func(t *testing.T) *DB {
			db, err := Open(ctx, Config{Dialect: store.Postgres, DSN: url})
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			return db
		}})
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			// Temporary tables on one connection: private to this test
			// even on a shared PostgreSQL database.
			conn, err := db.DB().Conn(ctx)
			require.NoError(t, err)
			defer conn.Close()
			exec := func(q string, args ...any) error {
				_, err := conn.ExecContext(ctx, rebind(db.Dialect(), q), args...)
				return err
			}
			require.NoError(t, exec(`CREATE TEMP TABLE tr_parent (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE)`))
			require.NoError(t, exec(`CREATE TEMP TABLE tr_child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES tr_parent (id))`))
			require.NoError(t, exec(`INSERT INTO tr_parent (id, email) VALUES (?, ?)`, "p1", "a@example.com"))

			cases := []struct {
				name         string
				err          error
				conflict, fk bool
			}{
				{"primary key", exec(`INSERT INTO tr_parent (id, email) VALUES (?, ?)`, "p1", "b@example.com"), true, false},
				{"unique", exec(`INSERT INTO tr_parent (id, email) VALUES (?, ?)`, "p2", "a@example.com"), true, false},
				{"foreign key", exec(`INSERT INTO tr_child (id, parent_id) VALUES (?, ?)`, "c1", "nope"), true, true},
				{"not null", exec(`INSERT INTO tr_parent (id) VALUES (?)`, "p3"), false, false},
			}
			for _, c := range cases {
				require.Error(t, c.err, c.name)
				got := translate("op", c.err)
				require.Equal(t, c.conflict, errors.Is(got, store.ErrConflict), "%s: %v", c.name, c.err)
				require.Equal(t, c.fk, isForeignKeyViolation(c.err), "%s: %v", c.name, c.err)
			}
			require.False(t, isForeignKeyViolation(nil))
			require.False(t, isForeignKeyViolation(errors.New("plain")))
			var missing string
			err = conn.QueryRowContext(ctx, rebind(db.Dialect(), `SELECT id FROM tr_parent WHERE id = ?`), "zz").Scan(&missing)
			require.ErrorIs(t, translate("op", err), store.ErrNotFound)
		})
	}
}

func TestWithMigrationLockUnlocksOnError(t *testing.T) {
	url := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_URL not set")
	}
	ctx := t.Context()
	db, err := Open(ctx, Config{Dialect: store.Postgres, DSN: url, StatementTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	defer db.Close()
	boom := errors.New("boom")
	require.ErrorIs(t, db.withMigrationLock(ctx, func(*DB) error { return boom }), boom)
	// A second holder gets the lock at once: the first released it. Its
	// statements may outlast the store's statement timeout.
	lockCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, db.withMigrationLock(lockCtx, func(m *DB) error {
		_, err := m.exec(lockCtx, "SELECT pg_sleep(0.2)")
		return err
	}))
	_, err = db.exec(ctx, "SELECT pg_sleep(0.2)")
	require.ErrorIs(t, err, gatehouse.ErrUnavailable, "the store's own sessions keep the timeout")
}
