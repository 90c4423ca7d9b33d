package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- audit logs ---

// Asserted on its own as well as through store.Queries, so the check holds
// whatever the composition of Queries.
var _ store.AuditLogs = (*queries)(nil)

const auditColumns = `id, actor_id, user_id, action, resource, ip_address, user_agent, metadata, risk_score, created_at`

// auditSelectColumns are what every read returns: the inserted columns
// and the chain.
const auditSelectColumns = auditColumns + `, seq, prev_hash, hash`

// auditChainLock is the pg_advisory_xact_lock key that serializes appends
// to the chain on PostgreSQL ("GHAUDIT"). Advisory locks are per database,
// so it is shared by every instance on one database and nothing else.
const auditChainLock int64 = 0x47484155444954

// CreateAuditLog inserts l and has it appended to the hash chain. l's own
// Seq, PrevHash and Hash are ignored; outside a transaction it opens one.
//
// On SQLite, whose transactions take the write lock at BEGIN and so are
// serialized already, the row is linked as it is inserted: it reads the
// head and writes the next seq, the head's hash as prev_hash, and
// l.ChainHash(). On PostgreSQL the row is inserted unlinked (seq 0, no
// hashes) and linked by LinkAuditLogs right after its transaction commits,
// under the chain's lock for that short step only: a sign-in never waits
// for another's transaction to end. Either way the row exists exactly when
// its change committed; the unique index on seq refuses a fork.
//
// ActorID and UserID "" are stored as NULL (and read back as ""); the
// metadata stored is gatehouse.CanonicalAuditMetadata(l.Metadata), "{}"
// for none. Metadata must be valid for encoding/json; on PostgreSQL,
// strings must not contain U+0000, which JSONB cannot hold. RiskScore
// outside 0..100 is refused by a CHECK constraint (an error that is
// neither ErrConflict nor ErrNotFound). ErrConflict when l.ID exists.
func (q *queries) CreateAuditLog(ctx context.Context, l gatehouse.AuditLog) error {
	const op = "create audit log"
	meta, err := gatehouse.CanonicalAuditMetadata(l.Metadata)
	if err != nil {
		return fmt.Errorf("%s: encode metadata: %w", op, err)
	}
	l.CreatedAt = normTime(l.CreatedAt)
	l.Seq, l.PrevHash, l.Hash = 0, "", ""
	return q.inTx(ctx, op, func(q *queries) error {
		if q.dialect == store.Postgres {
			q.audited() // linked after the commit
		} else {
			var head int64
			var headHash string
			err := q.queryRow(ctx, `SELECT seq, hash FROM audit_logs ORDER BY seq DESC LIMIT 1`).Scan(&head, &headHash)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return translate(op+": read the chain head", err)
			}
			l.Seq, l.PrevHash = head+1, headHash
			if l.Hash, err = l.ChainHash(); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		_, err = q.exec(ctx,
			`INSERT INTO audit_logs (`+auditColumns+`, seq, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			l.ID, nullString(l.ActorID), nullString(l.UserID), l.Action, l.Resource, l.IPAddress, l.UserAgent,
			string(meta), l.RiskScore, timeArg(q.dialect, l.CreatedAt), l.Seq, l.PrevHash, l.Hash)
		return translate(op, err)
	})
}

// linkBatch is the most unlinked rows one linking transaction takes.
const linkBatch = 500

// LinkAuditLogs links the rows waiting for their place in the chain
// (PostgreSQL: see CreateAuditLog), oldest first, and reports how many. Each
// batch is one short transaction holding the chain's advisory lock, so
// concurrent linkers (every instance links after its own commits) take
// turns and a row is linked once. On SQLite there is never anything to
// link.
func (d *DB) LinkAuditLogs(ctx context.Context) (int, error) {
	if d.dialect != store.Postgres {
		return 0, nil
	}
	total := 0
	for {
		var n int
		err := d.InTx(ctx, func(ctx context.Context, stx store.Tx) error {
			var err error
			n, err = stx.(*tx).linkAuditBatch(ctx)
			return err
		})
		total += n
		if err != nil || n < linkBatch {
			return total, err
		}
	}
}

// linkAuditBatch links up to linkBatch rows in the transaction q.
func (q *queries) linkAuditBatch(ctx context.Context) (int, error) {
	const op = "link audit logs"
	if _, err := q.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, auditChainLock); err != nil {
		return 0, translate(op+": lock the chain", err)
	}
	pending, err := q.readAuditLogs(ctx, op, 16,
		`SELECT `+auditSelectColumns+` FROM audit_logs WHERE seq = 0 ORDER BY created_at, id LIMIT ?`, linkBatch)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	var head int64
	var headHash string
	err = q.queryRow(ctx, `SELECT seq, hash FROM audit_logs WHERE seq > 0 ORDER BY seq DESC LIMIT 1`).Scan(&head, &headHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, translate(op+": read the chain head", err)
	}
	var values strings.Builder
	args := make([]any, 0, 4*len(pending))
	for i := range pending {
		l := &pending[i]
		l.Seq, l.PrevHash = head+int64(i)+1, headHash
		if l.Hash, err = l.ChainHash(); err != nil {
			return 0, fmt.Errorf("%s: %w", op, err)
		}
		headHash = l.Hash
		if i > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(?::text, ?::bigint, ?::text, ?::text)")
		args = append(args, l.ID, l.Seq, l.PrevHash, l.Hash)
	}
	res, err := q.exec(ctx, `UPDATE audit_logs AS a SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
		FROM (VALUES `+values.String()+`) AS v(id, seq, prev_hash, hash) WHERE a.id = v.id AND a.seq = 0`, args...)
	n, err := rowsAffected(op, res, err)
	if err != nil {
		return 0, err
	}
	if int(n) != len(pending) {
		// Only a linker holding the lock changes seq 0 rows: cannot happen.
		return 0, fmt.Errorf("%s: linked %d of %d rows", op, n, len(pending))
	}
	return len(pending), nil
}

// inTx runs fn on q when q is a transaction already, else in a new
// transaction on q's pool (committed when fn returns nil).
func (q *queries) inTx(ctx context.Context, op string, fn func(q *queries) error) error {
	pool, ok := q.q.(*sql.DB)
	if !ok {
		return fn(q)
	}
	if err := q.guard(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	sqlTx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return translate(op+": begin transaction", err)
	}
	defer func() { _ = sqlTx.Rollback() }() // after Commit, a no-op
	inner := &queries{q: sqlTx, dialect: q.dialect, guard: noGuard}
	if err := fn(inner); err != nil {
		return err
	}
	if err := translate(op+": commit", sqlTx.Commit()); err != nil {
		return err
	}
	if inner.auditPending {
		q.linkAudit(ctx)
	}
	return nil
}

// ListAuditLogsBySeq returns up to limit rows after afterSeq in chain
// order, through the unique index on seq: each page costs the same however
// deep into the table it is.
func (q *queries) ListAuditLogsBySeq(ctx context.Context, afterSeq int64, limit int) ([]gatehouse.AuditLog, error) {
	const op = "list audit logs by seq"
	if limit < 1 {
		return nil, fmt.Errorf("%s: limit must be at least 1, got %d", op, limit)
	}
	return q.readAuditLogs(ctx, op, min(limit, 1000),
		`SELECT `+auditSelectColumns+` FROM audit_logs WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
}

// PruneAuditLogs deletes the rows with seq ≤ throughSeq. The append-only
// triggers allow exactly that, for the length of this transaction: on
// PostgreSQL through the transaction-local setting
// gatehouse.audit_prune_through, on SQLite through the one row of
// audit_prune_control, which is set back to 0 before the transaction ends
// (SQLite's write lock keeps every other connection from seeing it).
func (q *queries) PruneAuditLogs(ctx context.Context, throughSeq int64) (int64, error) {
	const op = "prune audit logs"
	var n int64
	err := q.inTx(ctx, op, func(q *queries) error {
		allow := func(seq int64) error {
			var err error
			if q.dialect == store.Postgres {
				_, err = q.exec(ctx, `SELECT set_config('gatehouse.audit_prune_through', ?, true)`, strconv.FormatInt(seq, 10))
			} else {
				_, err = q.exec(ctx, `UPDATE audit_prune_control SET through_seq = ? WHERE id = 1`, seq)
			}
			return translate(op, err)
		}
		if err := allow(throughSeq); err != nil {
			return err
		}
		var err error
		res, err := q.exec(ctx, `DELETE FROM audit_logs WHERE seq > 0 AND seq <= ?`, throughSeq)
		if n, err = rowsAffected(op, res, err); err != nil {
			return err
		}
		return allow(0)
	})
	return n, err
}

// ListAuditLogs returns up to aq.Limit rows matching every non-zero filter
// of aq, newest first: id descending, which for UUIDv7 ids is creation
// order. Before pages: only ids strictly below it are returned. From is
// inclusive and To exclusive; MinRisk ≤ 0 filters nothing. Metadata is
// never nil (an empty map when none was stored); numbers in it decode as
// float64, as encoding/json does. The slice is empty, not nil, when no row
// matches. A Limit below 1 is an error.
//
// Ids are compared and sorted by the database, as ListUsers explains: byte
// order on SQLite, the collation on PostgreSQL, which orders UUIDv7 text as
// bytes do.
//
// How the rows are found is chosen here rather than left to the planners
// alone; see auditPlanFor and auditListQuery. A time window with an upper
// bound and no user costs up to two more statements, index-only and
// bounded.
func (q *queries) ListAuditLogs(ctx context.Context, aq store.AuditQuery) ([]gatehouse.AuditLog, error) {
	const op = "list audit logs"
	if aq.Limit < 1 {
		return nil, fmt.Errorf("%s: limit must be at least 1, got %d", op, aq.Limit)
	}
	plan, err := q.auditPlanFor(ctx, aq)
	if err != nil {
		return nil, translate(op, err)
	}
	return q.listAuditLogs(ctx, aq, plan)
}

// listAuditLogs runs ListAuditLogs' statement for aq in the shape plan
// says; every plan returns the same rows.
func (q *queries) listAuditLogs(ctx context.Context, aq store.AuditQuery, plan auditPlan) ([]gatehouse.AuditLog, error) {
	const op = "list audit logs"
	query, args := auditListQuery(q.dialect, aq, plan)
	// The capacity is capped: Limit is a bound, not a promise of rows.
	return q.readAuditLogs(ctx, op, min(aq.Limit, 100), query, args...)
}

// readAuditLogs runs a query selecting auditSelectColumns and decodes the
// rows. The slice is empty, not nil, when there are none.
func (q *queries) readAuditLogs(ctx context.Context, op string, capacity int, query string, args ...any) ([]gatehouse.AuditLog, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	logs := make([]gatehouse.AuditLog, 0, capacity)
	for rows.Next() {
		var (
			l               gatehouse.AuditLog
			actorID, userID sql.NullString
			meta            []byte
			created         timeScanner
		)
		if err := rows.Scan(&l.ID, &actorID, &userID, &l.Action, &l.Resource, &l.IPAddress, &l.UserAgent,
			&meta, &l.RiskScore, &created, &l.Seq, &l.PrevHash, &l.Hash); err != nil {
			return nil, translate(op, err)
		}
		if err := json.Unmarshal(meta, &l.Metadata); err != nil {
			return nil, fmt.Errorf("%s: decode metadata of %q: %w", op, l.ID, err)
		}
		if l.Metadata == nil {
			l.Metadata = map[string]any{}
		}
		l.ActorID, l.UserID, l.CreatedAt = actorID.String, userID.String, created.Time
		logs = append(logs, l)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	return logs, nil
}

// auditProbeCap is the most rows a time window may hold for ListAuditLogs
// to read it whole and sort it; bigger windows are walked.
const auditProbeCap = 50_000

// auditPlan is how ListAuditLogs finds its rows.
type auditPlan int

const (
	// auditWalk walks an index that is in id order (the user's, the
	// action's, or the primary key) newest first from the cursor, checks
	// the other filters on each row, and stops at the limit. It never
	// sorts; its cost is the rows it has to pass over.
	auditWalk auditPlan = iota
	// auditWindowFirst reads every row of the time window through the
	// created_at index, then sorts those by id. Walking would pass over
	// every row newer than the window first: for a day a month back, a
	// third of a table holding three months.
	auditWindowFirst
)

// auditPlanFor picks the plan for aq. Walking costs about the rows it
// passes before reaching the window (those newer than To); reading the
// window first costs about the rows in it. So with an upper bound and no
// user (whose rows are few whatever the window), it counts the window's
// rows, up to auditProbeCap, then the rows newer than it, up to one more
// than the window holds, and reads the window first when the window is
// the smaller: two index-only statements that read at most twice the
// smaller count of created_at index entries. Without an upper bound the
// window holds the newest rows, which a walk reaches at once.
func (q *queries) auditPlanFor(ctx context.Context, aq store.AuditQuery) (auditPlan, error) {
	if aq.UserID != "" || aq.To == nil {
		return auditWalk, nil
	}
	to := timeArg(q.dialect, *aq.To)
	window, args := `created_at < ?`, []any{to}
	if aq.From != nil {
		window, args = `created_at >= ? AND `+window, []any{timeArg(q.dialect, *aq.From), to}
	}
	inWindow, err := q.countUpTo(ctx, window, args, auditProbeCap)
	if err != nil || inWindow >= auditProbeCap {
		return auditWalk, err
	}
	newer, err := q.countUpTo(ctx, `created_at >= ?`, []any{to}, inWindow+1)
	if err != nil || newer <= inWindow {
		return auditWalk, err
	}
	return auditWindowFirst, nil
}

// countUpTo counts the audit rows matching where, stopping at limit.
func (q *queries) countUpTo(ctx context.Context, where string, args []any, limit int) (int, error) {
	var n int
	err := q.queryRow(ctx,
		`SELECT count(*) FROM (SELECT 1 FROM audit_logs WHERE `+where+` LIMIT ?) c`,
		append(args, limit)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count rows around the time window: %w", err)
	}
	return n, nil
}

// auditListQuery builds ListAuditLogs' statement for aq: one predicate per
// filter that is set, so the planner sees only what constrains the rows,
// in the shape plan asks for.
//
// auditWalk with a user named: the user's index (user_id, id DESC) is
// always right. It yields that user's rows newest first, and even an
// account under attack has few rows compared with a whole action or risk
// band. PostgreSQL picks it from its statistics. SQLite has none unless
// someone runs ANALYZE; without them it rates "action = ?" as selective as
// "user_id = ?", and at a million rows it walked every user.login_failed
// row (~150,000) to find one user's handful. So on SQLite every other column
// is written +column, SQLite's documented way to keep a term from using an
// index (the unary + changes no value and, STRICT tables holding one type
// per column, no comparison). PostgreSQL has no such operator for text and
// needs none.
//
// auditWalk without a user: the action's index or the primary key, by the
// planner's choice, except that SQLite may not use created_at. Without
// statistics it reads any window bounded at both ends through that index
// and sorts it: over a second for a 78-day window of a million rows,
// against 50 ms walking. Windows worth reading first never get here.
//
// auditWindowFirst: a MATERIALIZED common table expression (both engines)
// keeps the planner from folding the window back into a walk, which
// PostgreSQL, not knowing that ids and times rise together, otherwise
// prefers. On SQLite only created_at may use an index inside it.
func auditListQuery(d store.Dialect, aq store.AuditQuery, plan auditPlan) (string, []any) {
	indexable := func(col string) bool {
		switch {
		case d != store.SQLite:
			return true
		case plan == auditWindowFirst:
			return col == "created_at"
		case aq.UserID != "":
			return col == "user_id"
		default:
			return col != "created_at"
		}
	}
	var (
		where []string
		args  []any
	)
	add := func(col, op string, arg any) {
		if !indexable(col) {
			col = "+" + col
		}
		where, args = append(where, col+" "+op+" ?"), append(args, arg)
	}
	if aq.UserID != "" {
		add("user_id", "=", aq.UserID)
	}
	if aq.Action != "" {
		add("action", "=", aq.Action)
	}
	if aq.From != nil {
		add("created_at", ">=", timeArg(d, *aq.From))
	}
	if aq.To != nil {
		add("created_at", "<", timeArg(d, *aq.To))
	}
	if aq.MinRisk > 0 {
		add("risk_score", ">=", aq.MinRisk)
	}
	if aq.Before != "" {
		// id is part of every index used here (and the primary key), so the
		// cursor always narrows the index range; it is never "+id".
		where, args = append(where, "id < ?"), append(args, aq.Before)
	}
	filtered := `SELECT ` + auditSelectColumns + ` FROM audit_logs`
	if len(where) > 0 {
		filtered += ` WHERE ` + strings.Join(where, ` AND `)
	}
	args = append(args, aq.Limit)
	if plan == auditWindowFirst {
		return `WITH w AS MATERIALIZED (` + filtered + `) SELECT ` + auditSelectColumns + ` FROM w ORDER BY id DESC LIMIT ?`, args
	}
	return filtered + ` ORDER BY id DESC LIMIT ?`, args
}
