package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- second factors ---

const mfaFactorColumns = `id, user_id, method, secret, phone_number, last_used_step, created_at, activated_at`

// CreateMFAFactor inserts f. ErrConflict when the id exists; ErrNotFound
// when the user does not.
func (q *queries) CreateMFAFactor(ctx context.Context, f gatehouse.MFAFactor) error {
	_, err := q.exec(ctx,
		`INSERT INTO mfa_factors (`+mfaFactorColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.UserID, f.Method, f.Secret, f.PhoneNumber, f.LastUsedStep,
		timeArg(q.dialect, f.CreatedAt), nullTimeArg(q.dialect, f.ActivatedAt))
	if err == nil && f.ActivatedAt != nil {
		q.changedUsers(ctx, false, f.UserID) // MFAMethods
	}
	if isForeignKeyViolation(err) {
		return fmt.Errorf("create mfa factor: user %q: %w", f.UserID, store.ErrNotFound)
	}
	return translate("create mfa factor", err)
}

// ListMFAFactors returns the user's factors, oldest first.
func (q *queries) ListMFAFactors(ctx context.Context, userID string) ([]gatehouse.MFAFactor, error) {
	rows, err := q.query(ctx, `SELECT `+mfaFactorColumns+` FROM mfa_factors WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, translate("list mfa factors", err)
	}
	defer rows.Close()
	var out []gatehouse.MFAFactor
	for rows.Next() {
		var (
			f                  gatehouse.MFAFactor
			created, activated timeScanner
		)
		if err := rows.Scan(&f.ID, &f.UserID, &f.Method, &f.Secret, &f.PhoneNumber, &f.LastUsedStep, &created, &activated); err != nil {
			return nil, translate("list mfa factors", err)
		}
		f.CreatedAt, f.ActivatedAt = created.Time, activated.ptr()
		out = append(out, f)
	}
	return out, translate("list mfa factors", rows.Err())
}

// ActivateMFAFactor marks the user's pending factor active, recording the
// TOTP step of the code that proved it.
func (q *queries) ActivateMFAFactor(ctx context.Context, userID, id string, step int64, now time.Time) error {
	res, err := q.exec(ctx,
		`UPDATE mfa_factors SET activated_at = ?, last_used_step = CASE WHEN ? > last_used_step THEN ? ELSE last_used_step END `+
			`WHERE id = ? AND user_id = ? AND activated_at IS NULL`,
		timeArg(q.dialect, now), step, step, id, userID)
	if err == nil {
		q.changedUsers(ctx, false, userID) // MFAMethods
	}
	return requireOneRow(fmt.Sprintf("activate mfa factor %q", id), res, err)
}

// DeleteMFAFactor removes the user's factor.
func (q *queries) DeleteMFAFactor(ctx context.Context, userID, id string) error {
	res, err := q.exec(ctx, `DELETE FROM mfa_factors WHERE id = ? AND user_id = ?`, id, userID)
	if err == nil {
		q.changedUsers(ctx, false, userID) // MFAMethods
	}
	return requireOneRow(fmt.Sprintf("delete mfa factor %q", id), res, err)
}

// AdvanceTOTPStep moves the factor's last used step forward to step, if
// it is behind: a conditional UPDATE, so one caller per step wins.
func (q *queries) AdvanceTOTPStep(ctx context.Context, id string, step int64) (bool, error) {
	res, err := q.exec(ctx, `UPDATE mfa_factors SET last_used_step = ? WHERE id = ? AND last_used_step < ?`, step, id, step)
	n, err := rowsAffected("advance totp step", res, err)
	return n == 1, err
}

// activeMFAMethods lists the methods of the user's active factors, sorted
// and without repeats.
func (q *queries) activeMFAMethods(ctx context.Context, userID string) ([]string, error) {
	rows, err := q.query(ctx, `SELECT DISTINCT method FROM mfa_factors WHERE user_id = ? AND activated_at IS NOT NULL`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.Sort(out)
	return out, rows.Err()
}

// --- backup codes ---

// ReplaceBackupCodes swaps the user's backup codes for a new unused set.
func (q *queries) ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	if _, err := q.exec(ctx, `DELETE FROM mfa_backup_codes WHERE user_id = ?`, userID); err != nil {
		return translate("replace backup codes", err)
	}
	for _, h := range hashes {
		_, err := q.exec(ctx, `INSERT INTO mfa_backup_codes (id, user_id, hash, created_at) VALUES (?, ?, ?, ?)`,
			gatehouse.NewID(), userID, h, timeArg(q.dialect, now))
		if isForeignKeyViolation(err) {
			return fmt.Errorf("replace backup codes: user %q: %w", userID, store.ErrNotFound)
		}
		if err != nil {
			return translate("replace backup codes", err)
		}
	}
	return nil
}

// UseBackupCode spends the user's unused code with this hash.
func (q *queries) UseBackupCode(ctx context.Context, userID string, hash []byte, now time.Time) (bool, error) {
	res, err := q.exec(ctx, `UPDATE mfa_backup_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL`,
		timeArg(q.dialect, now), userID, hash)
	n, err := rowsAffected("use backup code", res, err)
	return n == 1, err
}

// CountBackupCodes counts the user's unused codes.
func (q *queries) CountBackupCodes(ctx context.Context, userID string) (int, error) {
	var n int
	err := q.queryRow(ctx, `SELECT COUNT(*) FROM mfa_backup_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&n)
	return n, translate("count backup codes", err)
}

const countMFAUsersSQL = `SELECT (SELECT COUNT(*) FROM users), ` +
	`(SELECT COUNT(DISTINCT user_id) FROM mfa_factors WHERE activated_at IS NOT NULL)`

// CountMFAUsers counts the users, and the users with an activated factor
// (each once, whatever their number of factors). The partial index
// mfa_factors_active_user_idx (user_id, only activated rows) serves the
// second count.
func (q *queries) CountMFAUsers(ctx context.Context) (users, withMFA int64, err error) {
	err = q.queryRow(ctx, countMFAUsersSQL).Scan(&users, &withMFA)
	return users, withMFA, translate("count mfa users", err)
}
