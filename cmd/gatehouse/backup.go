package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

// A backup file is a gzip-compressed tar holding two entries, in order:
// manifest.json (what it is: engine, schema version, when, by which
// release, and a check of the master key) and the database itself, as
// database.sqlite (a SQLite file made by VACUUM INTO) or database.pgdump
// (pg_dump's custom format). `tar tzf FILE` lists them; `tar xzf FILE
// manifest.json` shows the manifest.
const (
	backupFormat        = "gatehouse-backup"
	backupFormatVersion = 1
	manifestName        = "manifest.json"
	sqliteBackupName    = "database.sqlite"
	postgresBackupName  = "database.pgdump"
	// keyCheckAD is the associated data of the manifest's master key check.
	keyCheckAD = "gatehouse backup master key check"
	// maxManifestBytes bounds what restore reads as a manifest.
	maxManifestBytes = 64 << 10
)

// backupManifest describes a backup file.
type backupManifest struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	// Engine is "sqlite" or "postgres"; restore writes into the same.
	Engine           string    `json:"engine"`
	CreatedAt        time.Time `json:"created_at"`
	GatehouseVersion string    `json:"gatehouse_version"`
	// SchemaVersion and RiverSchemaVersion are the newest applied
	// migrations; a release older than SchemaVersion cannot restore it.
	SchemaVersion      int64 `json:"schema_version"`
	RiverSchemaVersion int64 `json:"river_schema_version"`
	// PostgresSchema is the schema the dump holds (PostgreSQL only).
	PostgresSchema string `json:"postgres_schema,omitempty"`
	// Database names the entry holding the database, with its size and
	// SHA-256.
	Database       string `json:"database"`
	DatabaseBytes  int64  `json:"database_bytes"`
	DatabaseSHA256 string `json:"database_sha256"`
	// MasterKeyID names the master key the sealed secrets in the backup
	// were sealed under; MasterKeyCheck is a value sealed under it, which
	// restore opens before writing anything. The key itself is not here.
	MasterKeyID    string `json:"master_key_id"`
	MasterKeyCheck []byte `json:"master_key_check"`
	Note           string `json:"note"`
}

const manifestNote = "The master key (GATEHOUSE_SECRET_KEY) is not in this backup; restoring needs the key it was made under. " +
	"Restore with: gatehouse restore --in FILE"

func newBackupCmd() *cobra.Command {
	var out, pgBin string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write a consistent online backup of the database, key ring included, to FILE",
		Long: "Writes a consistent backup of the database while servers run: SQLite with VACUUM INTO, PostgreSQL with\n" +
			"pg_dump (found on PATH, in /usr/lib/postgresql/*/bin or in --pg-bin). FILE is a gzip-compressed tar with\n" +
			"manifest.json (engine, schema version, time, release) and the database. The signing keys, TOTP and webhook\n" +
			"secrets are in it, sealed under the master key; the master key is not: keep GATEHOUSE_SECRET_KEY apart from\n" +
			"the backups, restore needs it. FILE is written under a temporary name and renamed when complete (mode 0600);\n" +
			"\"-\" writes to standard output.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			msgs := cmd.OutOrStdout()
			if out == "-" {
				msgs = cmd.ErrOrStderr()
			}
			m, err := writeBackup(cmd.Context(), cfg, out, pgBin, cmd.OutOrStdout(), msgs)
			if err != nil {
				return err
			}
			where := out
			if out == "-" {
				where = "standard output"
			}
			_, err = fmt.Fprintf(msgs, "backup of the %s database (schema version %d, %d bytes) written to %s\n"+
				"sealed under master key %s; the key is not in the backup: keep GATEHOUSE_SECRET_KEY apart from it\n",
				m.Engine, m.SchemaVersion, m.DatabaseBytes, where, m.MasterKeyID)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "backup file to write (\"-\": standard output)")
	cmd.Flags().StringVar(&pgBin, "pg-bin", "", "directory holding pg_dump (PostgreSQL); default: PATH, then /usr/lib/postgresql/*/bin")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// writeBackup dumps the configured database and writes the backup file.
// The archive goes to stdout when out is "-"; warnings go to msgs.
func writeBackup(ctx context.Context, cfg *config.Config, out, pgBin string, stdout, msgs io.Writer) (backupManifest, error) {
	var m backupManifest
	box, err := masterBox(cfg)
	if err != nil {
		return m, err
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return m, err
	}
	defer db.Close()
	// The manifest's key check is sealed under the configured key; if the
	// key ring does not open under it, restoring with that key would leave
	// the secrets unreadable. Say so, but still back up: after a master key
	// loss a backup of what is left is still worth having.
	st, err := db.Reseal(ctx, keys.SealedColumn(), box, sqlstore.ResealOptions{CheckOnly: true})
	if err != nil {
		return m, err
	}
	if len(st.Failed) > 0 {
		fmt.Fprintf(msgs, "warning: signing keys %s do not open under the configured master key %s: is GATEHOUSE_SECRET_KEY the one this database uses? "+
			"A restore with this key will not read them\n", rowList(st.Failed), box.CurrentID())
	}

	tmpParent := os.TempDir()
	if out != "-" {
		tmpParent = filepath.Dir(out)
	}
	tmp, err := os.MkdirTemp(tmpParent, ".gatehouse-backup-")
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)

	m = backupManifest{
		Format: backupFormat, FormatVersion: backupFormatVersion, Engine: string(db.Dialect()),
		CreatedAt: time.Now().UTC().Truncate(time.Second), GatehouseVersion: gatehouse.Version(),
		MasterKeyID: box.CurrentID().String(), MasterKeyCheck: box.Seal([]byte(backupFormat), []byte(keyCheckAD)), Note: manifestNote,
	}
	if m.SchemaVersion, m.RiverSchemaVersion, err = db.SchemaVersions(ctx); err != nil {
		return m, err
	}
	if m.SchemaVersion == 0 {
		return m, errors.New("backup: the database has no Gatehouse schema: nothing to back up (is GATEHOUSE_DATABASE_URL right?)")
	}
	var dump string
	switch db.Dialect() {
	case store.SQLite:
		m.Database = sqliteBackupName
		dump = filepath.Join(tmp, m.Database)
		err = db.BackupSQLite(ctx, dump)
	case store.Postgres:
		m.Database = postgresBackupName
		dump = filepath.Join(tmp, m.Database)
		err = dumpPostgres(ctx, db, cfg.Database.DSN, pgBin, dump, &m)
	}
	if err != nil {
		return m, err
	}
	if m.DatabaseBytes, m.DatabaseSHA256, err = hashFile(dump); err != nil {
		return m, err
	}
	if out == "-" {
		return m, writeArchive(stdout, m, dump)
	}
	return m, writeFileAtomically(out, func(w io.Writer) error { return writeArchive(w, m, dump) })
}

// pgToolHelp is said whenever pg_dump or pg_restore cannot be found.
const pgToolHelp = "install the PostgreSQL client programs of the server's major version or newer " +
	"(e.g. apt-get install postgresql-client) or name their directory with --pg-bin; " +
	"without them, see docs/operations.md, \"Backup and restore\", for the manual procedure with pg_dump and pg_restore"

func dumpPostgres(ctx context.Context, db *sqlstore.DB, dsn, pgBin, dump string, m *backupManifest) error {
	tool, err := sqlstore.FindPGTool("pg_dump", pgBin)
	if err != nil {
		return fmt.Errorf("backup: %w; %s", err, pgToolHelp)
	}
	if m.PostgresSchema, err = db.CurrentSchema(ctx); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := sqlstore.DumpPostgres(ctx, tool, dsn, m.PostgresSchema, dump); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// hashFile returns a file's size and SHA-256 in hex.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("backup: %w", err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeArchive writes the tar.gz: the manifest, then the database file.
func writeArchive(w io.Writer, m backupManifest, dump string) error {
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.Open(dump)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	entries := []struct {
		name string
		size int64
		body io.Reader
	}{{manifestName, int64(len(manifest)), bytes.NewReader(manifest)}, {m.Database, m.DatabaseBytes, f}}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o600, Size: e.size, ModTime: m.CreatedAt, Typeflag: tar.TypeReg}); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if _, err := io.Copy(tw, e.body); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// writeFileAtomically writes path through a temporary file (mode 0600) in
// the same directory, synced and renamed into place when write succeeds,
// so path never holds half a backup.
func writeFileAtomically(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(f.Name()) // gone after the rename; cleans up on failure
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("backup: write %s: %w", path, err)
	}
	return nil
}

// readBackup reads a backup file (or "-", standard input): it checks the
// manifest and hands it to prepare, which refuses it or names the
// directory to extract into; then it extracts the database entry there,
// checking its size and SHA-256. It returns the manifest and the
// extracted file's path.
func readBackup(in string, stdin io.Reader, prepare func(backupManifest) (dir string, err error)) (backupManifest, string, error) {
	var m backupManifest
	r := stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return m, "", fmt.Errorf("restore: %w", err)
		}
		defer f.Close()
		r = f
	}
	notBackup := fmt.Errorf("restore: %s is not a Gatehouse backup (a gzip-compressed tar starting with %s, as `gatehouse backup` writes)", in, manifestName)
	gz, err := gzip.NewReader(r)
	if err != nil {
		return m, "", notBackup
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil || h.Name != manifestName || h.Size > maxManifestBytes {
		return m, "", notBackup
	}
	dec := json.NewDecoder(io.LimitReader(tr, maxManifestBytes))
	if err := dec.Decode(&m); err != nil || m.Format != backupFormat {
		return m, "", notBackup
	}
	if m.FormatVersion != backupFormatVersion {
		return m, "", fmt.Errorf("restore: %s is a backup in format version %d, which this release (%s) does not read; restore it with the release that wrote it (%s) or a newer one",
			in, m.FormatVersion, gatehouse.Version(), m.GatehouseVersion)
	}
	if m.Database != sqliteBackupName && m.Database != postgresBackupName {
		return m, "", notBackup
	}
	dir, err := prepare(m)
	if err != nil {
		return m, "", err
	}
	h, err = tr.Next()
	if err != nil || h.Name != m.Database {
		return m, "", fmt.Errorf("restore: %s is incomplete: the database entry %s is missing", in, m.Database)
	}
	path := filepath.Join(dir, m.Database)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return m, "", fmt.Errorf("restore: %w", err)
	}
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, hash), tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return m, "", fmt.Errorf("restore: read %s: %w", in, err)
	}
	if n != m.DatabaseBytes || hex.EncodeToString(hash.Sum(nil)) != m.DatabaseSHA256 {
		return m, "", fmt.Errorf("restore: %s is damaged: the database entry does not match the size and SHA-256 in its manifest", in)
	}
	return m, path, nil
}

// openKeyCheck opens the manifest's master key check with box; it fails
// with a message naming both keys when the configured keys are not the
// one the backup was made under.
func (m backupManifest) openKeyCheck(box *secret.Box) error {
	if _, err := box.Open(m.MasterKeyCheck, []byte(keyCheckAD)); err == nil {
		return nil
	}
	configured := ""
	for i, id := range box.IDs() {
		if i > 0 {
			configured += " and "
		}
		configured += id.String()
	}
	return fmt.Errorf("restore refused, nothing was written: the backup was made under master key %s, but the configured key (%s) is another; "+
		"restore needs the master key the backup was made under, in GATEHOUSE_SECRET_KEY (GATEHOUSE_SECRET_KEY_OLD is tried too)",
		m.MasterKeyID, configured)
}
