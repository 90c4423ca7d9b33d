package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Which failures are the database's (503) and which the statement's.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57014"}, true},            // statement timeout
		{&pgconn.PgError{Code: "55P03"}, true},            // lock timeout
		{&pgconn.PgError{Code: "53300"}, true},            // too many connections
		{&pgconn.PgError{Code: "57P01"}, true},            // admin shutdown
		{&pgconn.PgError{Code: "08006"}, true},            // connection failure
		{&pgconn.PgError{Code: pgDeadlockDetected}, true}, // after InTx's retries
		{&pgconn.PgError{Code: "23505"}, false},           // unique violation
		{&pgconn.PgError{Code: "42601"}, false},           // a bug in the SQL
		{fmt.Errorf("begin: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("begin: %w", context.Canceled), false}, // the client went away
		{driver.ErrBadConn, true},
		{fmt.Errorf("read: %w", syscall.ECONNREFUSED), true},
		{&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, true},
		{store.ErrNotFound, false},
		{errors.New("decode roles: bad json"), false},
		{nil, false},
	} {
		got := classify(c.err)
		require.Equal(t, c.want, errors.Is(got, gatehouse.ErrUnavailable), "%v", c.err)
		if c.err != nil {
			require.ErrorIs(t, got, c.err, "the cause stays in the chain")
		}
	}
	// Classifying twice wraps once.
	once := classify(driver.ErrBadConn)
	require.Same(t, once, classify(once))
}

// On a real PostgreSQL server: an unreachable server, a statement timeout
// and a pool that cannot connect are ErrUnavailable; a constraint
// violation is not.
func TestUnavailableOnPostgres(t *testing.T) {
	url := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_URL is not set")
	}
	ctx := context.Background()

	// Nothing listens on this port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = Open(ctx, Config{Dialect: store.Postgres, DSN: "postgres://postgres@" + dead + "/test?sslmode=disable&connect_timeout=2"})
	require.ErrorIs(t, err, gatehouse.ErrUnavailable)

	db, err := Open(ctx, Config{Dialect: store.Postgres, DSN: url})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	err = db.InTx(ctx, func(ctx context.Context, stx store.Tx) error {
		if _, err := stx.(*tx).tx.ExecContext(ctx, "SET LOCAL statement_timeout = '20ms'"); err != nil {
			return err
		}
		_, err := stx.(*tx).exec(ctx, "SELECT pg_sleep(1)")
		return err
	})
	require.ErrorIs(t, err, gatehouse.ErrUnavailable, "a statement timeout")

	_, err = db.exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS u (k int primary key)")
	require.NoError(t, err)
	err = db.InTx(ctx, func(ctx context.Context, stx store.Tx) error {
		_, err := stx.(*tx).exec(ctx, "CREATE TEMP TABLE u2 (k int primary key); INSERT INTO u2 VALUES (1), (1)")
		return translate("insert", err)
	})
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, gatehouse.ErrUnavailable)

	// A context that ran out of time while waiting.
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	require.ErrorIs(t, db.InTx(short, func(context.Context, store.Tx) error { return nil }), gatehouse.ErrUnavailable)
}
