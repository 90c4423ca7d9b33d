package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// webauthnCases cover WebAuthn: passkeys and their sign counters.
var webauthnCases = []testCase{
	{name: "WebAuthn/CreateGet", covers: []string{"CreateWebAuthnCredential", "GetWebAuthnCredential", "GetWebAuthnCredentialByCredentialID"}, fn: testWebAuthnCreateGet},
	{name: "WebAuthn/CreateRefused", covers: []string{"CreateWebAuthnCredential"}, fn: testWebAuthnCreateRefused},
	{name: "WebAuthn/CreateCredentialIDRace", covers: []string{"CreateWebAuthnCredential"}, fn: testWebAuthnCreateCredentialIDRace},
	{name: "WebAuthn/ListCount", covers: []string{"ListWebAuthnCredentials", "CountWebAuthnCredentials"}, fn: testWebAuthnListCount},
	{name: "WebAuthn/OtherUsers", covers: []string{"GetWebAuthnCredential", "RenameWebAuthnCredential", "DeleteWebAuthnCredential"}, fn: testWebAuthnOtherUsers},
	{name: "WebAuthn/Rename", covers: []string{"RenameWebAuthnCredential"}, fn: testWebAuthnRename},
	{name: "WebAuthn/Delete", covers: []string{"DeleteWebAuthnCredential"}, fn: testWebAuthnDelete},
	{name: "WebAuthn/DeleteRace", covers: []string{"DeleteWebAuthnCredential"}, fn: testWebAuthnDeleteRace},
	{name: "WebAuthn/Use", covers: []string{"UseWebAuthnCredential"}, fn: testWebAuthnUse},
	{name: "WebAuthn/UseRace", covers: []string{"UseWebAuthnCredential"}, fn: testWebAuthnUseRace},
	{name: "WebAuthn/DeletedWithUser", covers: []string{"DeleteUser"}, fn: testWebAuthnDeletedWithUser},
}

// newCredential returns a credential with every field set; its credential
// id is random bytes (NUL and high bytes included), like an
// authenticator's.
func newCredential(t *testing.T, userID string) gatehouse.WebAuthnCredential {
	credID := append([]byte{0x00, 0xff}, secretHash(t)...)
	return gatehouse.WebAuthnCredential{
		ID: gatehouse.NewID(), UserID: userID, CredentialID: credID,
		PublicKey: []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x00}, AttestationType: "packed",
		AAGUID:    []byte{0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a},
		SignCount: 7, Transports: []string{"usb", "nfc"}, BackupEligible: true, BackupState: true,
		Attachment: "cross-platform", Name: "YubiKey 5 — Grüße 🌍", CreatedAt: base,
	}
}

func createCredential(t *testing.T, s store.Store, userID string) gatehouse.WebAuthnCredential {
	t.Helper()
	c := newCredential(t, userID)
	require.NoError(t, s.CreateWebAuthnCredential(t.Context(), c))
	return c
}

// requireCredential compares every field; nil Transports in want read
// back as an empty, non-nil list.
func requireCredential(t *testing.T, want, got gatehouse.WebAuthnCredential) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.CredentialID, got.CredentialID)
	require.Equal(t, want.PublicKey, got.PublicKey)
	require.Equal(t, want.AttestationType, got.AttestationType)
	require.Equal(t, want.AAGUID, got.AAGUID)
	require.Equal(t, want.SignCount, got.SignCount, "SignCount")
	require.NotNil(t, got.Transports, "Transports is never nil")
	if len(want.Transports) == 0 {
		require.Empty(t, got.Transports)
	} else {
		require.Equal(t, want.Transports, got.Transports)
	}
	require.Equal(t, want.BackupEligible, got.BackupEligible, "BackupEligible")
	require.Equal(t, want.BackupState, got.BackupState, "BackupState")
	require.Equal(t, want.Attachment, got.Attachment)
	require.Equal(t, want.Name, got.Name)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTimePtr(t, want.LastUsedAt, got.LastUsedAt, "LastUsedAt")
}

func getCredential(t *testing.T, s store.Store, c gatehouse.WebAuthnCredential) gatehouse.WebAuthnCredential {
	t.Helper()
	got, err := s.GetWebAuthnCredential(t.Context(), c.UserID, c.ID)
	require.NoError(t, err)
	return got
}

func testWebAuthnCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	full := newCredential(t, u.ID)
	full.SignCount, full.LastUsedAt = ^uint32(0), ptr(base.Add(time.Hour)) // the largest counter
	require.NoError(t, s.CreateWebAuthnCredential(ctx, full))
	requireCredential(t, full, getCredential(t, s, full))
	got, err := s.GetWebAuthnCredentialByCredentialID(ctx, full.CredentialID)
	require.NoError(t, err)
	requireCredential(t, full, got)

	// Zero values round-trip; no transports read back as an empty list.
	for _, transports := range [][]string{nil, {}} {
		bare := gatehouse.WebAuthnCredential{ID: gatehouse.NewID(), UserID: u.ID, CredentialID: secretHash(t),
			PublicKey: []byte{1}, Transports: transports, CreatedAt: base}
		require.NoError(t, s.CreateWebAuthnCredential(ctx, bare))
		got := getCredential(t, s, bare)
		requireCredential(t, bare, got)
		require.Equal(t, []string{}, got.Transports)
	}

	// Lookups by credential id are exact.
	_, err = s.GetWebAuthnCredentialByCredentialID(ctx, full.CredentialID[:8])
	require.ErrorIs(t, err, store.ErrNotFound, "a prefix is no match")
	_, err = s.GetWebAuthnCredentialByCredentialID(ctx, secretHash(t))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetWebAuthnCredential(ctx, u.ID, gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
}

func testWebAuthnCreateRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	c := createCredential(t, s, u.ID)

	sameID := newCredential(t, u.ID)
	sameID.ID = c.ID
	err := s.CreateWebAuthnCredential(ctx, sameID)
	require.ErrorIs(t, err, store.ErrConflict)
	require.NotErrorIs(t, err, store.ErrNotFound)
	// A credential id is unique across every user.
	sameCred := newCredential(t, other.ID)
	sameCred.CredentialID = c.CredentialID
	require.ErrorIs(t, s.CreateWebAuthnCredential(ctx, sameCred), store.ErrConflict)
	orphan := newCredential(t, gatehouse.NewID())
	err = s.CreateWebAuthnCredential(ctx, orphan)
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown user")
	require.NotErrorIs(t, err, store.ErrConflict)

	got, err := s.GetWebAuthnCredentialByCredentialID(ctx, c.CredentialID)
	require.NoError(t, err)
	requireCredential(t, c, got)
	n, err := s.CountWebAuthnCredentials(ctx, other.ID)
	require.NoError(t, err)
	require.Zero(t, n)
}

// testWebAuthnCreateCredentialIDRace: one authenticator registered to
// several accounts at once ends up on one of them.
func testWebAuthnCreateCredentialIDRace(t *testing.T, s store.Store) {
	credID := secretHash(t)
	creds := make([]gatehouse.WebAuthnCredential, racers)
	for i := range creds {
		creds[i] = newCredential(t, createUser(t, s).ID)
		creds[i].CredentialID = credID
	}
	win := requireOneWinner(t, s, "register one credential id", store.ErrConflict, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return won(q.CreateWebAuthnCredential(ctx, creds[i]))
	})
	got, err := s.GetWebAuthnCredentialByCredentialID(t.Context(), credID)
	require.NoError(t, err)
	requireCredential(t, creds[win], got)
}

func testWebAuthnListCount(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	list, err := s.ListWebAuthnCredentials(ctx, u.ID)
	require.NoError(t, err)
	require.NotNil(t, list, "empty, not nil")
	require.Empty(t, list)
	n, err := s.CountWebAuthnCredentials(ctx, u.ID)
	require.NoError(t, err)
	require.Zero(t, n)

	ids := sortedIDs(3)
	var want []gatehouse.WebAuthnCredential
	for i, id := range ids {
		c := newCredential(t, u.ID)
		c.ID, c.CreatedAt = id, base.Add(time.Duration(i)*time.Minute)
		want = append(want, c)
	}
	for _, i := range []int{2, 0, 1} { // out of order: the store sorts
		require.NoError(t, s.CreateWebAuthnCredential(ctx, want[i]))
	}
	createCredential(t, s, other.ID)

	list, err = s.ListWebAuthnCredentials(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, list, 3)
	for i := range want {
		requireCredential(t, want[i], list[i])
	}
	n, err = s.CountWebAuthnCredentials(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = s.CountWebAuthnCredentials(ctx, gatehouse.NewID())
	require.NoError(t, err)
	require.Zero(t, n)
}

// testWebAuthnOtherUsers: every per-user call treats another user's
// credential as absent and leaves it alone.
func testWebAuthnOtherUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	c := createCredential(t, s, other.ID)
	_, err := s.GetWebAuthnCredential(ctx, u.ID, c.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.RenameWebAuthnCredential(ctx, u.ID, c.ID, "mine now"), store.ErrNotFound)
	require.ErrorIs(t, s.DeleteWebAuthnCredential(ctx, u.ID, c.ID), store.ErrNotFound)
	requireCredential(t, c, getCredential(t, s, c))
}

func testWebAuthnRename(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	c, kept := createCredential(t, s, u.ID), createCredential(t, s, u.ID)
	require.NoError(t, s.RenameWebAuthnCredential(ctx, u.ID, c.ID, "Laptop — Touch ID"))
	c.Name = "Laptop — Touch ID"
	requireCredential(t, c, getCredential(t, s, c))
	require.NoError(t, s.RenameWebAuthnCredential(ctx, u.ID, c.ID, c.Name), "the same name again")
	require.NoError(t, s.RenameWebAuthnCredential(ctx, u.ID, c.ID, ""))
	c.Name = ""
	requireCredential(t, c, getCredential(t, s, c))
	requireCredential(t, kept, getCredential(t, s, kept))
	require.ErrorIs(t, s.RenameWebAuthnCredential(ctx, u.ID, gatehouse.NewID(), "x"), store.ErrNotFound)
}

func testWebAuthnDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	c, kept := createCredential(t, s, u.ID), createCredential(t, s, u.ID)
	require.NoError(t, s.DeleteWebAuthnCredential(ctx, u.ID, c.ID))
	require.ErrorIs(t, s.DeleteWebAuthnCredential(ctx, u.ID, c.ID), store.ErrNotFound)
	_, err := s.GetWebAuthnCredentialByCredentialID(ctx, c.CredentialID)
	require.ErrorIs(t, err, store.ErrNotFound)
	list, err := s.ListWebAuthnCredentials(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireCredential(t, kept, list[0])
	// The credential id is free again (the authenticator may re-register).
	again := newCredential(t, u.ID)
	again.CredentialID = c.CredentialID
	require.NoError(t, s.CreateWebAuthnCredential(ctx, again))
}

// testWebAuthnDeleteRace: removing the last passkey from two tabs at once
// removes it once.
func testWebAuthnDeleteRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	c := createCredential(t, s, u.ID)
	requireOneWinner(t, s, "delete a credential", store.ErrNotFound, func(ctx context.Context, q store.Queries, _ int) (bool, error) {
		return won(q.DeleteWebAuthnCredential(ctx, u.ID, c.ID))
	})
	n, err := s.CountWebAuthnCredentials(t.Context(), u.ID)
	require.NoError(t, err)
	require.Zero(t, n)
}

func testWebAuthnUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	c := newCredential(t, u.ID)
	c.BackupState = false
	require.NoError(t, s.CreateWebAuthnCredential(ctx, c)) // counter 7
	use := func(id string, n uint32, backup bool, now time.Time) bool {
		t.Helper()
		ok, err := s.UseWebAuthnCredential(ctx, id, n, backup, now)
		require.NoError(t, err)
		return ok
	}

	// A counter that does not move forward (a possible clone) writes nothing.
	for _, n := range []uint32{7, 6, 0} {
		require.False(t, use(c.ID, n, true, base.Add(time.Hour)), "counter %d", n)
		requireCredential(t, c, getCredential(t, s, c))
	}
	used := base.Add(time.Hour)
	require.True(t, use(c.ID, 8, true, used))
	c.SignCount, c.BackupState, c.LastUsedAt = 8, true, &used
	requireCredential(t, c, getCredential(t, s, c))
	// Counters may jump, up to the largest an authenticator can send.
	require.True(t, use(c.ID, 1000, false, used.Add(time.Minute)))
	require.True(t, use(c.ID, ^uint32(0), false, used.Add(2*time.Minute)))
	c.SignCount, c.BackupState, c.LastUsedAt = ^uint32(0), false, ptr(used.Add(2*time.Minute))
	requireCredential(t, c, getCredential(t, s, c))
	require.False(t, use(c.ID, ^uint32(0), false, used.Add(3*time.Minute)))

	// An authenticator without a counter (always 0) may be used again and
	// again; once it has counted, 0 is refused.
	z := newCredential(t, u.ID)
	z.SignCount = 0
	require.NoError(t, s.CreateWebAuthnCredential(ctx, z))
	for i := range 3 {
		require.True(t, use(z.ID, 0, i%2 == 0, used.Add(time.Duration(i)*time.Second)), "use %d", i)
	}
	z.BackupState, z.LastUsedAt = true, ptr(used.Add(2*time.Second))
	requireCredential(t, z, getCredential(t, s, z))
	require.True(t, use(z.ID, 1, true, used))
	require.False(t, use(z.ID, 0, true, used))

	require.False(t, use(gatehouse.NewID(), 100, false, used), "an unknown credential")
}

// testWebAuthnUseRace: one assertion replayed many times at once (one
// counter value) is accepted once, for an authenticator that counts;
// one that does not (both zero) may sign in every time.
func testWebAuthnUseRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	counting := createCredential(t, s, u.ID) // counter 7
	win := requireOneWinner(t, s, "use one counter value", nil, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return q.UseWebAuthnCredential(ctx, counting.ID, 8, false, racerTime(i))
	})
	got := getCredential(t, s, counting)
	require.Equal(t, uint32(8), got.SignCount)
	requireTimePtr(t, ptr(racerTime(win)), got.LastUsedAt, "LastUsedAt is the winner's")

	fresh := newCredential(t, u.ID)
	fresh.SignCount = 0
	require.NoError(t, s.CreateWebAuthnCredential(t.Context(), fresh))
	requireOneWinner(t, s, "move a zero counter to 5", nil, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return q.UseWebAuthnCredential(ctx, fresh.ID, 5, false, racerTime(i))
	})

	zero := newCredential(t, u.ID)
	zero.SignCount = 0
	require.NoError(t, s.CreateWebAuthnCredential(t.Context(), zero))
	wins := race(t, s, nil, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return q.UseWebAuthnCredential(ctx, zero.ID, 0, false, racerTime(i))
	})
	require.Len(t, wins, racers, "without a counter every use is accepted")
}

func testWebAuthnDeletedWithUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, kept := createUser(t, s), createUser(t, s)
	c, k := createCredential(t, s, u.ID), createCredential(t, s, kept.ID)
	require.NoError(t, s.DeleteUser(ctx, u.ID))
	_, err := s.GetWebAuthnCredentialByCredentialID(ctx, c.CredentialID)
	require.ErrorIs(t, err, store.ErrNotFound)
	n, err := s.CountWebAuthnCredentials(ctx, u.ID)
	require.NoError(t, err)
	require.Zero(t, n)
	requireCredential(t, k, getCredential(t, s, k))
}
