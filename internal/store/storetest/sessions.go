package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// sessionCases cover Sessions.
var sessionCases = []testCase{
	{name: "Sessions/CreateGet", covers: []string{"CreateSession", "GetSession"}, fn: testSessionsCreateGet},
	{name: "Sessions/CreateDuplicate", covers: []string{"CreateSession"}, fn: testSessionsCreateDuplicate},
	{name: "Sessions/CreateUnknownUser", covers: []string{"CreateSession"}, fn: testSessionsCreateUnknownUser},
	{name: "Sessions/GetNotFound", covers: []string{"GetSession"}, fn: testSessionsGetNotFound},
	{name: "Sessions/List", covers: []string{"ListSessions"}, fn: testSessionsList},
	{name: "Sessions/Touch", covers: []string{"TouchSession"}, fn: testSessionsTouch},
	{name: "Sessions/TouchTrust", covers: []string{"TouchSessionTrust"}, fn: testSessionsTouchTrust},
	{name: "Sessions/Revoke", covers: []string{"RevokeSession"}, fn: testSessionsRevoke},
	{name: "Sessions/RevokeRace", covers: []string{"RevokeSession"}, fn: testSessionsRevokeRace},
	{name: "Sessions/RevokeUserSessions", covers: []string{"RevokeUserSessions"}, fn: testSessionsRevokeUserSessions},
	{name: "Sessions/RevokeUserSessionsRace", covers: []string{"RevokeUserSessions"}, fn: testSessionsRevokeUserSessionsRace},
	{name: "Sessions/DeleteStale", fresh: true, covers: []string{"DeleteStaleSessions"}, fn: testSessionsDeleteStale},
	{name: "Sessions/CountActive", fresh: true, covers: []string{"CountActiveSessions"}, fn: testSessionsCountActive},
}

// refreshTokenCases cover RefreshTokens.
var refreshTokenCases = []testCase{
	{name: "RefreshTokens/CreateGet", covers: []string{"CreateRefreshToken", "GetRefreshTokenByHash"}, fn: testRefreshTokensCreateGet},
	{name: "RefreshTokens/CreateDuplicate", covers: []string{"CreateRefreshToken"}, fn: testRefreshTokensCreateDuplicate},
	{name: "RefreshTokens/GetNotFound", covers: []string{"GetRefreshTokenByHash"}, fn: testRefreshTokensGetNotFound},
	{name: "RefreshTokens/Use", covers: []string{"UseRefreshToken"}, fn: testRefreshTokensUse},
	{name: "RefreshTokens/UseRace", covers: []string{"UseRefreshToken"}, fn: testRefreshTokensUseRace},
	{name: "RefreshTokens/Consume", covers: []string{"ConsumeRefreshToken"}, fn: testRefreshTokensConsume},
	{name: "RefreshTokens/ConsumeRace", covers: []string{"ConsumeRefreshToken"}, fn: testRefreshTokensConsumeRace},
}

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
		DeviceRef:    gatehouse.NewID(),
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
	require.Equal(t, want.DeviceRef, got.DeviceRef)
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
	return idsOf(ss, func(x gatehouse.Session) string { return x.ID })
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

func testSessionsTouchTrust(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	other := createSession(t, s, u.ID)
	stored := func(want gatehouse.Session) {
		t.Helper()
		got, err := s.GetSession(ctx, want.ID)
		require.NoError(t, err)
		requireSession(t, want, got)
	}

	t1 := base.Add(time.Minute)
	require.NoError(t, s.TouchSessionTrust(ctx, sess.ID, t1, "198.51.100.4", "curl/8.0", 80))
	want := sess
	want.LastActiveAt, want.IPAddress, want.UserAgent, want.TrustScore = t1, "198.51.100.4", "curl/8.0", 80
	stored(want)

	// Empty values keep what is stored; the score is always set.
	t2 := t1.Add(time.Minute)
	require.NoError(t, s.TouchSessionTrust(ctx, sess.ID, t2, "", "", 0))
	want.LastActiveAt, want.TrustScore = t2, 0
	stored(want)

	for _, bad := range []int{-1, 101} {
		err := s.TouchSessionTrust(ctx, sess.ID, t2.Add(time.Minute), "", "", bad)
		require.Error(t, err, bad)
		require.NotErrorIs(t, err, store.ErrNotFound)
	}
	stored(want)
	stored(other)

	require.ErrorIs(t, s.TouchSessionTrust(ctx, gatehouse.NewID(), base, "192.0.2.1", "x", 50), store.ErrNotFound)
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

// testSessionsRevokeRace: of concurrent sign-outs of one session, one
// revokes it (and so writes the audit row and event); the first time stays.
func testSessionsRevokeRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	win := requireOneWinner(t, s, "revoke a session", nil, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return q.RevokeSession(ctx, sess.ID, racerTime(i))
	})
	got, err := s.GetSession(t.Context(), sess.ID)
	require.NoError(t, err)
	requireTimePtr(t, ptr(racerTime(win)), got.RevokedAt, "RevokedAt is the winner's")
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

	requireRevokedAt(t, s, at, want...)
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

// testSessionsRevokeUserSessionsRace: "sign out everywhere" run several
// times at once revokes each session once: the calls return disjoint ids
// that together are every session, each revoked at its caller's time.
func testSessionsRevokeUserSessionsRace(t *testing.T, s store.Store) {
	requireRevokedOnce(t, s, func(ctx context.Context, q store.Queries, userID, _ string, i int) ([]string, error) {
		return q.RevokeUserSessions(ctx, userID, "", racerTime(i))
	})
}

// requireRevokedOnce makes a user with sessions from one device, races
// revoke over them, and checks every session was revoked by exactly one
// call, at that call's time.
func requireRevokedOnce(t *testing.T, s store.Store, revoke func(ctx context.Context, q store.Queries, userID, deviceRef string, i int) ([]string, error)) {
	t.Helper()
	u := createUser(t, s)
	sessions := make([]gatehouse.Session, 12)
	deviceRef := gatehouse.NewID()
	for i := range sessions {
		sessions[i] = newSession(u.ID)
		sessions[i].DeviceRef = deviceRef
		require.NoError(t, s.CreateSession(t.Context(), sessions[i]))
	}
	revoked := raceAll(t, s, nil, func(ctx context.Context, q store.Queries, i int) ([]string, error) {
		return revoke(ctx, q, u.ID, deviceRef, i)
	})
	by := map[string]int{} // session id -> the racer that revoked it
	for i, ids := range revoked {
		require.True(t, slices.IsSorted(ids), "racer %d: ids come sorted", i)
		for _, id := range ids {
			prev, dup := by[id]
			require.Falsef(t, dup, "session %s revoked by racers %d and %d", id, prev, i)
			by[id] = i
		}
	}
	require.Len(t, by, len(sessions), "every session revoked")
	for _, sess := range sessions {
		requireRevokedAt(t, s, racerTime(by[sess.ID]), sess.ID)
	}
}

// requireRevokedAt checks each session is revoked, at at.
func requireRevokedAt(t *testing.T, s store.Store, at time.Time, ids ...string) {
	t.Helper()
	for _, id := range ids {
		got, err := s.GetSession(t.Context(), id)
		require.NoError(t, err)
		requireTimePtr(t, &at, got.RevokedAt, "RevokedAt of "+id)
	}
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

	for range 10 {
		mk(cutoff.Add(-time.Hour), nil)
	}
	requireSweptOnce(t, s, 10, func(ctx context.Context, q store.Queries) (int64, error) {
		return q.DeleteStaleSessions(ctx, cutoff)
	})
}

func testSessionsCountActive(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base
	n, err := s.CountActiveSessions(ctx, now)
	require.NoError(t, err)
	require.Zero(t, n, "an empty store")

	u, other := createUser(t, s), createUser(t, s)
	mk := func(userID string, expires time.Time, revoked *time.Time) {
		sess := newSession(userID)
		sess.ExpiresAt, sess.RevokedAt = expires, revoked
		require.NoError(t, s.CreateSession(ctx, sess))
	}
	later := now.Add(time.Hour)
	mk(u.ID, later, nil)
	mk(other.ID, later, nil)                       // every user's count
	mk(u.ID, now.Add(time.Microsecond), nil)       // expires just after now
	mk(u.ID, now, nil)                             // expires exactly now: not after now
	mk(u.ID, now.Add(-time.Hour), nil)             // expired
	mk(u.ID, later, ptr(now.Add(-time.Second)))    // revoked
	mk(other.ID, later, ptr(later.Add(time.Hour))) // revoked in the future is still revoked
	n, err = s.CountActiveSessions(ctx, now)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)

	n, err = s.CountActiveSessions(ctx, now.Add(time.Microsecond))
	require.NoError(t, err)
	require.Equal(t, int64(2), n, "the soon-expiring one drops out")

	// Revoking one takes it out of the count, inside a transaction too.
	ids, err := s.RevokeUserSessions(ctx, other.ID, "", now)
	require.NoError(t, err)
	require.Len(t, ids, 1)
	require.NoError(t, s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		n, err = tx.CountActiveSessions(ctx, now)
		return err
	}))
	require.Equal(t, int64(2), n)
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

func testRefreshTokensUseRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	tok := createRefreshToken(t, s, createSession(t, s, u.ID))
	win := requireOneWinner(t, s, "rotate a refresh token", nil, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return q.UseRefreshToken(ctx, tok.ID, racerTime(i))
	})
	got, err := s.GetRefreshTokenByHash(t.Context(), tok.Hash)
	require.NoError(t, err)
	requireTimePtr(t, ptr(racerTime(win)), got.UsedAt, "UsedAt is the winner's")
}

func testRefreshTokensConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	sess := createSession(t, s, u.ID)
	tok, other := createRefreshToken(t, s, sess), createRefreshToken(t, s, sess)
	expired := newRefreshToken(t, sess)
	expired.ExpiresAt = base.Add(-time.Hour)
	require.NoError(t, s.CreateRefreshToken(ctx, expired))

	at := base.Add(time.Minute)
	got, err := s.ConsumeRefreshToken(ctx, tok.Hash, at)
	require.NoError(t, err)
	tok.UsedAt = &at
	requireRefreshToken(t, tok, got)
	_, err = s.ConsumeRefreshToken(ctx, tok.Hash, at.Add(time.Minute))
	require.ErrorIs(t, err, store.ErrNotFound, "a used token is not consumed again")

	got, err = s.GetRefreshTokenByHash(ctx, tok.Hash)
	require.NoError(t, err)
	requireRefreshToken(t, tok, got)
	got, err = s.GetRefreshTokenByHash(ctx, other.Hash)
	require.NoError(t, err)
	require.Nil(t, got.UsedAt, "another token of the family is untouched")

	// Expiry is the caller's to check: an expired token is consumed.
	got, err = s.ConsumeRefreshToken(ctx, expired.Hash, at)
	require.NoError(t, err)
	requireTime(t, expired.ExpiresAt, got.ExpiresAt, "ExpiresAt")

	_, err = s.ConsumeRefreshToken(ctx, secretHash(t), at)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ConsumeRefreshToken(ctx, other.Hash[:16], at)
	require.ErrorIs(t, err, store.ErrNotFound, "a prefix is not a match")
}

func testRefreshTokensConsumeRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	tok := createRefreshToken(t, s, createSession(t, s, u.ID))
	win := requireOneWinner(t, s, "consume a refresh token", nil, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		_, err := q.ConsumeRefreshToken(ctx, tok.Hash, racerTime(i))
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	got, err := s.GetRefreshTokenByHash(t.Context(), tok.Hash)
	require.NoError(t, err)
	requireTimePtr(t, ptr(racerTime(win)), got.UsedAt, "UsedAt is the winner's")
}
