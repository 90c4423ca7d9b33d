package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- sessions ---

const sessionColumns = `id, user_id, created_at, last_active_at, expires_at, ip_address, user_agent, ` +
	`device_id, location, trust_score, amr, mfa, auth_time, revoked_at, device_ref`

// CreateSession inserts s. ErrConflict when the id exists; ErrNotFound when
// the user does not. A nil or empty AMR is stored as [].
func (q *queries) CreateSession(ctx context.Context, s gatehouse.Session) error {
	amr, err := encodeStrings(s.AMR)
	if err != nil {
		return fmt.Errorf("create session: encode amr: %w", err)
	}
	_, err = q.exec(ctx,
		`INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.UserID, timeArg(q.dialect, s.CreatedAt), timeArg(q.dialect, s.LastActiveAt),
		timeArg(q.dialect, s.ExpiresAt), s.IPAddress, s.UserAgent, s.DeviceID, s.Location, s.TrustScore,
		amr, s.MFA, timeArg(q.dialect, s.AuthTime), nullTimeArg(q.dialect, s.RevokedAt), sql.NullString{String: s.DeviceRef, Valid: s.DeviceRef != ""})
	if isForeignKeyViolation(err) {
		return fmt.Errorf("create session: user %q: %w", s.UserID, store.ErrNotFound)
	}
	return translate("create session", err)
}

// GetSession returns the session whatever its state (revoked, expired).
// An empty AMR reads back as nil. ErrNotFound when there is none.
func (q *queries) GetSession(ctx context.Context, id string) (gatehouse.Session, error) {
	op := fmt.Sprintf("get session %q", id)
	s, err := scanSession(q.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id))
	if err != nil {
		return gatehouse.Session{}, translate(op, err)
	}
	return s, nil
}

// GetSessionClient is GetSession that also returns the id of the client
// the session was granted to ("" for none), in one statement: a refresh's
// first read.
func (q *queries) GetSessionClient(ctx context.Context, id string) (gatehouse.Session, string, error) {
	var clientID sql.NullString
	s, err := scanSession(q.queryRow(ctx, `SELECT `+prefixed("s.", sessionColumns)+`, g.client_id `+
		`FROM sessions s LEFT JOIN oidc_grants g ON g.session_id = s.id WHERE s.id = ?`, id), &clientID)
	if err != nil {
		return gatehouse.Session{}, "", translate(fmt.Sprintf("get session %q", id), err)
	}
	return s, clientID.String, nil
}

// ListSessions returns the user's sessions that are not revoked and whose
// ExpiresAt is strictly after now, most recently active first (ties by id,
// descending, so the order is stable). It ignores the idle timeout, which
// is the caller's policy. The slice is empty, not nil, when there are none.
func (q *queries) ListSessions(ctx context.Context, userID string, now time.Time) ([]gatehouse.Session, error) {
	const op = "list sessions"
	rows, err := q.query(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? `+
			`ORDER BY last_active_at DESC, id DESC`,
		userID, timeArg(q.dialect, now))
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	sessions := make([]gatehouse.Session, 0, 4)
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, translate(op, err)
		}
		sessions = append(sessions, s)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	return sessions, nil
}

// TouchSession sets LastActiveAt = now, and IPAddress and UserAgent to the
// given values unless they are empty (then the old ones stay). It touches
// revoked and expired sessions too: deciding whether a session admits
// requests is the caller's job. ErrNotFound when there is none.
func (q *queries) TouchSession(ctx context.Context, id string, now time.Time, ip, userAgent string) error {
	// COALESCE over a NULL parameter keeps the column; PostgreSQL infers
	// the parameter's type from the column, which a "? = ''" test would not
	// let it do.
	res, err := q.exec(ctx,
		`UPDATE sessions SET last_active_at = ?, ip_address = COALESCE(?, ip_address), user_agent = COALESCE(?, user_agent) WHERE id = ?`,
		timeArg(q.dialect, now), nullString(ip), nullString(userAgent), id)
	return requireOneRow(fmt.Sprintf("touch session %q", id), res, err)
}

// TouchSessionTrust is TouchSession setting trust_score too, in one UPDATE.
func (q *queries) TouchSessionTrust(ctx context.Context, id string, now time.Time, ip, userAgent string, score int) error {
	if err := checkTrustScore(score); err != nil {
		return fmt.Errorf("touch session %q: %w", id, err)
	}
	res, err := q.exec(ctx,
		`UPDATE sessions SET last_active_at = ?, ip_address = COALESCE(?, ip_address), user_agent = COALESCE(?, user_agent), `+
			`trust_score = ? WHERE id = ?`,
		timeArg(q.dialect, now), nullString(ip), nullString(userAgent), score, id)
	return requireOneRow(fmt.Sprintf("touch session %q", id), res, err)
}

// RevokeSession sets RevokedAt = now unless the session is revoked already,
// and reports whether this call revoked it (an earlier revocation's time
// stays). ErrNotFound when there is no such session.
func (q *queries) RevokeSession(ctx context.Context, id string, now time.Time) (bool, error) {
	op := fmt.Sprintf("revoke session %q", id)
	res, err := q.exec(ctx,
		`UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, timeArg(q.dialect, now), id)
	n, err := rowsAffected(op, res, err)
	if err != nil {
		return false, err
	}
	if n > 0 {
		return true, nil
	}
	// Nothing changed: already revoked, or no such session.
	var one int
	if err := q.queryRow(ctx, `SELECT 1 FROM sessions WHERE id = ?`, id).Scan(&one); err != nil {
		return false, translate(op, err)
	}
	return false, nil
}

// RevokeUserSessions revokes every unrevoked session of the user (expired
// ones included) except exceptID, which may be empty, and returns the ids
// it revoked in ascending order; empty, not nil, when none. An unknown user
// simply has no sessions.
func (q *queries) RevokeUserSessions(ctx context.Context, userID, exceptID string, now time.Time) ([]string, error) {
	return q.returningIDs(ctx, "revoke user sessions",
		`UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND id <> ? RETURNING id`,
		timeArg(q.dialect, now), userID, exceptID)
}

// returningIDs runs a statement that ends in RETURNING id and answers the
// ids sorted (RETURNING order is unspecified on both engines); empty, not
// nil, when none.
func (q *queries) returningIDs(ctx context.Context, op, query string, args ...any) ([]string, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	ids := make([]string, 0, 4)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, translate(op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	slices.Sort(ids)
	return ids, nil
}

// DeleteStaleSessions deletes sessions whose ExpiresAt or RevokedAt is
// strictly before cutoff; their refresh tokens go by cascade. The count is
// of sessions only.
func (q *queries) DeleteStaleSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	c := timeArg(q.dialect, cutoff)
	res, err := q.exec(ctx, `DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?`, c, c)
	return rowsAffected("delete stale sessions", res, err)
}

// scanSession reads the sessionColumns of one row, then any extra columns
// into extra (GetSessionClient appends the grant's client).
func scanSession(r row, extra ...any) (gatehouse.Session, error) {
	var (
		s                                           gatehouse.Session
		created, lastActive, expires, auth, revoked timeScanner
		amr                                         []byte
		deviceRef                                   sql.NullString
	)
	err := r.Scan(append([]any{&s.ID, &s.UserID, &created, &lastActive, &expires, &s.IPAddress, &s.UserAgent,
		&s.DeviceID, &s.Location, &s.TrustScore, &amr, &s.MFA, &auth, &revoked, &deviceRef}, extra...)...)
	if err != nil {
		return gatehouse.Session{}, err
	}
	if s.AMR, err = decodeStrings(amr); err != nil {
		return gatehouse.Session{}, fmt.Errorf("decode amr: %w", err)
	}
	s.CreatedAt, s.LastActiveAt, s.ExpiresAt, s.AuthTime = created.Time, lastActive.Time, expires.Time, auth.Time
	s.RevokedAt, s.DeviceRef = revoked.ptr(), deviceRef.String
	return s, nil
}

// encodeStrings stores a string list as a JSON array; nil becomes [].
func encodeStrings(v []string) (string, error) {
	if len(v) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeStrings reads a JSON array back; [] (or NULL) becomes nil, so a
// value stored as nil round-trips unchanged.
func decodeStrings(b []byte) ([]string, error) {
	var v []string
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, err
		}
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

// --- refresh tokens ---

const refreshTokenColumns = `id, session_id, user_id, hash, created_at, expires_at, used_at`

// CreateRefreshToken inserts t. ErrConflict when the id or hash exists, and
// also when the session or user does not (a foreign key refuses the row).
func (q *queries) CreateRefreshToken(ctx context.Context, t gatehouse.RefreshToken) error {
	_, err := q.exec(ctx,
		`INSERT INTO refresh_tokens (`+refreshTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.SessionID, t.UserID, t.Hash, timeArg(q.dialect, t.CreatedAt),
		timeArg(q.dialect, t.ExpiresAt), nullTimeArg(q.dialect, t.UsedAt))
	return translate("create refresh token", err)
}

// GetRefreshTokenByHash returns the token whatever its state (used,
// expired). ErrNotFound when there is none. The hash is not in the error
// message.
func (q *queries) GetRefreshTokenByHash(ctx context.Context, hash []byte) (gatehouse.RefreshToken, error) {
	var (
		t                      gatehouse.RefreshToken
		created, expires, used timeScanner
	)
	err := q.queryRow(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.SessionID, &t.UserID, &t.Hash, &created, &expires, &used)
	if err != nil {
		return gatehouse.RefreshToken{}, translate("get refresh token by hash", err)
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = created.Time, expires.Time, used.ptr()
	return t, nil
}

// UseRefreshToken sets UsedAt = now in one conditional UPDATE (WHERE
// used_at IS NULL) and reports whether this call did it: of concurrent
// callers exactly one gets true. PostgreSQL re-checks the condition after
// waiting for a concurrent writer's row lock; SQLite runs writers one at a
// time. False, without error, for an unknown id too. Expiry is not checked
// here: the caller checks ExpiresAt on the token it read.
func (q *queries) UseRefreshToken(ctx context.Context, id string, now time.Time) (bool, error) {
	res, err := q.exec(ctx,
		`UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL`, timeArg(q.dialect, now), id)
	n, err := rowsAffected(fmt.Sprintf("use refresh token %q", id), res, err)
	return n == 1, err
}

// ConsumeRefreshToken marks the unused token with this hash used and
// returns it, in one UPDATE ... RETURNING (single use under concurrency as
// UseRefreshToken). ErrNotFound when no unused token has the hash; the
// hash is not in the error message.
func (q *queries) ConsumeRefreshToken(ctx context.Context, hash []byte, now time.Time) (gatehouse.RefreshToken, error) {
	var (
		t                      gatehouse.RefreshToken
		created, expires, used timeScanner
	)
	err := q.queryRow(ctx,
		`UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL RETURNING `+refreshTokenColumns,
		timeArg(q.dialect, now), hash).
		Scan(&t.ID, &t.SessionID, &t.UserID, &t.Hash, &created, &expires, &used)
	if err != nil {
		return gatehouse.RefreshToken{}, translate("consume refresh token", err)
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = created.Time, expires.Time, used.ptr()
	return t, nil
}

// --- one-time tokens ---

const oneTimeTokenColumns = `id, user_id, purpose, hash, created_at, expires_at, used_at, data`

// CreateOneTimeToken inserts t. ErrConflict when the id or hash exists, and
// also when the user does not (a foreign key refuses the row).
func (q *queries) CreateOneTimeToken(ctx context.Context, t gatehouse.OneTimeToken) error {
	_, err := q.exec(ctx,
		`INSERT INTO one_time_tokens (`+oneTimeTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.UserID, string(t.Purpose), t.Hash, timeArg(q.dialect, t.CreatedAt),
		timeArg(q.dialect, t.ExpiresAt), nullTimeArg(q.dialect, t.UsedAt), t.Data)
	return translate("create one-time token", err)
}

// ConsumeOneTimeToken marks the token used and returns it (UsedAt = now) in
// one UPDATE ... RETURNING whose WHERE checks purpose, hash, unused and
// ExpiresAt strictly after now, so of concurrent callers exactly one gets
// the row (see UseRefreshToken for why). ErrNotFound when the token is
// unknown, has another purpose, is used, superseded or expired; the hash is
// not in the error message.
func (q *queries) ConsumeOneTimeToken(ctx context.Context, purpose gatehouse.OneTimePurpose, hash []byte, now time.Time) (gatehouse.OneTimeToken, error) {
	var (
		t                      gatehouse.OneTimeToken
		p                      string
		created, expires, used timeScanner
	)
	n := timeArg(q.dialect, now)
	err := q.queryRow(ctx,
		`UPDATE one_time_tokens SET used_at = ? WHERE purpose = ? AND hash = ? AND used_at IS NULL AND expires_at > ? `+
			`RETURNING `+oneTimeTokenColumns,
		n, string(purpose), hash, n,
	).Scan(&t.ID, &t.UserID, &p, &t.Hash, &created, &expires, &used, &t.Data)
	if err != nil {
		return gatehouse.OneTimeToken{}, translate(fmt.Sprintf("consume %s token", purpose), err)
	}
	t.Purpose = gatehouse.OneTimePurpose(p)
	t.CreatedAt, t.ExpiresAt, t.UsedAt = created.Time, expires.Time, used.ptr()
	return t, nil
}

// SupersedeOneTimeTokens sets UsedAt = now on every unused token of the
// user with this purpose, so only tokens created after it can be consumed.
// Tokens already used keep their UsedAt. An unknown user is not an error.
func (q *queries) SupersedeOneTimeTokens(ctx context.Context, userID string, purpose gatehouse.OneTimePurpose, now time.Time) error {
	_, err := q.exec(ctx,
		`UPDATE one_time_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
		timeArg(q.dialect, now), userID, string(purpose))
	return translate(fmt.Sprintf("supersede %s tokens of user %q", purpose, userID), err)
}

// DeleteStaleOneTimeTokens deletes tokens whose ExpiresAt or UsedAt is
// strictly before cutoff and reports how many went.
func (q *queries) DeleteStaleOneTimeTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	c := timeArg(q.dialect, cutoff)
	res, err := q.exec(ctx, `DELETE FROM one_time_tokens WHERE expires_at < ? OR used_at < ?`, c, c)
	return rowsAffected("delete stale one-time tokens", res, err)
}

const countActiveSessionsSQL = `SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?`

// CountActiveSessions counts the sessions that are not revoked and expire
// strictly after now, whoever's they are. The partial index
// sessions_active_idx (expires_at, only unrevoked rows) serves it.
func (q *queries) CountActiveSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := q.queryRow(ctx, countActiveSessionsSQL, timeArg(q.dialect, now)).Scan(&n)
	return n, translate("count active sessions", err)
}
