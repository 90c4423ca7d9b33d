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

// SQLite returns a migrated database in a fresh file under t.TempDir().
func SQLite(t testing.TB) *sqlstore.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := sqlstore.Open(ctx, sqlstore.Config{
		Dialect: store.SQLite,
		DSN:     filepath.Join(t.TempDir(), "gatehouse.db"),
	})
	if err != nil {
		t.Fatalf("sqltest: open SQLite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.MigrateUp(ctx); err != nil {
		t.Fatalf("sqltest: migrate SQLite: %v", err)
	}
	return db
}

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
	// Registered before the pool's Close, so it runs after it (cleanups are
	// LIFO); FORCE ends any session a test leaked anyway.
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
