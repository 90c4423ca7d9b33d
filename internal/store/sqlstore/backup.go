package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"

	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// This file holds what `gatehouse backup` and `gatehouse restore` need from
// the database that is the same on both engines: schema versions, what a
// database holds, and the SQLite copy and swap. PostgreSQL's dump and
// restore go through its own tools (pgtools.go).

// SchemaVersions reports the newest applied Gatehouse and River migrations
// (0 for none).
func (d *DB) SchemaVersions(ctx context.Context) (gatehouse, river int64, err error) {
	st, err := d.MigrateStatus(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range st {
		if !m.Applied {
			continue
		}
		if m.Source == SourceGatehouse {
			gatehouse = max(gatehouse, m.Version)
		} else {
			river = max(river, m.Version)
		}
	}
	return gatehouse, river, nil
}

// LatestSchemaVersion is the newest Gatehouse migration this build carries
// for the dialect.
func LatestSchemaVersion(d store.Dialect) (int64, error) {
	vs, err := migrationVersions(d)
	if err != nil || len(vs) == 0 {
		return 0, err
	}
	return vs[len(vs)-1], nil
}

// Table is a table of the database with its row count.
type Table struct {
	Name string
	Rows int64
}

// Tables lists the tables of the database's schema (SQLite: the file;
// PostgreSQL: the connection's current schema) with their row counts, by
// name. Empty means an empty database, the only kind restore writes into
// without being forced.
func (d *DB) Tables(ctx context.Context) ([]Table, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if d.dialect == store.Postgres {
		q = `SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
			AND c.relkind IN ('r', 'p') ORDER BY c.relname`
	}
	names, err := queryStrings(ctx, d.db, q)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	out := make([]Table, 0, len(names))
	for _, n := range names {
		t := Table{Name: n}
		if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(n)).Scan(&t.Rows); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, classify(err))
		}
		out = append(out, t)
	}
	return out, nil
}

func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, classify(err)
		}
		out = append(out, s)
	}
	return out, classify(rows.Err())
}

// quoteIdent quotes an identifier the same way for both engines.
func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// BackupSQLite writes a consistent copy of the SQLite database to path
// (which must not exist) with VACUUM INTO: it reads one snapshot, so
// writers carry on meanwhile and none of their half-done work is copied.
func (d *DB) BackupSQLite(ctx context.Context, path string) error {
	if d.dialect != store.SQLite {
		return fmt.Errorf("backup: VACUUM INTO is SQLite's; this database is %s", d.dialect)
	}
	if _, err := d.db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("backup: VACUUM INTO %s: %w", path, classify(err))
	}
	return nil
}

// ErrDatabaseInUse means another process has the SQLite database open (a
// running server, most likely), so it must not be replaced.
var ErrDatabaseInUse = errors.New("the database is open in another process")

// InstallSQLite makes the SQLite database file src (in the same directory
// as target) the database at target, replacing what is there. It refuses
// with ErrDatabaseInUse when another connection has target open (see
// checkSQLiteUnused). The stale -wal and -shm files of the old database
// are removed, so they are never applied to the new one.
func InstallSQLite(ctx context.Context, src, target string) error {
	if _, err := os.Stat(target); err == nil {
		if err := checkSQLiteUnused(ctx, target); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(target + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restore: remove the old %s file: %w", suffix, err)
		}
	}
	if err := os.Rename(src, target); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(target)); err == nil {
		_ = dir.Sync() // make the rename durable where the platform allows
		_ = dir.Close()
	}
	return nil
}

// checkSQLiteUnused makes sure no connection has the database at path
// open: it takes SQLite's exclusive lock (in exclusive locking mode, which
// every other connection to a WAL database refuses, even an idle one, in
// this process or another) and releases it.
func checkSQLiteUnused(ctx context.Context, path string) error {
	connector, err := newSQLiteConnector(path + "?_pragma=busy_timeout(0)&_pragma=locking_mode(EXCLUSIVE)")
	if err != nil {
		return fmt.Errorf("restore: open %s: %w", path, err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	sqlitePool(db)
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("restore: open %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		if isBusy(err) {
			return fmt.Errorf("restore: %s: %w (stop every Gatehouse process using it first)", path, ErrDatabaseInUse)
		}
		return fmt.Errorf("restore: lock %s: %w", path, err)
	}
	_, err = conn.ExecContext(ctx, `ROLLBACK`)
	return err
}

// isBusy reports SQLite's "database is locked".
func isBusy(err error) bool {
	var liteErr *sqlite.Error
	return errors.As(err, &liteErr) && liteErr.Code()&0xff == sqliteBusy
}
