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

// Users persists accounts and their role assignments.
type Users interface {
	// CreateUser inserts u (without roles). ErrConflict when the email (already
	// normalised) or id exists.
	CreateUser(ctx context.Context, u gatehouse.User) error
	// GetUser returns the user with Roles filled (role names, sorted in
	// byte order; nil when it has none). NotificationPreferences reads back
	// nil when none are set (nil and empty are stored alike); MFAMethods is
	// not stored yet and is nil. ErrNotFound when there is none.
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
	// GetUserForUpdate is GetUser that, inside a transaction on PostgreSQL,
	// locks the row (SELECT ... FOR UPDATE) so read-modify-write of counters
	// such as FailedLogins cannot lose updates. SQLite transactions already
	// hold the write lock.
	GetUserForUpdate(ctx context.Context, id string) (gatehouse.User, error)
	// GetUserByEmail finds by normalised email. ErrNotFound when none.
	GetUserByEmail(ctx context.Context, email gatehouse.Email) (gatehouse.User, error)
	// UpdateUser writes every mutable field of u (all but ID, CreatedAt and
	// Roles). ErrNotFound when there is no such user; ErrConflict when the
	// new email is taken.
	UpdateUser(ctx context.Context, u gatehouse.User) error
	// DeleteUser removes the user and, by cascade, everything it owns
	// (sessions, refresh tokens, one-time tokens, role assignments).
	// ErrNotFound when there is none.
	DeleteUser(ctx context.Context, id string) error
	// SetUserRoles replaces the user's roles with the named ones (duplicates
	// ignored; none removes every role). ErrNotFound when the user or any
	// role name does not exist, checked before anything is written.
	SetUserRoles(ctx context.Context, userID string, roles []string) error
}

// UserQuery selects a page of users.
type UserQuery struct {
	// After is the id of the last user of the previous page ("" for the
	// first page); users come in id order, which is creation order.
	After string
	// Limit is the page size (≥ 1; ListUsers refuses less with an error
	// that is neither ErrNotFound nor ErrConflict).
	Limit int
	// Search, when not empty, keeps users whose email or name contains it,
	// case-insensitively (for ASCII on every engine); it is plain text, so
	// '%', '_' and '\' match only themselves.
	Search string
}

// Roles persists roles and their permissions.
type Roles interface {
	// ListRoles returns every role, system roles included, ordered by name
	// in byte order.
	ListRoles(ctx context.Context) ([]gatehouse.Role, error)
	// GetRole returns one role by id; empty permissions read back nil.
	// ErrNotFound when there is none.
	GetRole(ctx context.Context, id string) (gatehouse.Role, error)
	// CreateRole inserts r (nil permissions are stored as none).
	// ErrConflict when its name or id exists.
	CreateRole(ctx context.Context, r gatehouse.Role) error
	// UpdateRole writes r's description, permissions and updated_at (never
	// its name or system flag). ErrNotFound when there is no such role.
	UpdateRole(ctx context.Context, r gatehouse.Role) error
	// DeleteRole removes the role and its assignments. ErrNotFound.
	DeleteRole(ctx context.Context, id string) error
	// UserPermissions returns the permissions of every role the user holds
	// (possibly with repeats); empty when the user has no roles or does not
	// exist.
	UserPermissions(ctx context.Context, userID string) ([]string, error)
	// ListUsers returns a page of users per q, in ascending id order, with
	// Roles filled as GetUser fills them; empty when none is left.
	ListUsers(ctx context.Context, q UserQuery) ([]gatehouse.User, error)
}

// Sessions persists signed-in clients.
type Sessions interface {
	// CreateSession inserts s. ErrConflict when the id exists; ErrNotFound
	// when the user does not.
	CreateSession(ctx context.Context, s gatehouse.Session) error
	// GetSession returns the session whatever its state (an empty AMR reads
	// back nil). ErrNotFound.
	GetSession(ctx context.Context, id string) (gatehouse.Session, error)
	// ListSessions returns the user's sessions that are not revoked and
	// whose ExpiresAt is after now, most recently active first.
	ListSessions(ctx context.Context, userID string, now time.Time) ([]gatehouse.Session, error)
	// TouchSession records activity: LastActiveAt = now, and the client's
	// current IP and user agent when non-empty. ErrNotFound.
	TouchSession(ctx context.Context, id string, now time.Time, ip, userAgent string) error
	// RevokeSession sets RevokedAt = now when the session is not revoked yet,
	// and reports whether this call did it. ErrNotFound when there is none.
	RevokeSession(ctx context.Context, id string, now time.Time) (bool, error)
	// RevokeUserSessions revokes every unrevoked session of the user except
	// exceptID (may be empty) and returns the ids it revoked.
	RevokeUserSessions(ctx context.Context, userID, exceptID string, now time.Time) ([]string, error)
	// DeleteStaleSessions deletes sessions that expired or were revoked
	// before cutoff (and their refresh tokens) and reports how many went.
	DeleteStaleSessions(ctx context.Context, cutoff time.Time) (int64, error)
}

// RefreshTokens persists refresh-token families (one family per session).
type RefreshTokens interface {
	// CreateRefreshToken inserts t. ErrConflict when the id or hash exists,
	// or when the session or user does not (a foreign key refuses it).
	CreateRefreshToken(ctx context.Context, t gatehouse.RefreshToken) error
	// GetRefreshTokenByHash returns the token whatever its state.
	// ErrNotFound when there is none.
	GetRefreshTokenByHash(ctx context.Context, hash []byte) (gatehouse.RefreshToken, error)
	// UseRefreshToken atomically sets UsedAt = now on the token when it is
	// unused (UPDATE ... WHERE used_at IS NULL) and reports whether this
	// call did it: of concurrent callers exactly one gets true. False, not an
	// error, for an unknown id.
	UseRefreshToken(ctx context.Context, id string, now time.Time) (bool, error)
}

// OneTimeTokens persists single-use secrets sent by email.
type OneTimeTokens interface {
	// CreateOneTimeToken inserts t. ErrConflict when the id or hash exists,
	// or when the user does not (a foreign key refuses it).
	CreateOneTimeToken(ctx context.Context, t gatehouse.OneTimeToken) error
	// ConsumeOneTimeToken atomically marks the token with this purpose and
	// hash used, if it is unused and ExpiresAt is after now, and returns it.
	// Of concurrent callers exactly one succeeds. ErrNotFound when the token
	// is unknown, used, superseded or expired.
	ConsumeOneTimeToken(ctx context.Context, purpose gatehouse.OneTimePurpose, hash []byte, now time.Time) (gatehouse.OneTimeToken, error)
	// SupersedeOneTimeTokens marks every unused token of the user with this
	// purpose as used, so only a token made after it works.
	SupersedeOneTimeTokens(ctx context.Context, userID string, purpose gatehouse.OneTimePurpose, now time.Time) error
	// DeleteStaleOneTimeTokens deletes tokens that expired or were used
	// before cutoff and reports how many went.
	DeleteStaleOneTimeTokens(ctx context.Context, cutoff time.Time) (int64, error)
}

// AuditQuery selects audit rows, newest first. A zero field does not
// filter (nor does MinRisk ≤ 0).
type AuditQuery struct {
	UserID, Action string     // exact matches when non-empty
	From, To       *time.Time // created_at >= From, < To (at microsecond precision)
	MinRisk        int        // risk_score >= MinRisk
	Before         string     // id of the last row of the previous page ("" first page); only smaller ids follow
	Limit          int        // ≥ 1; less is an error that is neither ErrNotFound nor ErrConflict
}

// AuditLogs persists the audit trail. Rows name users by id without a
// foreign key: they may name users that no longer exist.
type AuditLogs interface {
	// CreateAuditLog inserts l. ErrConflict when its id exists. A
	// RiskScore outside 0..100 is refused with an error that is neither
	// ErrConflict nor ErrNotFound.
	CreateAuditLog(ctx context.Context, l gatehouse.AuditLog) error
	// ListAuditLogs returns rows matching q, newest first (id descending;
	// ids are UUIDv7, so creation order); empty when none match. Metadata
	// reads back as an empty map, never nil, when none was stored.
	ListAuditLogs(ctx context.Context, q AuditQuery) ([]gatehouse.AuditLog, error)
}

// Queries is every data operation; both Store and Tx offer it.
type Queries interface {
	SigningKeys
	Events
	Users
	Sessions
	RefreshTokens
	OneTimeTokens
	Roles
	AuditLogs
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
