package session_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/session"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// aliveTTL mirrors how long the service vouches for a live session in the
// cache (session.aliveTTL).
const aliveTTL = time.Minute

func requireCode(t require.TestingT, err error, code gatehouse.Code) {
	require.Error(t, err)
	require.Equal(t, code, gatehouse.ErrorCode(err), "err: %v", err)
}

// With the cache down every call fails (ErrClosed); the database then
// decides, so a live session is still admitted and a revoked one refused.
func TestAuthenticateFallsBackToDatabaseWhenCacheIsDown(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			ctx := context.Background()
			down := cache.NewMemory()
			require.NoError(t, down.Close())
			_, err := down.Get(ctx, "anything")
			require.ErrorIs(t, err, cache.ErrClosed)
			svc, _ := newService(e, down)

			userID, tks := signUp(e, "pcd", 3)
			for range 3 { // no "alive" mark can be kept: each is a database read
				p, err := svc.Authenticate(ctx, tks[0].Access)
				require.NoError(t, err)
				require.Equal(t, userID, p.UserID)
				require.Equal(t, tks[0].SessionID, p.SessionID)
				require.Equal(t, []string{"pwd"}, p.AMR)
				require.NotEmpty(t, p.TokenID)
				require.Equal(t, e.Clock.Now().Add(e.App.Config.AccessTokenTTL), p.ExpiresAt)
			}

			// Revoked through this service (its deny-list write fails and is
			// only logged) ...
			_, err = svc.Authenticate(ctx, tks[1].Access)
			require.NoError(t, err)
			require.NoError(t, svc.Revoke(ctx, userID, tks[1].SessionID, "revoked_by_user"))
			_, err = svc.Authenticate(ctx, tks[1].Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)

			// ... or through another instance (the server's): still refused.
			require.Equal(t, http.StatusNoContent, e.Do("DELETE", "/sessions/"+tks[2].SessionID, nil, tks[0].Access).Status)
			_, err = svc.Authenticate(ctx, tks[2].Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)

			// Refresh never needed the cache, and reuse detection still
			// ends the family.
			r, err := svc.Refresh(ctx, tks[0].Refresh, gatehouse.ClientInfo{IP: "192.0.2.1"})
			require.NoError(t, err)
			require.Equal(t, tks[0].SessionID, r.Session.ID)
			_, err = svc.Refresh(ctx, tks[0].Refresh, gatehouse.ClientInfo{})
			requireCode(t, err, gatehouse.CodeRefreshTokenReused)
			_, err = svc.Authenticate(ctx, tks[0].Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)
			requireRevoked(t, e, tks[0].SessionID)
		})
	}
}

// flakyStore is the server's database that can be made to fail.
type flakyStore struct {
	*sqlstore.DB
	down atomic.Bool
}

var errDatabaseDown = errors.New("database down")

func (f *flakyStore) GetSession(ctx context.Context, id string) (gatehouse.Session, error) {
	if f.down.Load() {
		return gatehouse.Session{}, errDatabaseDown
	}
	return f.DB.GetSession(ctx, id)
}

func (f *flakyStore) TouchSession(ctx context.Context, id string, now time.Time, ip, ua string) error {
	if f.down.Load() {
		return errDatabaseDown
	}
	return f.DB.TouchSession(ctx, id, now, ip, ua)
}

func (f *flakyStore) InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	if f.down.Load() {
		return errDatabaseDown
	}
	return f.DB.InTx(ctx, fn)
}

// When neither the cache nor the database can vouch for a session the
// answer is an error, never a guess; a fresh "alive" mark still answers.
func TestAuthenticateFailsClosedWhenDatabaseFails(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			ctx := context.Background()
			c := cache.NewMemory(cache.WithClock(e.Clock.Now))
			t.Cleanup(func() { _ = c.Close() })
			fs := &flakyStore{DB: e.App.DB}
			cfg := e.App.Config
			_, tokens := newService(e, c)
			svc := session.New(fs, c, tokens, e.App.Bus, session.Options{
				Lifetime: cfg.RefreshTokenTTL, IdleTimeout: cfg.SessionIdleTimeout, Now: e.Clock.Now, Logger: discardLogger(),
			})
			_, tks := signUp(e, "pdf", 2)
			_, err := svc.Authenticate(ctx, tks[0].Access)
			require.NoError(t, err)

			fs.down.Store(true)
			_, err = svc.Authenticate(ctx, tks[0].Access) // the mark answers
			require.NoError(t, err)
			_, err = svc.Authenticate(ctx, tks[1].Access) // nothing can
			require.ErrorIs(t, err, errDatabaseDown)
			_, err = svc.Refresh(ctx, tks[1].Refresh, gatehouse.ClientInfo{})
			require.ErrorIs(t, err, errDatabaseDown)
			err = svc.Revoke(ctx, "", tks[1].SessionID, "x")
			require.ErrorIs(t, err, errDatabaseDown)
			_, err = svc.RevokeOthers(ctx, "", tks[1].SessionID)
			require.ErrorIs(t, err, errDatabaseDown)
			_, err = svc.Get(ctx, "", tks[1].SessionID)
			require.ErrorIs(t, err, errDatabaseDown)

			e.Clock.Advance(aliveTTL) // the mark lapses: the database is asked again
			_, err = svc.Authenticate(ctx, tks[0].Access)
			require.ErrorIs(t, err, errDatabaseDown)

			fs.down.Store(false)
			_, err = svc.Authenticate(ctx, tks[1].Access)
			require.NoError(t, err)
			_, err = svc.Refresh(ctx, tks[1].Refresh, gatehouse.ClientInfo{})
			require.NoError(t, err)
		})
	}
}

// The deny list makes a revocation visible at once, even to a session the
// cache currently vouches for.
func TestDenyListStopsCachedSessionAtOnce(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			ctx := context.Background()
			c := cache.NewMemory(cache.WithClock(e.Clock.Now))
			t.Cleanup(func() { _ = c.Close() })
			svc, _ := newService(e, c)
			userID, tks := signUp(e, "pdl", 6)
			authTwice := func(access string) {
				t.Helper()
				for range 2 { // the first reads the database, the second the mark
					_, err := svc.Authenticate(ctx, access)
					require.NoError(t, err)
				}
			}

			// A revocation that bypasses the cache is not seen while the
			// mark lives: this is what the deny list is for.
			a := tks[0]
			authTwice(a.Access)
			did, err := e.App.DB.RevokeSession(ctx, a.SessionID, e.Clock.Now())
			require.NoError(t, err)
			require.True(t, did)
			_, err = svc.Authenticate(ctx, a.Access)
			require.NoError(t, err, "the alive mark answers until it lapses or Forget")
			svc.Forget(ctx, a.SessionID)
			_, err = svc.Authenticate(ctx, a.Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)

			// Without Forget the mark lapses after aliveTTL and the
			// database refuses.
			b := tks[1]
			authTwice(b.Access)
			_, err = e.App.DB.RevokeSession(ctx, b.SessionID, e.Clock.Now())
			require.NoError(t, err)
			e.Clock.Advance(aliveTTL)
			_, err = svc.Authenticate(ctx, b.Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)

			// Revoke calls Forget.
			cs := tks[2]
			authTwice(cs.Access)
			require.NoError(t, svc.Revoke(ctx, userID, cs.SessionID, "revoked_by_user"))
			_, err = svc.Authenticate(ctx, cs.Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)
			requireCode(t, svc.Revoke(ctx, userID, cs.SessionID, "again"), gatehouse.CodeNotFound)

			// RevokeOthers calls Forget for every one it ended.
			for _, tk := range tks[3:] {
				authTwice(tk.Access)
			}
			n, err := svc.RevokeOthers(ctx, userID, tks[3].SessionID)
			require.NoError(t, err)
			require.Equal(t, 2, n)
			_, err = svc.Authenticate(ctx, tks[3].Access)
			require.NoError(t, err)
			for _, tk := range tks[4:] {
				_, err = svc.Authenticate(ctx, tk.Access)
				requireCode(t, err, gatehouse.CodeUnauthorized)
			}

			// RevokeAllTx inside the caller's transaction, then Forget.
			var ids []string
			require.NoError(t, e.App.DB.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				var err error
				ids, err = svc.RevokeAllTx(ctx, tx, userID, "", "password_reset")
				return err
			}))
			require.Equal(t, []string{tks[3].SessionID}, ids)
			svc.Forget(ctx, ids...)
			svc.Forget(ctx, "") // ignored
			_, err = svc.Authenticate(ctx, tks[3].Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)
			require.Equal(t, []string{"password_reset"}, revocationReasons(t, e, userID, tks[3].SessionID))
			list, err := svc.List(ctx, userID)
			require.NoError(t, err)
			require.Empty(t, list)
		})
	}
}

// A session unused for GATEHOUSE_SESSION_IDLE_TIMEOUT ends: its access
// token (still unexpired) and refresh token stop working. Any use, a
// request or a refresh, restarts the wait.
func TestIdleTimeoutEndsSession(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			const idle = time.Hour
			// Access tokens outlive the idle timeout, so only idleness can
			// explain a refusal.
			e := apptest.New(t, eng, map[string]string{
				"GATEHOUSE_SESSION_IDLE_TIMEOUT": "1h",
				"GATEHOUSE_ACCESS_TOKEN_TTL":     "4h",
			})
			quietJobs(t, e)
			ctx := context.Background()
			// The server's own cache runs on the wall clock, so over HTTP
			// only sessions it never vouched for are checked after the clock
			// moves; the service below has a cache on the test clock.
			c := cache.NewMemory(cache.WithClock(e.Clock.Now))
			t.Cleanup(func() { _ = c.Close() })
			svc, _ := newService(e, c)
			userID, tks := signUp(e, "pit", 3)
			unused, refreshed, requested := tks[0], tks[1], tks[2]

			// Requests keep a session alive, and so do refreshes.
			for range 3 {
				_, err := svc.Authenticate(ctx, requested.Access)
				require.NoError(t, err)
				refreshed = requireTokenResponse(t, refresh(e, refreshed.Refresh), 4*time.Hour)
				e.Clock.Advance(idle - time.Second)
			}
			// The unused session died long ago.
			apptest.Expect(t, me(e, unused.Access), http.StatusUnauthorized, gatehouse.CodeUnauthorized)
			apptest.Expect(t, refresh(e, unused.Refresh), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
			_, err := svc.Authenticate(ctx, unused.Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)
			sess, err := e.App.DB.GetSession(ctx, unused.SessionID)
			require.NoError(t, err)
			require.Nil(t, sess.RevokedAt, "idleness ends a session without revoking it")

			list, err := svc.List(ctx, userID)
			require.NoError(t, err)
			ids := []string{}
			for _, s := range list {
				ids = append(ids, s.ID)
			}
			require.ElementsMatch(t, []string{refreshed.SessionID, requested.SessionID}, ids)

			// Now leave both alone for the idle timeout.
			e.Clock.Advance(idle)
			_, err = svc.Authenticate(ctx, requested.Access)
			requireCode(t, err, gatehouse.CodeUnauthorized)
			apptest.Expect(t, refresh(e, refreshed.Refresh), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
			apptest.Expect(t, refresh(e, requested.Refresh), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
			list, err = svc.List(ctx, userID)
			require.NoError(t, err)
			require.Empty(t, list)
		})
	}
}

// The cleanup job deletes sessions (with their refresh tokens) that
// ended, by revocation or expiry, more than session.Retention ago, and
// keeps the rest.
func TestCleanupDeletesLongEndedSessions(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, map[string]string{"GATEHOUSE_SESSION_IDLE_TIMEOUT": "0"})
			quietJobs(t, e)
			ctx := context.Background()
			w := &session.CleanupWorker{Store: e.App.DB, Now: e.Clock.Now, Logger: discardLogger()}
			lifetime := e.App.Config.RefreshTokenTTL
			gone := func(tk apptest.Tokens) bool {
				t.Helper()
				_, err := e.App.DB.GetSession(ctx, tk.SessionID)
				if errors.Is(err, store.ErrNotFound) {
					_, err := e.App.DB.GetRefreshTokenByHash(ctx, token.Hash(tk.Refresh))
					require.ErrorIs(t, err, store.ErrNotFound, "refresh tokens go with their session")
					return true
				}
				require.NoError(t, err)
				return false
			}

			_, tks := signUp(e, "pcl", 3)
			revokedEarly, expiring := tks[0], tks[1]
			require.Equal(t, http.StatusNoContent, e.Do("POST", "/auth/logout", nil, revokedEarly.Access).Status)

			// Ended exactly Retention ago: kept (strictly before the cutoff).
			e.Clock.Advance(session.Retention)
			require.NoError(t, w.Work(ctx, nil))
			require.False(t, gone(revokedEarly))
			e.Clock.Advance(time.Second)
			require.NoError(t, w.Work(ctx, nil))
			require.True(t, gone(revokedEarly))
			require.False(t, gone(expiring))
			require.False(t, gone(tks[2]))

			_, recent := signUp(e, "pcl", 1)
			require.Equal(t, http.StatusNoContent, e.Do("POST", "/auth/logout", nil, recent[0].Access).Status)
			require.NoError(t, w.Work(ctx, nil))
			require.False(t, gone(recent[0]), "revoked moments ago")

			// Expired exactly Retention ago: kept; a second later: deleted.
			e.Clock.Advance(lifetime - session.Retention - time.Second) // now exactly at expiry
			apptest.Expect(t, refresh(e, expiring.Refresh), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
			e.Clock.Advance(session.Retention)
			_, live := signUp(e, "pcl", 1)
			require.NoError(t, w.Work(ctx, nil))
			require.False(t, gone(expiring))
			require.True(t, gone(recent[0]))
			e.Clock.Advance(time.Second)
			require.NoError(t, w.Work(ctx, nil))
			require.True(t, gone(expiring))
			require.True(t, gone(tks[2]))
			require.False(t, gone(live[0]))
			require.Equal(t, http.StatusOK, me(e, live[0].Access).Status)
		})
	}
}

// Corners the HTTP API does not reach.
func TestServiceEdgeCases(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			ctx := context.Background()
			c := cache.NewMemory(cache.WithClock(e.Clock.Now))
			t.Cleanup(func() { _ = c.Close() })
			svc, tokens := newService(e, c)
			alice, atks := signUp(e, "pea", 1)
			bob, btks := signUp(e, "peb", 1)

			// Refresh input the schema would stop before the service.
			for _, bad := range []string{"", strings.Repeat("a", 257)} {
				_, err := svc.Refresh(ctx, bad, gatehouse.ClientInfo{})
				requireCode(t, err, gatehouse.CodeInvalidRefreshToken)
			}

			// Tokens our key signed but that name a session not theirs, or
			// none, and tokens that are no JWT at all.
			forged, _, err := tokens.Issue(ctx, alice, btks[0].SessionID, []string{"pwd"}, e.Clock.Now())
			require.NoError(t, err)
			orphan, _, err := tokens.Issue(ctx, alice, gatehouse.NewID(), []string{"pwd"}, e.Clock.Now())
			require.NoError(t, err)
			for _, raw := range []string{forged, orphan, "not-a-jwt", atks[0].Access + "x"} {
				_, err := svc.Authenticate(ctx, raw)
				requireCode(t, err, gatehouse.CodeUnauthorized)
			}
			_, err = svc.Authenticate(ctx, btks[0].Access)
			require.NoError(t, err, "bob's session is unharmed by the forgery")

			// Get: one's own session only.
			got, err := svc.Get(ctx, alice, atks[0].SessionID)
			require.NoError(t, err)
			require.Equal(t, alice, got.UserID)
			_, err = svc.Get(ctx, bob, atks[0].SessionID)
			requireCode(t, err, gatehouse.CodeNotFound)
			_, err = svc.Get(ctx, alice, gatehouse.NewID())
			requireCode(t, err, gatehouse.CodeNotFound)
			requireCode(t, svc.Revoke(ctx, bob, atks[0].SessionID, "x"), gatehouse.CodeNotFound)
			requireCode(t, svc.Revoke(ctx, alice, gatehouse.NewID(), "x"), gatehouse.CodeNotFound)

			// Start cuts long client strings on a rune boundary and keeps
			// what it was given; a refresh records the client's new address.
			var started gatehouse.Session
			var secret string
			require.NoError(t, e.App.DB.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				var err error
				started, secret, err = svc.Start(ctx, tx, alice, gatehouse.ClientInfo{
					IP: "203.0.113.7", UserAgent: strings.Repeat("€", 300), DeviceID: strings.Repeat("ü", 300),
				}, []string{"pwd", "otp"}, true)
				return err
			}))
			stored, err := e.App.DB.GetSession(ctx, started.ID)
			require.NoError(t, err)
			require.Equal(t, strings.Repeat("€", 170), stored.UserAgent) // 510 of 512 bytes
			require.Equal(t, strings.Repeat("ü", 256), stored.DeviceID)  // 512 bytes
			require.True(t, utf8.ValidString(stored.UserAgent))
			require.Equal(t, "203.0.113.7", stored.IPAddress)
			require.Equal(t, []string{"pwd", "otp"}, stored.AMR)
			require.True(t, stored.MFA)
			require.Equal(t, e.Clock.Now().Add(e.App.Config.RefreshTokenTTL), stored.ExpiresAt)

			e.Clock.Advance(time.Minute)
			r, err := svc.Refresh(ctx, secret, gatehouse.ClientInfo{IP: "198.51.100.9", UserAgent: "next/2.0"})
			require.NoError(t, err)
			require.Equal(t, "198.51.100.9", r.Session.IPAddress)
			require.Equal(t, e.Clock.Now(), r.Session.LastActiveAt)
			stored, err = e.App.DB.GetSession(ctx, started.ID)
			require.NoError(t, err)
			require.Equal(t, "198.51.100.9", stored.IPAddress)
			require.Equal(t, "next/2.0", stored.UserAgent)
			access, claims, err := svc.AccessToken(ctx, r.Session)
			require.NoError(t, err)
			require.Equal(t, started.ID, claims.SessionID)
			p, err := svc.Authenticate(ctx, access)
			require.NoError(t, err)
			require.Equal(t, []string{"pwd", "otp"}, p.AMR)
			require.Equal(t, started.AuthTime, p.AuthTime)

			// Defaults: a zero Options still works on the wall clock.
			plain := session.New(e.App.DB, c, tokens, e.App.Bus, session.Options{Lifetime: time.Hour})
			list, err := plain.List(ctx, bob)
			require.NoError(t, err)
			require.Len(t, list, 1)
		})
	}
}

// fakeCleanupStore fails on demand and counts calls.
type fakeCleanupStore struct {
	sessionsErr, tokensErr error
	cutoffs                []time.Time
}

func (f *fakeCleanupStore) DeleteStaleSessions(_ context.Context, cutoff time.Time) (int64, error) {
	f.cutoffs = append(f.cutoffs, cutoff)
	return 3, f.sessionsErr
}

func (f *fakeCleanupStore) DeleteStaleOneTimeTokens(_ context.Context, cutoff time.Time) (int64, error) {
	f.cutoffs = append(f.cutoffs, cutoff)
	return 2, f.tokensErr
}

func TestCleanupWorkerUnit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := &fakeCleanupStore{}
	w := &session.CleanupWorker{Store: f, Now: func() time.Time { return now }, Logger: discardLogger()}
	require.NoError(t, w.Work(context.Background(), nil))
	require.Equal(t, []time.Time{now.Add(-session.Retention), now.Add(-session.Retention)}, f.cutoffs)

	f.sessionsErr = errDatabaseDown
	err := w.Work(context.Background(), nil)
	require.ErrorIs(t, err, errDatabaseDown)
	require.ErrorContains(t, err, "cleanup sessions")

	f.sessionsErr, f.tokensErr = nil, errDatabaseDown
	err = w.Work(context.Background(), nil)
	require.ErrorIs(t, err, errDatabaseDown)
	require.ErrorContains(t, err, "cleanup one-time tokens")

	// The wall clock by default.
	f.tokensErr, f.cutoffs = nil, nil
	require.NoError(t, (&session.CleanupWorker{Store: f}).Work(context.Background(), nil))
	require.WithinDuration(t, time.Now().Add(-session.Retention), f.cutoffs[0], time.Minute)

	args := session.CleanupArgs{}
	require.Equal(t, "session.cleanup", args.Kind())
	opts := args.InsertOpts()
	require.NotEmpty(t, opts.Queue)
	require.Equal(t, 10*time.Minute, opts.UniqueOpts.ByPeriod)
	require.NotNil(t, session.CleanupPeriodic())
}
