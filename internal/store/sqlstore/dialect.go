package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// This file holds everything that differs between the two engines at the
// value level: placeholders, timestamps, and driver error codes. Queries are
// written once with "?" placeholders; everything else is plain SQL both
// engines understand.

// sqliteTimeLayout is how SQLite stores timestamps: TEXT, UTC, always six
// fractional digits. The fixed width matters: it makes string order equal
// time order, so ORDER BY and < work on the column as they do on
// TIMESTAMPTZ. (RFC 3339 with trimmed zeros would sort "…05Z" after
// "…05.1Z".) Microseconds match PostgreSQL's precision, so both engines
// return the same value. Years outside 0000–9999 are not representable.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// rebindCache maps a "?" query to its "$n" form; queries are a small fixed
// set of constants, so the cache stays small.
var rebindCache sync.Map

// rebind turns "?" placeholders into PostgreSQL's "$1..$n", leaving "?"
// inside quoted literals, quoted identifiers and -- comments alone. SQLite
// queries pass through unchanged.
func rebind(d store.Dialect, query string) string {
	if d != store.Postgres {
		return query
	}
	if v, ok := rebindCache.Load(query); ok {
		return v.(string)
	}
	out := rebindPostgres(query)
	rebindCache.Store(query, out)
	return out
}

func rebindPostgres(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			// Copy the quoted run verbatim; a doubled quote is an escape and
			// simply reopens the run on the next iteration.
			j := strings.IndexByte(query[i+1:], c)
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+j+1])
			i += j
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// normTime is the instant as both engines will hand it back: UTC and
// truncated (not rounded) to microseconds. PostgreSQL would round
// nanoseconds on text input, so truncating here keeps the engines equal.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeArg converts t into the value the engine's column expects.
func timeArg(d store.Dialect, t time.Time) any {
	t = normTime(t)
	if d == store.SQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// nullTimeArg is timeArg for nullable columns: nil becomes SQL NULL.
func nullTimeArg(d store.Dialect, t *time.Time) any {
	if t == nil {
		return nil
	}
	return timeArg(d, *t)
}

// timeScanner reads a timestamp column from either engine: time.Time from
// PostgreSQL (and from SQLite columns declared TIMESTAMP, as River's are),
// text from ours. The result is always UTC. NULL leaves Valid false.
type timeScanner struct {
	Time  time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (s *timeScanner) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		s.Time, s.Valid = time.Time{}, false
		return nil
	case time.Time:
		s.Time, s.Valid = v.UTC(), true
		return nil
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	default:
		return fmt.Errorf("scan timestamp: unsupported type %T", src)
	}
}

// sqliteAltLayouts are accepted on read besides sqliteTimeLayout, for rows
// written by hand or by SQLite's own CURRENT_TIMESTAMP.
var sqliteAltLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05"}

func (s *timeScanner) parse(v string) error {
	t, err := time.Parse(sqliteTimeLayout, v)
	if err != nil {
		for _, layout := range sqliteAltLayouts {
			if t2, err2 := time.Parse(layout, v); err2 == nil {
				t, err = t2, nil
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("scan timestamp %q: %w", v, err)
	}
	s.Time, s.Valid = t.UTC(), true
	return nil
}

// ptr returns the scanned time as the domain's optional field.
func (s timeScanner) ptr() *time.Time {
	if !s.Valid {
		return nil
	}
	t := s.Time
	return &t
}

// nullString stores "" as NULL so optional references (user, actor) read
// back as "" and never as a dangling empty id.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SQLite extended result codes that mean a constraint refused the write
// because of an existing row (or a missing parent row).
var sqliteConflictCodes = map[int]bool{
	sqlite3.SQLITE_CONSTRAINT_UNIQUE:     true,
	sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY: true,
	sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY: true,
	sqlite3.SQLITE_CONSTRAINT_ROWID:      true,
}

// PostgreSQL SQLSTATEs for unique_violation and foreign_key_violation.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// translate maps driver errors to the store's contract at the boundary, so
// callers branch with errors.Is and never see a driver type. op names the
// operation for context ("create event"). Other errors are wrapped as they
// are; nil stays nil.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	err = classify(err)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	if isConflict(err) {
		// Keep the driver's message (it names the constraint) but expose
		// only ErrConflict to errors.Is/As.
		return fmt.Errorf("%s: %w (%s)", op, store.ErrConflict, err.Error())
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isConflict reports whether err is a uniqueness or foreign-key violation
// from either driver.
func isConflict(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgUniqueViolation || pgErr.Code == pgForeignKeyViolation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return sqliteConflictCodes[liteErr.Code()]
	}
	return false
}

// isForeignKeyViolation reports whether err is a foreign-key violation from
// either driver. Inserting a row whose parent is missing is a conflict by
// default (see translate); operations whose contract names the missing
// parent as ErrNotFound use this to tell it from a duplicate key.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgForeignKeyViolation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}
