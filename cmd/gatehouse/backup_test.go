package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// tablesOf lists the tables of the database env names (none for a SQLite
// file that does not exist), without creating it.
func tablesOf(t *testing.T, env map[string]string) []string {
	t.Helper()
	cfg, err := config.FromMap(env)
	require.NoError(t, err)
	if cfg.Database.Dialect == string(store.SQLite) {
		if _, err := os.Stat(cfg.Database.DSN); os.IsNotExist(err) {
			return nil
		}
	}
	db, err := app.OpenStore(t.Context(), cfg)
	require.NoError(t, err)
	defer db.Close()
	tables, err := db.Tables(t.Context())
	require.NoError(t, err)
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Name)
	}
	return names
}

// readManifest reads the manifest of a backup file as JSON.
func readManifest(t *testing.T, path string) (map[string]any, []string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	var m map[string]any
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
		if h.Name == manifestName {
			require.NoError(t, json.NewDecoder(tr).Decode(&m))
		}
	}
	return m, names
}

// A backup taken while the server serves (and signs people up) restores
// into an empty database of the same engine, where the sessions, TOTP,
// webhook secrets, signing keys and audit chain all still work. Restore
// refuses the wrong master key and a database that is not empty, writing
// nothing.
func TestBackupRestoreRoundTrip(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			key := strings.Repeat("b", 40)
			src := roundTripEnv(t, e.Name, key)
			s := roundTripServer(t, src)
			f := populate(t, s, newSignedHooks(t))
			kids := jwksKids(t, s.base)

			// Sign-ups go on while the backup runs.
			ctx, stopLoad := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					status, body := call(t, s, "POST", "/auth/register", "", map[string]any{"email": fmt.Sprintf("busy%d@example.com", i), "password": roundTripPassword})
					if status != http.StatusCreated {
						t.Errorf("register during the backup: %d %v", status, body)
						return
					}
				}
			}()
			file := filepath.Join(t.TempDir(), "gatehouse.tar.gz")
			out, err := run(t, src, "backup", "--out", file)
			stopLoad()
			wg.Wait()
			require.NoError(t, err, out)
			require.Regexp(t, `^backup of the `+e.Name+` database \(schema version \d+, \d+ bytes\) written to `, out)
			s.stop(t)

			m, names := readManifest(t, file)
			require.Equal(t, []string{"manifest.json", map[string]string{"sqlite": "database.sqlite", "postgres": "database.pgdump"}[e.Name]}, names)
			require.Equal(t, "gatehouse-backup", m["format"])
			require.Equal(t, e.Name, m["engine"])
			require.NotZero(t, m["schema_version"])
			fi, err := os.Stat(file)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			raw, err := os.ReadFile(file)
			require.NoError(t, err)
			require.NotContains(t, string(raw), key, "the master key is not in the backup")

			dst := roundTripEnv(t, e.Name, key)
			wrong := roundTripEnv(t, e.Name, strings.Repeat("w", 40))
			wrong["GATEHOUSE_DATABASE_URL"], wrong["GATEHOUSE_DATA_DIR"] = dst["GATEHOUSE_DATABASE_URL"], dst["GATEHOUSE_DATA_DIR"]
			_, err = run(t, wrong, "restore", "--in", file)
			require.ErrorContains(t, err, "restore refused, nothing was written: the backup was made under master key ")
			require.Empty(t, tablesOf(t, dst))

			_, err = run(t, src, "restore", "--in", file)
			require.ErrorContains(t, err, "restore refused, nothing was written: ")
			require.ErrorContains(t, err, "is not empty")
			require.ErrorContains(t, err, "users: ")

			out, err = run(t, dst, "restore", "--in", file)
			require.NoError(t, err, out)
			require.Regexp(t, `checked \d+ sealed values: all open under the configured master key\n`, out)
			out, err = run(t, dst, "audit", "verify")
			require.NoError(t, err, out)
			require.Contains(t, out, "OK: ")

			s = roundTripServer(t, dst)
			require.Equal(t, kids, jwksKids(t, s.base), "the key ring came along")
			f.check(t, s)
			s.stop(t)
			out, err = run(t, dst, "audit", "verify")
			require.NoError(t, err, out)

			// --force restores over a database that is not empty.
			out, err = run(t, src, "restore", "--in", file, "--force")
			require.NoError(t, err, out)
			require.Contains(t, out, "--force: ")
			out, err = run(t, src, "audit", "verify")
			require.NoError(t, err, out)
		})
	}
}

// What restore refuses before writing anything, and backup without the
// tools it needs.
func TestRestoreRefusals(t *testing.T) {
	key := strings.Repeat("r", 40)
	lite := roundTripEnv(t, string(store.SQLite), key)
	_, err := run(t, lite, "migrate", "up")
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "b.tar.gz")
	_, err = run(t, lite, "backup", "--out", file)
	require.NoError(t, err)

	empty := roundTripEnv(t, string(store.SQLite), key)
	junk := filepath.Join(t.TempDir(), "junk")
	require.NoError(t, os.WriteFile(junk, []byte("not a backup"), 0o600))
	_, err = run(t, empty, "restore", "--in", junk)
	require.ErrorContains(t, err, "is not a Gatehouse backup")

	// A damaged database entry is caught by its checksum.
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	m, _ := readManifest(t, file)
	damaged := filepath.Join(t.TempDir(), "damaged.tar.gz")
	var buf strings.Builder
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	manifest, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o600, Size: int64(len(manifest))}))
	_, err = tw.Write(manifest)
	require.NoError(t, err)
	body := make([]byte, int64(m["database_bytes"].(float64)))
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: sqliteBackupName, Mode: 0o600, Size: int64(len(body))}))
	_, err = tw.Write(body)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	require.NoError(t, os.WriteFile(damaged, []byte(buf.String()), 0o600))
	require.NotEqual(t, raw, []byte(buf.String()))
	_, err = run(t, empty, "restore", "--in", damaged)
	require.ErrorContains(t, err, "is damaged")
	require.Empty(t, tablesOf(t, empty))

	// Through standard output and standard input.
	piped, err := run(t, lite, "backup", "--out", "-")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(piped, "\x1f\x8b"), "the archive itself, messages elsewhere")
	fromStdin := roundTripEnv(t, string(store.SQLite), key)
	out, err := runIn(t, fromStdin, piped, "restore", "--in", "-")
	require.NoError(t, err, out)
	require.Contains(t, tablesOf(t, fromStdin), "users")

	// A database open in another process (the server) is never replaced.
	s := roundTripServer(t, lite)
	_, err = run(t, lite, "restore", "--in", file, "--force")
	require.ErrorContains(t, err, "the database is open in another process")
	s.stop(t)

	// Without a key at all, restore says what is missing (no dev key is
	// made for it).
	noKey := roundTripEnv(t, string(store.SQLite), key)
	noKey["GATEHOUSE_SECRET_KEY"] = "" // run sets variables for the whole test: unset it
	_, err = run(t, noKey, "restore", "--in", file)
	require.ErrorContains(t, err, "no master key: GATEHOUSE_SECRET_KEY is not set")

	if os.Getenv(sqltest.PostgresURLEnv) == "" {
		return
	}
	pg := roundTripEnv(t, string(store.Postgres), key)
	_, err = run(t, pg, "restore", "--in", file)
	require.ErrorContains(t, err, "the backup is of a sqlite database and GATEHOUSE_DATABASE_URL names a postgres one")
	_, err = run(t, pg, "migrate", "up")
	require.NoError(t, err)
	_, err = run(t, pg, "backup", "--out", file, "--pg-bin", t.TempDir())
	require.ErrorContains(t, err, "no pg_dump in ")
	require.ErrorContains(t, err, "docs/operations.md")
}
