package sqlstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

func waCred(userID string, credID byte) gatehouse.WebAuthnCredential {
	return gatehouse.WebAuthnCredential{ID: gatehouse.NewID(), UserID: userID, CredentialID: []byte{credID, 1, 2, 3},
		PublicKey: []byte{0xa5, 1, 2}, AttestationType: "none", AAGUID: make([]byte, 16), SignCount: 7,
		Transports: []string{"usb", "nfc"}, BackupEligible: true, Attachment: "cross-platform", Name: "Key", CreatedAt: whT0}
}

func TestWebAuthnCredentials(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice, bob := whUser(t, db, "alice@example.com"), whUser(t, db, "bob@example.com")
		n, err := db.CountWebAuthnCredentials(ctx, alice)
		require.NoError(t, err)
		require.Zero(t, n)
		list, err := db.ListWebAuthnCredentials(ctx, alice)
		require.NoError(t, err)
		require.Empty(t, list)

		c := waCred(alice, 1)
		require.NoError(t, db.CreateWebAuthnCredential(ctx, c))
		got, err := db.GetWebAuthnCredential(ctx, alice, c.ID)
		require.NoError(t, err)
		require.Equal(t, c.CredentialID, got.CredentialID)
		require.Equal(t, c.PublicKey, got.PublicKey)
		require.Equal(t, c.AAGUID, got.AAGUID)
		require.Equal(t, uint32(7), got.SignCount)
		require.Equal(t, []string{"usb", "nfc"}, got.Transports)
		require.True(t, got.BackupEligible)
		require.False(t, got.BackupState)
		require.Equal(t, "cross-platform", got.Attachment)
		require.Nil(t, got.LastUsedAt)
		require.True(t, whT0.Truncate(time.Microsecond).Equal(got.CreatedAt))

		// Conflicts: same id, same credential id (even for another user);
		// an unknown user is not found.
		require.ErrorIs(t, db.CreateWebAuthnCredential(ctx, c), store.ErrConflict)
		dup := waCred(bob, 1)
		require.ErrorIs(t, db.CreateWebAuthnCredential(ctx, dup), store.ErrConflict)
		require.ErrorIs(t, db.CreateWebAuthnCredential(ctx, waCred(gatehouse.NewID(), 9)), store.ErrNotFound)

		byCred, err := db.GetWebAuthnCredentialByCredentialID(ctx, []byte{1, 1, 2, 3})
		require.NoError(t, err)
		require.Equal(t, c.ID, byCred.ID)
		_, err = db.GetWebAuthnCredentialByCredentialID(ctx, []byte{9})
		require.ErrorIs(t, err, store.ErrNotFound)

		// Another user's credential is invisible to every per-user call.
		_, err = db.GetWebAuthnCredential(ctx, bob, c.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.ErrorIs(t, db.RenameWebAuthnCredential(ctx, bob, c.ID, "x"), store.ErrNotFound)
		require.ErrorIs(t, db.DeleteWebAuthnCredential(ctx, bob, c.ID), store.ErrNotFound)

		require.NoError(t, db.RenameWebAuthnCredential(ctx, alice, c.ID, "YubiKey"))
		c2 := waCred(alice, 2)
		c2.Transports = nil
		require.NoError(t, db.CreateWebAuthnCredential(ctx, c2))
		list, err = db.ListWebAuthnCredentials(ctx, alice)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "YubiKey", list[0].Name)
		require.Equal(t, []string{}, list[1].Transports)
		n, err = db.CountWebAuthnCredentials(ctx, alice)
		require.NoError(t, err)
		require.Equal(t, 2, n)

		require.NoError(t, db.DeleteWebAuthnCredential(ctx, alice, c2.ID))
		require.ErrorIs(t, db.DeleteWebAuthnCredential(ctx, alice, c2.ID), store.ErrNotFound)

		// Deleting the user removes its credentials.
		require.NoError(t, db.DeleteUser(ctx, alice))
		_, err = db.GetWebAuthnCredentialByCredentialID(ctx, c.CredentialID)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestUseWebAuthnCredentialCounter(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice := whUser(t, db, "alice@example.com")
		c := waCred(alice, 1) // counter 7
		require.NoError(t, db.CreateWebAuthnCredential(ctx, c))
		used := whT0.Add(time.Hour)

		for _, n := range []uint32{7, 6, 0} { // not forward: refused, nothing written
			ok, err := db.UseWebAuthnCredential(ctx, c.ID, n, true, used)
			require.NoError(t, err)
			require.False(t, ok, "counter %d", n)
		}
		ok, err := db.UseWebAuthnCredential(ctx, c.ID, 8, true, used)
		require.NoError(t, err)
		require.True(t, ok)
		got, err := db.GetWebAuthnCredential(ctx, alice, c.ID)
		require.NoError(t, err)
		require.Equal(t, uint32(8), got.SignCount)
		require.True(t, got.BackupState)
		require.NotNil(t, got.LastUsedAt)
		require.True(t, used.Truncate(time.Microsecond).Equal(*got.LastUsedAt))
		ok, err = db.UseWebAuthnCredential(ctx, gatehouse.NewID(), 100, false, used)
		require.NoError(t, err)
		require.False(t, ok)

		// The largest counter an authenticator can send round-trips.
		ok, err = db.UseWebAuthnCredential(ctx, c.ID, ^uint32(0), false, used)
		require.NoError(t, err)
		require.True(t, ok)
		got, err = db.GetWebAuthnCredential(ctx, alice, c.ID)
		require.NoError(t, err)
		require.Equal(t, ^uint32(0), got.SignCount)

		// An authenticator without a counter (always 0) may be used again.
		z := waCred(alice, 2)
		z.SignCount = 0
		require.NoError(t, db.CreateWebAuthnCredential(ctx, z))
		for range 2 {
			ok, err := db.UseWebAuthnCredential(ctx, z.ID, 0, false, used)
			require.NoError(t, err)
			require.True(t, ok)
		}

		// Of concurrent uses presenting one counter, exactly one wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				ok, err := db.UseWebAuthnCredential(ctx, z.ID, 5, false, used)
				if err == nil && ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
	})
}
