package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- users ---

const userColumns = `id, email, email_verified, name, phone_number, password_hash, failed_logins, ` +
	`locked_until, locked_by_admin, lock_reason, mfa_enabled, notification_preferences, ` +
	`created_at, updated_at, last_login_at`

// CreateUser inserts u; Roles and MFAMethods are not stored by it.
// ErrConflict when the id or the email exists. The email is compared as
// given: normalising it is the caller's job (gatehouse.ParseEmail). A nil or
// empty NotificationPreferences is stored as {}.
func (q *queries) CreateUser(ctx context.Context, u gatehouse.User) error {
	prefs, err := encodePreferences(u.NotificationPreferences)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	_, err = q.exec(ctx,
		`INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, string(u.Email), u.EmailVerified, u.Name, u.PhoneNumber, u.PasswordHash, u.FailedLogins,
		nullTimeArg(q.dialect, u.LockedUntil), u.LockedByAdmin, u.LockReason, u.MFAEnabled, prefs,
		timeArg(q.dialect, u.CreatedAt), timeArg(q.dialect, u.UpdatedAt), nullTimeArg(q.dialect, u.LastLoginAt))
	return translate("create user", err)
}

// GetUser returns the user with Roles filled: role names in ascending byte
// order, nil when the user has none. MFAMethods lists the methods of the
// active factors when MFAEnabled (nil otherwise), and
// NotificationPreferences is nil when none are set. ErrNotFound when there
// is no such user.
func (q *queries) GetUser(ctx context.Context, id string) (gatehouse.User, error) {
	return q.getUser(ctx, fmt.Sprintf("get user %q", id), `id = ?`, id, false)
}

// GetUserForUpdate is GetUser that also locks the users row until the
// transaction ends on PostgreSQL (FOR UPDATE), so concurrent
// read-modify-write cycles serialize instead of losing updates. SQLite
// needs no lock clause: its write transactions (BEGIN IMMEDIATE) already
// exclude each other. Outside a transaction the lock ends with the
// statement, which makes it a plain GetUser.
func (q *queries) GetUserForUpdate(ctx context.Context, id string) (gatehouse.User, error) {
	return q.getUser(ctx, fmt.Sprintf("get user %q for update", id), `id = ?`, id, true)
}

// GetUserByEmail finds the user by email, compared exactly (byte for byte,
// on both engines): pass the normalised address. ErrNotFound when there is
// none.
func (q *queries) GetUserByEmail(ctx context.Context, email gatehouse.Email) (gatehouse.User, error) {
	// The address stays out of the error: it would end up in logs.
	return q.getUser(ctx, "get user by email", `email = ?`, string(email), false)
}

// getUser reads one user matching where (one "?" bound to arg) with its
// role names in the same statement (a login reads users twice, and every
// round trip counts), then its MFA methods when MFA is on.
func (q *queries) getUser(ctx context.Context, op, where string, arg any, forUpdate bool) (gatehouse.User, error) {
	query := `SELECT ` + userColumns + `, ` + q.roleNamesJSON("users.id") + ` FROM users WHERE ` + where
	if forUpdate && q.dialect == store.Postgres {
		query += ` FOR UPDATE`
	}
	var roles string
	u, err := scanUser(q.queryRow(ctx, query, arg), &roles)
	if err != nil {
		return gatehouse.User{}, translate(op, err)
	}
	if u.Roles, err = decodeStrings([]byte(roles)); err != nil {
		return gatehouse.User{}, fmt.Errorf("%s: decode roles: %w", op, err)
	}
	slices.Sort(u.Roles) // byte order on both engines, whatever the collation
	if u.MFAEnabled {
		if u.MFAMethods, err = q.activeMFAMethods(ctx, u.ID); err != nil {
			return gatehouse.User{}, translate(op+": read mfa methods", err)
		}
	}
	return u, nil
}

// roleNamesJSON is a scalar subquery: the names of the roles of the user
// whose id is userID (a column), as a JSON array, [] when none.
func (q *queries) roleNamesJSON(userID string) string {
	agg := `json_group_array(r.name)`
	if q.dialect == store.Postgres {
		agg = `COALESCE(json_agg(r.name)::text, '[]')`
	}
	return `(SELECT ` + agg + ` FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = ` + userID + `)`
}

// scanUser reads the userColumns of one row, then any extra columns into
// extra (ListUsers appends a role name). Roles are left nil.
func scanUser(r row, extra ...any) (gatehouse.User, error) {
	var (
		u                                    gatehouse.User
		email                                string
		lockedUntil, created, updated, login timeScanner
		prefs                                []byte
	)
	dest := []any{
		&u.ID, &email, &u.EmailVerified, &u.Name, &u.PhoneNumber, &u.PasswordHash, &u.FailedLogins,
		&lockedUntil, &u.LockedByAdmin, &u.LockReason, &u.MFAEnabled, &prefs,
		&created, &updated, &login,
	}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return gatehouse.User{}, err
	}
	var err error
	if u.NotificationPreferences, err = decodePreferences(prefs); err != nil {
		return gatehouse.User{}, err
	}
	u.Email = gatehouse.Email(email)
	u.LockedUntil, u.LastLoginAt = lockedUntil.ptr(), login.ptr()
	u.CreatedAt, u.UpdatedAt = created.Time, updated.Time
	return u, nil
}

// UpdateUser writes every mutable field of u: all but ID, CreatedAt, Roles
// (see SetUserRoles) and MFAMethods. ErrNotFound when there is no such user;
// ErrConflict when the new email belongs to another user.
func (q *queries) UpdateUser(ctx context.Context, u gatehouse.User) error {
	op := fmt.Sprintf("update user %q", u.ID)
	prefs, err := encodePreferences(u.NotificationPreferences)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	res, err := q.exec(ctx,
		`UPDATE users SET email = ?, email_verified = ?, name = ?, phone_number = ?, password_hash = ?, `+
			`failed_logins = ?, locked_until = ?, locked_by_admin = ?, lock_reason = ?, mfa_enabled = ?, `+
			`notification_preferences = ?, updated_at = ?, last_login_at = ? WHERE id = ?`,
		string(u.Email), u.EmailVerified, u.Name, u.PhoneNumber, u.PasswordHash,
		u.FailedLogins, nullTimeArg(q.dialect, u.LockedUntil), u.LockedByAdmin, u.LockReason, u.MFAEnabled,
		prefs, timeArg(q.dialect, u.UpdatedAt), nullTimeArg(q.dialect, u.LastLoginAt), u.ID)
	if err == nil {
		q.changedUsers(ctx, false, u.ID)
	}
	return requireOneRow(op, res, err)
}

// DeleteUser removes the user; the schema's ON DELETE CASCADE removes its
// sessions, refresh tokens, one-time tokens and role assignments in the
// same statement. ErrNotFound when there is no such user.
func (q *queries) DeleteUser(ctx context.Context, id string) error {
	res, err := q.exec(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err == nil {
		q.changedUsers(ctx, false, id)
	}
	return requireOneRow(fmt.Sprintf("delete user %q", id), res, err)
}

// SetUserRoles makes the user's roles exactly the named ones (duplicates
// ignored; an empty list removes every role). ErrNotFound when the user or
// any name does not exist; the message names the unknown roles. Everything
// is checked before anything is written, so a refused call changes nothing
// even outside a transaction. Assignments that stay keep their created_at
// (when the role was granted); new ones get the current time. The
// statements are not atomic by themselves: run it in InTx when it must
// commit together with other writes or race with other role changes.
func (q *queries) SetUserRoles(ctx context.Context, userID string, roles []string) error {
	op := fmt.Sprintf("set roles of user %q", userID)
	var one int
	if err := q.queryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, userID).Scan(&one); err != nil {
		return translate(op, err)
	}
	names := slices.Clone(roles)
	slices.Sort(names)
	names = slices.Compact(names)
	ids, err := q.roleIDs(ctx, names)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}

	args := make([]any, 0, len(ids)+1)
	args = append(args, userID)
	del := `DELETE FROM user_roles WHERE user_id = ?`
	if len(ids) > 0 {
		del += ` AND role_id NOT IN (` + placeholders(len(ids)) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	if _, err := q.exec(ctx, del, args...); err != nil {
		return translate(op, err)
	}
	q.changedUsers(ctx, false, userID)
	now := timeArg(q.dialect, time.Now())
	for _, roleID := range ids {
		_, err := q.exec(ctx,
			`INSERT INTO user_roles (user_id, role_id, created_at) VALUES (?, ?, ?) ON CONFLICT (user_id, role_id) DO NOTHING`,
			userID, roleID, now)
		if isForeignKeyViolation(err) {
			// The user (or role) was deleted after the checks above.
			return fmt.Errorf("%s: %w (deleted concurrently)", op, store.ErrNotFound)
		}
		if err != nil {
			return translate(op, err)
		}
	}
	return nil
}

// roleIDs resolves role names (sorted, unique) to ids in the same order.
// ErrNotFound naming every unknown name when any is missing.
func (q *queries) roleIDs(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := q.query(ctx, `SELECT id, name FROM roles WHERE name IN (`+placeholders(len(names))+`)`, args...)
	if err != nil {
		return nil, translate("resolve role names", err)
	}
	defer rows.Close()
	byName := make(map[string]string, len(names))
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, translate("resolve role names", err)
		}
		byName[name] = id
	}
	if err := rows.Err(); err != nil {
		return nil, translate("resolve role names", err)
	}
	ids := make([]string, 0, len(names))
	var unknown []string
	for _, n := range names {
		id, ok := byName[n]
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		ids = append(ids, id)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown role %s: %w", strings.Join(unknown, ", "), store.ErrNotFound)
	}
	return ids, nil
}

// placeholders is "?, ?, ..." for n values (n > 0). Queries built with it
// differ only by n, so the rebind cache stays small.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// encodePreferences stores nil and empty alike as {}.
func encodePreferences(p map[string][]string) (string, error) {
	if len(p) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode notification preferences: %w", err)
	}
	return string(b), nil
}

// decodePreferences reads {} (or NULL) back as a nil map, so a user without
// preferences round-trips unchanged; a nil map reads like an empty one.
func decodePreferences(b []byte) (map[string][]string, error) {
	var p map[string][]string
	if len(b) > 0 {
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("decode notification preferences: %w", err)
		}
	}
	if len(p) == 0 {
		return nil, nil
	}
	return p, nil
}
