package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// PostgreSQL backups are made and restored by PostgreSQL's own pg_dump and
// pg_restore: a dump from a repeatable-read snapshot is consistent while
// servers write, and the tools know every object type of every version.

// ErrPGToolMissing means pg_dump or pg_restore could not be found.
var ErrPGToolMissing = errors.New("PostgreSQL client program not found")

// pgBinGlob is where Debian and Ubuntu install each PostgreSQL version's
// programs; only some of them are linked onto PATH.
const pgBinGlob = "/usr/lib/postgresql/*/bin"

// FindPGTool finds a PostgreSQL client program (pg_dump, pg_restore): in
// binDir when given, else on PATH, else the newest version under
// /usr/lib/postgresql/*/bin.
func FindPGTool(name, binDir string) (string, error) {
	if binDir != "" {
		p := filepath.Join(binDir, name)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%w: no %s in %s", ErrPGToolMissing, name, binDir)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob(pgBinGlob)
	// Newest version first: a dump needs pg_dump of the server's major
	// version or newer.
	slices.SortFunc(dirs, func(a, b string) int { return pgDirVersion(b) - pgDirVersion(a) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s is neither on PATH nor in %s", ErrPGToolMissing, name, pgBinGlob)
}

// pgDirVersion is the major version in /usr/lib/postgresql/<v>/bin.
func pgDirVersion(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// pgxOnlyParams are connection parameters pgx understands and libpq does
// not: dropped for the tools.
var pgxOnlyParams = []string{"pool_max_conns", "pool_min_conns", "pool_min_idle_conns", "pool_max_conn_lifetime",
	"pool_max_conn_lifetime_jitter", "pool_max_conn_idle_time", "pool_health_check_period",
	"statement_cache_capacity", "description_cache_capacity", "default_query_exec_mode", "min_read_buffer_size"}

// libpqParams are the URL parameters libpq accepts; pgx sends any other as
// a run-time parameter, which libpq takes only inside options.
var libpqParams = []string{"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "channel_binding",
	"connect_timeout", "client_encoding", "options", "application_name", "fallback_application_name",
	"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
	"replication", "gssencmode", "sslmode", "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword",
	"sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
	"ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service", "target_session_attrs",
	"load_balance_hosts", "require_auth", "sslnegotiation"}

// pgToolConn turns the server's PostgreSQL URL into what libpq's tools
// take: the URL without its password, which goes into PGPASSWORD instead
// (a command line is readable by every local user), without pgx's own
// parameters, and with other run-time parameters moved into options.
func pgToolConn(dsn string) (string, []string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("the PostgreSQL URL cannot be parsed (it is not repeated here because it may hold a password)")
	}
	var env []string
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	var options []string
	for k, vs := range q {
		switch {
		case slices.Contains(pgxOnlyParams, k):
			q.Del(k)
		case !slices.Contains(libpqParams, k):
			q.Del(k)
			for _, v := range vs {
				options = append(options, "-c "+k+"="+escapeOption(v))
			}
		}
	}
	if len(options) > 0 {
		slices.Sort(options)
		if o := q.Get("options"); o != "" {
			options = append([]string{o}, options...)
		}
		q.Set("options", strings.Join(options, " "))
	}
	u.RawQuery = q.Encode()
	return u.String(), env, nil
}

// escapeOption escapes a value inside libpq's options (spaces and
// backslashes are backslash-escaped).
func escapeOption(v string) string {
	return strings.NewReplacer(`\`, `\\`, " ", `\ `).Replace(v)
}

// runPGTool runs a PostgreSQL client program and returns its output, or
// its own words when it fails.
func runPGTool(ctx context.Context, tool string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(tool), err, msg)
	}
	return stdout.Bytes(), nil
}

// CurrentSchema is the schema the connection's search_path resolves to,
// where Gatehouse's tables live (PostgreSQL only).
func (d *DB) CurrentSchema(ctx context.Context) (string, error) {
	if d.dialect != store.Postgres {
		return "", fmt.Errorf("current schema: %s has none", d.dialect)
	}
	var s *string
	if err := d.db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&s); err != nil {
		return "", fmt.Errorf("current schema: %w", classify(err))
	}
	if s == nil {
		return "", errors.New("current schema: the search_path names no existing schema")
	}
	return *s, nil
}

// DumpPostgres writes a custom-format dump of schema, without owners and
// privileges, to out with pg_dump, from one consistent snapshot.
func DumpPostgres(ctx context.Context, pgDump, dsn, schema, out string) error {
	conn, env, err := pgToolConn(dsn)
	if err != nil {
		return err
	}
	_, err = runPGTool(ctx, pgDump, env, "--format=custom", "--no-owner", "--no-privileges", "--no-password",
		"--schema="+quoteIdent(schema), "--file="+out, "--dbname="+conn)
	return err
}

// RestorePostgres loads a dump made by DumpPostgres into the database at
// dsn with pg_restore, in one transaction: it either restores everything
// or nothing. The schema itself is not created (it exists already: the
// connection's current schema); objects come owned by the connecting role.
func RestorePostgres(ctx context.Context, pgRestore, dsn, dump string) error {
	conn, env, err := pgToolConn(dsn)
	if err != nil {
		return err
	}
	list, err := runPGTool(ctx, pgRestore, nil, "--list", dump)
	if err != nil {
		return err
	}
	listFile := dump + ".list"
	if err := os.WriteFile(listFile, withoutSchemaEntries(list), 0o600); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(listFile)
	_, err = runPGTool(ctx, pgRestore, env, "--no-owner", "--no-privileges", "--no-password", "--single-transaction",
		"--exit-on-error", "--use-list="+listFile, "--dbname="+conn, dump)
	return err
}

// withoutSchemaEntries drops the CREATE SCHEMA entry (and its comment)
// from a pg_restore list: the schema exists in the target, and creating it
// again would fail the restore.
func withoutSchemaEntries(list []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(list) {
		// "<id>; <catalog oid> <oid> <type> <schema> <name> <owner>"
		f := strings.Fields(string(line))
		if len(f) >= 6 && !strings.HasPrefix(f[0], ";") &&
			((f[3] == "SCHEMA" && f[4] == "-") || (f[3] == "COMMENT" && f[4] == "-" && f[5] == "SCHEMA")) {
			continue
		}
		out.Write(line)
	}
	return out.Bytes()
}

// OtherSessions counts the sessions connected to this PostgreSQL database
// besides the one asking (open the DB with MaxConns 1 for an exact
// answer): a running server's among them.
func (d *DB) OtherSessions(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count sessions: %w", classify(err))
	}
	return n, nil
}

// ClearSchema drops every table, view, sequence, function and type in the
// connection's current schema, in one transaction (PostgreSQL only): what
// restore --force does before restoring into a database that is not
// empty. The schema itself and its privileges stay.
func (d *DB) ClearSchema(ctx context.Context) error {
	if d.dialect != store.Postgres {
		return fmt.Errorf("clear schema: %s has none", d.dialect)
	}
	// Each query yields "kind name" pairs; CASCADE takes dependents along,
	// and IF EXISTS covers those already gone with an earlier drop.
	queries := []string{
		`SELECT CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END, c.oid::regclass::text FROM pg_class c
			WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('v', 'm')`,
		`SELECT 'TABLE', c.oid::regclass::text FROM pg_class c
			WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'f')`,
		`SELECT 'SEQUENCE', c.oid::regclass::text FROM pg_class c
			WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'S'`,
		`SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, p.oid::regprocedure::text FROM pg_proc p
			WHERE p.pronamespace = current_schema()::regnamespace
			AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = p.oid AND e.deptype = 'e')`,
		`SELECT 'TYPE', t.oid::regtype::text FROM pg_type t
			WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm')
			AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = t.oid AND e.deptype = 'e')`,
	}
	return d.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, q := range queries {
			rows, err := tx.SQLTx().QueryContext(ctx, q)
			if err != nil {
				return fmt.Errorf("clear schema: %w", classify(err))
			}
			var drops []string
			for rows.Next() {
				var kind, name string
				if err := rows.Scan(&kind, &name); err != nil {
					rows.Close()
					return fmt.Errorf("clear schema: %w", err)
				}
				drops = append(drops, "DROP "+kind+" IF EXISTS "+name+" CASCADE")
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("clear schema: %w", err)
			}
			for _, stmt := range drops {
				if _, err := tx.SQLTx().ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("clear schema: %s: %w", stmt, classify(err))
				}
			}
		}
		return nil
	})
}
