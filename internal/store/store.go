// Package store declares the persistence contract of Gatehouse: the Store
// and Tx interfaces every SQL dialect implements, and the two errors callers
// may branch on. Capability packages declare the smaller interfaces they
// consume; this package states the whole surface and its error contract.
package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-auth/gatehouse"
)

// ErrNotFound means the row asked for does not exist (or is not visible to
// the caller). Implementations translate driver "no rows" into it.
var ErrNotFound = errors.New("store: not found")

// ErrConflict means a uniqueness or foreign-key constraint refused the
// write. Implementations translate driver error codes into it.
var ErrConflict = errors.New("store: conflict")

// Dialect names a SQL engine.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// SigningKeys persists the token signing key ring.
type SigningKeys interface {
	// CreateSigningKey inserts k. ErrConflict when k.ID exists.
	CreateSigningKey(ctx context.Context, k gatehouse.SigningKey) error
	// ListSigningKeys returns every key, newest first.
	ListSigningKeys(ctx context.Context) ([]gatehouse.SigningKey, error)
	// RetireSigningKey marks the key as no longer signing and sets when it
	// leaves the JWKS. ErrNotFound when there is no such active key.
	RetireSigningKey(ctx context.Context, id string, retiredAt, expiresAt time.Time) error
	// DeleteExpiredSigningKeys removes retired keys whose ExpiresAt is
	// before now and reports how many went.
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int64, error)
}

// Events persists the event log that the event worker fans out.
type Events interface {
	// CreateEvent inserts e. ErrConflict when e.ID exists.
	CreateEvent(ctx context.Context, e gatehouse.Event) error
	// GetEvent returns one event. ErrNotFound when it does not exist.
	GetEvent(ctx context.Context, id string) (gatehouse.Event, error)
}

// Queries is every data operation; both Store and Tx offer it.
type Queries interface {
	SigningKeys
	Events
}

// Tx is a database transaction. Its Queries run inside it; SQLTx exposes the
// underlying *sql.Tx so the job queue can insert jobs atomically with the
// change that causes them.
type Tx interface {
	Queries
	SQLTx() *sql.Tx
}

// Store is the database. Queries called on it run outside any transaction.
type Store interface {
	Queries
	// InTx runs fn in a transaction: committed when fn returns nil, rolled
	// back (and fn's error returned) otherwise, and rolled back on panic.
	InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	// Dialect names the engine.
	Dialect() Dialect
	// DB exposes the pool for the job queue and pool metrics.
	DB() *sql.DB
	// Close releases the pool.
	Close() error
}
