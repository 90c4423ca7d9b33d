package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"

	"github.com/gatehouse-auth/gatehouse"
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

// classify marks a failure of the database itself, rather than of the
// statement, as gatehouse.ErrUnavailable, so that the request it failed is
// answered 503 with Retry-After instead of 500. Everything else (and nil)
// passes unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, gatehouse.ErrUnavailable) || !unavailable(err) {
		return err
	}
	return gatehouse.Unavailable(err)
}

// unavailable reports whether err says the database could not serve the
// statement at all: it could not be reached or the connection broke, a
// connect, pool wait or statement ran out of time, the server is shutting
// down or out of resources, or a transaction kept colliding (deadlock,
// serialization, SQLite busy) after InTx's retries. A cancelled context is
// not one of them: that is the caller going away.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || rolledBack(err) || connectionLost(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgUnavailable(pgErr.Code)
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff {
		case sqliteBusy, sqliteLocked, sqliteIOErr, sqliteFull:
			return true
		}
	}
	return false
}

// The primary SQLite result codes (the low byte of extended ones) that mean
// the database, not the statement, failed.
const (
	sqliteLocked = 6
	sqliteIOErr  = 10
	sqliteFull   = 13
)

// pgUnavailable: the PostgreSQL error classes and codes that mean the
// server could not serve the statement: connection exceptions (08),
// insufficient resources (53: too many connections, disk full, out of
// memory), operator intervention (57P01-57P05: shutdown, cannot connect now,
// idle session timeout) and statement or lock timeouts (57014, 55P03),
// the idle-in-transaction timeout (25P03) and system errors (58).
func pgUnavailable(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "58"),
		strings.HasPrefix(code, "57P"):
		return true
	}
	switch code {
	case "57014", "55P03", "25P03", pgSerializationFailure, pgDeadlockDetected:
		return true
	}
	return false
}
