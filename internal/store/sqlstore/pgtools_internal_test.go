package sqlstore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tools get the URL without the password (it goes to PGPASSWORD, not
// onto a command line), without pgx's own parameters, and with run-time
// parameters inside options, where libpq takes them.
func TestPGToolConn(t *testing.T) {
	conn, env, err := pgToolConn("postgres://gh:s3cr%20t@db.internal:6432/gatehouse?sslmode=verify-full&pool_max_conns=5&search_path=auth&statement_cache_capacity=0&application_name=gh")
	require.NoError(t, err)
	require.Equal(t, []string{"PGPASSWORD=s3cr t"}, env)
	require.NotContains(t, conn, "s3cr")
	require.Equal(t, "postgres://gh@db.internal:6432/gatehouse?application_name=gh&options=-c+search_path%3Dauth&sslmode=verify-full", conn)

	conn, env, err = pgToolConn("postgresql://h1,h2/db?options=-c%20work_mem%3D4MB&lock_timeout=1s&x=a%20b")
	require.NoError(t, err)
	require.Empty(t, env)
	require.Equal(t, `postgresql://h1,h2/db?options=-c+work_mem%3D4MB+-c+lock_timeout%3D1s+-c+x%3Da%5C+b`, conn)

	_, _, err = pgToolConn("postgres://u:topsecret@[bad")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "topsecret")
}

// Restore leaves out the schema's own entries: the schema exists already.
func TestWithoutSchemaEntries(t *testing.T) {
	list := `;
; Archive created at 2026-01-01 00:00:00 UTC
;     dbname: gh
;
4; 2615 2200 SCHEMA - public pg_database_owner
3350; 0 0 COMMENT - SCHEMA public pg_database_owner
840; 1247 886520 TYPE public river_job_state postgres
214; 1259 886512 TABLE public users postgres
3343; 0 886512 TABLE DATA public users postgres
9; 0 0 COMMENT - EXTENSION pgcrypto
`
	require.Equal(t, `;
; Archive created at 2026-01-01 00:00:00 UTC
;     dbname: gh
;
840; 1247 886520 TYPE public river_job_state postgres
214; 1259 886512 TABLE public users postgres
3343; 0 886512 TABLE DATA public users postgres
9; 0 0 COMMENT - EXTENSION pgcrypto
`, string(withoutSchemaEntries([]byte(list))))
}

func TestFindPGToolInGivenDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := FindPGTool("pg_dump", dir)
	require.True(t, errors.Is(err, ErrPGToolMissing))
	require.ErrorContains(t, err, "no pg_dump in "+dir)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "pg_dump"), []byte("#!/bin/sh\n"), 0o755))
	p, err := FindPGTool("pg_dump", dir)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "pg_dump"), p)

	require.Equal(t, 16, pgDirVersion("/usr/lib/postgresql/16/bin"))
}
