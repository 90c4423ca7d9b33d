// Package sqltest gives tests in any package fresh, migrated databases on
// every engine the environment offers: SQLite always, PostgreSQL when
// GATEHOUSE_TEST_POSTGRES_URL is set (CI sets it). Each Open returns an
// isolated database, so tests may run in parallel.
//
//	for _, e := range sqltest.Engines(t) {
//		t.Run(e.Name, func(t *testing.T) {
//			db := e.Open(t)
//			...
//		})
//	}
package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

// PostgresURLEnv names the variable holding an admin URL to a PostgreSQL
// server where tests may create and drop databases.
const PostgresURLEnv = "GATEHOUSE_TEST_POSTGRES_URL"

// setupTimeout bounds creating, migrating and dropping one test database.
const setupTimeout = 60 * time.Second

// Engine is one database engine under test.
type Engine struct {
	// Name is the subtest name: "sqlite" or "postgres".
	Name string
	// Open returns a fresh migrated database, closed (and for PostgreSQL
	// dropped) when t ends.
	Open func(t testing.TB) *sqlstore.DB
}

// Engines lists the engines to run against: SQLite always, PostgreSQL when
// PostgresURLEnv is set.
func Engines(t testing.TB) []Engine {
	t.Helper()
	engines := []Engine{{Name: string(store.SQLite), Open: SQLite}}
	if os.Getenv(PostgresURLEnv) != "" {
		engines = append(engines, Engine{Name: string(store.Postgres), Open: Postgres})
	}
	return engines
}

// SQLite returns a migrated database in a fresh file under t.TempDir(). The
// file is a copy of one migrated once per test binary (see sqliteTemplate),
// so it is exactly what MigrateUp produces, without paying for it each time.
func SQLite(t testing.TB) *sqlstore.DB {
	t.Helper()
	path := SQLitePath(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.SQLite, DSN: path})
	if err != nil {
		t.Fatalf("sqltest: open SQLite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// SQLitePath writes a migrated SQLite database to a fresh file under
// t.TempDir() and returns its path, for tests that start a whole server.
func SQLitePath(t testing.TB) string {
	t.Helper()
	tmpl, err := sqliteTemplate()
	if err != nil {
		t.Fatalf("sqltest: migrated SQLite template: %v", err)
	}
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	if err := os.WriteFile(path, tmpl, 0o600); err != nil {
		t.Fatalf("sqltest: write SQLite database: %v", err)
	}
	return path
}

// sqliteTemplate returns the bytes of a freshly migrated SQLite database,
// built on first use. Migrating (River's schema and ours) takes about 0.3 s
// per database under the race detector, since modernc's SQLite is C
// translated to Go; copying a file takes almost nothing, and suites open a
// database per test case.
var sqliteTemplate = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "gatehouse-sqltest-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	path := filepath.Join(dir, "template.db")
	db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.SQLite, DSN: path})
	if err != nil {
		return nil, err
	}
	if err := db.MigrateUp(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	// Move everything from the WAL into the main file, so the file alone
	// is the whole database. (Closing the last connection checkpoints too;
	// this makes it explicit and checked.)
	if _, err := db.DB().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return nil, fmt.Errorf("checkpoint left %d bytes in the WAL", fi.Size())
	}
	return os.ReadFile(path)
})

// PostgresURL creates an empty database just for this test (dropped when t
// ends) and returns its URL, for tests of migrating itself. It skips the
// test when PostgresURLEnv is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return postgresDatabase(t, "")
}

// MigratedPostgresURL creates a migrated database just for this test
// (dropped when t ends) and returns its URL, for tests that start a whole
// server. It skips the test when PostgresURLEnv is unset.
func MigratedPostgresURL(t testing.TB) string {
	t.Helper()
	if os.Getenv(PostgresURLEnv) == "" {
		t.Skipf("sqltest: %s not set", PostgresURLEnv)
	}
	tmpl, err := postgresTemplate()
	if err != nil {
		t.Fatalf("sqltest: migrated PostgreSQL template: %v", err)
	}
	return postgresDatabase(t, tmpl)
}

// postgresDatabase creates a database for t, a copy of template when it is
// not empty, dropped when t ends, and returns its URL.
func postgresDatabase(t testing.TB, template string) string {
	t.Helper()
	adminURL := os.Getenv(PostgresURLEnv)
	if adminURL == "" {
		t.Skipf("sqltest: %s not set", PostgresURLEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	name := "gh_test_" + randomSuffix(t)
	create := "CREATE DATABASE " + name
	if template != "" {
		create += " TEMPLATE " + template
	}
	if err := adminExec(ctx, adminURL, create); err != nil {
		t.Fatalf("sqltest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := adminExec(ctx, adminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("sqltest: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(adminURL, name)
	if err != nil {
		t.Fatalf("sqltest: %v", err)
	}
	return dsn
}

// Postgres returns a migrated database created just for this test on the
// server at PostgresURLEnv, dropped (WITH (FORCE)) when t ends. It skips the
// test when the variable is unset.
func Postgres(t testing.TB) *sqlstore.DB {
	t.Helper()
	dsn := MigratedPostgresURL(t) // its cleanup drops the database after the pool's Close below
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.Postgres, DSN: dsn, MaxConns: 10})
	if err != nil {
		t.Fatalf("sqltest: open PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// postgresTemplate returns the name of a migrated database to copy test
// databases from (CREATE DATABASE ... TEMPLATE takes milliseconds where
// migrating takes most of a second under the race detector). It is named
// by sqlstore.SchemaDigest, so it is built once per schema on the server
// and shared by every test binary and run with the same migrations; an
// advisory lock makes concurrent binaries build it once.
var postgresTemplate = sync.OnceValues(func() (string, error) {
	adminURL := os.Getenv(PostgresURLEnv)
	digest, err := sqlstore.SchemaDigest(store.Postgres)
	if err != nil {
		return "", err
	}
	name := "gh_template_" + digest[:16]
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	// Session-level: held across the statements below, released with the
	// connection if this process dies.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('gatehouse sqltest template'))"); err != nil {
		return "", err
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	// Built under another name and renamed when complete, so a template
	// that exists is always whole.
	building := name + "_building"
	for _, stmt := range []string{"DROP DATABASE IF EXISTS " + building + " WITH (FORCE)", "CREATE DATABASE " + building} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return "", err
		}
	}
	dsn, err := withDatabase(adminURL, building)
	if err != nil {
		return "", err
	}
	db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.Postgres, DSN: dsn, MaxConns: 2})
	if err != nil {
		return "", err
	}
	err = db.MigrateUp(ctx)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("migrate: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", err
	}
	return name, nil
})

// randomSuffix is a lowercase hex token, safe as part of an unquoted
// identifier.
func randomSuffix(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("sqltest: random: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// adminExec runs one statement on a short-lived connection to the admin URL.
// CREATE/DROP DATABASE cannot run in a transaction, and a dedicated pool
// keeps tests' databases independent of each other.
func adminExec(ctx context.Context, adminURL, stmt string) error {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return fmt.Errorf("parse %s: %w", PostgresURLEnv, err)
	}
	db := stdlib.OpenDB(*cfg)
	defer func(db *sql.DB) { _ = db.Close() }(db)
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return err
	}
	return nil
}

// withDatabase returns adminURL pointing at database name instead. It
// accepts both URL and keyword/value connection strings.
func withDatabase(adminURL, name string) (string, error) {
	if strings.HasPrefix(adminURL, "postgres://") || strings.HasPrefix(adminURL, "postgresql://") {
		u, err := url.Parse(adminURL)
		if err != nil {
			return "", fmt.Errorf("parse %s: invalid URL", PostgresURLEnv)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// In keyword/value form the last occurrence of a keyword wins.
	return adminURL + " dbname=" + name, nil
}
