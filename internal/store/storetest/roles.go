package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// roleCases cover Roles. They list every role (or user) or create roles by
// fixed names, so each has a store of its own.
var roleCases = []testCase{
	{name: "Roles/SystemRoles", fresh: true, covers: []string{"ListRoles", "GetRole"}, fn: testRolesSystemRoles},
	{name: "Roles/CreateGet", fresh: true, covers: []string{"CreateRole", "GetRole", "ListRoles"}, fn: testRolesCreateGet},
	{name: "Roles/ListOrder", fresh: true, covers: []string{"ListRoles"}, fn: testRolesListOrder},
	{name: "Roles/GetNotFound", fresh: true, covers: []string{"GetRole"}, fn: testRolesGetNotFound},
	{name: "Roles/CreateDuplicate", fresh: true, covers: []string{"CreateRole"}, fn: testRolesCreateDuplicate},
	{name: "Roles/Update", fresh: true, covers: []string{"UpdateRole"}, fn: testRolesUpdate},
	{name: "Roles/UpdateNotFound", fresh: true, covers: []string{"UpdateRole"}, fn: testRolesUpdateNotFound},
	{name: "Roles/Delete", fresh: true, covers: []string{"DeleteRole"}, fn: testRolesDelete},
	{name: "Roles/DeleteNotFound", fresh: true, covers: []string{"DeleteRole"}, fn: testRolesDeleteNotFound},
	{name: "Roles/UserPermissions", fresh: true, covers: []string{"UserPermissions"}, fn: testRolesUserPermissions},
	{name: "Roles/CountUsersWithRole", fresh: true, covers: []string{"CountUsersWithRoleForUpdate"}, fn: testRolesCountUsersWithRole},
	{name: "Roles/CountUsersWithRoleRace", fresh: true, covers: []string{"CountUsersWithRoleForUpdate"}, fn: testRolesCountUsersWithRoleRace},
	{name: "Roles/Rollback", fresh: true, covers: []string{"CreateRole", "UpdateRole", "DeleteRole", "UserPermissions", "ListUsers", "ListRoles"}, fn: testRolesRollback},
	{name: "ListUsers/Pagination", fresh: true, covers: []string{"ListUsers"}, fn: testListUsersPagination},
	{name: "ListUsers/Empty", fresh: true, covers: []string{"ListUsers"}, fn: testListUsersEmpty},
	{name: "ListUsers/Search", fresh: true, covers: []string{"ListUsers"}, fn: testListUsersSearch},
	{name: "ListUsers/SearchLiteralWildcards", fresh: true, covers: []string{"ListUsers"}, fn: testListUsersSearchLiteralWildcards},
	{name: "ListUsers/SearchPagination", fresh: true, covers: []string{"ListUsers"}, fn: testListUsersSearchPagination},
	{name: "ListUsers/InvalidLimit", fresh: true, covers: []string{"ListUsers"}, fn: testListUsersInvalidLimit},
}

// systemRoles is what the migrations seed, in name order.
var systemRoles = []gatehouse.Role{
	{ID: "role_admin", Name: gatehouse.RoleAdmin, Description: "Full access to every operation.", Permissions: []string{"*"}, System: true},
	{ID: "role_moderator", Name: gatehouse.RoleModerator, Description: "Reads and locks accounts, reads the audit log.", Permissions: []string{"users:read", "users:lock", "audit:read"}, System: true},
	{ID: "role_user", Name: gatehouse.RoleUser, Description: "A regular account.", System: true},
}

func newRole(name string, perms ...string) gatehouse.Role {
	return gatehouse.Role{
		ID:          gatehouse.NewID(),
		Name:        name,
		Description: "Edits posts — Grüße 🌍 \"quoted\"",
		Permissions: perms,
		CreatedAt:   base.Add(-time.Hour),
		UpdatedAt:   base,
	}
}

func createRole(t *testing.T, s store.Store, name string, perms ...string) gatehouse.Role {
	t.Helper()
	r := newRole(name, perms...)
	require.NoError(t, s.CreateRole(t.Context(), r))
	return r
}

// requireRole compares every stored field; empty permissions read back as
// nil.
func requireRole(t *testing.T, want, got gatehouse.Role) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Name, got.Name)
	require.Equal(t, want.Description, got.Description)
	if len(want.Permissions) == 0 {
		require.Nil(t, got.Permissions, "no permissions read back as nil")
	} else {
		require.Equal(t, want.Permissions, got.Permissions)
	}
	require.Equal(t, want.System, got.System)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.UpdatedAt, got.UpdatedAt, "UpdatedAt")
}

// requireSystemRole compares a seeded role, whose times are the migration's.
func requireSystemRole(t *testing.T, want, got gatehouse.Role) {
	t.Helper()
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	requireRole(t, want, got)
	require.False(t, got.CreatedAt.IsZero())
	require.Equal(t, time.UTC, got.CreatedAt.Location())
	require.Equal(t, time.UTC, got.UpdatedAt.Location())
}

func roleNames(roles []gatehouse.Role) []string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.Name
	}
	return names
}

func testRolesSystemRoles(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.ListRoles(ctx)
	require.NoError(t, err)
	require.Len(t, got, len(systemRoles))
	for i, want := range systemRoles {
		requireSystemRole(t, want, got[i])
		one, err := s.GetRole(ctx, want.ID)
		require.NoError(t, err)
		requireSystemRole(t, want, one)
	}
	// They are usable as soon as the schema is.
	u := createUser(t, s)
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{gatehouse.RoleAdmin, gatehouse.RoleModerator, gatehouse.RoleUser}))
}

func testRolesCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newRole("editor", "posts:read", "posts:write", "comments:*")
	require.NoError(t, s.CreateRole(ctx, r))
	got, err := s.GetRole(ctx, r.ID)
	require.NoError(t, err)
	requireRole(t, r, got)

	// Nil and empty permissions are stored alike and read back as nil.
	for i, perms := range [][]string{nil, {}} {
		empty := newRole(fmt.Sprintf("empty-%d", i))
		empty.Permissions = perms
		empty.Description = ""
		require.NoError(t, s.CreateRole(ctx, empty))
		got, err := s.GetRole(ctx, empty.ID)
		require.NoError(t, err)
		requireRole(t, empty, got)
		require.Nil(t, got.Permissions)
	}

	// The System flag is stored as given.
	sys := newRole("auditor", "audit:read")
	sys.System = true
	require.NoError(t, s.CreateRole(ctx, sys))
	got, err = s.GetRole(ctx, sys.ID)
	require.NoError(t, err)
	requireRole(t, sys, got)

	// ListRoles carries every field too.
	all, err := s.ListRoles(ctx)
	require.NoError(t, err)
	require.Len(t, all, len(systemRoles)+4)
	i := slices.IndexFunc(all, func(x gatehouse.Role) bool { return x.ID == r.ID })
	require.GreaterOrEqual(t, i, 0)
	requireRole(t, r, all[i])
}

func testRolesListOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Inserted out of order, and with punctuation a linguistic collation
	// would ignore: the order is by name, in byte order ('-' < '.' < letters).
	for _, name := range []string{"zeta", "a.z", "az", "a-z", "a_z", "moderators", "0day"} {
		createRole(t, s, name)
	}
	got, err := s.ListRoles(ctx)
	require.NoError(t, err)
	names := roleNames(got)
	want := slices.Clone(names)
	slices.Sort(want)
	require.Equal(t, want, names)
	require.Equal(t, []string{"0day", "a-z", "a.z", "a_z", "admin", "az", "moderator", "moderators", "user", "zeta"}, names)
}

func testRolesGetNotFound(t *testing.T, s store.Store) {
	_, err := s.GetRole(t.Context(), gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
	// Lookup is by id, not name.
	_, err = s.GetRole(t.Context(), gatehouse.RoleAdmin)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testRolesCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := createRole(t, s, "editor", "posts:write")

	sameName := newRole("editor", "everything:*")
	err := s.CreateRole(ctx, sameName)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetRole(ctx, sameName.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	sameID := newRole("writer")
	sameID.ID = r.ID
	require.ErrorIs(t, s.CreateRole(ctx, sameID), store.ErrConflict)

	// System role names and ids are taken as well.
	require.ErrorIs(t, s.CreateRole(ctx, newRole(gatehouse.RoleAdmin)), store.ErrConflict)
	squat := newRole("squatter")
	squat.ID = "role_user"
	require.ErrorIs(t, s.CreateRole(ctx, squat), store.ErrConflict)

	// Nothing changed.
	got, err := s.GetRole(ctx, r.ID)
	require.NoError(t, err)
	requireRole(t, r, got)
	all, err := s.ListRoles(ctx)
	require.NoError(t, err)
	require.Len(t, all, len(systemRoles)+1)
	requireSystemRole(t, systemRoles[2], all[3])
}

func testRolesUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := createRole(t, s, "editor", "posts:read")
	other := createRole(t, s, "viewer", "posts:read")

	upd := r
	upd.Description = "New description"
	upd.Permissions = []string{"posts:*", "comments:delete"}
	upd.UpdatedAt = base.Add(time.Hour)
	upd.Name = "renamed"                     // ignored
	upd.System = true                        // ignored
	upd.CreatedAt = base.Add(99 * time.Hour) // ignored
	require.NoError(t, s.UpdateRole(ctx, upd))

	got, err := s.GetRole(ctx, r.ID)
	require.NoError(t, err)
	want := upd
	want.Name, want.System, want.CreatedAt = r.Name, r.System, r.CreatedAt
	requireRole(t, want, got)

	// Permissions can be emptied; nil reads back as nil.
	upd.Permissions = nil
	require.NoError(t, s.UpdateRole(ctx, upd))
	got, err = s.GetRole(ctx, r.ID)
	require.NoError(t, err)
	require.Nil(t, got.Permissions)

	// A system role's description and permissions may change; it stays a
	// system role with its name.
	mod := systemRoles[1]
	mod.Description = "Moderates."
	mod.Permissions = append(slices.Clone(mod.Permissions), "sessions:revoke")
	mod.UpdatedAt = base
	mod.System = false // ignored
	require.NoError(t, s.UpdateRole(ctx, mod))
	got, err = s.GetRole(ctx, mod.ID)
	require.NoError(t, err)
	require.True(t, got.System)
	require.Equal(t, gatehouse.RoleModerator, got.Name)
	require.Equal(t, "Moderates.", got.Description)
	require.Equal(t, mod.Permissions, got.Permissions)
	requireTime(t, base, got.UpdatedAt, "UpdatedAt")

	// Other roles are untouched.
	got, err = s.GetRole(ctx, other.ID)
	require.NoError(t, err)
	requireRole(t, other, got)
}

func testRolesUpdateNotFound(t *testing.T, s store.Store) {
	err := s.UpdateRole(t.Context(), newRole("ghost"))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
	all, err := s.ListRoles(t.Context())
	require.NoError(t, err)
	require.Len(t, all, len(systemRoles), "an update never inserts")
}

func testRolesDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	doomed := createRole(t, s, "editor", "posts:write")
	kept := createRole(t, s, "viewer", "posts:read")
	a, b, c := createUser(t, s), createUser(t, s), createUser(t, s)
	require.NoError(t, s.SetUserRoles(ctx, a.ID, []string{"editor", "user"}))
	require.NoError(t, s.SetUserRoles(ctx, b.ID, []string{"editor", "viewer"}))
	require.NoError(t, s.SetUserRoles(ctx, c.ID, []string{"viewer"}))

	require.NoError(t, s.DeleteRole(ctx, doomed.ID))
	_, err := s.GetRole(ctx, doomed.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteRole(ctx, doomed.ID), store.ErrNotFound)
	all, err := s.ListRoles(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"admin", "moderator", "user", "viewer"}, roleNames(all))

	// The assignments went with it, wherever users are read.
	want := map[string][]string{a.ID: {"user"}, b.ID: {"viewer"}, c.ID: {"viewer"}}
	for id, roles := range want {
		got, err := s.GetUser(ctx, id)
		require.NoError(t, err)
		require.Equal(t, roles, got.Roles)
	}
	page, err := s.ListUsers(ctx, store.UserQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, page, 3)
	for _, u := range page {
		require.Equal(t, want[u.ID], u.Roles)
	}
	perms, err := s.UserPermissions(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"posts:read"}, perms)
	// The name is free again, and a new role by that name is not
	// assigned to anyone: no dangling rows were left to inherit.
	again := createRole(t, s, "editor", "posts:write")
	got, err := s.GetUser(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"user"}, got.Roles)
	require.NoError(t, s.SetUserRoles(ctx, a.ID, []string{"editor"}))
	require.NoError(t, s.DeleteRole(ctx, again.ID))

	// A role nobody holds deletes as well; the rest is untouched.
	got2, err := s.GetRole(ctx, kept.ID)
	require.NoError(t, err)
	requireRole(t, kept, got2)
	lonely := createRole(t, s, "lonely")
	require.NoError(t, s.DeleteRole(ctx, lonely.ID))
}

func testRolesDeleteNotFound(t *testing.T, s store.Store) {
	err := s.DeleteRole(t.Context(), gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
	// By id, not name: "admin" names a role but is no id.
	require.ErrorIs(t, s.DeleteRole(t.Context(), gatehouse.RoleAdmin), store.ErrNotFound)
	all, err := s.ListRoles(t.Context())
	require.NoError(t, err)
	require.Len(t, all, len(systemRoles))
}

func testRolesUserPermissions(t *testing.T, s store.Store) {
	ctx := t.Context()
	editor := createRole(t, s, "editor", "posts:read", "posts:write")
	createRole(t, s, "viewer", "posts:read")
	createRole(t, s, "unused", "billing:*")
	u, bare, other := createUser(t, s), createUser(t, s), createUser(t, s)
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"editor", "viewer", "moderator", "user"}))
	require.NoError(t, s.SetUserRoles(ctx, other.ID, []string{"admin"}))

	// Every role's permissions, repeats kept; "user" has none to add.
	got, err := s.UserPermissions(ctx, u.ID)
	require.NoError(t, err)
	require.ElementsMatch(t,
		[]string{"posts:read", "posts:write", "posts:read", "users:read", "users:lock", "audit:read"}, got)

	got, err = s.UserPermissions(ctx, other.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"*"}, got)

	// No roles, or no such user: empty, and no error.
	got, err = s.UserPermissions(ctx, bare.ID)
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = s.UserPermissions(ctx, gatehouse.NewID())
	require.NoError(t, err)
	require.Empty(t, got)

	// A role's new permissions apply at once.
	editor.Permissions = []string{"posts:*"}
	require.NoError(t, s.UpdateRole(ctx, editor))
	got, err = s.UserPermissions(ctx, u.ID)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"posts:*", "posts:read", "users:read", "users:lock", "audit:read"}, got)
}

func testRolesRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	r := newRole("editor", "posts:write")
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.NoError(t, tx.CreateRole(ctx, r))
		require.NoError(t, tx.SetUserRoles(ctx, u.ID, []string{"editor"}))
		require.NoError(t, tx.UpdateRole(ctx, gatehouse.Role{ID: "role_user", Description: "changed", UpdatedAt: base}))
		require.NoError(t, tx.DeleteRole(ctx, "role_moderator"))
		// The transaction sees its own writes.
		got, err := tx.UserPermissions(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"posts:write"}, got)
		page, err := tx.ListUsers(ctx, store.UserQuery{Limit: 5})
		require.NoError(t, err)
		require.Len(t, page, 1)
		require.Equal(t, []string{"editor"}, page[0].Roles)
		all, err := tx.ListRoles(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"admin", "editor", "user"}, roleNames(all))
		return errBoom
	})
	require.ErrorIs(t, err, errBoom)

	_, err = s.GetRole(ctx, r.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	all, err := s.ListRoles(ctx)
	require.NoError(t, err)
	require.Len(t, all, len(systemRoles))
	for i, want := range systemRoles {
		requireSystemRole(t, want, all[i])
	}
	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Nil(t, got.Roles)
}

// collectUsers pages through ListUsers with q.Search and page size limit
// until a page comes back short, checking every page is full but the last.
// It returns the pages' sizes and the users in the order they came.
func collectUsers(t *testing.T, s store.Store, search string, limit int) ([]int, []gatehouse.User) {
	t.Helper()
	var (
		sizes []int
		all   []gatehouse.User
		after string
	)
	for range 100 {
		page, err := s.ListUsers(t.Context(), store.UserQuery{After: after, Limit: limit, Search: search})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), limit)
		sizes = append(sizes, len(page))
		all = append(all, page...)
		if len(page) < limit {
			return sizes, all
		}
		after = page[len(page)-1].ID
	}
	t.Fatal("ListUsers never returned a short page")
	return nil, nil
}

func userIDs(users []gatehouse.User) []string {
	return idsOf(users, func(x gatehouse.User) string { return x.ID })
}

// requireAscendingIDs checks ids are strictly ascending in byte order, so a
// page has no duplicates and pages follow each other without overlap.
func requireAscendingIDs(t *testing.T, users []gatehouse.User) {
	t.Helper()
	for i := 1; i < len(users); i++ {
		require.Lessf(t, users[i-1].ID, users[i].ID, "ids out of order at %d", i)
	}
}

func testListUsersPagination(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Ids ascend opposite to names (ids are time-ordered), so an engine
	// returning assignments in key order would hand back unsorted names.
	createRole(t, s, "zz-late")
	time.Sleep(2 * time.Millisecond)
	createRole(t, s, "aa-early")
	want := map[string]gatehouse.User{}
	for i := range 7 {
		u := newUser()
		if i%2 == 0 {
			u = minimalUser()
		}
		require.NoError(t, s.CreateUser(ctx, u))
		switch i {
		case 1:
			u.Roles = []string{"admin", "moderator", "user"}
		case 4:
			u.Roles = []string{"user"}
		case 5:
			u.Roles = []string{"moderator", "user"}
		case 6:
			u.Roles = []string{"aa-early", "admin", "zz-late"}
		}
		// Given in reverse: the store sorts.
		given := slices.Clone(u.Roles)
		slices.Reverse(given)
		require.NoError(t, s.SetUserRoles(ctx, u.ID, given))
		want[u.ID] = u
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	for _, tc := range []struct {
		limit int
		sizes []int
	}{
		{3, []int{3, 3, 1}},
		{1, []int{1, 1, 1, 1, 1, 1, 1, 0}},
		{7, []int{7, 0}},
		{100, []int{7}},
	} {
		sizes, got := collectUsers(t, s, "", tc.limit)
		require.Equal(t, tc.sizes, sizes, "limit %d", tc.limit)
		requireAscendingIDs(t, got)
		// No gaps, no duplicates: exactly every user, in id order, each
		// with every field and its sorted roles.
		require.Equal(t, ids, userIDs(got), "limit %d", tc.limit)
		for _, u := range got {
			requireUser(t, want[u.ID], u)
		}
	}

	// After is exclusive and need not be an existing id.
	page, err := s.ListUsers(ctx, store.UserQuery{After: ids[2], Limit: 2})
	require.NoError(t, err)
	require.Equal(t, ids[3:5], userIDs(page))
	require.NoError(t, s.DeleteUser(ctx, ids[3]))
	page, err = s.ListUsers(ctx, store.UserQuery{After: ids[3], Limit: 2})
	require.NoError(t, err)
	require.Equal(t, ids[4:6], userIDs(page))
	page, err = s.ListUsers(ctx, store.UserQuery{After: ids[6], Limit: 3})
	require.NoError(t, err)
	require.Empty(t, page)
}

func testListUsersEmpty(t *testing.T, s store.Store) {
	ctx := t.Context()
	page, err := s.ListUsers(ctx, store.UserQuery{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, page)
	page, err = s.ListUsers(ctx, store.UserQuery{Limit: 10, Search: "anything"})
	require.NoError(t, err)
	require.Empty(t, page)

	createUser(t, s)
	page, err = s.ListUsers(ctx, store.UserQuery{Limit: 10, Search: "no such text"})
	require.NoError(t, err)
	require.Empty(t, page)
}

// searchUser creates a user with this email (local part; the domain is
// fixed) and name.
func searchUser(t *testing.T, s store.Store, local, name string) gatehouse.User {
	t.Helper()
	u := minimalUser()
	u.Email = gatehouse.Email(local + "@search.example")
	u.Name = name
	require.NoError(t, s.CreateUser(t.Context(), u))
	return u
}

// matches is the oracle for Search on ASCII data: a case-insensitive
// substring of the email or the name.
func matches(u gatehouse.User, search string) bool {
	s := strings.ToLower(search)
	return strings.Contains(strings.ToLower(string(u.Email)), s) || strings.Contains(strings.ToLower(u.Name), s)
}

// requireSearch checks ListUsers with search returns exactly wantIDs (in
// id order), agreeing with the oracle over users.
func requireSearch(t *testing.T, s store.Store, users []gatehouse.User, search string, want ...gatehouse.User) {
	t.Helper()
	page, err := s.ListUsers(t.Context(), store.UserQuery{Limit: 100, Search: search})
	require.NoError(t, err)
	wantIDs := userIDs(want)
	slices.Sort(wantIDs)
	require.Equalf(t, wantIDs, userIDs(page), "search %q", search)
	oracle := []string{}
	for _, u := range users {
		if matches(u, search) {
			oracle = append(oracle, u.ID)
		}
	}
	slices.Sort(oracle)
	require.Equalf(t, oracle, wantIDs, "search %q: test expectation disagrees with the oracle", search)
}

func testListUsersSearch(t *testing.T, s store.Store) {
	ctx := t.Context()
	grace := searchUser(t, s, "grace.hopper", "Grace Hopper")
	ada := searchUser(t, s, "ada", "Ada Lovelace")
	alan := searchUser(t, s, "alan.turing", "Alan Turing")
	navy := searchUser(t, s, "navy", "Navy Admiral Grace")
	users := []gatehouse.User{grace, ada, alan, navy}
	require.NoError(t, s.SetUserRoles(ctx, grace.ID, []string{"user", "admin"}))

	requireSearch(t, s, users, "hopper", grace)             // email and name
	requireSearch(t, s, users, "HOPPER", grace)             // case-insensitive
	requireSearch(t, s, users, "lOvElAcE", ada)             // name only
	requireSearch(t, s, users, "TURING@", alan)             // email only, upper-case
	requireSearch(t, s, users, "grace", grace, navy)        // email of one, name of another
	requireSearch(t, s, users, "navy ", navy)               // spaces count
	requireSearch(t, s, users, "@SEARCH.example", users...) // every email
	requireSearch(t, s, users, "a", grace, ada, alan, navy) // matched twice, listed once
	requireSearch(t, s, users, "ada lovelace", ada)         // the whole name
	requireSearch(t, s, users, "ada@search.example", ada)   // the whole email
	requireSearch(t, s, users, "ada@search.example.org")    // longer than any value
	requireSearch(t, s, users, "zzz")                       // nothing
	requireSearch(t, s, users, "Hopper Grace")              // not a word search

	// Results carry roles and every field.
	page, err := s.ListUsers(ctx, store.UserQuery{Limit: 10, Search: "GRACE.H"})
	require.NoError(t, err)
	require.Len(t, page, 1)
	grace.Roles = []string{"admin", "user"}
	requireUser(t, grace, page[0])
}

func testListUsersSearchLiteralWildcards(t *testing.T, s store.Store) {
	percent := searchUser(t, s, "promo", "50%_off")
	plain := searchUser(t, s, "five", "5000")
	under := searchUser(t, s, "snake_case", "Snake")
	slash := searchUser(t, s, "slash", `back\slash`)
	users := []gatehouse.User{percent, plain, under, slash}

	requireSearch(t, s, users, "%_", percent)
	requireSearch(t, s, users, "%", percent)        // not a wildcard: "5000" has no %
	requireSearch(t, s, users, "_", percent, under) // not a wildcard either
	requireSearch(t, s, users, "50%", percent)
	requireSearch(t, s, users, "5%0")        // % matches only itself
	requireSearch(t, s, users, "5_0")        // _ matches only itself
	requireSearch(t, s, users, "E_C", under) // case-insensitive around _
	requireSearch(t, s, users, `\`, slash)   // the escape character is literal too
	requireSearch(t, s, users, `k\s`, slash)
	requireSearch(t, s, users, `\%`) // not an escaped %
	requireSearch(t, s, users, `\_`)
	requireSearch(t, s, users, "'") // quotes are data
	requireSearch(t, s, users, "5", percent, plain)
}

func testListUsersSearchPagination(t *testing.T, s store.Store) {
	var users, hits []gatehouse.User
	for i := range 9 {
		name := fmt.Sprintf("Other %d", i)
		if i%3 != 1 {
			name = fmt.Sprintf("Target %d", i)
		}
		u := searchUser(t, s, fmt.Sprintf("user%d", i), name)
		users = append(users, u)
		if matches(u, "TARGET") {
			hits = append(hits, u)
		}
	}
	require.Len(t, hits, 6)
	sizes, got := collectUsers(t, s, "tArGeT", 4)
	require.Equal(t, []int{4, 2}, sizes)
	requireAscendingIDs(t, got)
	wantIDs := userIDs(hits)
	slices.Sort(wantIDs)
	require.Equal(t, wantIDs, userIDs(got))

	// A cursor that is itself not a match still pages correctly.
	other := users[1]
	require.False(t, matches(other, "target"))
	page, err := s.ListUsers(t.Context(), store.UserQuery{After: other.ID, Limit: 10, Search: "target"})
	require.NoError(t, err)
	requireAscendingIDs(t, page)
	for _, u := range page {
		require.Greater(t, u.ID, other.ID)
		require.True(t, matches(u, "target"))
	}
}

func testListUsersInvalidLimit(t *testing.T, s store.Store) {
	createUser(t, s)
	for _, limit := range []int{0, -1} {
		_, err := s.ListUsers(t.Context(), store.UserQuery{Limit: limit})
		require.Error(t, err, "limit %d", limit)
		require.NotErrorIs(t, err, store.ErrNotFound)
		require.NotErrorIs(t, err, store.ErrConflict)
	}
}

func testRolesCountUsersWithRole(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.CountUsersWithRoleForUpdate(ctx, gatehouse.RoleAdmin)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = s.CountUsersWithRoleForUpdate(ctx, "no-such-role")
	require.NoError(t, err)
	require.Zero(t, n, "an unknown role has no holders")

	a, b, c := createUser(t, s), createUser(t, s), createUser(t, s)
	require.NoError(t, s.SetUserRoles(ctx, a.ID, []string{gatehouse.RoleAdmin, gatehouse.RoleUser}))
	require.NoError(t, s.SetUserRoles(ctx, b.ID, []string{gatehouse.RoleAdmin}))
	require.NoError(t, s.SetUserRoles(ctx, c.ID, []string{gatehouse.RoleModerator}))
	n, err = s.CountUsersWithRoleForUpdate(ctx, gatehouse.RoleAdmin)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	// Inside a transaction it counts the transaction's own changes.
	errRollback := errors.New("roll back")
	err = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.NoError(t, tx.SetUserRoles(ctx, c.ID, []string{gatehouse.RoleAdmin}))
		n, err := tx.CountUsersWithRoleForUpdate(ctx, gatehouse.RoleAdmin)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	n, err = s.CountUsersWithRoleForUpdate(ctx, gatehouse.RoleAdmin)
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

// testRolesCountUsersWithRoleRace: transactions that count a role's
// holders and, finding none, assign it (the first administrator) run one
// after the other: however many race, exactly one assigns.
func testRolesCountUsersWithRoleRace(t *testing.T, s store.Store) {
	users := make([]gatehouse.User, racers)
	for i := range users {
		users[i] = createUser(t, s)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, racers)
	assigned := make([]bool, racers)
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
				assigned[i] = false // afresh if InTx runs fn again
				n, err := tx.CountUsersWithRoleForUpdate(ctx, gatehouse.RoleAdmin)
				if err != nil || n > 0 {
					return err
				}
				assigned[i] = true
				return tx.SetUserRoles(ctx, users[i].ID, []string{gatehouse.RoleAdmin})
			})
		})
	}
	close(start)
	wg.Wait()
	var winners []int
	for i, err := range errs {
		require.NoError(t, err, "racer %d", i)
		if assigned[i] {
			winners = append(winners, i)
		}
	}
	require.Len(t, winners, 1, "exactly one transaction found no administrator")
	n, err := s.CountUsersWithRoleForUpdate(t.Context(), gatehouse.RoleAdmin)
	require.NoError(t, err)
	require.Equal(t, 1, n, "exactly one transaction assigned the role")
	got, err := s.GetUser(t.Context(), users[winners[0]].ID)
	require.NoError(t, err)
	require.Equal(t, []string{gatehouse.RoleAdmin}, got.Roles)
}
