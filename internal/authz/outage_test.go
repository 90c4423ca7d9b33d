package authz_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/authz"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// storeUser inserts an account holding roles straight into the store.
func storeUser(t *testing.T, db *sqlstore.DB, email string, roles ...string) string {
	t.Helper()
	return storeUserAs(t, db, email, roles...)
}

func storeUserTB(t testing.TB, db *sqlstore.DB, roles ...string) string {
	t.Helper()
	return storeUserAs(t, db, "bench-"+gatehouse.NewID()+"@example.com", roles...)
}

func storeUserAs(t testing.TB, db *sqlstore.DB, email string, roles ...string) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := gatehouse.User{ID: gatehouse.NewID(), Email: gatehouse.Email(email), CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.CreateUser(ctx, u))
	require.NoError(t, db.SetUserRoles(ctx, u.ID, roles))
	return u.ID
}

// lockedBuffer is a log sink safe for the checker's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// With its cache down (here: closed), a checker cannot subscribe to
// invalidations, but it still answers every check from the database,
// denying what is not granted; it never falls back to "allow".
func TestCheckerAnswersFromTheDatabaseWhenTheCacheIsDown(t *testing.T) {
	t.Parallel()
	for _, eng := range sqltest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := eng.Open(t)
			admin := storeUser(t, db, "admin@example.com", "admin")
			mod := storeUser(t, db, "mod@example.com", "moderator")
			plain := storeUser(t, db, "plain@example.com", "user")

			closed := cache.NewMemory()
			require.NoError(t, closed.Close())
			var logs lockedBuffer
			c := authz.NewChecker(db, closed, authz.CheckerOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			require.ErrorIs(t, c.Start(ctx), cache.ErrClosed)
			require.NoError(t, c.Close(), "closing a checker that never started")

			for _, tc := range []struct {
				user, perm string
				want       bool
			}{
				{admin, "anything:goes", true},
				{admin, "*", true},
				{mod, "users:read", true},
				{mod, "users:lock", true},
				{mod, "roles:write", false},
				{mod, "users:*", false},
				{plain, "users:read", false},
				{"no-such-user", "users:read", false},
			} {
				ok, err := c.Can(ctx, tc.user, tc.perm)
				require.NoError(t, err)
				require.Equal(t, tc.want, ok, "%s %s", tc.user, tc.perm)
			}
			s, err := c.Set(ctx, mod)
			require.NoError(t, err)
			require.True(t, s.Covers([]string{"users:read", "audit:read"}))

			// Invalidation still works on this instance; the failed publish
			// is logged loudly, since other instances keep stale sets.
			require.NoError(t, db.SetUserRoles(ctx, mod, []string{"user"}))
			c.InvalidateUser(ctx, mod)
			ok, err := c.Can(ctx, mod, "users:read")
			require.NoError(t, err)
			require.False(t, ok, "a revoked role is denied at once on this instance")
			require.Contains(t, logs.String(), "invalidation not published")

			require.NoError(t, db.SetUserRoles(ctx, plain, []string{"moderator"}))
			c.InvalidateAll(ctx)
			ok, err = c.Can(ctx, plain, "users:lock")
			require.NoError(t, err)
			require.True(t, ok)
		})
	}
}

// failingStore fails every read after it is broken.
type failingStore struct {
	authz.PermissionStore
	mu     sync.Mutex
	broken bool
}

func (s *failingStore) UserPermissions(ctx context.Context, id string) ([]string, error) {
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken {
		return nil, errors.New("database is down")
	}
	return s.PermissionStore.UserPermissions(ctx, id)
}

// When neither a live cached set nor the database answers, a check is an
// error and "no", never "yes": an expired set is not used past its TTL.
func TestCheckerDeniesWhenTheDatabaseFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqltest.SQLite(t)
	admin := storeUser(t, db, "admin@example.com", "admin")
	st := &failingStore{PermissionStore: db}
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	mem := cache.NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	c := authz.NewChecker(st, mem, authz.CheckerOptions{TTL: time.Minute, Now: clock})

	ok, err := c.Can(ctx, admin, "users:read")
	require.NoError(t, err)
	require.True(t, ok)

	st.mu.Lock()
	st.broken = true
	st.mu.Unlock()
	ok, err = c.Can(ctx, admin, "users:read")
	require.NoError(t, err)
	require.True(t, ok, "within its TTL the cached set answers")

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	ok, err = c.Can(ctx, admin, "users:read")
	require.Error(t, err)
	require.False(t, ok, "an expired set is not trusted when the database fails")

	ok, err = c.Can(ctx, "someone-else", "users:read")
	require.Error(t, err)
	require.False(t, ok)
	_, err = c.Set(ctx, admin)
	require.Error(t, err)
}

// With the database down, role management fails with an error and
// changes nothing; in particular it never skips the actor's check.
func TestServiceFailsClosedWhenTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqltest.SQLite(t)
	admin := storeUser(t, db, "admin@example.com", "admin")
	target := storeUser(t, db, "target@example.com", "user")
	roles, err := db.ListRoles(ctx)
	require.NoError(t, err)
	mem := cache.NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	c := authz.NewChecker(db, mem, authz.CheckerOptions{})
	s := authz.NewService(db, c, nil, nil)
	require.Same(t, c, s.Checker())
	require.NoError(t, db.Close())

	_, err = s.CreateRole(ctx, admin, "support", "", []string{"users:read"})
	require.Error(t, err)
	desc := "x"
	_, err = s.UpdateRole(ctx, admin, roles[0].ID, &desc, nil)
	require.Error(t, err)
	require.Error(t, s.DeleteRole(ctx, admin, roles[0].ID))
	_, err = s.SetUserRoles(ctx, admin, target, []string{"user", "admin"})
	require.Error(t, err)
	_, err = s.ListRoles(ctx)
	require.Error(t, err)
	ok, err := c.Can(ctx, admin, "users:read")
	require.Error(t, err)
	require.False(t, ok)
}
