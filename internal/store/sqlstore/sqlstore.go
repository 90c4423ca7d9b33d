// Package sqlstore is the SQL implementation of store.Store: one code path
// on database/sql serving PostgreSQL (pgx's stdlib driver) and SQLite
// (modernc.org/sqlite, no cgo), with embedded per-dialect migrations.
//
// Queries are written once with "?" placeholders and rebound for
// PostgreSQL. Timestamps are TIMESTAMPTZ on PostgreSQL and fixed-width UTC
// text on SQLite (see sqliteTimeLayout); both engines keep microseconds and
// every time read back is UTC. JSON is JSONB on PostgreSQL and TEXT on
// SQLite. Driver errors are translated to store.ErrNotFound and
// store.ErrConflict here, at the boundary.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Config says which database to open. It is built by the config package
// from the environment; this package reads no environment itself.
type Config struct {
	// Dialect selects the engine.
	Dialect store.Dialect
	// DSN is a file path for SQLite (its parent directory is created), or
	// a PostgreSQL URL / keyword string for PostgreSQL.
	DSN string
	// MaxConns caps the PostgreSQL pool; 0 means 20. SQLite always uses a
	// single connection (see Open), so it ignores MaxConns.
	MaxConns int
	// StatementTimeout is PostgreSQL's statement_timeout for the pool's
	// sessions (0: the server's setting). A statement that runs longer is
	// cancelled by the server and answered ErrUnavailable, so a runaway
	// query or a long lock wait cannot hold a connection for ever. A DSN
	// that sets statement_timeout itself wins.
	StatementTimeout time.Duration
	// AcquireTimeout bounds how long a statement waits for a free
	// PostgreSQL connection when the pool is exhausted; 0 means 10 s. The
	// wait then fails with gatehouse.ErrUnavailable (503), rather than
	// queueing without bound.
	AcquireTimeout time.Duration
	// Logger receives migration progress (goose and River). Nil discards.
	Logger *slog.Logger
	// OnUsersChanged hears, after the change committed, of every write
	// that changes what GetUser returns: the users' ids, or all when a
	// change may touch any user (a role deleted). In-process copies of
	// users are invalidated through it. Nil ignores changes.
	OnUsersChanged func(ctx context.Context, userIDs []string, all bool)
}

// Pool defaults for PostgreSQL. Idle connections are kept (so bursts do not
// pay for new TLS handshakes) but trimmed after a quiet spell, and every
// connection is recycled periodically so a failover or a pgbouncer restart
// is picked up without a restart of ours.
const (
	defaultMaxConns        = 20
	pgConnMaxIdleTime      = 5 * time.Minute
	pgConnMaxLifetime      = 30 * time.Minute
	defaultConnectTimeout  = 5 * time.Second
	defaultAcquireTimeout  = 10 * time.Second
	sqliteBusyTimeoutMilli = 10000
	// pgIdleInTxTimeout ends a session that sits idle inside an open
	// transaction (a leaked one would hold its row locks for ever).
	pgIdleInTxTimeout = time.Minute
	// linkWait bounds linking audit rows after a commit.
	linkWait = 5 * time.Second
)

// sqlitePool is the database/sql pool of a SQLite database: one
// connection. SQLite allows one writer at a time and River's SQLite driver
// documents SetMaxOpenConns(1) as the way to avoid SQLITE_BUSY between its
// concurrent internal operations. It also means nothing may use the pool
// while a transaction is open on it, which InTx enforces. The connection is
// never recycled, which also keeps a ":memory:" database alive.
func sqlitePool(db *sql.DB) {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
}

// DB is the SQL store: a pool plus the dialect it speaks. It is safe for
// concurrent use.
type DB struct {
	queries
	db      *sql.DB
	pool    *pgxpool.Pool // PostgreSQL only: the pool under db
	dialect store.Dialect
	logger  *slog.Logger
	// statements counts statements sent to the database (transactions'
	// BEGIN and COMMIT included), for tests about round trips.
	statements atomic.Uint64
	onUsers    func(ctx context.Context, userIDs []string, all bool)
	// linking coalesces the links after commit (see linkAfterCommit).
	linking struct {
		sync.Mutex
		running bool
		waiting []chan struct{}
	}
}

var _ store.Store = (*DB)(nil)

// Statements is the number of statements this store has sent to the
// database (BEGIN and COMMIT count; River's own queries do not).
func (d *DB) Statements() uint64 { return d.statements.Load() }

// Open opens and pings the database. It does not migrate; call MigrateUp.
// An unreachable PostgreSQL fails within about five seconds (unless the
// DSN sets connect_timeout), with a message naming the host and never the
// password.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.DSN == "" {
		return nil, fmt.Errorf("sqlstore: open %s: empty DSN", cfg.Dialect)
	}
	if cfg.MaxConns < 0 {
		return nil, fmt.Errorf("sqlstore: open %s: MaxConns must not be negative, got %d", cfg.Dialect, cfg.MaxConns)
	}
	var (
		sqlDB *sql.DB
		pool  *pgxpool.Pool
		err   error
	)
	switch cfg.Dialect {
	case store.SQLite:
		sqlDB, err = openSQLite(ctx, cfg)
	case store.Postgres:
		sqlDB, pool, err = openPostgres(ctx, cfg)
	default:
		return nil, fmt.Errorf("sqlstore: unknown dialect %q (want %q or %q)", cfg.Dialect, store.SQLite, store.Postgres)
	}
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &DB{db: sqlDB, pool: pool, dialect: cfg.Dialect, logger: logger}
	d.onUsers = cfg.OnUsersChanged
	d.queries = queries{q: sqlDB, dialect: cfg.Dialect, guard: d.guardNotInTx, link: d.linkAfterCommit,
		count: &d.statements, usersChanged: d.usersChanged}
	return d, nil
}

// sqliteDSN builds the modernc DSN for a plain file path. Pragmas are DSN
// parameters so that every (re)opened connection gets them, not just the
// first: WAL for crash safety and readers beside the writer, enforced
// foreign keys, a busy timeout for other processes (the CLI) touching the
// file, NORMAL sync (safe with WAL), and BEGIN IMMEDIATE so a write
// transaction takes the lock up front instead of failing at its first write.
func sqliteDSN(path string) string {
	return path + "?_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=busy_timeout(" + strconv.Itoa(sqliteBusyTimeoutMilli) + ")" +
		"&_pragma=synchronous(NORMAL)" +
		"&_txlock=immediate"
}

func openSQLite(ctx context.Context, cfg Config) (*sql.DB, error) {
	path := cfg.DSN
	if strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlstore: SQLite DSN must be a plain file path without '?' or a file: prefix, got %q", path)
	}
	if path != ":memory:" {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("sqlstore: create directory for SQLite database %q: %w", path, err)
			}
		}
	}
	connector, err := newSQLiteConnector(sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open SQLite database %q: %w", path, err)
	}
	db := sql.OpenDB(connector)
	sqlitePool(db)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlstore: open SQLite database %q: %w", path, err)
	}
	return db, nil
}

// openPostgres opens a pgx pool and database/sql on top of it. The pool
// is the one owner of PostgreSQL connections: database/sql keeps none idle
// and borrows one per statement or transaction, and River's worker (over
// riverpgxv5, with LISTEN/NOTIFY) borrows from the same pool. pgxpool
// builds each new connection apart from the request that asked for it, so
// a connect that fails or times out fails only that request; database/sql
// alone would hand a failed background connect to whichever request waited
// next.
func openPostgres(ctx context.Context, cfg Config) (*sql.DB, *pgxpool.Pool, error) {
	poolCfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's ParseConfigError redacts the password, but only best effort
		// for malformed strings, so say nothing of the DSN at all.
		return nil, nil, errors.New("sqlstore: parse PostgreSQL DSN: invalid connection string (check its syntax; it is not repeated here because it may hold a password)")
	}
	pgCfg := poolCfg.ConnConfig
	pgCfg.Tracer = pgTracer{}
	if pgCfg.ConnectTimeout == 0 {
		pgCfg.ConnectTimeout = defaultConnectTimeout
	}
	params := pgCfg.RuntimeParams
	if _, set := params["statement_timeout"]; !set && cfg.StatementTimeout > 0 {
		params["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	if _, set := params["idle_in_transaction_session_timeout"]; !set {
		params["idle_in_transaction_session_timeout"] = strconv.FormatInt(pgIdleInTxTimeout.Milliseconds(), 10)
	}
	poolCfg.MaxConns = int32(cmp.Or(cfg.MaxConns, defaultMaxConns))
	poolCfg.MinConns = 0
	poolCfg.MaxConnIdleTime = pgConnMaxIdleTime
	poolCfg.MaxConnLifetime = pgConnMaxLifetime
	poolCfg.MaxConnLifetimeJitter = pgConnMaxLifetime / 10
	where := fmt.Sprintf("%s (database %q, user %q)", net.JoinHostPort(pgCfg.Host, strconv.Itoa(int(pgCfg.Port))), pgCfg.Database, pgCfg.User)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlstore: open PostgreSQL pool at %s: %w", where, redact(err, pgCfg.Password))
	}
	db := sql.OpenDB(acquireTimeout{
		Connector: stdlib.GetPoolConnector(pool),
		timeout:   cmp.Or(cfg.AcquireTimeout, defaultAcquireTimeout),
	})
	// Connections live in the pool, not here (as stdlib.OpenDBFromPool
	// does): an idle one kept by database/sql would be lost to River.
	db.SetMaxIdleConns(0)

	// The connect timeout bounds each attempt; the deadline bounds the whole
	// ping (fallback hosts included) so Open never hangs on a dead network.
	pingCtx, cancel := context.WithTimeout(ctx, pgCfg.ConnectTimeout+time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		pool.Close()
		return nil, nil, fmt.Errorf("sqlstore: connect to PostgreSQL at %s: %w", where, redact(classify(err), pgCfg.Password))
	}
	return db, pool, nil
}

// acquireTimeout bounds the wait for a pool connection: a request that
// cannot get one within timeout fails with ErrUnavailable (503), and only
// that request.
type acquireTimeout struct {
	driver.Connector
	timeout time.Duration
}

func (c acquireTimeout) Connect(ctx context.Context) (driver.Conn, error) {
	wait, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.Connector.Connect(wait)
	if err != nil && ctx.Err() == nil && wait.Err() != nil {
		return nil, fmt.Errorf("wait %s for a database connection: %w", c.timeout, gatehouse.Unavailable(err))
	}
	return conn, err
}

// redactedError hides a secret that a driver may have echoed into an error
// message while keeping the chain intact for errors.Is / errors.As.
type redactedError struct {
	err    error
	secret string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, "xxxxx")
}

func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	return &redactedError{err: err, secret: secret}
}

// txKey marks a context as belonging to a transaction of the DB it holds.
type txKey struct{}

// errPoolInTx is returned when code inside InTx calls the DB (rather than
// the Tx) with the transaction's context. On SQLite's single connection
// that would wait forever for the connection the transaction holds; on
// PostgreSQL it would silently run outside the transaction. Either way it
// is a bug, so both engines refuse it the same way.
var errPoolInTx = errors.New("sqlstore: the DB was used with a context from inside its own InTx; use the Tx passed to fn (or a context not derived from fn's)")

func (d *DB) guardNotInTx(ctx context.Context) error {
	if owner, _ := ctx.Value(txKey{}).(*DB); owner == d {
		return errPoolInTx
	}
	return nil
}

// InTx runs fn in a transaction: committed when fn returns nil, rolled back
// when it returns an error (returned unwrapped, so callers match their own
// errors), and rolled back when fn panics or calls runtime.Goexit (the panic
// then continues). Nested InTx, or any DB query, with fn's context fails
// with an error instead of deadlocking SQLite's single connection.
//
// Transient failures run the whole transaction again, up to three times in
// all with a short jittered wait between: PostgreSQL serialization
// failures (40001) and deadlocks (40P01), SQLite busy, and a connection
// lost before COMMIT (see retryable). A connection lost during COMMIT is
// never retried: the commit may have happened. So fn must be safe to run
// more than once: its effects should all go through tx (rows, jobs
// inserted with InsertTx), and what it sets outside (variables of the
// caller, cache entries) must be assigned afresh each run or be harmless
// to repeat.
func (d *DB) InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	if err := d.guardNotInTx(ctx); err != nil {
		return fmt.Errorf("begin transaction: nested InTx: %w", err)
	}
	return classify(d.retryTx(ctx, func() (txPhase, error) { return d.inTxOnce(ctx, fn) }))
}

// inTxOnce is one attempt of InTx, reporting how far it got.
func (d *DB) inTxOnce(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) (txPhase, error) {
	d.statements.Add(1)
	sqlTx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return phaseBegin, fmt.Errorf("begin transaction: %w", err)
	}
	finished := false
	defer func() {
		// Reached without finishing only on panic or Goexit: release the
		// connection (SQLite has just one) and let the panic go on.
		if !finished {
			_ = sqlTx.Rollback()
		}
	}()
	t := &tx{
		queries: queries{q: sqlTx, dialect: d.dialect, guard: noGuard, count: &d.statements},
		tx:      sqlTx,
	}
	t.usersChanged = t.noteUsers
	if fnErr := fn(context.WithValue(ctx, txKey{}, d), t); fnErr != nil {
		finished = true
		if rbErr := sqlTx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return phaseFn, errors.Join(fnErr, fmt.Errorf("rollback transaction: %w", rbErr))
		}
		return phaseFn, fnErr
	}
	finished = true
	d.statements.Add(1)
	if err := sqlTx.Commit(); err != nil {
		return phaseCommit, translate("commit transaction", err)
	}
	if len(t.changedUsers) > 0 || t.allUsers {
		d.usersChanged(ctx, t.allUsers, t.changedUsers...)
	}
	if t.auditPending {
		d.linkAfterCommit(ctx)
	}
	for _, fn := range t.afterCommit {
		fn()
	}
	return phaseCommit, nil
}

// usersChanged tells OnUsersChanged of committed user changes.
func (d *DB) usersChanged(ctx context.Context, all bool, ids ...string) {
	if d.onUsers != nil {
		d.onUsers(ctx, ids, all)
	}
}

// linkAfterCommit links the audit rows a transaction has just committed
// (PostgreSQL) before the caller goes on, so its rows are in the chain when
// its request answers. Callers of one instance share the work: a caller
// waits for a link run that starts after its commit, and the callers that
// commit while a run is under way share the next one, so N concurrent
// sign-ins cost about two linking transactions, not N (each is BEGIN, the
// chain's lock, two reads, one UPDATE, COMMIT).
func (d *DB) linkAfterCommit(ctx context.Context) {
	done := make(chan struct{})
	l := &d.linking
	l.Lock()
	l.waiting = append(l.waiting, done)
	start := !l.running
	l.running = true
	l.Unlock()
	if start {
		go d.runLinks(context.WithoutCancel(ctx))
	}
	<-done
}

// runLinks links pending rows until no caller waits, each run for the
// callers that were waiting when it began.
func (d *DB) runLinks(ctx context.Context) {
	l := &d.linking
	for {
		l.Lock()
		batch := l.waiting
		l.waiting = nil
		if len(batch) == 0 {
			l.running = false
			l.Unlock()
			return
		}
		l.Unlock()
		// Linking is short; waiting long for the chain's lock means
		// something holds it that should not, and the periodic job will
		// catch up.
		lctx, cancel := context.WithTimeout(ctx, linkWait)
		if _, err := d.LinkAuditLogs(lctx); err != nil {
			d.logger.WarnContext(ctx, "audit rows committed but not yet linked into the chain; the periodic link job will retry", "err", err)
		}
		cancel()
		for _, done := range batch {
			close(done)
		}
	}
}

func noGuard(context.Context) error { return nil }

// tx is one transaction; its queries run on the *sql.Tx.
type tx struct {
	queries
	tx          *sql.Tx
	afterCommit []func()
	// changedUsers (or allUsers) are told to OnUsersChanged after commit.
	changedUsers []string
	allUsers     bool
}

// noteUsers records user changes until the transaction commits.
func (t *tx) noteUsers(_ context.Context, all bool, ids ...string) {
	t.allUsers = t.allUsers || all
	t.changedUsers = append(t.changedUsers, ids...)
}

var _ store.Tx = (*tx)(nil)

// SQLTx exposes the transaction so River can insert jobs into it.
func (t *tx) SQLTx() *sql.Tx { return t.tx }

// Dialect names the engine.
func (t *tx) Dialect() store.Dialect { return t.dialect }

// AfterCommit runs fn after a successful commit (see store.Tx).
func (t *tx) AfterCommit(fn func()) { t.afterCommit = append(t.afterCommit, fn) }

// Ping checks the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", d.dialect, classify(err))
	}
	return nil
}

// Dialect names the engine.
func (d *DB) Dialect() store.Dialect { return d.dialect }

// DB exposes the pool for River and pool metrics. On SQLite it has a single
// connection: do not hold it (Conn, an open Tx) while also calling the
// store, or both wait on each other.
func (d *DB) DB() *sql.DB { return d.db }

// Pool is the pgx pool under a PostgreSQL store (for River's pgx driver);
// nil on SQLite.
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// Close releases the pool. Transactions must have finished.
func (d *DB) Close() error {
	err := d.db.Close()
	if d.pool != nil {
		d.pool.Close()
	}
	if err != nil {
		return fmt.Errorf("close %s database: %w", d.dialect, err)
	}
	return nil
}
