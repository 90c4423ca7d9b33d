package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// deviceCases cover Devices: devices, the session fields they drive, and
// the risk engine's sign-in profiles.
var deviceCases = []testCase{
	{name: "Devices/Upsert", covers: []string{"UpsertDevice", "GetDevice", "GetDeviceByFingerprint"}, fn: testDevicesUpsert},
	{name: "Devices/UpsertRace", covers: []string{"UpsertDevice"}, fn: testDevicesUpsertRace},
	{name: "Devices/GetNotFound", covers: []string{"GetDevice", "GetDeviceByFingerprint"}, fn: testDevicesGetNotFound},
	{name: "Devices/List", covers: []string{"ListDevices"}, fn: testDevicesList},
	{name: "Devices/Touch", covers: []string{"TouchDevice"}, fn: testDevicesTouch},
	{name: "Devices/Trusted", covers: []string{"SetDeviceTrusted"}, fn: testDevicesTrusted},
	{name: "Devices/Delete", covers: []string{"DeleteDevice", "GetSessionDevice", "RevokeDeviceSessions"}, fn: testDevicesDelete},
	{name: "Devices/DeleteRace", covers: []string{"DeleteDevice"}, fn: testDevicesDeleteRace},
	{name: "Devices/DeleteStale", fresh: true, covers: []string{"DeleteStaleDevices"}, fn: testDevicesDeleteStale},
	{name: "Devices/DeletedWithUser", covers: []string{"DeleteUser"}, fn: testDevicesDeletedWithUser},
	{name: "Devices/SessionDevice", covers: []string{"GetSessionDevice", "TouchSessionDevice"}, fn: testDevicesSessionDevice},
	{name: "Devices/RevokeSessions", covers: []string{"RevokeDeviceSessions"}, fn: testDevicesRevokeSessions},
	{name: "Devices/RevokeSessionsRace", covers: []string{"RevokeDeviceSessions"}, fn: testDevicesRevokeSessionsRace},
	{name: "Devices/SessionTrust", covers: []string{"SetSessionTrust"}, fn: testDevicesSessionTrust},
	{name: "Devices/LoginProfile", covers: []string{"GetLoginProfile", "PutLoginProfile"}, fn: testDevicesLoginProfile},
}

// newDevice returns a device of the user with a fresh fingerprint, first
// and last seen at seen.
func newDevice(userID string, seen time.Time) gatehouse.Device {
	return gatehouse.Device{
		ID: gatehouse.NewID(), UserID: userID, Fingerprint: "fp-" + gatehouse.NewID(), Name: "Firefox on Linux",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", FirstSeenAt: seen, LastSeenAt: seen, LastIP: "2001:db8::7",
	}
}

func createDevice(t *testing.T, s store.Store, userID string, seen time.Time) gatehouse.Device {
	t.Helper()
	d := newDevice(userID, seen)
	got, created, err := s.UpsertDevice(t.Context(), d)
	require.NoError(t, err)
	require.True(t, created)
	requireDevice(t, d, got)
	return d
}

func requireDevice(t *testing.T, want, got gatehouse.Device) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.Fingerprint, got.Fingerprint)
	require.Equal(t, want.Name, got.Name)
	require.Equal(t, want.UserAgent, got.UserAgent)
	require.Equal(t, want.Trusted, got.Trusted, "Trusted")
	requireTime(t, want.FirstSeenAt, got.FirstSeenAt, "FirstSeenAt")
	requireTime(t, want.LastSeenAt, got.LastSeenAt, "LastSeenAt")
	require.Equal(t, want.LastIP, got.LastIP)
}

func getDevice(t *testing.T, s store.Store, id string) gatehouse.Device {
	t.Helper()
	d, err := s.GetDevice(t.Context(), id)
	require.NoError(t, err)
	return d
}

// sessionFrom creates a session of the user from the device (deviceRef may
// be empty: a session from no device).
func sessionFrom(t *testing.T, s store.Store, userID, deviceRef string) gatehouse.Session {
	t.Helper()
	sess := newSession(userID)
	sess.DeviceRef = deviceRef
	require.NoError(t, s.CreateSession(t.Context(), sess))
	return sess
}

func testDevicesUpsert(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	d := newDevice(u.ID, base)
	d.Trusted = true
	got, created, err := s.UpsertDevice(ctx, d)
	require.NoError(t, err)
	require.True(t, created)
	requireDevice(t, d, got)
	requireDevice(t, d, getDevice(t, s, d.ID))
	byFP, err := s.GetDeviceByFingerprint(ctx, u.ID, d.Fingerprint)
	require.NoError(t, err)
	requireDevice(t, d, byFP)

	// The same fingerprint again is a sighting of the same device: only
	// LastSeenAt, LastIP and UserAgent change.
	again := newDevice(u.ID, base.Add(time.Hour))
	again.Fingerprint, again.Name, again.Trusted = d.Fingerprint, "Renamed?", false
	again.LastIP, again.UserAgent = "198.51.100.2", "Mozilla/5.0 Firefox/131.0"
	got, created, err = s.UpsertDevice(ctx, again)
	require.NoError(t, err)
	require.False(t, created)
	want := d
	want.LastSeenAt, want.LastIP, want.UserAgent = again.LastSeenAt, again.LastIP, again.UserAgent
	requireDevice(t, want, got)
	requireDevice(t, want, getDevice(t, s, d.ID))
	_, err = s.GetDevice(ctx, again.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "no second row")

	// Fingerprints are per user.
	theirs := newDevice(other.ID, base)
	theirs.Fingerprint = d.Fingerprint
	got, created, err = s.UpsertDevice(ctx, theirs)
	require.NoError(t, err)
	require.True(t, created)
	requireDevice(t, theirs, got)
	requireDevice(t, want, getDevice(t, s, d.ID))

	orphan := newDevice(gatehouse.NewID(), base)
	_, _, err = s.UpsertDevice(ctx, orphan)
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown user")
	require.NotErrorIs(t, err, store.ErrConflict)
}

// testDevicesUpsertRace: concurrent sign-ins from one new device make one
// device: one call creates it, and every call gets it back.
func testDevicesUpsertRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	fp := "fp-" + gatehouse.NewID()
	devices := make([]gatehouse.Device, racers)
	for i := range devices {
		devices[i] = newDevice(u.ID, racerTime(i))
		devices[i].Fingerprint = fp
	}
	type upserted struct {
		d       gatehouse.Device
		created bool
	}
	got := raceAll(t, s, nil, func(ctx context.Context, q store.Queries, i int) (upserted, error) {
		d, created, err := q.UpsertDevice(ctx, devices[i])
		return upserted{d, created}, err
	})
	win := -1
	for i, g := range got {
		if g.created {
			require.Equal(t, -1, win, "racers %d and %d both created the device", win, i)
			win = i
		}
	}
	require.NotEqual(t, -1, win, "one racer creates the device")
	for i, g := range got {
		require.Equal(t, devices[win].ID, g.d.ID, "racer %d got the one device", i)
		requireTime(t, racerTime(win), g.d.FirstSeenAt, "FirstSeenAt is the creator's")
	}
	list, err := s.ListDevices(t.Context(), u.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func testDevicesGetNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	d := createDevice(t, s, u.ID, base)
	_, err := s.GetDevice(ctx, gatehouse.NewID())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
	_, err = s.GetDeviceByFingerprint(ctx, other.ID, d.Fingerprint)
	require.ErrorIs(t, err, store.ErrNotFound, "another user's fingerprint")
	_, err = s.GetDeviceByFingerprint(ctx, u.ID, d.Fingerprint[:6])
	require.ErrorIs(t, err, store.ErrNotFound, "a prefix is no match")
}

func testDevicesList(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	list, err := s.ListDevices(ctx, u.ID)
	require.NoError(t, err)
	require.Empty(t, list)

	old := createDevice(t, s, u.ID, base.Add(-2*time.Hour))
	newest := createDevice(t, s, u.ID, base)
	tieA, tieB := createDevice(t, s, u.ID, base.Add(-time.Hour)), createDevice(t, s, u.ID, base.Add(-time.Hour))
	createDevice(t, s, other.ID, base.Add(time.Hour))
	first, second := tieA, tieB
	if tieB.ID > tieA.ID {
		first, second = tieB, tieA
	}
	list, err = s.ListDevices(ctx, u.ID)
	require.NoError(t, err)
	want := []gatehouse.Device{newest, first, second, old}
	require.Len(t, list, len(want), "only the user's own")
	for i := range want {
		requireDevice(t, want[i], list[i])
	}
}

func testDevicesTouch(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	d, other := createDevice(t, s, u.ID, base), createDevice(t, s, u.ID, base)
	t1 := base.Add(time.Minute)
	require.NoError(t, s.TouchDevice(ctx, d.ID, t1, "203.0.113.9"))
	d.LastSeenAt, d.LastIP = t1, "203.0.113.9"
	requireDevice(t, d, getDevice(t, s, d.ID))
	t2 := t1.Add(time.Minute)
	require.NoError(t, s.TouchDevice(ctx, d.ID, t2, ""))
	d.LastSeenAt = t2
	requireDevice(t, d, getDevice(t, s, d.ID)) // an empty ip keeps the last one
	requireDevice(t, other, getDevice(t, s, other.ID))
	require.ErrorIs(t, s.TouchDevice(ctx, gatehouse.NewID(), t1, ""), store.ErrNotFound)
}

func testDevicesTrusted(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	d, other := createDevice(t, s, u.ID, base), createDevice(t, s, u.ID, base)
	require.NoError(t, s.SetDeviceTrusted(ctx, d.ID, true))
	d.Trusted = true
	requireDevice(t, d, getDevice(t, s, d.ID))
	require.NoError(t, s.SetDeviceTrusted(ctx, d.ID, true), "the same value again")
	require.NoError(t, s.SetDeviceTrusted(ctx, d.ID, false))
	d.Trusted = false
	requireDevice(t, d, getDevice(t, s, d.ID))
	requireDevice(t, other, getDevice(t, s, other.ID))
	require.ErrorIs(t, s.SetDeviceTrusted(ctx, gatehouse.NewID(), true), store.ErrNotFound)
}

func testDevicesDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	d, kept := createDevice(t, s, u.ID, base), createDevice(t, s, u.ID, base)
	sess := sessionFrom(t, s, u.ID, d.ID)

	require.NoError(t, s.DeleteDevice(ctx, d.ID))
	_, err := s.GetDevice(ctx, d.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteDevice(ctx, d.ID), store.ErrNotFound)
	_, err = s.GetDeviceByFingerprint(ctx, u.ID, d.Fingerprint)
	require.ErrorIs(t, err, store.ErrNotFound)
	requireDevice(t, kept, getDevice(t, s, kept.ID))

	// Its sessions stay, without a device, but still found by the
	// device's id (a plain reference), so they can be revoked after it.
	got, err := s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	requireSession(t, sess, got)
	_, err = s.GetSessionDevice(ctx, sess.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	ids, err := s.RevokeDeviceSessions(ctx, d.ID, base)
	require.NoError(t, err)
	require.Equal(t, []string{sess.ID}, ids)
	// The fingerprint may come back as a new device.
	again := newDevice(u.ID, base.Add(time.Hour))
	again.Fingerprint = d.Fingerprint
	_, created, err := s.UpsertDevice(ctx, again)
	require.NoError(t, err)
	require.True(t, created)
}

func testDevicesDeleteRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	d := createDevice(t, s, u.ID, base)
	requireOneWinner(t, s, "delete a device", store.ErrNotFound, func(ctx context.Context, q store.Queries, _ int) (bool, error) {
		return won(q.DeleteDevice(ctx, d.ID))
	})
	_, err := s.GetDevice(t.Context(), d.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testDevicesDeleteStale(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	cutoff := base
	fresh := createDevice(t, s, u.ID, cutoff.Add(time.Hour))
	atCutoff := createDevice(t, s, u.ID, cutoff) // "before cutoff" is strict
	var stale []gatehouse.Device
	for _, d := range []gatehouse.Device{
		createDevice(t, s, u.ID, cutoff.Add(-time.Microsecond)),
		createDevice(t, s, other.ID, cutoff.Add(-24*time.Hour)),
		createDevice(t, s, u.ID, cutoff.Add(-48*time.Hour)),
	} {
		stale = append(stale, gatehouse.Device{ID: d.ID, UserID: d.UserID})
	}
	// A device first seen long ago but seen since stays.
	seenSince := createDevice(t, s, u.ID, cutoff.Add(-48*time.Hour))
	require.NoError(t, s.TouchDevice(ctx, seenSince.ID, cutoff, ""))

	gone, err := s.DeleteStaleDevices(ctx, cutoff)
	require.NoError(t, err)
	slices.SortFunc(stale, func(a, b gatehouse.Device) int { return strings.Compare(a.ID, b.ID) })
	require.Equal(t, stale, gone, "ID and UserID only, in id order")
	for _, d := range stale {
		_, err := s.GetDevice(ctx, d.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	for _, d := range []gatehouse.Device{fresh, atCutoff, seenSince} {
		_, err := s.GetDevice(ctx, d.ID)
		require.NoError(t, err)
	}
	gone, err = s.DeleteStaleDevices(ctx, cutoff)
	require.NoError(t, err)
	require.Empty(t, gone)

	// Sweepers on several instances at once delete each device once: what
	// they return is disjoint, and together every stale device.
	var want []string
	for range 10 {
		want = append(want, createDevice(t, s, u.ID, cutoff.Add(-time.Hour)).ID)
	}
	var swept []string
	for _, ds := range raceAll(t, s, nil, func(ctx context.Context, q store.Queries, _ int) ([]gatehouse.Device, error) {
		return q.DeleteStaleDevices(ctx, cutoff)
	}) {
		swept = append(swept, idsOf(ds, func(d gatehouse.Device) string { return d.ID })...)
	}
	slices.Sort(want)
	slices.Sort(swept)
	require.Equal(t, want, swept, "each stale device swept once")
}

func testDevicesDeletedWithUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, kept := createUser(t, s), createUser(t, s)
	d, k := createDevice(t, s, u.ID, base), createDevice(t, s, kept.ID, base)
	for _, id := range []string{u.ID, kept.ID} {
		require.NoError(t, s.PutLoginProfile(ctx, id, []byte(`{"countries":["DE"]}`), base))
	}
	require.NoError(t, s.DeleteUser(ctx, u.ID))
	_, err := s.GetDevice(ctx, d.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetLoginProfile(ctx, u.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "the profile goes with its user")
	requireDevice(t, k, getDevice(t, s, k.ID))
	_, err = s.GetLoginProfile(ctx, kept.ID)
	require.NoError(t, err)
}

func testDevicesSessionDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	d := createDevice(t, s, u.ID, base)
	sess := sessionFrom(t, s, u.ID, d.ID)
	got, err := s.GetSessionDevice(ctx, sess.ID)
	require.NoError(t, err)
	requireDevice(t, d, got)
	// The session keeps the client's own device id beside the reference.
	stored, err := s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	require.Equal(t, sess.DeviceID, stored.DeviceID)
	require.Equal(t, d.ID, stored.DeviceRef)

	// A refresh touches the session's device and reads it in one go; an
	// empty ip keeps the last one.
	other := createDevice(t, s, u.ID, base)
	t1 := base.Add(time.Minute)
	got, err = s.TouchSessionDevice(ctx, sess.ID, t1, "203.0.113.9")
	require.NoError(t, err)
	d.LastSeenAt, d.LastIP = t1, "203.0.113.9"
	requireDevice(t, d, got)
	requireDevice(t, d, getDevice(t, s, d.ID))
	t2 := t1.Add(time.Minute)
	got, err = s.TouchSessionDevice(ctx, sess.ID, t2, "")
	require.NoError(t, err)
	d.LastSeenAt = t2
	requireDevice(t, d, got)
	requireDevice(t, other, getDevice(t, s, other.ID))

	for _, id := range []string{sessionFrom(t, s, u.ID, "").ID, gatehouse.NewID()} {
		_, err = s.GetSessionDevice(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "a session from no device, or no session")
		require.NotErrorIs(t, err, store.ErrConflict)
		_, err = s.TouchSessionDevice(ctx, id, t1, "")
		require.ErrorIs(t, err, store.ErrNotFound, "a session from no device, or no session")
	}
}

func testDevicesRevokeSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	d, d2 := createDevice(t, s, u.ID, base), createDevice(t, s, u.ID, base)
	s1, s2 := sessionFrom(t, s, u.ID, d.ID), sessionFrom(t, s, u.ID, d.ID)
	earlier := base.Add(-time.Minute)
	already := newSession(u.ID)
	already.DeviceRef, already.RevokedAt = d.ID, &earlier
	require.NoError(t, s.CreateSession(ctx, already))
	fromOther := sessionFrom(t, s, u.ID, d2.ID)
	fromNone := sessionFrom(t, s, u.ID, "")
	theirs := sessionFrom(t, s, other.ID, createDevice(t, s, other.ID, base).ID)

	now := base.Add(time.Minute)
	ids, err := s.RevokeDeviceSessions(ctx, d.ID, now)
	require.NoError(t, err)
	want := []string{s1.ID, s2.ID}
	slices.Sort(want)
	require.Equal(t, want, ids)
	requireRevokedAt(t, s, now, want...)
	got, err := s.GetSession(ctx, already.ID)
	require.NoError(t, err)
	requireTimePtr(t, &earlier, got.RevokedAt, "an earlier revocation keeps its time")
	for _, sess := range []gatehouse.Session{fromOther, fromNone, theirs} {
		got, err := s.GetSession(ctx, sess.ID)
		require.NoError(t, err)
		require.Nil(t, got.RevokedAt, "session %s is from another device", sess.ID)
	}

	ids, err = s.RevokeDeviceSessions(ctx, d.ID, now)
	require.NoError(t, err)
	require.NotNil(t, ids)
	require.Empty(t, ids, "already revoked")
	for _, id := range []string{"", gatehouse.NewID()} {
		ids, err = s.RevokeDeviceSessions(ctx, id, now)
		require.NoError(t, err)
		require.Empty(t, ids, "device %q", id)
	}
	got, err = s.GetSession(ctx, fromNone.ID)
	require.NoError(t, err)
	require.Nil(t, got.RevokedAt, "an empty device id matches no session")
}

// testDevicesRevokeSessionsRace: "sign this device out" pressed several
// times at once revokes each of its sessions once.
func testDevicesRevokeSessionsRace(t *testing.T, s store.Store) {
	requireRevokedOnce(t, s, func(ctx context.Context, q store.Queries, _, deviceRef string, i int) ([]string, error) {
		return q.RevokeDeviceSessions(ctx, deviceRef, racerTime(i))
	})
}

func testDevicesSessionTrust(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess, other := createSession(t, s, u.ID), createSession(t, s, u.ID)
	for _, score := range []int{0, 100, 42} {
		require.NoError(t, s.SetSessionTrust(ctx, sess.ID, score))
		sess.TrustScore = score
		got, err := s.GetSession(ctx, sess.ID)
		require.NoError(t, err)
		requireSession(t, sess, got)
	}
	for _, score := range []int{-1, 101} {
		err := s.SetSessionTrust(ctx, sess.ID, score)
		require.Error(t, err, "score %d", score)
		require.NotErrorIs(t, err, store.ErrNotFound)
		require.NotErrorIs(t, err, store.ErrConflict)
	}
	got, err := s.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	require.Equal(t, 42, got.TrustScore, "a refused score writes nothing")
	got, err = s.GetSession(ctx, other.ID)
	require.NoError(t, err)
	requireSession(t, other, got)
	require.ErrorIs(t, s.SetSessionTrust(ctx, gatehouse.NewID(), 50), store.ErrNotFound)
}

func testDevicesLoginProfile(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	_, err := s.GetLoginProfile(ctx, u.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)

	profile := func(userID string) map[string]any {
		t.Helper()
		raw, err := s.GetLoginProfile(ctx, userID)
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal(raw, &got), "%s", raw)
		return got
	}
	require.NoError(t, s.PutLoginProfile(ctx, u.ID, []byte(`{"countries":["DE"],"logins":1}`), base))
	require.Equal(t, map[string]any{"countries": []any{"DE"}, "logins": 1.0}, profile(u.ID))
	// Put replaces the whole profile.
	require.NoError(t, s.PutLoginProfile(ctx, u.ID, []byte(`{"logins":2,"hours":{"9":3},"city":"Zürich"}`), base.Add(time.Hour)))
	require.Equal(t, map[string]any{"logins": 2.0, "hours": map[string]any{"9": 3.0}, "city": "Zürich"}, profile(u.ID))
	require.NoError(t, s.PutLoginProfile(ctx, other.ID, []byte(`{}`), base))
	require.Equal(t, map[string]any{}, profile(other.ID))

	// Only a JSON object is a profile; a refused one leaves the old.
	for _, bad := range []string{``, `not json`, `[1,2]`, `"text"`, `42`, `null`, `{"a":`} {
		err := s.PutLoginProfile(ctx, u.ID, []byte(bad), base)
		require.Error(t, err, "%q", bad)
		require.NotErrorIs(t, err, store.ErrNotFound, "%q", bad)
		require.NotErrorIs(t, err, store.ErrConflict, "%q", bad)
	}
	require.Equal(t, map[string]any{"logins": 2.0, "hours": map[string]any{"9": 3.0}, "city": "Zürich"}, profile(u.ID))

	err = s.PutLoginProfile(ctx, gatehouse.NewID(), []byte(`{}`), base)
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown user")
}
