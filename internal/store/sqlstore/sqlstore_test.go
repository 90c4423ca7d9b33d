package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
	"github.com/gatehouse-auth/gatehouse/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store { return e.Open(t) })
		})
	}
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := e.Open(t) // already migrated up once

			requireAllApplied(t, db)
			require.NoError(t, db.MigrateUp(ctx), "up is idempotent")

			// Reset to zero: our tables go, River's stay.
			require.NoError(t, db.MigrateReset(ctx))
			status, err := db.MigrateStatus(ctx)
			require.NoError(t, err)
			for _, s := range status {
				if s.Source == sqlstore.SourceGatehouse {
					require.False(t, s.Applied, "%s %d", s.Source, s.Version)
					require.Nil(t, s.AppliedAt)
				} else {
					require.True(t, s.Applied, "%s %d", s.Source, s.Version)
				}
			}
			_, err = db.ListSigningKeys(ctx)
			require.Error(t, err, "signing_keys must be gone after reset")
			_, err = db.GetUser(ctx, "x")
			require.Error(t, err, "users must be gone after reset")
			require.NotErrorIs(t, err, store.ErrNotFound)
			require.NoError(t, db.MigrateReset(ctx), "reset at zero is a no-op")
			require.ErrorContains(t, db.MigrateDown(ctx), "no gatehouse migration is applied")

			// Up again, and the store works, system roles included.
			require.NoError(t, db.MigrateUp(ctx))
			requireAllApplied(t, db)
			require.NoError(t, db.CreateEvent(ctx, gatehouse.Event{ID: gatehouse.NewID(), Type: gatehouse.EventUserLogin, CreatedAt: time.Now()}))
			requireSystemRoles(t, db)
			u := gatehouse.User{ID: gatehouse.NewID(), Email: "a@example.com", CreatedAt: time.Now(), UpdatedAt: time.Now()}
			require.NoError(t, db.CreateUser(ctx, u))
			require.NoError(t, db.SetUserRoles(ctx, u.ID, []string{"admin"}))

			// Down one step rolls back exactly our latest migration.
			status, err = db.MigrateStatus(ctx)
			require.NoError(t, err)
			latest := status[len(status)-1]
			require.Equal(t, sqlstore.SourceGatehouse, latest.Source)
			require.NoError(t, db.MigrateDown(ctx))
			status, err = db.MigrateStatus(ctx)
			require.NoError(t, err)
			require.False(t, status[len(status)-1].Applied)
			require.True(t, status[len(status)-2].Applied)
			require.NoError(t, db.MigrateUp(ctx))
			requireAllApplied(t, db)
			requireSystemRoles(t, db)
		})
	}
}

func requireAllApplied(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	status, err := db.MigrateStatus(t.Context())
	require.NoError(t, err)
	counts := map[string]int{}
	lastSource := sqlstore.SourceRiver
	var lastVersion int64
	for _, s := range status {
		counts[s.Source]++
		require.Truef(t, s.Applied, "%s %d %s not applied", s.Source, s.Version, s.Name)
		require.NotEmpty(t, s.Name)
		require.NotNilf(t, s.AppliedAt, "%s %d", s.Source, s.Version)
		require.Equal(t, time.UTC, s.AppliedAt.Location())
		require.WithinDuration(t, time.Now(), *s.AppliedAt, 24*time.Hour)
		// River first, then ours; ascending within each.
		if s.Source != lastSource {
			require.Equal(t, sqlstore.SourceGatehouse, s.Source)
			lastSource, lastVersion = s.Source, 0
		}
		require.Greater(t, s.Version, lastVersion)
		lastVersion = s.Version
	}
	require.Positive(t, counts[sqlstore.SourceRiver])
	require.Positive(t, counts[sqlstore.SourceGatehouse])
	require.Len(t, counts, 2)
}

func TestMigrateStatusNamesOurFiles(t *testing.T) {
	db := sqltest.SQLite(t)
	status, err := db.MigrateStatus(t.Context())
	require.NoError(t, err)
	var names []string
	for _, s := range status {
		if s.Source == sqlstore.SourceGatehouse {
			names = append(names, s.Name)
		}
	}
	require.Contains(t, names, "00001_init.sql")
	require.Contains(t, names, "00002_accounts.sql")
}

func TestMigrateConcurrentInstancesPostgres(t *testing.T) {
	t.Parallel()
	// Several instances starting together against one empty database:
	// River's and our migrations must not race (the advisory lock). SQLite
	// is single-node and not covered: one process migrates it.
	if os.Getenv(sqltest.PostgresURLEnv) == "" {
		t.Skipf("%s not set", sqltest.PostgresURLEnv)
	}
	ctx := t.Context()
	db := sqltest.Postgres(t)
	_, err := db.DB().ExecContext(ctx, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	cfg := sqlstore.Config{Dialect: store.Postgres, DSN: pgDSNOf(t, db)}

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sqlstore.Open(ctx, cfg)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = db.MigrateUp(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	requireAllApplied(t, db)
}

// pgDSNOf is the DSN of a sqltest PostgreSQL database, for opening a second
// pool on it.
func pgDSNOf(t *testing.T, db *sqlstore.DB) string {
	t.Helper()
	var name string
	require.NoError(t, db.DB().QueryRowContext(t.Context(), "SELECT current_database()").Scan(&name))
	u, err := url.Parse(os.Getenv(sqltest.PostgresURLEnv))
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func TestInTxGuardsThePool(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := e.Open(t)
			ev := gatehouse.Event{ID: gatehouse.NewID(), Type: gatehouse.EventUserLogin, CreatedAt: time.Now()}
			err := db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				// Using the DB with the transaction's context would deadlock
				// SQLite's single connection: it must fail fast instead.
				_, err := db.GetEvent(ctx, ev.ID)
				require.ErrorContains(t, err, "use the Tx")
				require.NotErrorIs(t, err, store.ErrNotFound)
				require.ErrorContains(t, db.CreateEvent(ctx, ev), "use the Tx")
				_, err = db.ListSigningKeys(ctx)
				require.ErrorContains(t, err, "use the Tx")
				_, err = db.DeleteExpiredSigningKeys(ctx, time.Now())
				require.ErrorContains(t, err, "use the Tx")
				_, err = db.GetUser(ctx, "u")
				require.ErrorContains(t, err, "use the Tx")
				_, err = db.RevokeUserSessions(ctx, "u", "", time.Now())
				require.ErrorContains(t, err, "use the Tx")
				require.ErrorContains(t, db.SetUserRoles(ctx, "u", []string{"admin"}), "use the Tx")
				_, err = db.ListUsers(ctx, store.UserQuery{Limit: 1})
				require.ErrorContains(t, err, "use the Tx")
				_, err = db.ListRoles(ctx)
				require.ErrorContains(t, err, "use the Tx")
				require.ErrorContains(t, db.DeleteRole(ctx, "role_user"), "use the Tx")
				nested := db.InTx(ctx, func(context.Context, store.Tx) error { return nil })
				require.ErrorContains(t, nested, "nested InTx")
				return tx.CreateEvent(ctx, ev)
			})
			require.NoError(t, err)
			_, err = db.GetEvent(ctx, ev.ID)
			require.NoError(t, err)
		})
	}
}

func TestSQLiteSerializesConcurrentWriters(t *testing.T) {
	// Many goroutines writing at once through one connection: no
	// SQLITE_BUSY, nothing lost.
	db := sqltest.SQLite(t)
	ctx := t.Context()
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := gatehouse.Event{ID: gatehouse.NewID(), Type: gatehouse.EventUserLogin, Data: map[string]any{"w": w, "i": i}, CreatedAt: time.Now()}
				if i%2 == 0 {
					errs <- db.CreateEvent(ctx, ev)
					continue
				}
				errs <- db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
					if err := tx.CreateEvent(ctx, ev); err != nil {
						return err
					}
					_, err := tx.GetEvent(ctx, ev.ID)
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, db.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM events").Scan(&n))
	require.Equal(t, workers*each, n)
}

func TestSQLitePragmasAndPool(t *testing.T) {
	db := sqltest.SQLite(t)
	ctx := t.Context()
	require.Equal(t, store.SQLite, db.Dialect())
	require.Equal(t, 1, db.DB().Stats().MaxOpenConnections)
	pragma := func(name string) string {
		var v string
		require.NoError(t, db.DB().QueryRowContext(ctx, "PRAGMA "+name).Scan(&v))
		return v
	}
	require.Equal(t, "wal", pragma("journal_mode"))
	require.Equal(t, "1", pragma("foreign_keys"))
	require.Equal(t, "10000", pragma("busy_timeout"))
	require.Equal(t, "1", pragma("synchronous")) // NORMAL
}

func TestOpenSQLiteCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	db, err := sqlstore.Open(t.Context(), sqlstore.Config{Dialect: store.SQLite, DSN: filepath.Join(dir, "g.db")})
	require.NoError(t, err)
	defer db.Close()
	info, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
	require.NoError(t, db.Ping(t.Context()))
}

func TestOpenSQLiteInMemory(t *testing.T) {
	db, err := sqlstore.Open(t.Context(), sqlstore.Config{Dialect: store.SQLite, DSN: ":memory:"})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.MigrateUp(t.Context()))
	require.NoError(t, db.CreateEvent(t.Context(), gatehouse.Event{ID: "x", Type: gatehouse.EventUserLogin, CreatedAt: time.Now()}))
}

func TestOpenSQLiteUnwritablePath(t *testing.T) {
	// A regular file where a directory should be: fails even for root,
	// which ignores permission bits.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	dsn := filepath.Join(file, "sub", "g.db")
	_, err := sqlstore.Open(t.Context(), sqlstore.Config{Dialect: store.SQLite, DSN: dsn})
	require.Error(t, err)
	require.ErrorContains(t, err, "create directory for SQLite database")
	require.ErrorContains(t, err, dsn)

	// A directory where the database file should be.
	dir := t.TempDir()
	_, err = sqlstore.Open(t.Context(), sqlstore.Config{Dialect: store.SQLite, DSN: dir})
	require.ErrorContains(t, err, "open SQLite database")
	require.ErrorContains(t, err, dir)
}

func TestOpenConfigErrors(t *testing.T) {
	ctx := t.Context()
	cases := []struct {
		cfg  sqlstore.Config
		want string
	}{
		{sqlstore.Config{Dialect: "mysql", DSN: "x"}, `unknown dialect "mysql"`},
		{sqlstore.Config{Dialect: store.SQLite}, "empty DSN"},
		{sqlstore.Config{Dialect: store.Postgres, DSN: "postgres://x", MaxConns: -1}, "MaxConns must not be negative"},
		{sqlstore.Config{Dialect: store.SQLite, DSN: "/tmp/x.db?_pragma=foo"}, "plain file path"},
		{sqlstore.Config{Dialect: store.SQLite, DSN: "file:x.db"}, "plain file path"},
	}
	for _, c := range cases {
		_, err := sqlstore.Open(ctx, c.cfg)
		require.ErrorContains(t, err, c.want)
	}
}

func TestOpenPostgresUnreachableFailsFastWithoutPassword(t *testing.T) {
	const password = "s3cr3t-Pa55word"
	for _, dsn := range []string{
		"postgres://gate:" + password + "@127.0.0.1:1/gatehouse?sslmode=disable",
		"host=127.0.0.1 port=1 user=gate password=" + password + " dbname=gatehouse sslmode=disable",
	} {
		start := time.Now()
		_, err := sqlstore.Open(t.Context(), sqlstore.Config{Dialect: store.Postgres, DSN: dsn})
		require.Error(t, err)
		require.Less(t, time.Since(start), 7*time.Second)
		require.ErrorContains(t, err, "127.0.0.1:1")
		require.NotContains(t, err.Error(), password)
	}

	// A malformed DSN is not echoed either.
	_, err := sqlstore.Open(t.Context(), sqlstore.Config{Dialect: store.Postgres, DSN: "postgres://gate:" + password + "@[::1:5432/x"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), password)
}

func TestOpenPostgresSilentServerTimesOut(t *testing.T) {
	// A server that accepts TCP and then says nothing: only the connect
	// timeout ends the handshake. Without connect_timeout in the DSN the
	// default (5 s) applies; with it, the DSN wins.
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	addr := ln.Addr().String()
	for _, c := range []struct {
		name     string
		query    string
		min, max time.Duration
	}{
		{"default", "", 4 * time.Second, 8 * time.Second},
		{"dsn", "&connect_timeout=1", 500 * time.Millisecond, 3 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := sqlstore.Open(t.Context(), sqlstore.Config{Dialect: store.Postgres, DSN: "postgres://u:pw-secret@" + addr + "/db?sslmode=disable" + c.query})
			took := time.Since(start)
			require.Error(t, err)
			require.ErrorContains(t, err, addr)
			require.NotContains(t, err.Error(), "pw-secret")
			require.Greater(t, took, c.min)
			require.Less(t, took, c.max)
		})
	}
}

func TestOpenPostgresPool(t *testing.T) {
	url := os.Getenv(sqltest.PostgresURLEnv)
	if url == "" {
		t.Skipf("%s not set", sqltest.PostgresURLEnv)
	}
	for _, c := range []struct{ maxConns, want int }{{0, 20}, {7, 7}} {
		db, err := sqlstore.Open(t.Context(), sqlstore.Config{Dialect: store.Postgres, DSN: url, MaxConns: c.maxConns})
		require.NoError(t, err)
		require.EqualValues(t, c.want, db.Pool().Config().MaxConns, "the pgx pool owns the connections")
		require.Equal(t, store.Postgres, db.Dialect())
		require.NoError(t, db.Ping(t.Context()))
		require.NoError(t, db.Close())
		require.Error(t, db.Ping(t.Context()), "ping after close")
	}
}

func TestErrorsCarryContext(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := e.Open(t)
			k := gatehouse.SigningKey{ID: "k1", Algorithm: "RS256", PublicKeyPEM: "pem", PrivateKeyEnc: []byte("x"), CreatedAt: time.Now()}
			require.NoError(t, db.CreateSigningKey(ctx, k))
			err := db.CreateSigningKey(ctx, k)
			require.ErrorIs(t, err, store.ErrConflict)
			require.True(t, strings.HasPrefix(err.Error(), "create signing key: store: conflict"), err.Error())

			_, err = db.GetEvent(ctx, "nope")
			require.EqualError(t, err, `get event "nope": store: not found`)

			err = db.RetireSigningKey(ctx, "nope", time.Now(), time.Now())
			require.EqualError(t, err, `retire signing key "nope": store: not found`)

			_, err = db.GetUser(ctx, "nope")
			require.EqualError(t, err, `get user "nope": store: not found`)
			err = db.DeleteUser(ctx, "nope")
			require.EqualError(t, err, `delete user "nope": store: not found`)
			err = db.SetUserRoles(ctx, "nope", []string{"admin"})
			require.EqualError(t, err, `set roles of user "nope": store: not found`)
			u := gatehouse.User{ID: "u1", Email: "u1@example.com", CreatedAt: time.Now(), UpdatedAt: time.Now()}
			require.NoError(t, db.CreateUser(ctx, u))
			err = db.SetUserRoles(ctx, "u1", []string{"user", "root", "admin", "wheel"})
			require.EqualError(t, err, `set roles of user "u1": unknown role "root", "wheel": store: not found`)
			err = db.CreateSession(ctx, gatehouse.Session{ID: "s1", UserID: "ghost", CreatedAt: time.Now(), LastActiveAt: time.Now(), ExpiresAt: time.Now(), AuthTime: time.Now()})
			require.EqualError(t, err, `create session: user "ghost": store: not found`)
			_, err = db.RevokeSession(ctx, "nope", time.Now())
			require.EqualError(t, err, `revoke session "nope": store: not found`)
			// Secrets never appear in errors: only the purpose is named.
			hash := []byte("0123456789abcdef0123456789abcdef")
			_, err = db.ConsumeOneTimeToken(ctx, gatehouse.PurposeMagicLink, hash, time.Now())
			require.EqualError(t, err, `consume magic_link token: store: not found`)
			_, err = db.GetRefreshTokenByHash(ctx, hash)
			require.EqualError(t, err, `get refresh token by hash: store: not found`)

			// Data that encoding/json refuses is reported, not stored.
			err = db.CreateEvent(ctx, gatehouse.Event{ID: "bad", Type: gatehouse.EventUserLogin, Data: map[string]any{"c": make(chan int)}, CreatedAt: time.Now()})
			require.ErrorContains(t, err, "create event: encode data")

			// Errors after Close are wrapped too, never translated.
			require.NoError(t, db.Close())
			_, err = db.ListSigningKeys(ctx)
			require.ErrorContains(t, err, "list signing keys")
			require.False(t, errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict))
			require.ErrorContains(t, db.Ping(ctx), fmt.Sprintf("ping %s", e.Name))
			now := time.Now()
			for _, c := range []struct {
				op  string
				err error
			}{
				{"get user", func() error { _, err := db.GetUser(ctx, "u1"); return err }()},
				{"update user", db.UpdateUser(ctx, u)},
				{"set roles of user", db.SetUserRoles(ctx, "u1", []string{"admin"})},
				{"list sessions", func() error { _, err := db.ListSessions(ctx, "u1", now); return err }()},
				{"revoke user sessions", func() error { _, err := db.RevokeUserSessions(ctx, "u1", "", now); return err }()},
				{"revoke session", func() error { _, err := db.RevokeSession(ctx, "s1", now); return err }()},
				{"use refresh token", func() error { _, err := db.UseRefreshToken(ctx, "r1", now); return err }()},
				{"delete stale sessions", func() error { _, err := db.DeleteStaleSessions(ctx, now); return err }()},
				{"delete stale one-time tokens", func() error { _, err := db.DeleteStaleOneTimeTokens(ctx, now); return err }()},
			} {
				require.ErrorContains(t, c.err, c.op)
				require.False(t, errors.Is(c.err, store.ErrNotFound) || errors.Is(c.err, store.ErrConflict), "%s: %v", c.op, c.err)
			}
		})
	}
}

// requireSystemRoles checks the roles the accounts migration seeds: fixed
// ids, names, permissions and the system flag, with a creation time in the
// store's format.
func requireSystemRoles(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	rows, err := db.DB().QueryContext(t.Context(),
		`SELECT id, name, description, permissions, system, created_at, updated_at FROM roles ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	type role struct {
		id, name    string
		permissions []string
		system      bool
	}
	var got []role
	for rows.Next() {
		var (
			r                role
			description      string
			perms            []byte
			created, updated any
		)
		require.NoError(t, rows.Scan(&r.id, &r.name, &description, &perms, &r.system, &created, &updated))
		require.NotEmpty(t, description)
		require.NoError(t, json.Unmarshal(perms, &r.permissions))
		for _, at := range []any{created, updated} {
			// SQLite stores text in the fixed-width layout (so it sorts
			// with every other timestamp); PostgreSQL a TIMESTAMPTZ.
			var when time.Time
			switch v := at.(type) {
			case string:
				require.Regexp(t, `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`, v)
				when, err = time.Parse(time.RFC3339Nano, v)
				require.NoError(t, err)
			case time.Time:
				when = v
			default:
				t.Fatalf("created_at/updated_at: unexpected %T", at)
			}
			require.WithinDuration(t, time.Now(), when, 24*time.Hour)
		}
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []role{
		{"role_admin", "admin", []string{"*"}, true},
		{"role_moderator", "moderator", []string{"users:read", "users:lock", "audit:read"}, true},
		{"role_user", "user", []string{}, true},
	}, got)
}

func TestSystemRolesSeeded(t *testing.T) {
	t.Parallel()
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			requireSystemRoles(t, e.Open(t))
		})
	}
}
