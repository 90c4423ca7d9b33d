package authz_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/authz"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
)

// fakeStore serves permissions from a map; a load can be held mid-way.
type fakeStore struct {
	mu    sync.Mutex
	perms map[string][]string
	loads int
	// hold, when set, receives once a load has read its answer, and the
	// load waits for release before returning it.
	hold    chan struct{}
	release chan struct{}
}

func (s *fakeStore) UserPermissions(_ context.Context, id string) ([]string, error) {
	s.mu.Lock()
	p := append([]string(nil), s.perms[id]...)
	s.loads++
	hold, release := s.hold, s.release
	s.hold = nil
	s.mu.Unlock()
	if hold != nil {
		hold <- struct{}{}
		<-release
	}
	return p, nil
}

func (s *fakeStore) set(id string, perms ...string) {
	s.mu.Lock()
	s.perms[id] = perms
	s.mu.Unlock()
}

func (s *fakeStore) loadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

func mustCan(t *testing.T, c *authz.Checker, user, perm string) bool {
	t.Helper()
	ok, err := c.Can(context.Background(), user, perm)
	require.NoError(t, err)
	return ok
}

// A set loaded while an invalidation happened is answered once but not
// kept: the writer committed after the load read, so keeping it would
// serve the old permissions for a whole TTL.
func TestCheckerDoesNotKeepALoadThatRacedAnInvalidation(t *testing.T) {
	t.Parallel()
	st := &fakeStore{perms: map[string][]string{"u": {"billing:read"}}}
	mem := cache.NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	c := authz.NewChecker(st, mem, authz.CheckerOptions{})

	st.mu.Lock()
	st.hold, st.release = make(chan struct{}), make(chan struct{})
	hold, release := st.hold, st.release
	st.mu.Unlock()
	done := make(chan bool)
	go func() {
		ok, _ := c.Can(context.Background(), "u", "billing:read")
		done <- ok
	}()
	<-hold // the load has read the old permissions
	st.set("u")
	c.InvalidateUser(context.Background(), "u")
	close(release)
	require.True(t, <-done, "the racing check answers what it read")

	require.False(t, mustCan(t, c, "u", "billing:read"), "the stale set was not cached")
	loads := st.loadCount()
	require.False(t, mustCan(t, c, "u", "billing:read"))
	require.Equal(t, loads, st.loadCount(), "a load with no invalidation in between is cached")
}

// Checkers sharing a cache (instances sharing Redis; here the in-process
// cache) drop each other's entries through the invalidation channel, for
// one user or for all.
func TestCheckersInvalidateEachOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &fakeStore{perms: map[string][]string{"u": {"billing:read"}, "v": {"docs:*"}}}
	mem := cache.NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	a := authz.NewChecker(st, mem, authz.CheckerOptions{})
	b := authz.NewChecker(st, mem, authz.CheckerOptions{})
	require.NoError(t, a.Start(ctx))
	require.NoError(t, b.Start(ctx))
	t.Cleanup(func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	})

	require.True(t, mustCan(t, b, "u", "billing:read"))
	require.True(t, mustCan(t, b, "v", "docs:edit"))
	loads := st.loadCount()
	require.True(t, mustCan(t, b, "u", "billing:read"))
	require.Equal(t, loads, st.loadCount(), "b answers from its cache")

	st.set("u", "billing:write")
	st.set("v")
	a.InvalidateUser(ctx, "u")
	require.Eventually(t, func() bool {
		ok, err := b.Can(ctx, "u", "billing:write")
		return err == nil && ok
	}, time.Second, 5*time.Millisecond)
	require.True(t, mustCan(t, b, "v", "docs:edit"), "only u's entry was dropped")

	a.InvalidateAll(ctx)
	require.Eventually(t, func() bool {
		ok, err := b.Can(ctx, "v", "docs:edit")
		return err == nil && !ok
	}, time.Second, 5*time.Millisecond)

	// Malformed messages on the channel do no harm.
	require.NoError(t, mem.Publish(ctx, authz.InvalidationChannel, []byte("bogus")))
	require.NoError(t, mem.Publish(ctx, authz.InvalidationChannel, []byte("user:")))
	require.True(t, mustCan(t, b, "u", "billing:write"))
}

// The TTL comes from the options and is measured on the injected clock.
func TestCheckerTTL(t *testing.T) {
	t.Parallel()
	st := &fakeStore{perms: map[string][]string{"u": {"billing:read"}}}
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	mem := cache.NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	c := authz.NewChecker(st, mem, authz.CheckerOptions{TTL: 10 * time.Second, Now: clock})

	require.True(t, mustCan(t, c, "u", "billing:read"))
	st.set("u")
	advance(10*time.Second - time.Nanosecond)
	require.True(t, mustCan(t, c, "u", "billing:read"), "still cached")
	advance(time.Nanosecond)
	require.False(t, mustCan(t, c, "u", "billing:read"), "expired exactly at the TTL")
}
