package sqlstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

func devDevice(userID, fp string, at time.Time) gatehouse.Device {
	return gatehouse.Device{ID: gatehouse.NewID(), UserID: userID, Fingerprint: fp, Name: "Firefox on Linux",
		UserAgent: "Mozilla/5.0 Firefox/1", FirstSeenAt: at, LastSeenAt: at, LastIP: "203.0.113.1"}
}

func devSession(t *testing.T, db *sqlstore.DB, userID, deviceRef string) gatehouse.Session {
	t.Helper()
	s := gatehouse.Session{ID: gatehouse.NewID(), UserID: userID, CreatedAt: whT0, LastActiveAt: whT0,
		ExpiresAt: whT0.Add(time.Hour), AuthTime: whT0, DeviceID: "client-id", DeviceRef: deviceRef}
	require.NoError(t, db.CreateSession(t.Context(), s))
	return s
}

func TestDevicesUpsertListAndLifecycle(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice, bob := whUser(t, db, "alice@example.com"), whUser(t, db, "bob@example.com")

		d := devDevice(alice, "fp1", whT0)
		got, created, err := db.UpsertDevice(ctx, d)
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, d.ID, got.ID)
		require.True(t, whT0.Truncate(time.Microsecond).Equal(got.FirstSeenAt))
		require.False(t, got.Trusted)

		// The same fingerprint again is a sighting of the same device.
		later := whT0.Add(time.Hour)
		again := devDevice(alice, "fp1", later)
		again.LastIP, again.UserAgent = "198.51.100.2", "Mozilla/5.0 Firefox/2"
		got, created, err = db.UpsertDevice(ctx, again)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, d.ID, got.ID)
		require.True(t, whT0.Truncate(time.Microsecond).Equal(got.FirstSeenAt), "first seen stays")
		require.True(t, later.Truncate(time.Microsecond).Equal(got.LastSeenAt))
		require.Equal(t, "198.51.100.2", got.LastIP)
		require.Equal(t, "Mozilla/5.0 Firefox/2", got.UserAgent)

		// Fingerprints are per user.
		_, created, err = db.UpsertDevice(ctx, devDevice(bob, "fp1", whT0))
		require.NoError(t, err)
		require.True(t, created)
		_, _, err = db.UpsertDevice(ctx, devDevice(gatehouse.NewID(), "fp1", whT0))
		require.ErrorIs(t, err, store.ErrNotFound)

		d2 := devDevice(alice, "fp2", whT0.Add(2*time.Hour))
		_, _, err = db.UpsertDevice(ctx, d2)
		require.NoError(t, err)
		list, err := db.ListDevices(ctx, alice)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, []string{d2.ID, d.ID}, []string{list[0].ID, list[1].ID}, "most recently seen first")

		byFP, err := db.GetDeviceByFingerprint(ctx, alice, "fp2")
		require.NoError(t, err)
		require.Equal(t, d2.ID, byFP.ID)
		_, err = db.GetDeviceByFingerprint(ctx, bob, "fp2")
		require.ErrorIs(t, err, store.ErrNotFound)

		require.NoError(t, db.SetDeviceTrusted(ctx, d.ID, true))
		require.NoError(t, db.TouchDevice(ctx, d.ID, whT0.Add(3*time.Hour), ""))
		got, err = db.GetDevice(ctx, d.ID)
		require.NoError(t, err)
		require.True(t, got.Trusted)
		require.Equal(t, "198.51.100.2", got.LastIP, "an empty ip keeps the last one")
		require.ErrorIs(t, db.SetDeviceTrusted(ctx, gatehouse.NewID(), true), store.ErrNotFound)
		require.ErrorIs(t, db.TouchDevice(ctx, gatehouse.NewID(), whT0, ""), store.ErrNotFound)

		// Sessions refer to their device; revoking by device ends only those.
		s1, s2, other := devSession(t, db, alice, d.ID), devSession(t, db, alice, d.ID), devSession(t, db, alice, d2.ID)
		sd, err := db.GetSessionDevice(ctx, s1.ID)
		require.NoError(t, err)
		require.Equal(t, d.ID, sd.ID)
		_, err = db.GetSessionDevice(ctx, devSession(t, db, alice, "").ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		stored, err := db.GetSession(ctx, s1.ID)
		require.NoError(t, err)
		require.Equal(t, "client-id", stored.DeviceID, "the client's own id stays")
		require.Equal(t, d.ID, stored.DeviceRef)

		ids, err := db.RevokeDeviceSessions(ctx, d.ID, whT0)
		require.NoError(t, err)
		want := []string{s1.ID, s2.ID}
		if want[0] > want[1] {
			want[0], want[1] = want[1], want[0]
		}
		require.Equal(t, want, ids)
		ids, err = db.RevokeDeviceSessions(ctx, d.ID, whT0)
		require.NoError(t, err)
		require.Empty(t, ids, "already revoked")
		alive, err := db.GetSession(ctx, other.ID)
		require.NoError(t, err)
		require.Nil(t, alive.RevokedAt)

		require.NoError(t, db.SetSessionTrust(ctx, other.ID, 85))
		alive, err = db.GetSession(ctx, other.ID)
		require.NoError(t, err)
		require.Equal(t, 85, alive.TrustScore)
		require.Error(t, db.SetSessionTrust(ctx, other.ID, 101))
		require.ErrorIs(t, db.SetSessionTrust(ctx, gatehouse.NewID(), 1), store.ErrNotFound)

		// Deleting a device leaves its sessions without one (but still
		// findable by the device's id, for the cleanup).
		require.NoError(t, db.DeleteDevice(ctx, d.ID))
		require.ErrorIs(t, db.DeleteDevice(ctx, d.ID), store.ErrNotFound)
		_, err = db.GetSessionDevice(ctx, s1.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
		ids, err = db.RevokeDeviceSessions(ctx, d2.ID, whT0)
		require.NoError(t, err)
		require.Equal(t, []string{other.ID}, ids)
	})
}

func TestDeleteStaleDevices(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice := whUser(t, db, "alice@example.com")
		old := devDevice(alice, "old", whT0)
		fresh := devDevice(alice, "fresh", whT0.Add(48*time.Hour))
		for _, d := range []gatehouse.Device{old, fresh} {
			_, _, err := db.UpsertDevice(ctx, d)
			require.NoError(t, err)
		}
		gone, err := db.DeleteStaleDevices(ctx, whT0.Add(24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, []gatehouse.Device{{ID: old.ID, UserID: alice}}, gone)
		list, err := db.ListDevices(ctx, alice)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, fresh.ID, list[0].ID)
	})
}

func TestLoginProfiles(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice := whUser(t, db, "alice@example.com")
		_, err := db.GetLoginProfile(ctx, alice)
		require.ErrorIs(t, err, store.ErrNotFound)
		require.NoError(t, db.PutLoginProfile(ctx, alice, []byte(`{"countries":["DE"],"logins":1}`), whT0))
		require.NoError(t, db.PutLoginProfile(ctx, alice, []byte(`{"countries":["DE","FR"],"logins":2}`), whT0))
		raw, err := db.GetLoginProfile(ctx, alice)
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal(raw, &got))
		require.Equal(t, map[string]any{"countries": []any{"DE", "FR"}, "logins": 2.0}, got)
		require.Error(t, db.PutLoginProfile(ctx, alice, []byte(`not json`), whT0))
		require.ErrorIs(t, db.PutLoginProfile(ctx, gatehouse.NewID(), []byte(`{}`), whT0), store.ErrNotFound)

		// The profile goes with its user.
		require.NoError(t, db.DeleteUser(ctx, alice))
		_, err = db.GetLoginProfile(ctx, alice)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}
