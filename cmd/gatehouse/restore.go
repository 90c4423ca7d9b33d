package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

func newRestoreCmd() *cobra.Command {
	var in, pgBin string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --in FILE",
		Short: "Restore a backup made by `gatehouse backup` into an empty database",
		Long: "Restores FILE (\"-\": standard input) into the database GATEHOUSE_DATABASE_URL names, which must be empty and of\n" +
			"the backup's engine. Before writing anything it checks that the configured master key (GATEHOUSE_SECRET_KEY, or\n" +
			"GATEHOUSE_SECRET_KEY_OLD) is the one the backup was made under. A database that is not empty, or (PostgreSQL)\n" +
			"has other sessions connected, is refused unless --force is given: --force replaces the SQLite file, or drops\n" +
			"everything in the PostgreSQL schema first. Stop every Gatehouse instance using the database first (SQLite:\n" +
			"a database open in another process is always refused). PostgreSQL needs pg_restore (PATH,\n" +
			"/usr/lib/postgresql/*/bin or --pg-bin). Afterwards every sealed secret is checked to open.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			return restoreBackup(cmd.Context(), cfg, restoreOptions{in: in, force: force, pgBin: pgBin}, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "backup file to restore (\"-\": standard input)")
	cmd.Flags().BoolVar(&force, "force", false, "replace a database that is not empty (SQLite: the file; PostgreSQL: everything in its schema)")
	cmd.Flags().StringVar(&pgBin, "pg-bin", "", "directory holding pg_restore (PostgreSQL); default: PATH, then /usr/lib/postgresql/*/bin")
	_ = cmd.MarkFlagRequired("in")
	return cmd
}

type restoreOptions struct {
	in    string
	force bool
	pgBin string
}

func restoreBackup(ctx context.Context, cfg *config.Config, opts restoreOptions, stdin io.Reader, out io.Writer) error {
	box, err := masterBox(cfg)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	dialect := store.Dialect(cfg.Database.Dialect)
	if dialect == store.SQLite && cfg.Database.DSN == ":memory:" {
		return fmt.Errorf("restore: GATEHOUSE_DATABASE_URL names an in-memory database")
	}
	latest, err := sqlstore.LatestSchemaVersion(dialect)
	if err != nil {
		return err
	}
	var tmp string
	defer func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}()
	// Everything the manifest tells is checked before the database is
	// unpacked, and nothing is written before it all passed.
	prepare := func(m backupManifest) (string, error) {
		fmt.Fprintf(out, "backup of a %s database made %s by gatehouse %s (schema version %d)\n",
			m.Engine, m.CreatedAt.UTC().Format(time.RFC3339), m.GatehouseVersion, m.SchemaVersion)
		if m.Engine != string(dialect) {
			return "", fmt.Errorf("restore refused: the backup is of a %s database and GATEHOUSE_DATABASE_URL names a %s one; "+
				"restore into the engine the backup was made on (moving between engines is not supported)", m.Engine, dialect)
		}
		if m.SchemaVersion > latest {
			return "", fmt.Errorf("restore refused: the backup has schema version %d but this release (%s) knows versions up to %d; "+
				"restore it with gatehouse %s or newer", m.SchemaVersion, gatehouse.Version(), latest, m.GatehouseVersion)
		}
		if err := m.openKeyCheck(box); err != nil {
			return "", err
		}
		fmt.Fprintf(out, "the configured master key opens it (key %s)\n", m.MasterKeyID)
		// SQLite: unpack next to the target, so it is moved into place by
		// a rename on the same file system.
		parent := os.TempDir()
		if dialect == store.SQLite {
			parent = filepath.Dir(cfg.Database.DSN)
			if err := os.MkdirAll(parent, 0o700); err != nil {
				return "", fmt.Errorf("restore: %w", err)
			}
		}
		var err error
		if tmp, err = os.MkdirTemp(parent, ".gatehouse-restore-"); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
		return tmp, nil
	}
	m, dump, err := readBackup(opts.in, stdin, prepare)
	if err != nil {
		return err
	}

	switch dialect {
	case store.SQLite:
		err = restoreSQLite(ctx, cfg.Database.DSN, dump, opts.force, out)
	case store.Postgres:
		err = restorePostgres(ctx, cfg.Database.DSN, dump, m, opts, out)
	}
	if err != nil {
		return err
	}
	return checkRestored(ctx, cfg, box, m, latest, out)
}

// describeTables says what a database that is not empty holds: the
// accounts and keys first, then every other table with rows.
func describeTables(tables []sqlstore.Table) string {
	first := []string{"users", "sessions", "signing_keys"}
	tables = slices.Clone(tables)
	slices.SortStableFunc(tables, func(a, b sqlstore.Table) int {
		ia, ib := slices.Index(first, a.Name), slices.Index(first, b.Name)
		if ia < 0 {
			ia = len(first)
		}
		if ib < 0 {
			ib = len(first)
		}
		return ia - ib
	})
	var full []string
	for _, t := range tables {
		if t.Rows == 1 {
			full = append(full, t.Name+": 1 row")
		} else if t.Rows > 0 {
			full = append(full, fmt.Sprintf("%s: %d rows", t.Name, t.Rows))
		}
	}
	s := fmt.Sprintf("%d tables", len(tables))
	if len(full) == 0 {
		return s + ", all empty"
	}
	return s + " (" + rowList(full) + ")"
}

func restoreSQLite(ctx context.Context, target, dump string, force bool, out io.Writer) error {
	if fi, err := os.Stat(target); err == nil && fi.Size() > 0 {
		db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.SQLite, DSN: target})
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		tables, err := db.Tables(ctx)
		_ = db.Close()
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if len(tables) > 0 && !force {
			return fmt.Errorf("restore refused, nothing was written: the database %s is not empty: it holds %s; "+
				"restore writes only into an empty database, or with --force replaces this one", target, describeTables(tables))
		}
		if len(tables) > 0 {
			fmt.Fprintf(out, "--force: replacing %s, which holds %s\n", target, describeTables(tables))
		}
	}
	if err := sqlstore.InstallSQLite(ctx, dump, target); err != nil {
		return err
	}
	fmt.Fprintf(out, "restored into %s\n", target)
	return nil
}

func restorePostgres(ctx context.Context, dsn, dump string, m backupManifest, opts restoreOptions, out io.Writer) error {
	tool, err := sqlstore.FindPGTool("pg_restore", opts.pgBin)
	if err != nil {
		return fmt.Errorf("restore: %w; %s", err, pgToolHelp)
	}
	// One connection, so every other session is someone else's.
	db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.Postgres, DSN: dsn, MaxConns: 1})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer db.Close()
	schema, err := db.CurrentSchema(ctx)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if schema != m.PostgresSchema {
		return fmt.Errorf("restore refused: the backup holds schema %q but GATEHOUSE_DATABASE_URL's search_path resolves to %q", m.PostgresSchema, schema)
	}
	tables, err := db.Tables(ctx)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	others, err := db.OtherSessions(ctx)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if !opts.force {
		if len(tables) > 0 {
			return fmt.Errorf("restore refused, nothing was written: the database is not empty: its schema %q holds %s; "+
				"restore writes only into an empty database, or with --force drops everything in schema %q first", schema, describeTables(tables), schema)
		}
		if others > 0 {
			return fmt.Errorf("restore refused, nothing was written: %d other sessions are connected to the database; "+
				"stop every Gatehouse instance using it first (--force restores anyway)", others)
		}
	}
	if len(tables) > 0 {
		fmt.Fprintf(out, "--force: dropping everything in schema %q, which holds %s\n", schema, describeTables(tables))
		if err := db.ClearSchema(ctx); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if err := sqlstore.RestorePostgres(ctx, tool, dsn, dump); err != nil {
		return fmt.Errorf("restore: nothing of the backup was restored (pg_restore runs in one transaction): %w", err)
	}
	fmt.Fprintf(out, "restored into schema %q\n", schema)
	return nil
}

// checkRestored opens every sealed value of the restored database and
// says what to do next.
func checkRestored(ctx context.Context, cfg *config.Config, box *secret.Box, m backupManifest, latest int64, out io.Writer) error {
	db, err := sqlstore.Open(ctx, sqlstore.Config{Dialect: store.Dialect(cfg.Database.Dialect), DSN: cfg.Database.DSN, MaxConns: 1})
	if err != nil {
		return fmt.Errorf("restore: check: %w", err)
	}
	defer db.Close()
	check, err := checkSealed(ctx, db, box)
	if err != nil {
		return fmt.Errorf("restore: check: %w", err)
	}
	if len(check.Failed) > 0 {
		return fmt.Errorf("restored, but %d of %d sealed values open under no configured master key (%s): was the backup taken during a "+
			"master key rotation? Give the other key in GATEHOUSE_SECRET_KEY_OLD and run `gatehouse keys rotate-master`",
			len(check.Failed), check.Values, rowList(check.Failed))
	}
	fmt.Fprintf(out, "checked %d sealed values: all open under the configured master key\n", check.Values)
	if check.Stale > 0 {
		fmt.Fprintf(out, "%d of them are sealed under an older master key or format: `gatehouse keys rotate-master` re-seals them\n", check.Stale)
	}
	next := "next: start Gatehouse on it"
	if m.SchemaVersion < latest {
		next += fmt.Sprintf("; it applies migrations %d to %d at start (or run `gatehouse migrate up`)", m.SchemaVersion+1, latest)
	}
	_, err = fmt.Fprintln(out, next)
	return err
}
