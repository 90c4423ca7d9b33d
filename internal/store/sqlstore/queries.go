package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// querier is what *sql.DB and *sql.Tx have in common, so every query is
// written once and runs either on the pool or inside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements store.Queries over a querier. DB and tx embed it.
type queries struct {
	q       querier
	dialect store.Dialect
	// guard runs before every statement; the pool uses it to refuse a
	// context that belongs to one of its open transactions (see DB.InTx).
	guard func(ctx context.Context) error
	// auditPending is set in a transaction that wrote audit rows to be
	// linked into the chain once it commits (PostgreSQL).
	auditPending bool
	// link links pending audit rows after a commit; set on the pool's
	// queries (see DB.linkAfterCommit).
	link func(ctx context.Context)
	// count, when set, counts statements sent (see DB.Statements).
	count *atomic.Uint64
	// usersChanged, when set, hears of writes that change users: at once
	// on the pool, after commit in a transaction (see Config.OnUsersChanged).
	usersChanged func(ctx context.Context, all bool, ids ...string)
}

// changedUsers reports a write that changes what GetUser returns.
func (q *queries) changedUsers(ctx context.Context, all bool, ids ...string) {
	if q.usersChanged != nil {
		q.usersChanged(ctx, all, ids...)
	}
}

func (q *queries) counted() {
	if q.count != nil {
		q.count.Add(1)
	}
}

// audited notes that this transaction wrote an audit row to be linked.
func (q *queries) audited() { q.auditPending = true }

// linkAudit links pending audit rows after a commit, when q can.
func (q *queries) linkAudit(ctx context.Context) {
	if q.link != nil {
		q.link(ctx)
	}
}

var _ store.Queries = (*queries)(nil)

// row is the part of *sql.Row the queries use, so a refused guard can hand
// back its error through the same path.
type row interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (q *queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := q.guard(ctx); err != nil {
		return nil, err
	}
	q.counted()
	query = rebind(q.dialect, query)
	res, err := q.q.ExecContext(ctx, query, args...)
	return res, classify(err)
}

func (q *queries) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := q.guard(ctx); err != nil {
		return nil, err
	}
	q.counted()
	query = rebind(q.dialect, query)
	rows, err := q.q.QueryContext(ctx, query, args...)
	return rows, classify(err)
}

func (q *queries) queryRow(ctx context.Context, query string, args ...any) row {
	if err := q.guard(ctx); err != nil {
		return errRow{err}
	}
	q.counted()
	query = rebind(q.dialect, query)
	return classifiedRow{q.q.QueryRowContext(ctx, query, args...)}
}

// classifiedRow classifies the error of its row's Scan (see classify).
type classifiedRow struct{ r *sql.Row }

func (r classifiedRow) Scan(dest ...any) error { return classify(r.r.Scan(dest...)) }

// requireOneRow finishes an UPDATE or DELETE by primary key: the
// statement's error translated, or ErrNotFound when it matched no row. Both
// engines count matched rows, even when the values did not change.
func requireOneRow(op string, res sql.Result, err error) error {
	if err != nil {
		return translate(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return translate(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// rowsAffected finishes a bulk UPDATE or DELETE: how many rows it touched.
func rowsAffected(op string, res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, translate(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, translate(op, err)
	}
	return n, nil
}

// --- signing keys ---

const signingKeyColumns = `id, algorithm, public_key_pem, private_key_enc, created_at, retired_at, expires_at`

// CreateSigningKey inserts k. ErrConflict when k.ID exists.
func (q *queries) CreateSigningKey(ctx context.Context, k gatehouse.SigningKey) error {
	_, err := q.exec(ctx,
		`INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.PublicKeyPEM, k.PrivateKeyEnc,
		timeArg(q.dialect, k.CreatedAt), nullTimeArg(q.dialect, k.RetiredAt), nullTimeArg(q.dialect, k.ExpiresAt))
	return translate("create signing key", err)
}

// ListSigningKeys returns every key, newest first (ties broken by id so the
// order is stable). The slice is empty, not nil, when there are none.
func (q *queries) ListSigningKeys(ctx context.Context) ([]gatehouse.SigningKey, error) {
	rows, err := q.query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, translate("list signing keys", err)
	}
	defer rows.Close()
	keys := make([]gatehouse.SigningKey, 0, 4)
	for rows.Next() {
		var (
			k                           gatehouse.SigningKey
			created, retired, expiresAt timeScanner
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.PublicKeyPEM, &k.PrivateKeyEnc, &created, &retired, &expiresAt); err != nil {
			return nil, translate("list signing keys", err)
		}
		k.CreatedAt, k.RetiredAt, k.ExpiresAt = created.Time, retired.ptr(), expiresAt.ptr()
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, translate("list signing keys", err)
	}
	return keys, nil
}

// RetireSigningKey marks an active key retired. ErrNotFound when no active
// key has that id (unknown, or already retired).
func (q *queries) RetireSigningKey(ctx context.Context, id string, retiredAt, expiresAt time.Time) error {
	res, err := q.exec(ctx,
		`UPDATE signing_keys SET retired_at = ?, expires_at = ? WHERE id = ? AND retired_at IS NULL`,
		timeArg(q.dialect, retiredAt), timeArg(q.dialect, expiresAt), id)
	if err != nil {
		return translate("retire signing key", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return translate("retire signing key", err)
	}
	if n == 0 {
		return fmt.Errorf("retire signing key %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteExpiredSigningKeys removes retired keys whose ExpiresAt is strictly
// before now. Active keys are never removed, whatever their ExpiresAt.
func (q *queries) DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int64, error) {
	res, err := q.exec(ctx,
		`DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND expires_at IS NOT NULL AND expires_at < ?`,
		timeArg(q.dialect, now))
	if err != nil {
		return 0, translate("delete expired signing keys", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, translate("delete expired signing keys", err)
	}
	return n, nil
}

// --- events ---

// CreateEvent inserts e. ErrConflict when e.ID exists. A nil Data is stored
// as {}; UserID and ActorID "" are stored as NULL. Data must be valid for
// encoding/json; on PostgreSQL, strings must not contain U+0000, which
// JSONB cannot hold.
func (q *queries) CreateEvent(ctx context.Context, e gatehouse.Event) error {
	data := []byte("{}")
	if e.Data != nil {
		var err error
		if data, err = json.Marshal(e.Data); err != nil {
			return fmt.Errorf("create event: encode data: %w", err)
		}
	}
	_, err := q.exec(ctx,
		`INSERT INTO events (id, type, user_id, actor_id, data, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		e.ID, string(e.Type), nullString(e.UserID), nullString(e.ActorID), string(data), timeArg(q.dialect, e.CreatedAt))
	return translate("create event", err)
}

// DeleteEvent removes one event. ErrNotFound when it does not exist.
func (q *queries) DeleteEvent(ctx context.Context, id string) error {
	res, err := q.exec(ctx, `DELETE FROM events WHERE id = ?`, id)
	return requireOneRow(fmt.Sprintf("delete event %q", id), res, err)
}

// DeleteEventsBefore deletes events created before cutoff, in batches
// (one statement each, not one transaction), and returns how many.
func (d *DB) DeleteEventsBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	const batch = 1000
	var total int64
	for {
		res, err := d.exec(ctx, `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < ? LIMIT ?)`,
			timeArg(d.dialect, cutoff), batch)
		n, err := rowsAffected("delete old events", res, err)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// GetEvent returns one event. ErrNotFound when it does not exist. Data is
// never nil; numbers in it decode as float64, as encoding/json does.
func (q *queries) GetEvent(ctx context.Context, id string) (gatehouse.Event, error) {
	var (
		e               gatehouse.Event
		typ             string
		userID, actorID sql.NullString
		data            []byte
		created         timeScanner
	)
	err := q.queryRow(ctx,
		`SELECT id, type, user_id, actor_id, data, created_at FROM events WHERE id = ?`, id,
	).Scan(&e.ID, &typ, &userID, &actorID, &data, &created)
	if err != nil {
		return gatehouse.Event{}, translate(fmt.Sprintf("get event %q", id), err)
	}
	if err := json.Unmarshal(data, &e.Data); err != nil {
		return gatehouse.Event{}, fmt.Errorf("get event %q: decode data: %w", id, err)
	}
	if e.Data == nil {
		e.Data = map[string]any{}
	}
	e.Type, e.UserID, e.ActorID, e.CreatedAt = gatehouse.EventType(typ), userID.String, actorID.String, created.Time
	return e, nil
}
