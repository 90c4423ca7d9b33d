package cache_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

func startedLocal(t testing.TB, shared cache.Cache, name string, o cache.LocalOptions) *cache.Local[string] {
	t.Helper()
	l := cache.NewLocal[string](shared, name, o)
	require.NoError(t, l.Start(context.Background()))
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestLocalGetAddLoad(t *testing.T) {
	ctx := context.Background()
	l := startedLocal(t, cache.NewMemory(), "t-basic", cache.LocalOptions{})
	_, ok := l.Get("a")
	require.False(t, ok)
	l.Add(l.Version(), "a", "1", 0)
	v, ok := l.Get("a")
	require.True(t, ok)
	require.Equal(t, "1", v)

	loads := 0
	load := func(context.Context) (string, error) { loads++; return "loaded", nil }
	for range 3 {
		v, err := l.Load(ctx, "b", 0, load)
		require.NoError(t, err)
		require.Equal(t, "loaded", v)
	}
	require.Equal(t, 1, loads, "the truth is read once, then memory answers")

	_, err := l.Load(ctx, "c", 0, func(context.Context) (string, error) { return "", fmt.Errorf("db down") })
	require.Error(t, err)
	_, ok = l.Get("c")
	require.False(t, ok, "a failed load is not kept")
}

func TestLocalNotStartedKeepsNothing(t *testing.T) {
	l := cache.NewLocal[string](cache.NewMemory(), "t-unstarted", cache.LocalOptions{})
	l.Add(l.Version(), "a", "1", 0)
	_, ok := l.Get("a")
	require.False(t, ok, "without invalidations nothing may be believed")

	s := startedLocal(t, cache.NewMemory(), "t-closed", cache.LocalOptions{})
	s.Add(s.Version(), "a", "1", 0)
	require.NoError(t, s.Close())
	s.Add(s.Version(), "b", "1", 0)
	require.Zero(t, s.Len(), "a closed Local keeps nothing")
}

func TestLocalEvictsLeastRecentlyUsed(t *testing.T) {
	l := startedLocal(t, cache.NewMemory(), "t-lru", cache.LocalOptions{Size: 3})
	for _, k := range []string{"a", "b", "c"} {
		l.Add(l.Version(), k, k, 0)
	}
	_, ok := l.Get("a") // a is now the most recently used
	require.True(t, ok)
	l.Add(l.Version(), "d", "d", 0) // evicts b
	require.Equal(t, 3, l.Len())
	_, ok = l.Get("b")
	require.False(t, ok)
	for _, k := range []string{"a", "c", "d"} {
		_, ok := l.Get(k)
		require.True(t, ok, k)
	}
	// Many more keys than the size never grow it.
	for i := range 100 {
		l.Add(l.Version(), strconv.Itoa(i), "x", 0)
	}
	require.Equal(t, 3, l.Len())

	off := startedLocal(t, cache.NewMemory(), "t-off", cache.LocalOptions{Size: -1})
	off.Add(off.Version(), "a", "a", 0)
	require.Zero(t, off.Len())
}

func TestLocalExpires(t *testing.T) {
	clock := newFakeClock()
	l := startedLocal(t, cache.NewMemory(), "t-ttl", cache.LocalOptions{TTL: time.Minute, Now: clock.Now})
	l.Add(l.Version(), "short", "1", 10*time.Second)
	l.Add(l.Version(), "long", "1", time.Hour) // capped at the Local's TTL
	clock.Advance(10 * time.Second)
	_, ok := l.Get("short")
	require.False(t, ok)
	_, ok = l.Get("long")
	require.True(t, ok)
	clock.Advance(50 * time.Second)
	_, ok = l.Get("long")
	require.False(t, ok)
}

// A load that raced an invalidation is not kept: what it read may be
// older than the change.
func TestLocalLoadRacingInvalidationIsNotKept(t *testing.T) {
	ctx := context.Background()
	l := startedLocal(t, cache.NewMemory(), "t-race", cache.LocalOptions{})
	v, err := l.Load(ctx, "a", 0, func(ctx context.Context) (string, error) {
		l.Invalidate(ctx, "a") // the change commits while the old value is read
		return "old", nil
	})
	require.NoError(t, err)
	require.Equal(t, "old", v)
	_, ok := l.Get("a")
	require.False(t, ok)
}

// Two Locals of one name over one shared cache stand for two instances:
// an invalidation on one reaches the other through pub/sub.
func TestLocalInvalidationReachesOtherInstances(t *testing.T) {
	ctx := context.Background()
	shared := cache.NewMemory()
	a := startedLocal(t, shared, "t-coherent", cache.LocalOptions{})
	b := startedLocal(t, shared, "t-coherent", cache.LocalOptions{})
	other := startedLocal(t, shared, "t-coherent-other", cache.LocalOptions{})
	for _, l := range []*cache.Local[string]{a, b, other} {
		l.Add(l.Version(), "k", "v", 0)
		l.Add(l.Version(), "j", "v", 0)
	}
	a.Invalidate(ctx, "k")
	_, ok := a.Get("k")
	require.False(t, ok, "dropped here at once")
	require.Eventually(t, func() bool { _, ok := b.Get("k"); return !ok }, 5*time.Second, 5*time.Millisecond)
	_, ok = b.Get("j")
	require.True(t, ok, "other keys stay")
	_, ok = other.Get("k")
	require.True(t, ok, "another cache's keys stay")

	b.InvalidateAll(ctx)
	require.Eventually(t, func() bool { _, ok := a.Get("j"); return !ok }, 5*time.Second, 5*time.Millisecond)
	_, ok = other.Get("j")
	require.True(t, ok)
}

func TestLocalMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	l := startedLocal(t, cache.NewMemory(), "t-metrics", cache.LocalOptions{Stats: m.Cache("t-metrics")})
	l.Get("a")
	l.Add(l.Version(), "a", "1", 0)
	l.Get("a")
	l.Get("a")
	want := `
# HELP gatehouse_cache_requests_total Lookups in the in-process caches, by cache and result (hit, miss).
# TYPE gatehouse_cache_requests_total counter
gatehouse_cache_requests_total{cache="t-metrics",result="hit"} 2
gatehouse_cache_requests_total{cache="t-metrics",result="miss"} 1
`
	require.NoError(t, testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "gatehouse_cache_requests_total"))
}

func TestLocalConcurrentUse(t *testing.T) {
	ctx := context.Background()
	l := startedLocal(t, cache.NewMemory(), "t-concurrent", cache.LocalOptions{Size: 64})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := strconv.Itoa((i * (w + 1)) % 200)
				switch i % 7 {
				case 0:
					l.Invalidate(ctx, k)
				default:
					_, _ = l.Load(ctx, k, 0, func(context.Context) (string, error) { return k, nil })
				}
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, l.Len(), 64)
}

func BenchmarkLocalGetHit(b *testing.B) {
	l := startedLocal(b, cache.NewMemory(), "b-hit", cache.LocalOptions{})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
		l.Add(l.Version(), keys[i], keys[i], time.Hour)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := l.Get(keys[i&1023]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func BenchmarkLocalLoadMiss(b *testing.B) {
	ctx := context.Background()
	l := startedLocal(b, cache.NewMemory(), "b-miss", cache.LocalOptions{Size: 1024})
	load := func(context.Context) (string, error) { return "v", nil }
	b.ResetTimer()
	for i := range b.N {
		_, _ = l.Load(ctx, strconv.Itoa(i), 0, load) // always a new key: load and evict
	}
}
