package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// accountTests cover Users, Sessions, RefreshTokens and OneTimeTokens.
var accountTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Users/CreateGet", testUsersCreateGet},
	{"Users/ZeroValuesRoundTrip", testUsersZeroValuesRoundTrip},
	{"Users/GetNotFound", testUsersGetNotFound},
	{"Users/CreateDuplicate", testUsersCreateDuplicate},
	{"Users/Update", testUsersUpdate},
	{"Users/UpdateNotFound", testUsersUpdateNotFound},
	{"Users/UpdateEmailTaken", testUsersUpdateEmailTaken},
	{"Users/Delete", testUsersDelete},
	{"Users/DeleteCascades", testUsersDeleteCascades},
	{"Users/SetRoles", testUsersSetRoles},
	{"Users/SetRolesNotFound", testUsersSetRolesNotFound},
	{"Users/SetRolesRollback", testUsersSetRolesRollback},
	{"Users/GetForUpdateInTx", testUsersGetForUpdateInTx},
	{"Users/GetForUpdateSerializes", testUsersGetForUpdateSerializes},
	{"Sessions/CreateGet", testSessionsCreateGet},
	{"Sessions/CreateDuplicate", testSessionsCreateDuplicate},
	{"Sessions/CreateUnknownUser", testSessionsCreateUnknownUser},
	{"Sessions/GetNotFound", testSessionsGetNotFound},
	{"Sessions/List", testSessionsList},
	{"Sessions/Touch", testSessionsTouch},
	{"Sessions/Revoke", testSessionsRevoke},
	{"Sessions/RevokeUserSessions", testSessionsRevokeUserSessions},
	{"Sessions/DeleteStale", testSessionsDeleteStale},
	{"RefreshTokens/CreateGet", testRefreshTokensCreateGet},
	{"RefreshTokens/CreateDuplicate", testRefreshTokensCreateDuplicate},
	{"RefreshTokens/GetNotFound", testRefreshTokensGetNotFound},
	{"RefreshTokens/Use", testRefreshTokensUse},
	{"RefreshTokens/UseConcurrent", testRefreshTokensUseConcurrent},
	{"OneTimeTokens/CreateConsume", testOneTimeTokensCreateConsume},
	{"OneTimeTokens/CreateDuplicate", testOneTimeTokensCreateDuplicate},
	{"OneTimeTokens/ConsumeRefused", testOneTimeTokensConsumeRefused},
	{"OneTimeTokens/Supersede", testOneTimeTokensSupersede},
	{"OneTimeTokens/ConsumeConcurrent", testOneTimeTokensConsumeConcurrent},
	{"OneTimeTokens/DeleteStale", testOneTimeTokensDeleteStale},
}

// concurrentCallers is how many goroutines race for one single-use secret.
const concurrentCallers = 20

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
	require.Nil(t, got.MFAMethods, "MFAMethods is not stored yet")
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

// --- sessions ---

func newSession(userID string) gatehouse.Session {
	return gatehouse.Session{
		ID:           gatehouse.NewID(),
		UserID:       userID,
		CreatedAt:    base.Add(-time.Hour),
		LastActiveAt: base,
		ExpiresAt:    base.Add(30 * 24 * time.Hour),
		IPAddress:    "2001:db8::1",
		UserAgent:    "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
		DeviceID:     gatehouse.NewID(),
		Location:     "Zürich, CH",
		TrustScore:   85,
		AMR:          []string{"pwd", "otp"},
		MFA:          true,
		AuthTime:     base.Add(-time.Hour),
	}
}

func createSession(t *testing.T, s store.Store, userID string) gatehouse.Session {
	t.Helper()
	sess := newSession(userID)
	require.NoError(t, s.CreateSession(t.Context(), sess))
	return sess
}

func requireSession(t *testing.T, want, got gatehouse.Session) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.UserID, got.UserID)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.LastActiveAt, got.LastActiveAt, "LastActiveAt")
	requireTime(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")
	require.Equal(t, want.IPAddress, got.IPAddress)
	require.Equal(t, want.UserAgent, got.UserAgent)
	require.Equal(t, want.DeviceID, got.DeviceID)
	require.Equal(t, want.Location, got.Location)
	require.Equal(t, want.TrustScore, got.TrustScore)
	if len(want.AMR) == 0 {
		require.Nil(t, got.AMR)
	} else {
		require.Equal(t, want.AMR, got.AMR)
	}
	require.Equal(t, want.MFA, got.MFA)
	requireTime(t, want.AuthTime, got.AuthTime, "AuthTime")
	requireTimePtr(t, want.RevokedAt, got.RevokedAt, "RevokedAt")
}

func sessionIDs(ss []gatehouse.Session) []string {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

func testSessionsCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	full := newSession(u.ID)
	require.NoError(t, s.CreateSession(ctx, full))
	got, err := s.GetSession(ctx, full.ID)
	require.NoError(t, err)
	requireSession(t, full, got)

	// Zero values round-trip: no AMR, no MFA, empty strings, revoked.
	bare := gatehouse.Session{
		ID: gatehouse.NewID(), UserID: u.ID, CreatedAt: base, LastActiveAt: base,
		ExpiresAt: base.Add(time.Hour), AuthTime: base, RevokedAt: ptr(base.Add(time.Second)),
	}
	require.NoError(t, s.CreateSession(ctx, bare))
	got, err = s.GetSession(ctx, bare.ID)
	require.NoError(t, err)
	requireSession(t, bare, got)
	require.Nil(t, got.AMR)
	require.False(t, got.MFA)

	// An empty, non-nil AMR reads back as nil.
	empty := newSession(u.ID)
	empty.AMR = []string{}
	require.NoError(t, s.CreateSession(ctx, empty))
	got, err = s.GetSession(ctx, empty.ID)
	require.NoError(t, err)
	require.Nil(t, got.AMR)
}

func testSessionsCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	dup := newSession(u.ID)
	dup.ID = sess.ID
	dup.IPAddress = "192.0.2.1"
	err := s.CreateSession(ctx, dup)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)
	got, err := s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, sess, got)
}

func testSessionsCreateUnknownUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	createUser(t, s)
	sess := newSession(gatehouse.NewID())
	err := s.CreateSession(ctx, sess)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
	_, err = s.GetSession(ctx, sess.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testSessionsGetNotFound(t *testing.T, s store.Store) {
	_, err := s.GetSession(t.Context(), gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testSessionsList(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	now := base
	mk := func(userID string, lastActive time.Time, expires time.Time, revoked *time.Time) gatehouse.Session {
		sess := newSession(userID)
		sess.LastActiveAt, sess.ExpiresAt, sess.RevokedAt = lastActive, expires, revoked
		require.NoError(t, s.CreateSession(ctx, sess))
		return sess
	}
	later := now.Add(time.Hour)
	older := mk(u.ID, now.Add(-2*time.Hour), later, nil)
	newest := mk(u.ID, now.Add(-time.Minute), later, nil)
	// Two with the same LastActiveAt: ordered by id, descending.
	tieA := mk(u.ID, now.Add(-time.Hour), later, nil)
	tieB := mk(u.ID, now.Add(-time.Hour), later, nil)
	expiresSoon := mk(u.ID, now.Add(-3*time.Hour), now.Add(time.Microsecond), nil)
	mk(u.ID, now, later, ptr(now.Add(-time.Second)))          // revoked
	mk(u.ID, now, now, nil)                                   // expires exactly now: not after now
	mk(u.ID, now, now.Add(-time.Microsecond), nil)            // expired
	mk(other.ID, now.Add(time.Minute), later, nil)            // someone else's
	mk(u.ID, now.Add(time.Minute), later, ptr(later.Add(-1))) // revoked in the future is still revoked

	got, err := s.ListSessions(ctx, u.ID, now)
	require.NoError(t, err)
	tieFirst, tieSecond := tieA, tieB
	if tieB.ID > tieA.ID {
		tieFirst, tieSecond = tieB, tieA
	}
	want := []gatehouse.Session{newest, tieFirst, tieSecond, older, expiresSoon}
	require.Equal(t, sessionIDs(want), sessionIDs(got))
	for i := range want {
		requireSession(t, want[i], got[i])
	}

	// Later, the soon-expiring one drops out.
	got, err = s.ListSessions(ctx, u.ID, now.Add(time.Microsecond))
	require.NoError(t, err)
	require.Len(t, got, 4)

	got, err = s.ListSessions(ctx, gatehouse.NewID(), now)
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)
}

func testSessionsTouch(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	other := createSession(t, s, u.ID)

	t1 := base.Add(time.Minute)
	require.NoError(t, s.TouchSession(ctx, sess.ID, t1, "198.51.100.4", "curl/8.0"))
	want := sess
	want.LastActiveAt, want.IPAddress, want.UserAgent = t1, "198.51.100.4", "curl/8.0"
	got, err := s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, want, got)

	// Empty values keep what is stored; each is independent.
	t2 := t1.Add(time.Minute)
	require.NoError(t, s.TouchSession(ctx, sess.ID, t2, "", ""))
	want.LastActiveAt = t2
	got, err = s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, want, got)

	t3 := t2.Add(time.Minute)
	require.NoError(t, s.TouchSession(ctx, sess.ID, t3, "203.0.113.9", ""))
	want.LastActiveAt, want.IPAddress = t3, "203.0.113.9"
	got, err = s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, want, got)

	t4 := t3.Add(time.Minute)
	require.NoError(t, s.TouchSession(ctx, sess.ID, t4, "", "Safari"))
	want.LastActiveAt, want.UserAgent = t4, "Safari"
	got, err = s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, want, got)

	// Other sessions are untouched.
	got, err = s.GetSession(ctx, other.ID)
	require.NoError(t, err)
	requireSession(t, other, got)

	err = s.TouchSession(ctx, gatehouse.NewID(), base, "192.0.2.1", "x")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testSessionsRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	other := createSession(t, s, u.ID)

	at := base.Add(time.Minute)
	revoked, err := s.RevokeSession(ctx, sess.ID, at)
	require.NoError(t, err)
	require.True(t, revoked)
	revoked, err = s.RevokeSession(ctx, sess.ID, at.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, revoked, "already revoked")

	got, err := s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	want := sess
	want.RevokedAt = &at // the first revocation's time stays
	requireSession(t, want, got)
	got, err = s.GetSession(ctx, other.ID)
	require.NoError(t, err)
	require.Nil(t, got.RevokedAt)

	revoked, err = s.RevokeSession(ctx, gatehouse.NewID(), at)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.False(t, revoked)
}

func testSessionsRevokeUserSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	current := createSession(t, s, u.ID)
	a, b := createSession(t, s, u.ID), createSession(t, s, u.ID)
	expired := newSession(u.ID)
	expired.ExpiresAt = base.Add(-time.Hour)
	require.NoError(t, s.CreateSession(ctx, expired))
	earlier := base.Add(-time.Minute)
	already := newSession(u.ID)
	already.RevokedAt = &earlier
	require.NoError(t, s.CreateSession(ctx, already))
	foreign := createSession(t, s, other.ID)

	at := base.Add(time.Minute)
	ids, err := s.RevokeUserSessions(ctx, u.ID, current.ID, at)
	require.NoError(t, err)
	want := []string{a.ID, b.ID, expired.ID}
	slices.Sort(want)
	require.Equal(t, want, ids)

	for _, id := range want {
		got, err := s.GetSession(ctx, id)
		require.NoError(t, err)
		requireTimePtr(t, &at, got.RevokedAt, "RevokedAt of "+id)
	}
	got, err := s.GetSession(ctx, current.ID)
	require.NoError(t, err)
	require.Nil(t, got.RevokedAt, "the current session stays")
	got, err = s.GetSession(ctx, already.ID)
	require.NoError(t, err)
	requireTimePtr(t, &earlier, got.RevokedAt, "an earlier revocation keeps its time")
	got, err = s.GetSession(ctx, foreign.ID)
	require.NoError(t, err)
	require.Nil(t, got.RevokedAt, "another user's session stays")

	// Nothing left but the current one; then with no exception, it goes too.
	ids, err = s.RevokeUserSessions(ctx, u.ID, current.ID, at)
	require.NoError(t, err)
	require.NotNil(t, ids)
	require.Empty(t, ids)
	ids, err = s.RevokeUserSessions(ctx, u.ID, "", at.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, []string{current.ID}, ids)
	list, err := s.ListSessions(ctx, u.ID, base)
	require.NoError(t, err)
	require.Empty(t, list)

	ids, err = s.RevokeUserSessions(ctx, gatehouse.NewID(), "", at)
	require.NoError(t, err)
	require.Empty(t, ids)
}

func testSessionsDeleteStale(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	cutoff := base
	mk := func(expires time.Time, revoked *time.Time) gatehouse.Session {
		sess := newSession(u.ID)
		sess.ExpiresAt, sess.RevokedAt = expires, revoked
		require.NoError(t, s.CreateSession(ctx, sess))
		return sess
	}
	future := cutoff.Add(time.Hour)
	active := mk(future, nil)
	expiresAtCutoff := mk(cutoff, nil)                     // "before cutoff" is strict
	revokedAtCutoff := mk(future, ptr(cutoff))             // likewise
	revokedAfter := mk(future, ptr(cutoff.Add(time.Hour))) // revoked, but recently
	expired := mk(cutoff.Add(-time.Microsecond), nil)
	revoked := mk(future, ptr(cutoff.Add(-time.Microsecond)))
	both := mk(cutoff.Add(-time.Hour), ptr(cutoff.Add(-2*time.Hour)))
	expiredToken := createRefreshToken(t, s, expired)
	activeToken := createRefreshToken(t, s, active)

	n, err := s.DeleteStaleSessions(ctx, cutoff)
	require.NoError(t, err)
	require.Equal(t, int64(3), n, "only sessions are counted, not their refresh tokens")
	for _, gone := range []gatehouse.Session{expired, revoked, both} {
		_, err := s.GetSession(ctx, gone.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	for _, kept := range []gatehouse.Session{active, expiresAtCutoff, revokedAtCutoff, revokedAfter} {
		_, err := s.GetSession(ctx, kept.ID)
		require.NoError(t, err)
	}
	_, err = s.GetRefreshTokenByHash(ctx, expiredToken.Hash)
	require.ErrorIs(t, err, store.ErrNotFound, "refresh tokens go with their session")
	_, err = s.GetRefreshTokenByHash(ctx, activeToken.Hash)
	require.NoError(t, err)

	n, err = s.DeleteStaleSessions(ctx, cutoff)
	require.NoError(t, err)
	require.Zero(t, n)
}

// --- refresh tokens ---

// secretHash returns a fresh random token's SHA-256, as services store it.
// Hashes are random bytes, NUL and high bytes included.
func secretHash(t *testing.T) []byte {
	t.Helper()
	raw := make([]byte, 32)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	return sum[:]
}

func newRefreshToken(t *testing.T, sess gatehouse.Session) gatehouse.RefreshToken {
	return gatehouse.RefreshToken{
		ID:        gatehouse.NewID(),
		SessionID: sess.ID,
		UserID:    sess.UserID,
		Hash:      secretHash(t),
		CreatedAt: base,
		ExpiresAt: base.Add(30 * 24 * time.Hour),
	}
}

func createRefreshToken(t *testing.T, s store.Store, sess gatehouse.Session) gatehouse.RefreshToken {
	t.Helper()
	tok := newRefreshToken(t, sess)
	require.NoError(t, s.CreateRefreshToken(t.Context(), tok))
	return tok
}

func requireRefreshToken(t *testing.T, want, got gatehouse.RefreshToken) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.SessionID, got.SessionID)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.Hash, got.Hash)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")
	requireTimePtr(t, want.UsedAt, got.UsedAt, "UsedAt")
}

func testRefreshTokensCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	tok := newRefreshToken(t, sess)
	tok.Hash = append([]byte{0x00, 0xff, 0x00}, tok.Hash[3:]...) // NUL and high bytes survive
	require.NoError(t, s.CreateRefreshToken(ctx, tok))
	used := newRefreshToken(t, sess)
	used.UsedAt = ptr(base.Add(time.Minute))
	require.NoError(t, s.CreateRefreshToken(ctx, used))

	for _, want := range []gatehouse.RefreshToken{tok, used} {
		got, err := s.GetRefreshTokenByHash(ctx, want.Hash)
		require.NoError(t, err)
		requireRefreshToken(t, want, got)
	}
}

func testRefreshTokensCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	tok := createRefreshToken(t, s, sess)

	sameHash := newRefreshToken(t, sess)
	sameHash.Hash = tok.Hash
	require.ErrorIs(t, s.CreateRefreshToken(ctx, sameHash), store.ErrConflict)
	sameID := newRefreshToken(t, sess)
	sameID.ID = tok.ID
	require.ErrorIs(t, s.CreateRefreshToken(ctx, sameID), store.ErrConflict)
	// A token for a session that does not exist is refused too.
	orphan := newRefreshToken(t, newSession(u.ID))
	require.ErrorIs(t, s.CreateRefreshToken(ctx, orphan), store.ErrConflict)

	got, err := s.GetRefreshTokenByHash(ctx, tok.Hash)
	require.NoError(t, err)
	requireRefreshToken(t, tok, got)
	_, err = s.GetRefreshTokenByHash(ctx, sameID.Hash)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testRefreshTokensGetNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	tok := createRefreshToken(t, s, createSession(t, s, u.ID))
	_, err := s.GetRefreshTokenByHash(ctx, secretHash(t))
	require.ErrorIs(t, err, store.ErrNotFound)
	// A prefix is not a match.
	_, err = s.GetRefreshTokenByHash(ctx, tok.Hash[:16])
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testRefreshTokensUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	tok, other := createRefreshToken(t, s, sess), createRefreshToken(t, s, sess)

	at := base.Add(time.Minute)
	ok, err := s.UseRefreshToken(ctx, tok.ID, at)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.UseRefreshToken(ctx, tok.ID, at.Add(time.Minute))
	require.NoError(t, err)
	require.False(t, ok, "a used token is not used again")

	got, err := s.GetRefreshTokenByHash(ctx, tok.Hash)
	require.NoError(t, err)
	tok.UsedAt = &at
	requireRefreshToken(t, tok, got)
	got, err = s.GetRefreshTokenByHash(ctx, other.Hash)
	require.NoError(t, err)
	require.Nil(t, got.UsedAt)

	ok, err = s.UseRefreshToken(ctx, gatehouse.NewID(), at)
	require.NoError(t, err)
	require.False(t, ok)
}

func testRefreshTokensUseConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	tok := createRefreshToken(t, s, createSession(t, s, u.ID))
	wins := race(t, func(i int) (bool, error) {
		return s.UseRefreshToken(ctx, tok.ID, base.Add(time.Duration(i)*time.Second))
	})
	require.Len(t, wins, 1, "exactly one caller may rotate a refresh token")
	got, err := s.GetRefreshTokenByHash(ctx, tok.Hash)
	require.NoError(t, err)
	requireTimePtr(t, ptr(base.Add(time.Duration(wins[0])*time.Second)), got.UsedAt, "UsedAt is the winner's")
}

// race runs fn from concurrentCallers goroutines released together and
// returns the indexes of the calls that reported true. Errors fail the
// test.
func race(t *testing.T, fn func(i int) (bool, error)) []int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  []int
		errs  []error
		start = make(chan struct{})
	)
	for i := range concurrentCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				wins = append(wins, i)
			}
		}()
	}
	close(start)
	wg.Wait()
	require.Empty(t, errs)
	return wins
}

// --- one-time tokens ---

func newOneTimeToken(t *testing.T, userID string, purpose gatehouse.OneTimePurpose) gatehouse.OneTimeToken {
	return gatehouse.OneTimeToken{
		ID:        gatehouse.NewID(),
		UserID:    userID,
		Purpose:   purpose,
		Hash:      secretHash(t),
		CreatedAt: base.Add(-time.Minute),
		ExpiresAt: base.Add(time.Hour),
	}
}

func createOneTimeToken(t *testing.T, s store.Store, userID string, purpose gatehouse.OneTimePurpose) (gatehouse.OneTimeToken, []byte) {
	t.Helper()
	tok := newOneTimeToken(t, userID, purpose)
	require.NoError(t, s.CreateOneTimeToken(t.Context(), tok))
	return tok, tok.Hash
}

func requireOneTimeToken(t *testing.T, want, got gatehouse.OneTimeToken) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.Purpose, got.Purpose)
	require.Equal(t, want.Hash, got.Hash)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.ExpiresAt, got.ExpiresAt, "ExpiresAt")
	requireTimePtr(t, want.UsedAt, got.UsedAt, "UsedAt")
}

func testOneTimeTokensCreateConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	for _, purpose := range []gatehouse.OneTimePurpose{gatehouse.PurposeVerifyEmail, gatehouse.PurposeResetPassword, gatehouse.PurposeMagicLink} {
		tok, hash := createOneTimeToken(t, s, u.ID, purpose)
		now := base.Add(time.Second)
		got, err := s.ConsumeOneTimeToken(ctx, purpose, hash, now)
		require.NoError(t, err, purpose)
		want := tok
		want.UsedAt = &now
		requireOneTimeToken(t, want, got)

		_, err = s.ConsumeOneTimeToken(ctx, purpose, hash, now)
		require.ErrorIs(t, err, store.ErrNotFound, "%s: a consumed token is spent", purpose)
	}
}

func testOneTimeTokensCreateDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	tok, hash := createOneTimeToken(t, s, u.ID, gatehouse.PurposeVerifyEmail)

	sameHash := newOneTimeToken(t, u.ID, gatehouse.PurposeMagicLink)
	sameHash.Hash = hash
	require.ErrorIs(t, s.CreateOneTimeToken(ctx, sameHash), store.ErrConflict)
	sameID := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
	sameID.ID = tok.ID
	require.ErrorIs(t, s.CreateOneTimeToken(ctx, sameID), store.ErrConflict)
	orphan := newOneTimeToken(t, gatehouse.NewID(), gatehouse.PurposeVerifyEmail)
	require.ErrorIs(t, s.CreateOneTimeToken(ctx, orphan), store.ErrConflict, "unknown user")

	got, err := s.ConsumeOneTimeToken(ctx, gatehouse.PurposeVerifyEmail, hash, base)
	require.NoError(t, err)
	require.Equal(t, tok.ID, got.ID)
}

func testOneTimeTokensConsumeRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	now := base
	mk := func(purpose gatehouse.OneTimePurpose, expires time.Time, used *time.Time) gatehouse.OneTimeToken {
		tok := newOneTimeToken(t, u.ID, purpose)
		tok.ExpiresAt, tok.UsedAt = expires, used
		require.NoError(t, s.CreateOneTimeToken(ctx, tok))
		return tok
	}
	valid := mk(gatehouse.PurposeResetPassword, now.Add(time.Hour), nil)
	cases := []struct {
		name    string
		purpose gatehouse.OneTimePurpose
		hash    []byte
	}{
		{"unknown hash", gatehouse.PurposeResetPassword, secretHash(t)},
		{"empty hash", gatehouse.PurposeResetPassword, []byte{}},
		{"wrong purpose", gatehouse.PurposeMagicLink, valid.Hash},
		{"unknown purpose", "sign_up", valid.Hash},
		{"expires exactly now", gatehouse.PurposeResetPassword, mk(gatehouse.PurposeResetPassword, now, nil).Hash},
		{"expired", gatehouse.PurposeResetPassword, mk(gatehouse.PurposeResetPassword, now.Add(-time.Microsecond), nil).Hash},
		{"used", gatehouse.PurposeResetPassword, mk(gatehouse.PurposeResetPassword, now.Add(time.Hour), ptr(now.Add(-time.Minute))).Hash},
		{"used in the future", gatehouse.PurposeResetPassword, mk(gatehouse.PurposeResetPassword, now.Add(time.Hour), ptr(now.Add(time.Minute))).Hash},
	}
	for _, c := range cases {
		_, err := s.ConsumeOneTimeToken(ctx, c.purpose, c.hash, now)
		require.ErrorIs(t, err, store.ErrNotFound, c.name)
		require.NotErrorIs(t, err, store.ErrConflict, c.name)
	}
	// The refused attempts did not spend the valid token.
	got, err := s.ConsumeOneTimeToken(ctx, gatehouse.PurposeResetPassword, valid.Hash, now)
	require.NoError(t, err)
	require.Equal(t, valid.ID, got.ID)
}

func testOneTimeTokensSupersede(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	first, _ := createOneTimeToken(t, s, u.ID, gatehouse.PurposeVerifyEmail)
	second, _ := createOneTimeToken(t, s, u.ID, gatehouse.PurposeVerifyEmail)
	earlier := base.Add(-30 * time.Second)
	spent := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
	spent.UsedAt = &earlier
	require.NoError(t, s.CreateOneTimeToken(ctx, spent))
	otherPurpose, _ := createOneTimeToken(t, s, u.ID, gatehouse.PurposeResetPassword)
	otherUser, _ := createOneTimeToken(t, s, other.ID, gatehouse.PurposeVerifyEmail)

	at := base.Add(time.Second)
	require.NoError(t, s.SupersedeOneTimeTokens(ctx, u.ID, gatehouse.PurposeVerifyEmail, at))
	for _, tok := range []gatehouse.OneTimeToken{first, second, spent} {
		_, err := s.ConsumeOneTimeToken(ctx, gatehouse.PurposeVerifyEmail, tok.Hash, at)
		require.ErrorIs(t, err, store.ErrNotFound, "superseded")
	}
	// A token made after superseding works; so do the untouched ones.
	fresh, _ := createOneTimeToken(t, s, u.ID, gatehouse.PurposeVerifyEmail)
	for _, tok := range []gatehouse.OneTimeToken{fresh, otherPurpose, otherUser} {
		got, err := s.ConsumeOneTimeToken(ctx, tok.Purpose, tok.Hash, at)
		require.NoError(t, err)
		require.Equal(t, tok.ID, got.ID)
	}
	// Nothing to supersede (and an unknown user) is fine.
	require.NoError(t, s.SupersedeOneTimeTokens(ctx, u.ID, gatehouse.PurposeMagicLink, at))
	require.NoError(t, s.SupersedeOneTimeTokens(ctx, gatehouse.NewID(), gatehouse.PurposeMagicLink, at))

	// Superseding left the already-spent token's UsedAt alone, which
	// DeleteStaleOneTimeTokens relies on: a cutoff between the two times
	// removes it and keeps the ones superseded at "at".
	n, err := s.DeleteStaleOneTimeTokens(ctx, earlier.Add(time.Microsecond))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func testOneTimeTokensConsumeConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	tok, hash := createOneTimeToken(t, s, u.ID, gatehouse.PurposeMagicLink)
	var (
		mu  sync.Mutex
		got []gatehouse.OneTimeToken
	)
	wins := race(t, func(i int) (bool, error) {
		consumed, err := s.ConsumeOneTimeToken(ctx, gatehouse.PurposeMagicLink, hash, base.Add(time.Duration(i)*time.Second))
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return false, err
		}
		mu.Lock()
		got = append(got, consumed)
		mu.Unlock()
		return true, nil
	})
	require.Len(t, wins, 1, "exactly one caller may consume a one-time token")
	require.Len(t, got, 1)
	want := tok
	want.UsedAt = ptr(base.Add(time.Duration(wins[0]) * time.Second))
	requireOneTimeToken(t, want, got[0])
}

func testOneTimeTokensDeleteStale(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	cutoff := base
	mk := func(expires time.Time, used *time.Time) gatehouse.OneTimeToken {
		tok := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
		tok.ExpiresAt, tok.UsedAt = expires, used
		require.NoError(t, s.CreateOneTimeToken(ctx, tok))
		return tok
	}
	future := cutoff.Add(time.Hour)
	kept := []gatehouse.OneTimeToken{
		mk(future, nil),
		mk(cutoff, nil),         // "before cutoff" is strict
		mk(future, ptr(cutoff)), // likewise
		mk(future, ptr(cutoff.Add(time.Hour))),
	}
	gone := []gatehouse.OneTimeToken{
		mk(cutoff.Add(-time.Microsecond), nil),
		mk(future, ptr(cutoff.Add(-time.Microsecond))),
		mk(cutoff.Add(-time.Hour), ptr(cutoff.Add(-2*time.Hour))),
	}
	n, err := s.DeleteStaleOneTimeTokens(ctx, cutoff)
	require.NoError(t, err)
	require.Equal(t, int64(len(gone)), n)

	// Deleted hashes are free again; kept ones still conflict.
	for _, tok := range gone {
		again := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
		again.Hash = tok.Hash
		require.NoError(t, s.CreateOneTimeToken(ctx, again))
	}
	for _, tok := range kept {
		again := newOneTimeToken(t, u.ID, gatehouse.PurposeVerifyEmail)
		again.Hash = tok.Hash
		require.ErrorIs(t, s.CreateOneTimeToken(ctx, again), store.ErrConflict)
	}
	// The unused, unexpired one is still consumable.
	_, err = s.ConsumeOneTimeToken(ctx, gatehouse.PurposeVerifyEmail, kept[0].Hash, cutoff)
	require.NoError(t, err)

	n, err = s.DeleteStaleOneTimeTokens(ctx, cutoff.Add(-24*time.Hour))
	require.NoError(t, err)
	require.Zero(t, n)
}
