package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// --- roles ---

// Asserted on its own as well as through store.Queries, so the check holds
// whatever the composition of Queries.
var _ store.Roles = (*queries)(nil)

const roleColumns = `id, name, description, permissions, system, created_at, updated_at`

// ListRoles returns every role, system roles included, ordered by name in
// byte order. The sort happens in Go, as for a user's role names, so the
// order does not depend on the database collation (which, under a
// linguistic locale, would ignore '-' and '.'). The role table is small.
// The slice is empty, not nil, when there are none.
func (q *queries) ListRoles(ctx context.Context) ([]gatehouse.Role, error) {
	const op = "list roles"
	rows, err := q.query(ctx, `SELECT `+roleColumns+` FROM roles`)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	roles := make([]gatehouse.Role, 0, 8)
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, translate(op, err)
		}
		roles = append(roles, r)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	slices.SortFunc(roles, func(a, b gatehouse.Role) int { return cmp.Compare(a.Name, b.Name) })
	return roles, nil
}

// GetRole returns the role with this id. Empty permissions read back as
// nil. ErrNotFound when there is none.
func (q *queries) GetRole(ctx context.Context, id string) (gatehouse.Role, error) {
	r, err := scanRole(q.queryRow(ctx, `SELECT `+roleColumns+` FROM roles WHERE id = ?`, id))
	if err != nil {
		return gatehouse.Role{}, translate(fmt.Sprintf("get role %q", id), err)
	}
	return r, nil
}

// CreateRole inserts r, System flag included (the migrations seed the
// system roles; services create only non-system ones). Nil or empty
// Permissions are stored as []. Names and permissions are stored as given:
// validating them (gatehouse.ValidRoleName, gatehouse.ValidPermission) is
// the caller's job. ErrConflict when the id or the name exists.
func (q *queries) CreateRole(ctx context.Context, r gatehouse.Role) error {
	perms, err := encodeStrings(r.Permissions)
	if err != nil {
		return fmt.Errorf("create role %q: encode permissions: %w", r.Name, err)
	}
	_, err = q.exec(ctx,
		`INSERT INTO roles (`+roleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Name, r.Description, perms, r.System,
		timeArg(q.dialect, r.CreatedAt), timeArg(q.dialect, r.UpdatedAt))
	return translate(fmt.Sprintf("create role %q", r.Name), err)
}

// UpdateRole writes r's Description, Permissions (nil stored as []) and
// UpdatedAt; ID selects the row, and Name, System and CreatedAt are left
// as they are. It does not refuse system roles: their permissions may be
// edited, and which edits are allowed is the caller's policy. ErrNotFound
// when there is no such role.
func (q *queries) UpdateRole(ctx context.Context, r gatehouse.Role) error {
	op := fmt.Sprintf("update role %q", r.ID)
	perms, err := encodeStrings(r.Permissions)
	if err != nil {
		return fmt.Errorf("%s: encode permissions: %w", op, err)
	}
	res, err := q.exec(ctx,
		`UPDATE roles SET description = ?, permissions = ?, updated_at = ? WHERE id = ?`,
		r.Description, perms, timeArg(q.dialect, r.UpdatedAt), r.ID)
	return requireOneRow(op, res, err)
}

// DeleteRole deletes the role; its assignments go with it by the foreign
// key's ON DELETE CASCADE, in the same statement. It deletes system roles
// too: refusing that is the caller's policy (gatehouse.Role.System).
// ErrNotFound when there is no such role.
func (q *queries) DeleteRole(ctx context.Context, id string) error {
	res, err := q.exec(ctx, `DELETE FROM roles WHERE id = ?`, id)
	if err == nil {
		q.changedUsers(ctx, true) // its holders lose its name
	}
	return requireOneRow(fmt.Sprintf("delete role %q", id), res, err)
}

// CountUsersWithRoleForUpdate counts the holders of the role named name.
// On PostgreSQL it first locks the role's row until the transaction ends
// with FOR NO KEY UPDATE: another such call waits, and when it goes on its
// count (a new snapshot under READ COMMITTED) sees what this transaction
// committed; role assignments by others take only a key-share lock and do
// not wait. SQLite needs no lock clause: its write transactions (BEGIN
// IMMEDIATE) already exclude each other. Outside a transaction the lock
// ends with the statement.
func (q *queries) CountUsersWithRoleForUpdate(ctx context.Context, name string) (int, error) {
	op := fmt.Sprintf("count holders of role %q", name)
	if q.dialect == store.Postgres {
		var id string
		err := q.queryRow(ctx, `SELECT id FROM roles WHERE name = ? FOR NO KEY UPDATE`, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		if err != nil {
			return 0, translate(op, err)
		}
	}
	var n int
	err := q.queryRow(ctx, `SELECT COUNT(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE r.name = ?`, name).Scan(&n)
	if err != nil {
		return 0, translate(op, err)
	}
	return n, nil
}

// UserPermissions returns the concatenated permissions of every role the
// user holds, read in one statement (roles in name order, each role's
// permissions as stored), so repeats are possible. The slice is empty, not
// nil, when the user has no roles or does not exist: that is no error,
// since an authorizer asking for a deleted user's permissions must simply
// get none.
func (q *queries) UserPermissions(ctx context.Context, userID string) ([]string, error) {
	op := fmt.Sprintf("read permissions of user %q", userID)
	rows, err := q.query(ctx,
		`SELECT r.permissions FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE ur.user_id = ? ORDER BY r.name`,
		userID)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	perms := make([]string, 0, 8)
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, translate(op, err)
		}
		p, err := decodeStrings(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: decode permissions: %w", op, err)
		}
		perms = append(perms, p...)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	return perms, nil
}

func scanRole(r row) (gatehouse.Role, error) {
	var (
		role             gatehouse.Role
		perms            []byte
		created, updated timeScanner
	)
	err := r.Scan(&role.ID, &role.Name, &role.Description, &perms, &role.System, &created, &updated)
	if err != nil {
		return gatehouse.Role{}, err
	}
	if role.Permissions, err = decodeStrings(perms); err != nil {
		return gatehouse.Role{}, fmt.Errorf("decode permissions of role %q: %w", role.ID, err)
	}
	role.CreatedAt, role.UpdatedAt = created.Time, updated.Time
	return role, nil
}

// --- listing users ---

// pageUserColumns is userColumns qualified by the alias "u" of the page
// subquery in ListUsers: the joined tables have id and created_at too.
var pageUserColumns = "u." + strings.ReplaceAll(userColumns, ", ", ", u.")

// likeEscaper escapes LIKE's wildcards and the escape character itself, so
// a search matches its text literally. The escape character is declared in
// each query (ESCAPE '\'): PostgreSQL defaults to it, SQLite has none.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListUsers returns up to q.Limit users whose id is greater than q.After,
// in ascending id order, each with Roles filled as GetUser fills them
// (sorted names; nil when none). The slice is empty, not nil, when no user
// is left.
//
// Ids are compared and sorted by the database. On SQLite that is byte
// order; on PostgreSQL it is the database collation, which orders the ids
// Gatehouse makes (UUIDv7: fixed-width lower-case hex, dashes at fixed
// places) as bytes do under any collation, and keeps the primary key
// index usable, which a COLLATE "C" would not.
//
// A non-empty q.Search keeps users whose email or name contains it:
// lower(column) LIKE lower(pattern) on both engines, with %, _ and \ in the
// search matched literally. That is case-insensitive for ASCII everywhere;
// beyond ASCII, SQLite's lower() changes nothing while PostgreSQL's follows
// the database locale. A substring match cannot use an index, so a search
// scans users in id order until the page is full (or the table ends).
//
// Users and their roles come from one statement (the page as a subquery,
// LEFT JOINed to its roles), so there is no query per user and the roles
// are those of the same snapshot. A q.Limit below 1 is an error.
func (q *queries) ListUsers(ctx context.Context, uq store.UserQuery) ([]gatehouse.User, error) {
	const op = "list users"
	if uq.Limit < 1 {
		return nil, fmt.Errorf("%s: limit must be at least 1, got %d", op, uq.Limit)
	}
	where, args := `id > ?`, []any{uq.After}
	if uq.Search != "" {
		where += ` AND (lower(email) LIKE lower(?) ESCAPE '\' OR lower(name) LIKE lower(?) ESCAPE '\')`
		pattern := "%" + likeEscaper.Replace(uq.Search) + "%"
		args = append(args, pattern, pattern)
	}
	args = append(args, uq.Limit)
	rows, err := q.query(ctx,
		`SELECT `+pageUserColumns+`, r.name FROM (`+
			`SELECT `+userColumns+` FROM users WHERE `+where+` ORDER BY id LIMIT ?`+
			`) u LEFT JOIN user_roles ur ON ur.user_id = u.id LEFT JOIN roles r ON r.id = ur.role_id `+
			`ORDER BY u.id`,
		args...)
	if err != nil {
		return nil, translate(op, err)
	}
	defer rows.Close()
	// The capacity is capped: Limit is a bound, not a promise of rows.
	users := make([]gatehouse.User, 0, min(uq.Limit, 100))
	for rows.Next() {
		var role sql.NullString
		u, err := scanUser(rows, &role)
		if err != nil {
			return nil, translate(op, err)
		}
		// One row per (user, role), a user's rows adjacent: fold them.
		if n := len(users); n == 0 || users[n-1].ID != u.ID {
			users = append(users, u)
		}
		if role.Valid {
			last := &users[len(users)-1]
			last.Roles = append(last.Roles, role.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, translate(op, err)
	}
	for i := range users {
		slices.Sort(users[i].Roles)
	}
	return users, nil
}
