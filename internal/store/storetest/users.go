package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// userCases cover Users (and GetUser's Roles, which Roles tests further).
var userCases = []testCase{
	{name: "Users/CreateGet", covers: []string{"CreateUser", "GetUser", "GetUserByEmail", "GetUserForUpdate"}, fn: testUsersCreateGet},
	{name: "Users/ZeroValuesRoundTrip", covers: []string{"CreateUser", "GetUser"}, fn: testUsersZeroValuesRoundTrip},
	{name: "Users/GetNotFound", covers: []string{"GetUser", "GetUserForUpdate", "GetUserByEmail"}, fn: testUsersGetNotFound},
	{name: "Users/CreateDuplicate", covers: []string{"CreateUser"}, fn: testUsersCreateDuplicate},
	{name: "Users/CreateEmailRace", covers: []string{"CreateUser"}, fn: testUsersCreateEmailRace},
	{name: "Users/Update", covers: []string{"UpdateUser"}, fn: testUsersUpdate},
	{name: "Users/UpdateNotFound", covers: []string{"UpdateUser"}, fn: testUsersUpdateNotFound},
	{name: "Users/UpdateEmailTaken", covers: []string{"UpdateUser"}, fn: testUsersUpdateEmailTaken},
	{name: "Users/Delete", covers: []string{"DeleteUser"}, fn: testUsersDelete},
	{name: "Users/DeleteCascades", covers: []string{"DeleteUser"}, fn: testUsersDeleteCascades},
	{name: "Users/SetRoles", covers: []string{"SetUserRoles"}, fn: testUsersSetRoles},
	{name: "Users/SetRolesNotFound", covers: []string{"SetUserRoles"}, fn: testUsersSetRolesNotFound},
	{name: "Users/SetRolesRollback", covers: []string{"SetUserRoles"}, fn: testUsersSetRolesRollback},
	{name: "Users/RolesByteOrder", covers: []string{"GetUser", "SetUserRoles", "DeleteRole"}, fn: testUsersRolesByteOrder},
	{name: "Users/GetForUpdateInTx", covers: []string{"GetUserForUpdate"}, fn: testUsersGetForUpdateInTx},
	{name: "Users/GetForUpdateSerializes", covers: []string{"GetUserForUpdate"}, fn: testUsersGetForUpdateSerializes},
}

// newUser returns a user with every field set to a non-zero value.
func newUser() gatehouse.User {
	id := gatehouse.NewID()
	return gatehouse.User{
		ID:            id,
		Email:         gatehouse.Email("u-" + id + "@example.com"),
		EmailVerified: true,
		Name:          "Ada Lovelace — Grüße 🌍",
		PhoneNumber:   "+15551234567",
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		FailedLogins:  3,
		LockedUntil:   ptr(base.Add(15 * time.Minute)),
		LockedByAdmin: true,
		LockReason:    "suspicious activity",
		MFAEnabled:    true,
		NotificationPreferences: map[string][]string{
			"new_device":       {"email", "sms"},
			"password_changed": {"email"},
			"muted":            {},
		},
		CreatedAt:   base.Add(-24 * time.Hour),
		UpdatedAt:   base,
		LastLoginAt: ptr(base.Add(-time.Hour)),
	}
}

// minimalUser has only what every account needs; everything optional is
// its zero value.
func minimalUser() gatehouse.User {
	id := gatehouse.NewID()
	return gatehouse.User{ID: id, Email: gatehouse.Email("m-" + id + "@example.com"), CreatedAt: base, UpdatedAt: base}
}

func createUser(t *testing.T, s store.Store) gatehouse.User {
	t.Helper()
	u := minimalUser()
	require.NoError(t, s.CreateUser(t.Context(), u))
	return u
}

// requireUser compares every stored field; Roles are compared as given in
// want (nil when none).
func requireUser(t *testing.T, want, got gatehouse.User) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Email, got.Email)
	require.Equal(t, want.EmailVerified, got.EmailVerified)
	require.Equal(t, want.Name, got.Name)
	require.Equal(t, want.PhoneNumber, got.PhoneNumber)
	require.Equal(t, want.PasswordHash, got.PasswordHash)
	require.Equal(t, want.FailedLogins, got.FailedLogins)
	requireTimePtr(t, want.LockedUntil, got.LockedUntil, "LockedUntil")
	require.Equal(t, want.LockedByAdmin, got.LockedByAdmin)
	require.Equal(t, want.LockReason, got.LockReason)
	require.Equal(t, want.MFAEnabled, got.MFAEnabled)
	require.Equal(t, want.MFAMethods, got.MFAMethods, "MFAMethods (of active factors; see MFA/UserMethods)")
	require.Equal(t, want.Roles, got.Roles)
	if len(want.NotificationPreferences) == 0 {
		require.Nil(t, got.NotificationPreferences, "no preferences read back as nil")
	} else {
		require.Equal(t, want.NotificationPreferences, got.NotificationPreferences)
	}
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.UpdatedAt, got.UpdatedAt, "UpdatedAt")
	requireTimePtr(t, want.LastLoginAt, got.LastLoginAt, "LastLoginAt")
}

func testUsersCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser()
	require.NoError(t, s.CreateUser(ctx, u))
	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	requireUser(t, u, got)
	got, err = s.GetUserByEmail(ctx, u.Email)
	require.NoError(t, err)
	requireUser(t, u, got)
	got, err = s.GetUserForUpdate(ctx, u.ID) // outside a transaction: a plain read
	require.NoError(t, err)
	requireUser(t, u, got)

	// CreateUser stores no roles, even when the struct carries some.
	withRoles := newUser()
	withRoles.Roles = []string{"admin"}
	require.NoError(t, s.CreateUser(ctx, withRoles))
	got, err = s.GetUser(ctx, withRoles.ID)
	require.NoError(t, err)
	require.Nil(t, got.Roles)
}

func testUsersZeroValuesRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := minimalUser()
	require.NoError(t, s.CreateUser(ctx, u))
	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	requireUser(t, u, got)
	require.Empty(t, got.PasswordHash)
	require.False(t, got.HasPassword())
	require.Nil(t, got.LockedUntil)
	require.Nil(t, got.LastLoginAt)
	require.Nil(t, got.NotificationPreferences)
	require.Nil(t, got.Roles)

	// An empty, non-nil preferences map reads back as nil too.
	empty := minimalUser()
	empty.NotificationPreferences = map[string][]string{}
	require.NoError(t, s.CreateUser(ctx, empty))
	got, err = s.GetUser(ctx, empty.ID)
	require.NoError(t, err)
	require.Nil(t, got.NotificationPreferences)
}

func testUsersGetNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	createUser(t, s) // the table is not empty
	_, err := s.GetUser(ctx, gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetUserForUpdate(ctx, gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetUserByEmail(ctx, "nobody@example.com")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
}

func testUsersCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser()
	require.NoError(t, s.CreateUser(ctx, u))

	sameEmail := minimalUser()
	sameEmail.Email = u.Email
	err := s.CreateUser(ctx, sameEmail)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetUser(ctx, sameEmail.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	sameID := minimalUser()
	sameID.ID = u.ID
	require.ErrorIs(t, s.CreateUser(ctx, sameID), store.ErrConflict)
	_, err = s.GetUserByEmail(ctx, sameID.Email)
	require.ErrorIs(t, err, store.ErrNotFound)

	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	requireUser(t, u, got)
}

// testUsersCreateEmailRace: of sign-ups racing for one address, one
// account is made; the others conflict and leave nothing behind.
func testUsersCreateEmailRace(t *testing.T, s store.Store) {
	email := minimalUser().Email
	ids := make([]string, racers)
	for i := range ids {
		ids[i] = gatehouse.NewID()
	}
	win := requireOneWinner(t, s, "sign up with one email", store.ErrConflict, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		u := minimalUser()
		u.ID, u.Email = ids[i], email
		return won(q.CreateUser(ctx, u))
	})
	got, err := s.GetUserByEmail(t.Context(), email)
	require.NoError(t, err)
	require.Equal(t, ids[win], got.ID)
	for i, id := range ids {
		if i != win {
			_, err := s.GetUser(t.Context(), id)
			require.ErrorIs(t, err, store.ErrNotFound, "loser %d", i)
		}
	}
}

func testUsersUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser()
	require.NoError(t, s.CreateUser(ctx, u))
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"moderator"}))
	oldEmail := u.Email

	// Change every mutable field, and try to change the immutable ones.
	upd := u
	upd.Email = gatehouse.Email("new-" + u.ID + "@example.org")
	upd.EmailVerified = false
	upd.Name = "Augusta Ada King"
	upd.PhoneNumber = ""
	upd.PasswordHash = ""
	upd.FailedLogins = 0
	upd.LockedUntil = nil
	upd.LockedByAdmin = false
	upd.LockReason = ""
	upd.MFAEnabled = false
	upd.NotificationPreferences = map[string][]string{"login": {"push"}}
	upd.UpdatedAt = base.Add(time.Hour)
	upd.LastLoginAt = ptr(base.Add(30 * time.Minute))
	upd.CreatedAt = base.Add(99 * time.Hour) // ignored
	upd.Roles = []string{"admin"}            // ignored: SetUserRoles owns roles
	require.NoError(t, s.UpdateUser(ctx, upd))

	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	want := upd
	want.CreatedAt = u.CreatedAt
	want.Roles = []string{"moderator"}
	requireUser(t, want, got)
	_, err = s.GetUserByEmail(ctx, oldEmail)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err = s.GetUserByEmail(ctx, upd.Email)
	require.NoError(t, err)
	require.Equal(t, u.ID, got.ID)

	// And back: pointers set again, preferences cleared to nil.
	upd2 := got
	upd2.LockedUntil = ptr(base.Add(2 * time.Hour))
	upd2.LastLoginAt = nil
	upd2.NotificationPreferences = nil
	upd2.FailedLogins = 7
	upd2.UpdatedAt = base.Add(2 * time.Hour)
	require.NoError(t, s.UpdateUser(ctx, upd2))
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	requireUser(t, upd2, got)

	// Writing unchanged values is still a match, not "not found".
	require.NoError(t, s.UpdateUser(ctx, upd2))
}

func testUsersUpdateNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	createUser(t, s)
	err := s.UpdateUser(ctx, newUser())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
}

func testUsersUpdateEmailTaken(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := newUser(), newUser()
	require.NoError(t, s.CreateUser(ctx, a))
	require.NoError(t, s.CreateUser(ctx, b))
	upd := b
	upd.Email = a.Email
	upd.Name = "changed"
	err := s.UpdateUser(ctx, upd)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)
	got, err := s.GetUser(ctx, b.ID)
	require.NoError(t, err)
	requireUser(t, b, got)
}

func testUsersDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := newUser(), newUser()
	require.NoError(t, s.CreateUser(ctx, u))
	require.NoError(t, s.CreateUser(ctx, other))
	require.NoError(t, s.DeleteUser(ctx, u.ID))
	_, err := s.GetUser(ctx, u.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetUserByEmail(ctx, u.Email)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteUser(ctx, u.ID), store.ErrNotFound)
	_, err = s.GetUser(ctx, other.ID)
	require.NoError(t, err)
	// The email is free again.
	again := minimalUser()
	again.Email = u.Email
	require.NoError(t, s.CreateUser(ctx, again))
}

func testUsersDeleteCascades(t *testing.T, s store.Store) {
	ctx := t.Context()
	type owned struct {
		user    gatehouse.User
		session gatehouse.Session
		refresh gatehouse.RefreshToken
		ott     gatehouse.OneTimeToken
		ottRaw  []byte
	}
	mk := func() owned {
		var o owned
		o.user = createUser(t, s)
		require.NoError(t, s.SetUserRoles(ctx, o.user.ID, []string{"admin", "user"}))
		o.session = createSession(t, s, o.user.ID)
		o.refresh = createRefreshToken(t, s, o.session)
		o.ott, o.ottRaw = createOneTimeToken(t, s, o.user.ID, gatehouse.PurposeResetPassword)
		return o
	}
	doomed, kept := mk(), mk()
	require.NoError(t, s.DeleteUser(ctx, doomed.user.ID))

	_, err := s.GetSession(ctx, doomed.session.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetRefreshTokenByHash(ctx, doomed.refresh.Hash)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ConsumeOneTimeToken(ctx, gatehouse.PurposeResetPassword, doomed.ott.Hash, base)
	require.ErrorIs(t, err, store.ErrNotFound)
	// Role assignments went too: a new account reusing the id starts
	// without roles (and its creation is not blocked by leftovers).
	reborn := minimalUser()
	reborn.ID = doomed.user.ID
	require.NoError(t, s.CreateUser(ctx, reborn))
	got, err := s.GetUser(ctx, reborn.ID)
	require.NoError(t, err)
	require.Nil(t, got.Roles)
	// The recreated account does not inherit the old one's tokens: the
	// hashes are free for new rows.
	tok := doomed.ott
	tok.ID, tok.UserID = gatehouse.NewID(), reborn.ID
	require.NoError(t, s.CreateOneTimeToken(ctx, tok))

	// Another user's belongings are untouched.
	got, err = s.GetUser(ctx, kept.user.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"admin", "user"}, got.Roles)
	_, err = s.GetSession(ctx, kept.session.ID)
	require.NoError(t, err)
	_, err = s.GetRefreshTokenByHash(ctx, kept.refresh.Hash)
	require.NoError(t, err)
	_, err = s.ConsumeOneTimeToken(ctx, gatehouse.PurposeResetPassword, kept.ott.Hash, base)
	require.NoError(t, err)
}

func testUsersSetRoles(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := newUser(), createUser(t, s)
	require.NoError(t, s.CreateUser(ctx, u))
	require.NoError(t, s.SetUserRoles(ctx, other.ID, []string{"moderator"}))

	// Duplicates collapse; the result is sorted whatever the input order.
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"user", "moderator", "admin", "user", "admin"}))
	all := []string{"admin", "moderator", "user"}
	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, all, got.Roles)
	got, err = s.GetUserByEmail(ctx, u.Email)
	require.NoError(t, err)
	require.Equal(t, all, got.Roles)
	got, err = s.GetUserForUpdate(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, all, got.Roles)
	// The rest of the user is untouched.
	u.Roles = all
	requireUser(t, u, got)

	// Replace, not add.
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"user"}))
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"user"}, got.Roles)
	// Setting the same set again is fine.
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"user"}))
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"admin", "user"}))
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"admin", "user"}, got.Roles)

	// Empty and nil both clear.
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{}))
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Nil(t, got.Roles)
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"admin"}))
	require.NoError(t, s.SetUserRoles(ctx, u.ID, nil))
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Nil(t, got.Roles)

	// The other user's roles never moved.
	got, err = s.GetUser(ctx, other.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"moderator"}, got.Roles)
}

func testUsersSetRolesNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.SetUserRoles(ctx, gatehouse.NewID(), []string{"admin"})
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.SetUserRoles(ctx, gatehouse.NewID(), nil)
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown user is refused even with no roles")

	u := createUser(t, s)
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"moderator"}))
	for _, names := range [][]string{
		{"superuser"},
		{"admin", "superuser"},
		{"user", "Admin"}, // names are exact: no case folding
	} {
		err := s.SetUserRoles(ctx, u.ID, names)
		require.ErrorIs(t, err, store.ErrNotFound, "%v", names)
		require.NotErrorIs(t, err, store.ErrConflict)
		require.ErrorContains(t, err, fmt.Sprintf("%q", names[len(names)-1]), "the message names the unknown role")
		// Refused before any write: nothing changed, even outside a tx.
		got, err := s.GetUser(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"moderator"}, got.Roles, "%v", names)
	}
}

func testUsersSetRolesRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"user"}))
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.NoError(t, tx.SetUserRoles(ctx, u.ID, []string{"admin", "moderator"}))
		got, err := tx.GetUser(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"admin", "moderator"}, got.Roles, "the tx sees its own change")
		return tx.SetUserRoles(ctx, u.ID, []string{"admin", "nope"})
	})
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, `"nope"`)
	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"user"}, got.Roles, "the rolled-back tx left no partial change")
}

// testUsersRolesByteOrder: role names come back in byte order on every
// engine, whatever the database's collation (en_US would put "Zed" last and
// ignore the underscore); deleting a role takes its assignments.
func testUsersRolesByteOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Suffixed, so the case can share a store: role names are unique.
	sfx := "-" + gatehouse.NewID()
	names := map[string]string{}
	var ids []string
	for _, name := range []string{"Zed", "alpha", "émigré", "_internal"} {
		r := newRole(name + sfx)
		require.NoError(t, s.CreateRole(ctx, r))
		names[name] = r.Name
		ids = append(ids, r.ID)
	}
	u := createUser(t, s)
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{names["émigré"], names["alpha"], "user", names["Zed"], "admin", names["_internal"]}))
	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, []string{names["Zed"], names["_internal"], "admin", names["alpha"], "user", names["émigré"]}, got.Roles)

	require.NoError(t, s.DeleteRole(ctx, ids[0])) // Zed
	got, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, []string{names["_internal"], "admin", names["alpha"], "user", names["émigré"]}, got.Roles)
}

func testUsersGetForUpdateInTx(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := newUser()
	require.NoError(t, s.CreateUser(ctx, u))
	require.NoError(t, s.SetUserRoles(ctx, u.ID, []string{"user"}))
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.GetUserForUpdate(ctx, u.ID)
		if err != nil {
			return err
		}
		u.Roles = []string{"user"}
		requireUser(t, u, got)
		got.RecordFailedLogin(base.Add(time.Minute), 0, 0)
		return tx.UpdateUser(ctx, got)
	})
	require.NoError(t, err)
	want := u
	want.RecordFailedLogin(base.Add(time.Minute), 0, 0)
	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, want.FailedLogins, got.FailedLogins)

	err = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.GetUserForUpdate(ctx, gatehouse.NewID())
		return err
	})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// testUsersGetForUpdateSerializes runs read-modify-write cycles in parallel
// transactions: none may lose an update. On PostgreSQL this needs the row
// lock (READ COMMITTED would let two cycles read the same count); on SQLite
// write transactions exclude each other.
func testUsersGetForUpdateSerializes(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				got, err := tx.GetUserForUpdate(ctx, u.ID)
				if err != nil {
					return err
				}
				time.Sleep(time.Millisecond) // widen the window a lost update needs
				got.FailedLogins++
				return tx.UpdateUser(ctx, got)
			})
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, workers, got.FailedLogins)
}
