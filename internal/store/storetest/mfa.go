package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// mfaCases cover MFA: second factors and backup codes. (SMS codes are
// one-time tokens; see OneTimeTokens.)
var mfaCases = []testCase{
	{name: "MFA/CreateList", covers: []string{"CreateMFAFactor", "ListMFAFactors"}, fn: testMFACreateList},
	{name: "MFA/CreateRefused", covers: []string{"CreateMFAFactor"}, fn: testMFACreateRefused},
	{name: "MFA/Activate", covers: []string{"ActivateMFAFactor"}, fn: testMFAActivate},
	{name: "MFA/ActivateRace", covers: []string{"ActivateMFAFactor"}, fn: testMFAActivateRace},
	{name: "MFA/Delete", covers: []string{"DeleteMFAFactor"}, fn: testMFADelete},
	{name: "MFA/DeleteRace", covers: []string{"DeleteMFAFactor"}, fn: testMFADeleteRace},
	{name: "MFA/AdvanceTOTPStep", covers: []string{"AdvanceTOTPStep"}, fn: testMFAAdvanceTOTPStep},
	{name: "MFA/AdvanceTOTPStepRace", covers: []string{"AdvanceTOTPStep"}, fn: testMFAAdvanceTOTPStepRace},
	{name: "MFA/BackupCodes", covers: []string{"ReplaceBackupCodes", "UseBackupCode", "CountBackupCodes"}, fn: testMFABackupCodes},
	{name: "MFA/BackupCodesRollback", covers: []string{"ReplaceBackupCodes", "UseBackupCode", "CountBackupCodes"}, fn: testMFABackupCodesRollback},
	{name: "MFA/UseBackupCodeRace", covers: []string{"UseBackupCode"}, fn: testMFAUseBackupCodeRace},
	{name: "MFA/UserMethods", covers: []string{"GetUser", "GetUserByEmail", "GetUserForUpdate"}, fn: testMFAUserMethods},
	{name: "MFA/DeletedWithUser", covers: []string{"DeleteUser"}, fn: testMFADeletedWithUser},
	{name: "MFA/CountUsers", fresh: true, covers: []string{"CountMFAUsers"}, fn: testMFACountUsers},
}

// newMFAFactor returns a pending factor: a TOTP one with a sealed secret
// (NUL and high bytes included), or an SMS one with a number.
func newMFAFactor(userID, method string) gatehouse.MFAFactor {
	f := gatehouse.MFAFactor{ID: gatehouse.NewID(), UserID: userID, Method: method, CreatedAt: base}
	if method == gatehouse.MFAMethodTOTP {
		f.Secret = []byte{0x00, 0xff, 's', 'e', 'a', 'l', 0x00}
	} else {
		f.PhoneNumber = "+15550001111"
	}
	return f
}

func createMFAFactor(t *testing.T, s store.Store, userID, method string) gatehouse.MFAFactor {
	t.Helper()
	f := newMFAFactor(userID, method)
	require.NoError(t, s.CreateMFAFactor(t.Context(), f))
	return f
}

func requireMFAFactor(t *testing.T, want, got gatehouse.MFAFactor) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.Method, got.Method)
	require.Equal(t, want.Secret, got.Secret)
	require.Equal(t, want.PhoneNumber, got.PhoneNumber)
	require.Equal(t, want.LastUsedStep, got.LastUsedStep, "LastUsedStep")
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTimePtr(t, want.ActivatedAt, got.ActivatedAt, "ActivatedAt")
}

// factor returns the user's factor with this id, failing when there is none.
func factor(t *testing.T, s store.Store, userID, id string) gatehouse.MFAFactor {
	t.Helper()
	list, err := s.ListMFAFactors(t.Context(), userID)
	require.NoError(t, err)
	for _, f := range list {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("factor %s of user %s not listed", id, userID)
	return gatehouse.MFAFactor{}
}

func testMFACreateList(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	list, err := s.ListMFAFactors(ctx, u.ID)
	require.NoError(t, err)
	require.Empty(t, list)

	ids := sortedIDs(3)
	pending := newMFAFactor(u.ID, gatehouse.MFAMethodTOTP)
	pending.ID, pending.CreatedAt = ids[0], base.Add(-2*time.Hour)
	sms := newMFAFactor(u.ID, gatehouse.MFAMethodSMS)
	sms.ID, sms.CreatedAt, sms.ActivatedAt = ids[1], base.Add(-time.Hour), ptr(base.Add(-time.Minute))
	totp := newMFAFactor(u.ID, gatehouse.MFAMethodTOTP)
	totp.ID, totp.LastUsedStep, totp.ActivatedAt = ids[2], 1<<40, ptr(base)
	// Inserted newest first: the store, not insertion order, sorts.
	for _, f := range []gatehouse.MFAFactor{totp, sms, pending} {
		require.NoError(t, s.CreateMFAFactor(ctx, f))
	}
	createMFAFactor(t, s, other.ID, gatehouse.MFAMethodTOTP)

	list, err = s.ListMFAFactors(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, list, 3, "only the user's own factors, active and pending")
	for i, want := range []gatehouse.MFAFactor{pending, sms, totp} {
		requireMFAFactor(t, want, list[i])
	}
	require.False(t, list[0].Active())
	require.True(t, list[1].Active())

	list, err = s.ListMFAFactors(ctx, gatehouse.NewID())
	require.NoError(t, err)
	require.Empty(t, list, "an unknown user has none")
}

func testMFACreateRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	f := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodTOTP)

	dup := newMFAFactor(u.ID, gatehouse.MFAMethodSMS)
	dup.ID = f.ID
	err := s.CreateMFAFactor(ctx, dup)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)

	orphan := newMFAFactor(gatehouse.NewID(), gatehouse.MFAMethodTOTP)
	err = s.CreateMFAFactor(ctx, orphan)
	require.ErrorIs(t, err, store.ErrNotFound, "unknown user")
	require.NotErrorIs(t, err, store.ErrConflict)

	list, err := s.ListMFAFactors(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireMFAFactor(t, f, list[0])
	list, err = s.ListMFAFactors(ctx, orphan.UserID)
	require.NoError(t, err)
	require.Empty(t, list)
}

func testMFAActivate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	totp := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodTOTP)
	now := base.Add(time.Minute)
	require.NoError(t, s.ActivateMFAFactor(ctx, u.ID, totp.ID, 42, now))
	want := totp
	want.ActivatedAt, want.LastUsedStep = &now, 42
	requireMFAFactor(t, want, factor(t, s, u.ID, totp.ID))

	// Only a pending factor activates: the first activation stays.
	err := s.ActivateMFAFactor(ctx, u.ID, totp.ID, 99, now.Add(time.Hour))
	require.ErrorIs(t, err, store.ErrNotFound)
	requireMFAFactor(t, want, factor(t, s, u.ID, totp.ID))

	// Step 0 (an SMS factor, proved by a code that has no step) leaves
	// LastUsedStep alone; so does a step below it: it never moves back.
	sms := newMFAFactor(u.ID, gatehouse.MFAMethodSMS)
	sms.LastUsedStep = 7
	require.NoError(t, s.CreateMFAFactor(ctx, sms))
	require.NoError(t, s.ActivateMFAFactor(ctx, u.ID, sms.ID, 0, now))
	sms.ActivatedAt = &now
	requireMFAFactor(t, sms, factor(t, s, u.ID, sms.ID))
	ahead := newMFAFactor(u.ID, gatehouse.MFAMethodTOTP)
	ahead.LastUsedStep = 50
	require.NoError(t, s.CreateMFAFactor(ctx, ahead))
	require.NoError(t, s.ActivateMFAFactor(ctx, u.ID, ahead.ID, 42, now))
	ahead.ActivatedAt = &now
	requireMFAFactor(t, ahead, factor(t, s, u.ID, ahead.ID))

	// Another user's pending factor, or none at all, is not found.
	theirs := createMFAFactor(t, s, other.ID, gatehouse.MFAMethodTOTP)
	require.ErrorIs(t, s.ActivateMFAFactor(ctx, u.ID, theirs.ID, 1, now), store.ErrNotFound)
	requireMFAFactor(t, theirs, factor(t, s, other.ID, theirs.ID))
	require.ErrorIs(t, s.ActivateMFAFactor(ctx, u.ID, gatehouse.NewID(), 1, now), store.ErrNotFound)
}

// testMFAActivateRace: a setup code submitted twice at once activates the
// factor once; the other submission finds no pending factor.
func testMFAActivateRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	f := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodTOTP)
	win := requireOneWinner(t, s, "activate a factor", store.ErrNotFound, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return won(q.ActivateMFAFactor(ctx, u.ID, f.ID, int64(100+i), racerTime(i)))
	})
	f.ActivatedAt, f.LastUsedStep = ptr(racerTime(win)), int64(100+win)
	requireMFAFactor(t, f, factor(t, s, u.ID, f.ID))
}

func testMFADelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	doomed := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodTOTP)
	kept := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodSMS)
	theirs := createMFAFactor(t, s, other.ID, gatehouse.MFAMethodTOTP)

	require.NoError(t, s.DeleteMFAFactor(ctx, u.ID, doomed.ID))
	require.ErrorIs(t, s.DeleteMFAFactor(ctx, u.ID, doomed.ID), store.ErrNotFound)
	require.ErrorIs(t, s.DeleteMFAFactor(ctx, u.ID, theirs.ID), store.ErrNotFound, "another user's factor")
	require.ErrorIs(t, s.DeleteMFAFactor(ctx, u.ID, gatehouse.NewID()), store.ErrNotFound)

	list, err := s.ListMFAFactors(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireMFAFactor(t, kept, list[0])
	requireMFAFactor(t, theirs, factor(t, s, other.ID, theirs.ID))
}

// testMFADeleteRace: a factor removed from two tabs at once goes once.
func testMFADeleteRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	f := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodTOTP)
	requireOneWinner(t, s, "delete a factor", store.ErrNotFound, func(ctx context.Context, q store.Queries, _ int) (bool, error) {
		return won(q.DeleteMFAFactor(ctx, u.ID, f.ID))
	})
	list, err := s.ListMFAFactors(t.Context(), u.ID)
	require.NoError(t, err)
	require.Empty(t, list)
}

func testMFAAdvanceTOTPStep(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	f := newMFAFactor(u.ID, gatehouse.MFAMethodTOTP)
	f.LastUsedStep, f.ActivatedAt = 100, ptr(base)
	require.NoError(t, s.CreateMFAFactor(ctx, f))
	other := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodTOTP)

	for _, c := range []struct {
		step int64
		ok   bool
		want int64
	}{
		{99, false, 100},  // an older code
		{100, false, 100}, // the code already used
		{101, true, 101},
		{101, false, 101}, // the same code again
		{200, true, 200},  // steps may jump ahead
		{150, false, 200},
	} {
		ok, err := s.AdvanceTOTPStep(ctx, f.ID, c.step)
		require.NoError(t, err, "step %d", c.step)
		require.Equal(t, c.ok, ok, "step %d", c.step)
		require.Equal(t, c.want, factor(t, s, u.ID, f.ID).LastUsedStep, "after step %d", c.step)
	}
	require.Zero(t, factor(t, s, u.ID, other.ID).LastUsedStep, "other factors keep their step")

	ok, err := s.AdvanceTOTPStep(ctx, gatehouse.NewID(), 1)
	require.NoError(t, err)
	require.False(t, ok, "an unknown factor advances nothing")
}

// testMFAAdvanceTOTPStepRace: one TOTP code presented many times at once
// (a replay racing the real sign-in) is accepted once.
func testMFAAdvanceTOTPStepRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	f := newMFAFactor(u.ID, gatehouse.MFAMethodTOTP)
	f.LastUsedStep, f.ActivatedAt = 100, ptr(base)
	require.NoError(t, s.CreateMFAFactor(t.Context(), f))
	requireOneWinner(t, s, "use one TOTP code", nil, func(ctx context.Context, q store.Queries, _ int) (bool, error) {
		return q.AdvanceTOTPStep(ctx, f.ID, 101)
	})
	require.Equal(t, int64(101), factor(t, s, u.ID, f.ID).LastUsedStep)
}

// backupHashes returns n fresh code hashes.
func backupHashes(t *testing.T, n int) [][]byte {
	hashes := make([][]byte, n)
	for i := range hashes {
		hashes[i] = secretHash(t)
	}
	return hashes
}

func requireBackupCount(t *testing.T, q store.Queries, userID string, want int) {
	t.Helper()
	n, err := q.CountBackupCodes(t.Context(), userID)
	require.NoError(t, err)
	require.Equal(t, want, n, "unused backup codes")
}

func useBackupCode(t *testing.T, s store.Store, userID string, hash []byte) bool {
	t.Helper()
	ok, err := s.UseBackupCode(t.Context(), userID, hash, base)
	require.NoError(t, err)
	return ok
}

func testMFABackupCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	requireBackupCount(t, s, u.ID, 0)
	requireBackupCount(t, s, gatehouse.NewID(), 0)

	codes := backupHashes(t, 10)
	require.NoError(t, s.ReplaceBackupCodes(ctx, u.ID, codes, base))
	requireBackupCount(t, s, u.ID, 10)

	require.True(t, useBackupCode(t, s, u.ID, codes[0]))
	require.False(t, useBackupCode(t, s, u.ID, codes[0]), "a code works once")
	require.False(t, useBackupCode(t, s, u.ID, secretHash(t)), "an unknown code")
	require.False(t, useBackupCode(t, s, u.ID, codes[1][:16]), "a prefix is no match")
	require.False(t, useBackupCode(t, s, other.ID, codes[1]), "another user's code")
	requireBackupCount(t, s, u.ID, 9)

	// Codes are per user: another user may hold the same hash, and spending
	// it spends only theirs.
	require.NoError(t, s.ReplaceBackupCodes(ctx, other.ID, codes[:3], base))
	require.True(t, useBackupCode(t, s, other.ID, codes[0]), "used by u, not by other")
	require.True(t, useBackupCode(t, s, other.ID, codes[1]))
	requireBackupCount(t, s, other.ID, 1)
	requireBackupCount(t, s, u.ID, 9)
	require.True(t, useBackupCode(t, s, u.ID, codes[1]))

	// Replacing drops the old set, spent or not.
	fresh := backupHashes(t, 3)
	require.NoError(t, s.ReplaceBackupCodes(ctx, u.ID, fresh, base.Add(time.Hour)))
	requireBackupCount(t, s, u.ID, 3)
	require.False(t, useBackupCode(t, s, u.ID, codes[2]), "an old code is void")
	require.True(t, useBackupCode(t, s, u.ID, fresh[2]))
	requireBackupCount(t, s, u.ID, 2)
	// Even a code of the old set comes back unused when given again.
	require.NoError(t, s.ReplaceBackupCodes(ctx, u.ID, [][]byte{codes[0]}, base))
	require.True(t, useBackupCode(t, s, u.ID, codes[0]))

	// No hashes clears the set.
	require.NoError(t, s.ReplaceBackupCodes(ctx, u.ID, nil, base))
	requireBackupCount(t, s, u.ID, 0)
	requireBackupCount(t, s, other.ID, 1)
}

// testMFABackupCodesRollback: a regeneration rolled back with its
// transaction leaves the old set as it was.
func testMFABackupCodesRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	codes := backupHashes(t, 4)
	require.NoError(t, s.ReplaceBackupCodes(ctx, u.ID, codes, base))
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.NoError(t, tx.ReplaceBackupCodes(ctx, u.ID, backupHashes(t, 2), base))
		requireBackupCount(t, tx, u.ID, 2)
		ok, err := tx.UseBackupCode(ctx, u.ID, codes[0], base)
		require.NoError(t, err)
		require.False(t, ok, "replaced inside the transaction")
		return errBoom
	})
	require.ErrorIs(t, err, errBoom)
	requireBackupCount(t, s, u.ID, 4)
	require.True(t, useBackupCode(t, s, u.ID, codes[0]))
}

// testMFAUseBackupCodeRace: one backup code typed into two sign-ins at
// once lets one through.
func testMFAUseBackupCodeRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	codes := backupHashes(t, 2)
	require.NoError(t, s.ReplaceBackupCodes(t.Context(), u.ID, codes, base))
	requireOneWinner(t, s, "spend a backup code", nil, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return q.UseBackupCode(ctx, u.ID, codes[1], racerTime(i))
	})
	requireBackupCount(t, s, u.ID, 1)
	require.False(t, useBackupCode(t, s, u.ID, codes[1]))
}

// testMFAUserMethods: GetUser (and its siblings) report the methods of the
// active factors, without repeats, when MFA is on; none otherwise.
func testMFAUserMethods(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := minimalUser()
	u.MFAEnabled = true
	require.NoError(t, s.CreateUser(ctx, u))
	methods := func() []string {
		t.Helper()
		got, err := s.GetUser(ctx, u.ID)
		require.NoError(t, err)
		byEmail, err := s.GetUserByEmail(ctx, u.Email)
		require.NoError(t, err)
		forUpdate, err := s.GetUserForUpdate(ctx, u.ID)
		require.NoError(t, err)
		require.ElementsMatch(t, got.MFAMethods, byEmail.MFAMethods)
		require.ElementsMatch(t, got.MFAMethods, forUpdate.MFAMethods)
		return got.MFAMethods
	}
	require.Empty(t, methods(), "no factors")
	totp := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodTOTP)
	require.Empty(t, methods(), "a pending factor does not count")
	sms := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodSMS)
	require.NoError(t, s.ActivateMFAFactor(ctx, u.ID, sms.ID, 0, base))
	require.ElementsMatch(t, []string{gatehouse.MFAMethodSMS}, methods())
	require.NoError(t, s.ActivateMFAFactor(ctx, u.ID, totp.ID, 5, base))
	second := createMFAFactor(t, s, u.ID, gatehouse.MFAMethodTOTP)
	require.NoError(t, s.ActivateMFAFactor(ctx, u.ID, second.ID, 5, base))
	require.ElementsMatch(t, []string{gatehouse.MFAMethodSMS, gatehouse.MFAMethodTOTP}, methods(), "each method once")

	// Another user's factors are not this user's methods.
	other := minimalUser()
	other.MFAEnabled = true
	require.NoError(t, s.CreateUser(ctx, other))
	got, err := s.GetUser(ctx, other.ID)
	require.NoError(t, err)
	require.Empty(t, got.MFAMethods)

	// With MFA off, active factors are not reported.
	u.MFAEnabled = false
	require.NoError(t, s.UpdateUser(ctx, u))
	require.Empty(t, methods())
}

func testMFADeletedWithUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, kept := createUser(t, s), createUser(t, s)
	for _, id := range []string{u.ID, kept.ID} {
		createMFAFactor(t, s, id, gatehouse.MFAMethodTOTP)
		require.NoError(t, s.ReplaceBackupCodes(ctx, id, backupHashes(t, 2), base))
	}
	require.NoError(t, s.DeleteUser(ctx, u.ID))
	list, err := s.ListMFAFactors(ctx, u.ID)
	require.NoError(t, err)
	require.Empty(t, list)
	requireBackupCount(t, s, u.ID, 0)

	list, err = s.ListMFAFactors(ctx, kept.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireBackupCount(t, s, kept.ID, 2)
}

func testMFACountUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	requireCounts := func(users, withMFA int64, msg string) {
		t.Helper()
		gotUsers, gotMFA, err := s.CountMFAUsers(ctx)
		require.NoError(t, err, msg)
		require.Equal(t, [2]int64{users, withMFA}, [2]int64{gotUsers, gotMFA}, "users, with MFA: %s", msg)
	}
	requireCounts(0, 0, "an empty store")

	both, pending := createUser(t, s), createUser(t, s)
	createUser(t, s) // no factor
	totp := createMFAFactor(t, s, both.ID, gatehouse.MFAMethodTOTP)
	sms := createMFAFactor(t, s, both.ID, gatehouse.MFAMethodSMS)
	createMFAFactor(t, s, pending.ID, gatehouse.MFAMethodTOTP)
	requireCounts(3, 0, "pending factors do not count")

	require.NoError(t, s.ActivateMFAFactor(ctx, both.ID, totp.ID, 0, base))
	require.NoError(t, s.ActivateMFAFactor(ctx, both.ID, sms.ID, 0, base))
	requireCounts(3, 1, "a user with two active factors counts once")

	require.NoError(t, s.DeleteMFAFactor(ctx, both.ID, totp.ID))
	requireCounts(3, 1, "one active factor left")
	require.NoError(t, s.DeleteUser(ctx, both.ID))
	requireCounts(2, 0, "the user and its factors gone")
}
