package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

func TestRetryable(t *testing.T) {
	serialization := fmt.Errorf("update: %w", &pgconn.PgError{Code: "40001"})
	deadlock := &pgconn.PgError{Code: "40P01"}
	unique := &pgconn.PgError{Code: "23505"}
	reset := fmt.Errorf("read: %w", syscall.ECONNRESET)
	for _, c := range []struct {
		err   error
		phase txPhase
		want  bool
	}{
		{serialization, phaseFn, true},
		{serialization, phaseCommit, true}, // the database said it rolled back
		{deadlock, phaseFn, true},
		{unique, phaseFn, false},
		{driver.ErrBadConn, phaseBegin, true},
		{driver.ErrBadConn, phaseFn, true},
		{driver.ErrBadConn, phaseCommit, false}, // the commit may have happened
		{reset, phaseFn, true},
		{reset, phaseCommit, false},
		{sql.ErrConnDone, phaseFn, true},
		{context.DeadlineExceeded, phaseFn, false},
		{context.Canceled, phaseFn, false},
		{store.ErrNotFound, phaseFn, false},
		{gatehouse.Errorf(gatehouse.CodeConflict, "taken"), phaseFn, false},
	} {
		require.Equal(t, c.want, retryable(c.err, c.phase), "%v in phase %d", c.err, c.phase)
	}
	for n := 1; n < maxTxAttempts; n++ {
		d := txRetryDelay(n)
		require.True(t, d >= txRetryBase<<(n-1)/2 && d <= txRetryBase<<(n-1), d)
	}
}

// testEngine is an open database with a scratch table probe(id, v).
type testEngine struct {
	name  string
	db    *DB
	table string
}

// openEngines opens SQLite, and PostgreSQL when GATEHOUSE_TEST_POSTGRES_URL
// is set (a scratch table of a random name there, dropped afterwards).
// logger receives the retry messages.
func openEngines(t *testing.T, logger *slog.Logger) []testEngine {
	ctx := context.Background()
	lite, err := Open(ctx, Config{Dialect: store.SQLite, DSN: filepath.Join(t.TempDir(), "retry.db"), Logger: logger})
	require.NoError(t, err)
	engines := []testEngine{{name: "sqlite", db: lite}}
	if url := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL"); url != "" {
		pg, err := Open(ctx, Config{Dialect: store.Postgres, DSN: url, Logger: logger})
		require.NoError(t, err)
		engines = append(engines, testEngine{name: "postgres", db: pg})
	}
	for i := range engines {
		e := &engines[i]
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		e.table = "retry_probe_" + hex.EncodeToString(b)
		_, err := e.db.DB().ExecContext(ctx, `CREATE TABLE `+e.table+` (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)`)
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = e.db.DB().ExecContext(context.Background(), `DROP TABLE `+e.table)
			_ = e.db.Close()
		})
	}
	return engines
}

func (e testEngine) exec(ctx context.Context, tx store.Tx, query string, args ...any) error {
	_, err := tx.SQLTx().ExecContext(ctx, rebind(e.db.dialect, strings.ReplaceAll(query, "probe", e.table)), args...)
	return err
}

// insertEachRun runs a transaction that inserts row (run, run), calls
// first on the first run only (its error ends that run) and then adds 10
// to its row's v. It returns how many runs there were.
func (e testEngine) insertEachRun(ctx context.Context, first func(context.Context, store.Tx) error) (int, error) {
	runs := 0
	err := e.db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		runs++
		if err := e.exec(ctx, tx, `INSERT INTO probe (id, v) VALUES (?, ?)`, runs, runs); err != nil {
			return err
		}
		if runs == 1 {
			if err := first(ctx, tx); err != nil {
				return err
			}
		}
		return e.exec(ctx, tx, `UPDATE probe SET v = v + 10 WHERE id = ?`, runs)
	})
	return runs, err
}

// requireOnlySecondRun checks the table holds the second run's row alone:
// the first run was rolled back.
func (e testEngine) requireOnlySecondRun(t *testing.T) {
	var n, id, v int
	require.NoError(t, e.db.DB().QueryRow(`SELECT count(*), min(id), min(v) FROM `+e.table).Scan(&n, &id, &v))
	require.Equal(t, []int{1, 2, 12}, []int{n, id, v})
}

// A transient failure inside fn runs the whole transaction again, its
// first run rolled back; a lasting one gives up after three runs; any other
// error is returned at once, as it was.
func TestInTxRunsAgainAfterTransientErrors(t *testing.T) {
	for _, e := range openEngines(t, nil) {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			runs, err := e.insertEachRun(ctx, func(context.Context, store.Tx) error {
				return fmt.Errorf("update: %w", &pgconn.PgError{Code: "40001"})
			})
			require.NoError(t, err)
			require.Equal(t, 2, runs)
			e.requireOnlySecondRun(t)

			runs = 0
			err = e.db.InTx(ctx, func(context.Context, store.Tx) error {
				runs++
				return &pgconn.PgError{Code: "40P01"}
			})
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "40P01", pgErr.Code)
			require.Equal(t, maxTxAttempts, runs)

			runs = 0
			mine := errors.New("not transient")
			err = e.db.InTx(ctx, func(context.Context, store.Tx) error { runs++; return mine })
			require.Same(t, mine, err)
			require.Equal(t, 1, runs)

			// A cancelled context stops the retries with the last error.
			cctx, cancel := context.WithCancel(ctx)
			runs = 0
			err = e.db.InTx(cctx, func(context.Context, store.Tx) error {
				runs++
				cancel()
				return driver.ErrBadConn
			})
			require.ErrorIs(t, err, driver.ErrBadConn)
			require.Equal(t, 1, runs)
		})
	}
}

// Two SERIALIZABLE transactions that read and then update the same row:
// the second to commit gets a real serialization failure (40001) and InTx
// runs it again, now after the first, so no increment is lost.
func TestInTxRetriesRealSerializationFailure(t *testing.T) {
	e := postgresOnly(t, nil)
	ctx := context.Background()
	_, err := e.db.DB().ExecContext(ctx, `INSERT INTO `+e.table+` (id, v) VALUES (1, 0)`)
	require.NoError(t, err)

	increment := func(ctx context.Context, tx store.Tx, afterRead func()) error {
		if err := e.exec(ctx, tx, `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`); err != nil {
			return err
		}
		var v int
		q := rebind(store.Postgres, `SELECT v FROM `+e.table+` WHERE id = 1`)
		if err := tx.SQLTx().QueryRowContext(ctx, q).Scan(&v); err != nil {
			return err
		}
		afterRead()
		return e.exec(ctx, tx, `UPDATE probe SET v = ? WHERE id = 1`, v+1)
	}
	aRead, bRead, aDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	var bRuns atomic.Int32
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() {
		defer close(aDone)
		errA = e.db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			return increment(ctx, tx, func() { close(aRead); <-bRead })
		})
	})
	wg.Go(func() {
		<-aRead
		errB = e.db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			bRuns.Add(1)
			return increment(ctx, tx, func() { once.Do(func() { close(bRead) }); <-aDone })
		})
	})
	wg.Wait()
	require.NoError(t, errA)
	require.NoError(t, errB)
	require.EqualValues(t, 2, bRuns.Load(), "B failed to serialize once and ran again")
	var v int
	require.NoError(t, e.db.DB().QueryRow(`SELECT v FROM `+e.table+` WHERE id = 1`).Scan(&v))
	require.Equal(t, 2, v)
}

// The server ending the transaction's connection before COMMIT (here
// pg_terminate_backend, as a failover or a proxy restart would) runs the
// transaction again on a fresh connection.
func TestInTxRetriesDroppedConnection(t *testing.T) {
	e := postgresOnly(t, nil)
	ctx := context.Background()
	runs, err := e.insertEachRun(ctx, func(ctx context.Context, tx store.Tx) error {
		var pid int
		if err := tx.SQLTx().QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		// Another connection of the pool ends this one.
		_, err := e.db.DB().ExecContext(context.Background(), `SELECT pg_terminate_backend($1)`, pid)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, 2, runs)
	e.requireOnlySecondRun(t)
}

// retryLog counts InTx's retry messages and runs a hook on each.
type retryLog struct {
	slog.Handler
	n      atomic.Int32
	onMiss func()
}

func (h *retryLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "running the transaction again") {
		h.n.Add(1)
		if h.onMiss != nil {
			h.onMiss()
		}
	}
	return nil
}

func (h *retryLog) Enabled(context.Context, slog.Level) bool { return true }

// SQLITE_BUSY (another process holds the write lock past the busy timeout)
// is retried: here the lock is released when the first retry is logged,
// so the second attempt succeeds.
func TestInTxRetriesSQLiteBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	lock, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	require.NoError(t, err)
	defer lock.Close()
	_, err = lock.Exec(`CREATE TABLE probe (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)`)
	require.NoError(t, err)

	// The store under test gives up waiting for the lock at once.
	h := &retryLog{Handler: slog.DiscardHandler}
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)&_txlock=immediate")
	require.NoError(t, err)
	raw.SetMaxOpenConns(1)
	d := &DB{db: raw, dialect: store.SQLite, logger: slog.New(h)}
	d.queries = queries{q: raw, dialect: store.SQLite, guard: d.guardNotInTx}
	defer d.Close()

	holder, err := lock.Begin()
	require.NoError(t, err)
	insert := func(ctx context.Context, tx store.Tx) error {
		_, err := tx.SQLTx().ExecContext(ctx, `INSERT INTO probe (id, v) VALUES (1, 1)`)
		return err
	}
	err = d.InTx(context.Background(), insert)
	require.Error(t, err, "held all along")
	require.True(t, rolledBack(err), "SQLITE_BUSY: %v", err)
	require.EqualValues(t, maxTxAttempts-1, h.n.Load())

	h.n.Store(0)
	h.onMiss = func() { _ = holder.Rollback() }
	require.NoError(t, d.InTx(context.Background(), insert))
	require.EqualValues(t, 1, h.n.Load())
}

func postgresOnly(t *testing.T, logger *slog.Logger) testEngine {
	for _, e := range openEngines(t, logger) {
		if e.name == "postgres" {
			return e
		}
	}
	t.Skip("GATEHOUSE_TEST_POSTGRES_URL not set")
	return testEngine{}
}
