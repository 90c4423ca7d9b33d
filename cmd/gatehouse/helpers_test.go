package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

func loadTestLogger() (*slog.Logger, error) {
	return slog.New(slog.NewTextHandler(io.Discard, nil)), nil
}

// engineEnv is the environment of a CLI run on a fresh database of the
// engine: SQLite in a temporary data dir, or a PostgreSQL database made
// (and dropped) for the test.
func engineEnv(t *testing.T, engine string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{"GATEHOUSE_DATA_DIR": dir, "GATEHOUSE_LOG_LEVEL": "error",
		"GATEHOUSE_DATABASE_URL": "sqlite://" + filepath.Join(dir, "gatehouse.db")}
	if engine == string(store.Postgres) {
		env["GATEHOUSE_DATABASE_URL"] = sqltest.PostgresURL(t)
	}
	return env
}
