package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// migrationsFS holds our schema, one directory per dialect. Both
// directories must carry the same version numbers (a test enforces it), so
// "version N" means the same schema on either engine.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// gooseTable records our applied migrations. It is not goose's default name
// so it cannot be confused with another goose-managed schema in the same
// database, and it sits beside River's own river_migration table.
const gooseTable = "gatehouse_schema_version"

// Migration sources reported by MigrateStatus.
const (
	SourceGatehouse = "gatehouse"
	SourceRiver     = "river"
)

// MigrationStatus is one known migration and whether the database has it;
// the migrate CLI prints these.
type MigrationStatus struct {
	// Source is SourceGatehouse or SourceRiver.
	Source string
	// Version is the migration's number within its source.
	Version int64
	// Name is the migration's file name (ours) or River's name for it.
	Name string
	// Applied reports whether the migration is in the database.
	Applied bool
	// AppliedAt is when it was applied, in UTC; nil when not applied (or,
	// for River, when River's table does not record it).
	AppliedAt *time.Time
}

// migrationDir is the embedded directory for a dialect.
func migrationDir(d store.Dialect) string { return path.Join("migrations", string(d)) }

// migrationVersions lists the versions embedded for a dialect, ascending.
func migrationVersions(d store.Dialect) ([]int64, error) {
	entries, err := fs.ReadDir(migrationsFS, migrationDir(d))
	if err != nil {
		return nil, fmt.Errorf("read %s migrations: %w", d, err)
	}
	var versions []int64
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return nil, fmt.Errorf("read %s migrations: %s: %w", d, e.Name(), err)
		}
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	return versions, nil
}

// gooseProvider builds a goose Provider for this database. The Provider API
// (not goose's package-level functions) keeps no global state, so several
// databases, even of different dialects, can migrate concurrently in one
// process (as the tests do).
func (d *DB) gooseProvider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrationsFS, migrationDir(d.dialect))
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", d.dialect, err)
	}
	dialect := goose.DialectSQLite3
	if d.dialect == store.Postgres {
		dialect = goose.DialectPostgres
	}
	p, err := goose.NewProvider(dialect, d.db, sub,
		goose.WithTableName(gooseTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(d.logger),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", d.dialect, err)
	}
	return p, nil
}

// riverMigrator builds River's migrator over the same pool. Both drivers
// take *sql.DB, so the transaction type is *sql.Tx for either engine.
func (d *DB) riverMigrator() (*rivermigrate.Migrator[*sql.Tx], error) {
	cfg := &rivermigrate.Config{Logger: d.logger}
	var (
		m   *rivermigrate.Migrator[*sql.Tx]
		err error
	)
	if d.dialect == store.SQLite {
		m, err = rivermigrate.New(riversqlite.New(d.db), cfg)
	} else {
		m, err = rivermigrate.New(riverdatabasesql.New(d.db), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	return m, nil
}

// MigrateUp applies every pending migration: River's first (its tables are
// its own business and ours may one day refer to them), then ours. It is
// idempotent and safe to run from several instances at once on PostgreSQL,
// where an advisory lock serializes them.
func (d *DB) MigrateUp(ctx context.Context) error {
	return d.withMigrationLock(ctx, func(m *DB) error {
		rm, err := m.riverMigrator()
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		if _, err := rm.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("migrate up: river: %w", err)
		}
		p, err := m.gooseProvider()
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrate up: gatehouse: %w", err)
		}
		return nil
	})
}

// MigrateDown rolls back our most recent migration. River's schema is left
// alone: queued jobs should survive a schema rollback of ours. Errors when
// none of ours is applied.
func (d *DB) MigrateDown(ctx context.Context) error {
	return d.withMigrationLock(ctx, func(m *DB) error {
		p, err := m.gooseProvider()
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		if _, err := p.Down(ctx); err != nil {
			if errors.Is(err, goose.ErrNoNextVersion) {
				return errors.New("migrate down: no gatehouse migration is applied")
			}
			return fmt.Errorf("migrate down: %w", err)
		}
		return nil
	})
}

// MigrateReset rolls back all of our migrations (River's stay), leaving an
// empty Gatehouse schema; tests use it to prove every Down works.
func (d *DB) MigrateReset(ctx context.Context) error {
	return d.withMigrationLock(ctx, func(m *DB) error {
		p, err := m.gooseProvider()
		if err != nil {
			return fmt.Errorf("migrate reset: %w", err)
		}
		if _, err := p.DownTo(ctx, 0); err != nil {
			return fmt.Errorf("migrate reset: %w", err)
		}
		return nil
	})
}

// MigrateStatus lists every known migration, River's then ours, each in
// ascending version order, with whether and when it was applied.
func (d *DB) MigrateStatus(ctx context.Context) ([]MigrationStatus, error) {
	river, err := d.riverStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate status: river: %w", err)
	}
	p, err := d.gooseProvider()
	if err != nil {
		return nil, fmt.Errorf("migrate status: %w", err)
	}
	ours, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate status: gatehouse: %w", err)
	}
	out := river
	for _, s := range ours {
		ms := MigrationStatus{
			Source:  SourceGatehouse,
			Version: s.Source.Version,
			Name:    path.Base(s.Source.Path),
			Applied: s.State == goose.StateApplied,
		}
		if ms.Applied && !s.AppliedAt.IsZero() {
			t := s.AppliedAt.UTC()
			ms.AppliedAt = &t
		}
		out = append(out, ms)
	}
	return out, nil
}

func (d *DB) riverStatus(ctx context.Context) ([]MigrationStatus, error) {
	rm, err := d.riverMigrator()
	if err != nil {
		return nil, err
	}
	existing, err := rm.ExistingVersions(ctx)
	if err != nil {
		return nil, err
	}
	applied := make(map[int]bool, len(existing))
	for _, m := range existing {
		applied[m.Version] = true
	}
	appliedAt, err := d.riverAppliedAt(ctx, applied)
	if err != nil {
		return nil, err
	}
	all := rm.AllVersions()
	out := make([]MigrationStatus, 0, len(all))
	for _, m := range all {
		ms := MigrationStatus{Source: SourceRiver, Version: int64(m.Version), Name: m.Name, Applied: applied[m.Version]}
		if t, ok := appliedAt[m.Version]; ok && ms.Applied {
			ms.AppliedAt = &t
		}
		out = append(out, ms)
	}
	return out, nil
}

// riverLineColumnVersion is River's migration that added river_migration.line.
const riverLineColumnVersion = 5

// riverAppliedAt reads when River's migrations ran. River's API reports only
// which versions exist, so this reads its table; the line filter applies
// once the column exists.
func (d *DB) riverAppliedAt(ctx context.Context, applied map[int]bool) (map[int]time.Time, error) {
	out := make(map[int]time.Time, len(applied))
	if len(applied) == 0 {
		return out, nil
	}
	q := `SELECT version, created_at FROM river_migration`
	if applied[riverLineColumnVersion] {
		q += ` WHERE line = 'main'`
	}
	rows, err := d.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read river_migration: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v  int
			at timeScanner
		)
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("read river_migration: %w", err)
		}
		if at.Valid {
			out[v] = at.Time
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read river_migration: %w", err)
	}
	return out, nil
}

// migrationLockKey is the PostgreSQL advisory lock that serializes
// migrations across instances starting at once ("gatehous" in ASCII).
const migrationLockKey int64 = 0x67617465686f7573

// withMigrationLock runs fn holding the migration lock, on a DB whose
// sessions have no statement timeout (a migration may rightly run longer
// than any request's statement). On PostgreSQL that is a pool of its own,
// and the lock a session advisory lock on a dedicated connection (advisory
// locks are per database, so parallel test databases do not contend).
// SQLite needs neither: it is single-node, has no statement timeout, and
// holding a connection there would starve fn of the pool's only one.
func (d *DB) withMigrationLock(ctx context.Context, fn func(m *DB) error) (err error) {
	if d.dialect != store.Postgres {
		return fn(d)
	}
	cc := d.pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["statement_timeout"] = "0"
	mdb := stdlib.OpenDB(*cc)
	mdb.SetMaxOpenConns(4)
	defer mdb.Close()
	m := &DB{db: mdb, dialect: d.dialect, logger: d.logger}
	m.queries = queries{q: mdb, dialect: d.dialect, guard: noGuard}

	conn, err := mdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		_ = conn.Close()
		return fmt.Errorf("migration lock: %w", err)
	}
	defer func() {
		// Unlock even if ctx is done; if that fails, discard the connection
		// so the session (and its lock) ends rather than going back to the
		// pool still holding the lock.
		_, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)
		if uerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("migration unlock: %w", uerr))
		}
		_ = conn.Close()
	}()
	return fn(m)
}

// SchemaDigest names the schema MigrateUp builds on a dialect: a hash of
// River's migrations and ours. Two binaries with the same digest build the
// same database, so a migrated copy made by one (a test template) serves
// the other.
func SchemaDigest(dialect store.Dialect) (string, error) {
	d := &DB{dialect: dialect} // the migrators only read their embedded files
	rm, err := d.riverMigrator()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range rm.AllVersions() {
		fmt.Fprintf(h, "river %d\n%s\n", m.Version, m.SQLUp)
	}
	err = fs.WalkDir(migrationsFS, migrationDir(dialect), func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := migrationsFS.ReadFile(name)
		fmt.Fprintf(h, "%s\n%s\n", name, b)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
