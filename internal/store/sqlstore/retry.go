package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Transient failures are retried this many times in all, waiting about
// txRetryBase, then twice that, each with up to half taken off at random
// so that transactions that collided do not collide again in step.
const (
	maxTxAttempts = 3
	txRetryBase   = 20 * time.Millisecond
)

// PostgreSQL codes of failures that roll the transaction back and succeed
// when it is simply run again.
const (
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

// txPhase is how far a transaction attempt got when it failed.
type txPhase int

const (
	phaseBegin  txPhase = iota // BEGIN failed: nothing ran
	phaseFn                    // fn or its statements failed: rolled back
	phaseCommit                // COMMIT failed
)

// retryable reports whether a failed attempt may run again. Before COMMIT
// any transient failure qualifies: nothing of the attempt survived. At
// COMMIT only an answer from the database that it rolled back
// (serialization failure, deadlock, SQLite busy) does; a connection lost
// while committing leaves unknown whether the commit happened, and running
// fn again could apply it twice.
func retryable(err error, phase txPhase) bool {
	if rolledBack(err) {
		return true
	}
	return phase != phaseCommit && connectionLost(err)
}

// rolledBack: the database refused the transaction and undid it.
func rolledBack(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgSerializationFailure || pgErr.Code == pgDeadlockDetected
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code()&0xff == sqliteBusy // SQLITE_BUSY and its extended codes
	}
	return false
}

const sqliteBusy = 5

// connectionLost: the connection broke (or was found broken) under the
// transaction.
func connectionLost(err error) bool {
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		pgconn.SafeToRetry(err) ||
		(errors.As(err, &netErr) && !netErr.Timeout())
}

// txRetryDelay is the wait before attempt n+1 (n ≥ 1): txRetryBase·2^(n-1)
// with up to half of it taken off at random.
func txRetryDelay(n int) time.Duration {
	d := txRetryBase << (n - 1)
	return d - rand.N(d/2+1)
}

// retryTx runs once until it succeeds, fails for good, or has been tried
// maxTxAttempts times, waiting txRetryDelay between attempts. It returns
// the last attempt's error as is.
func (d *DB) retryTx(ctx context.Context, once func() (txPhase, error)) error {
	for n := 1; ; n++ {
		phase, err := once()
		if err == nil || n == maxTxAttempts || !retryable(err, phase) {
			return err
		}
		wait := txRetryDelay(n)
		d.logger.DebugContext(ctx, "transient database error; running the transaction again",
			"attempt", n, "wait", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
