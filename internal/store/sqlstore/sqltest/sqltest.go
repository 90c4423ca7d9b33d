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
	tmpl, err := sqliteTemplate()
	if err != nil {
		t.Fatalf("sqltest: migrated SQLite template: %v", err)
	}
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	if err := os.WriteFile(path, tmpl, 0o600); err != nil {
		t.Fatalf("sqltest: write SQLite database: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.SQLite, DSN: path})
	if err != nil {
		t.Fatalf("sqltest: open SQLite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
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
// ends) and returns its URL, for tests that start a whole server process.
// It skips the test when PostgresURLEnv is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	adminURL := os.Getenv(PostgresURLEnv)
	if adminURL == "" {
		t.Skipf("sqltest: %s not set", PostgresURLEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	name := "gh_test_" + randomSuffix(t)
	if err := adminExec(ctx, adminURL, "CREATE DATABASE "+name); err != nil {
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
	dsn := PostgresURL(t) // its cleanup drops the database after the pool's Close below
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.Postgres, DSN: dsn, MaxConns: 10})
	if err != nil {
		t.Fatalf("sqltest: open PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("sqltest: migrate PostgreSQL: %v", err)
	}
	return db
}

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
