package cache_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/cache/cachetest"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
)

func TestMemory(t *testing.T) {
	cachetest.Run(t, func(*testing.T) cache.Cache { return cache.NewMemory() })
}

// The contract again with a janitor sweeping constantly, so -race sees the
// sweep interleave with every operation.
func TestMemoryBusyJanitor(t *testing.T) {
	cachetest.Run(t, func(*testing.T) cache.Cache {
		return cache.NewMemory(cache.WithJanitorInterval(time.Millisecond))
	})
}

func TestOpenEmptyURLIsMemory(t *testing.T) {
	c, err := cache.Open(t.Context(), "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.IsType(t, &cache.Memory{}, c)
}

// newFakeClock is a settable clock for WithClock.
func newFakeClock() *testclock.Clock {
	return testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
}

func TestMemoryClock(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := cache.NewMemory(cache.WithClock(clock.Now), cache.WithJanitorInterval(0))
	t.Cleanup(func() { _ = m.Close() })

	require.NoError(t, m.Set(ctx, "k", []byte("v"), time.Minute))
	n, err := m.Incr(ctx, "n", 1, time.Minute)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	clock.Advance(59 * time.Second)
	ttl, err := m.TTL(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, time.Second, ttl)
	n, err = m.Incr(ctx, "n", 1, time.Hour)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)

	clock.Advance(time.Second) // exactly at the deadline: gone
	_, err = m.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss)
	_, err = m.TTL(ctx, "n")
	require.ErrorIs(t, err, cache.ErrMiss)
	n, err = m.Incr(ctx, "n", 1, time.Hour)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, 1, m.Len(), "lazily expired keys are removed on read")
}

func TestMemoryJanitorSweepsUnreadKeys(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := cache.NewMemory(cache.WithClock(clock.Now), cache.WithJanitorInterval(5*time.Millisecond))
	t.Cleanup(func() { _ = m.Close() })

	for i := range 100 {
		require.NoError(t, m.Set(ctx, strconv.Itoa(i), []byte("v"), time.Minute))
	}
	require.NoError(t, m.Set(ctx, "forever", []byte("v"), 0))
	require.Equal(t, 101, m.Len())
	clock.Advance(time.Minute)
	require.Eventually(t, func() bool { return m.Len() == 1 }, 2*time.Second, 5*time.Millisecond)
	_, err := m.Get(ctx, "forever")
	require.NoError(t, err)
}

func TestMemoryCloseStopsJanitorAndDropsKeys(t *testing.T) {
	m := cache.NewMemory(cache.WithJanitorInterval(time.Millisecond))
	require.NoError(t, m.Set(t.Context(), "k", []byte("v"), 0))
	require.NoError(t, m.Close())
	require.Zero(t, m.Len())
	require.ErrorIs(t, m.Close(), cache.ErrClosed)
}

func TestMemorySubscriptionBufferDrops(t *testing.T) {
	ctx := t.Context()
	m := cache.NewMemory(cache.WithSubscriptionBuffer(0)) // raised to 1
	t.Cleanup(func() { _ = m.Close() })
	sub, err := m.Subscribe(ctx, "c", "c") // a duplicate channel is harmless
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, m.Publish(ctx, "c", []byte(strconv.Itoa(i))))
	}
	require.Equal(t, "0", string((<-sub.C()).Payload))
	select {
	case msg := <-sub.C():
		t.Fatalf("expected later messages to be dropped, got %q", msg.Payload)
	default:
	}
	require.NoError(t, sub.Close())
	require.NoError(t, m.Publish(ctx, "c", []byte("after close")))
}

func TestMemoryWithNilClockKeepsTimeNow(t *testing.T) {
	m := cache.NewMemory(cache.WithClock(nil))
	t.Cleanup(func() { _ = m.Close() })
	require.NoError(t, m.Set(t.Context(), "k", []byte("v"), time.Hour))
	ttl, err := m.TTL(t.Context(), "k")
	require.NoError(t, err)
	require.Greater(t, ttl, 59*time.Minute)
}

// modelEntry is the reference model's view of one key.
type modelEntry struct {
	val     string
	expires time.Time // zero: none
}

// TestMemoryMatchesModel drives Memory and a plain map through random
// operation sequences, under a fake clock, and requires identical answers:
// expiry, SetNX, Take and Incr (with its "ttl only on create" rule and
// integer parsing) all follow the simplest possible implementation.
func TestMemoryMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		clock := newFakeClock()
		m := cache.NewMemory(cache.WithClock(clock.Now), cache.WithJanitorInterval(0))
		defer m.Close()
		model := map[string]modelEntry{}

		keys := rapid.SampledFrom([]string{"a", "b", "c"})
		vals := rapid.SampledFrom([]string{"x", "", "0", "7", "-3", "01", strconv.FormatInt(math.MaxInt64, 10)})
		ttls := rapid.SampledFrom([]time.Duration{0, time.Second, 3 * time.Second})
		deltas := rapid.OneOf(rapid.Int64Range(-5, 5), rapid.SampledFrom([]int64{math.MaxInt64, math.MinInt64}))

		live := func(k string) (modelEntry, bool) {
			e, ok := model[k]
			if ok && !e.expires.IsZero() && !clock.Now().Before(e.expires) {
				delete(model, k)
				return modelEntry{}, false
			}
			return e, ok
		}
		expiry := func(ttl time.Duration) time.Time {
			if ttl == 0 {
				return time.Time{}
			}
			return clock.Now().Add(ttl)
		}

		t.Repeat(map[string]func(*rapid.T){
			"advance": func(t *rapid.T) {
				clock.Advance(time.Duration(rapid.IntRange(0, 2000).Draw(t, "ms")) * time.Millisecond)
			},
			"get": func(t *rapid.T) {
				k := keys.Draw(t, "key")
				got, err := m.Get(ctx, k)
				if e, ok := live(k); ok {
					require.NoError(t, err)
					require.Equal(t, e.val, string(got))
				} else {
					require.ErrorIs(t, err, cache.ErrMiss)
				}
			},
			"set": func(t *rapid.T) {
				k, v, ttl := keys.Draw(t, "key"), vals.Draw(t, "val"), ttls.Draw(t, "ttl")
				require.NoError(t, m.Set(ctx, k, []byte(v), ttl))
				model[k] = modelEntry{v, expiry(ttl)}
			},
			"setnx": func(t *rapid.T) {
				k, v, ttl := keys.Draw(t, "key"), vals.Draw(t, "val"), ttls.Draw(t, "ttl")
				ok, err := m.SetNX(ctx, k, []byte(v), ttl)
				require.NoError(t, err)
				_, exists := live(k)
				require.Equal(t, !exists, ok)
				if !exists {
					model[k] = modelEntry{v, expiry(ttl)}
				}
			},
			"take": func(t *rapid.T) {
				k := keys.Draw(t, "key")
				got, err := m.Take(ctx, k)
				if e, ok := live(k); ok {
					require.NoError(t, err)
					require.Equal(t, e.val, string(got))
					delete(model, k)
				} else {
					require.ErrorIs(t, err, cache.ErrMiss)
				}
			},
			"delete": func(t *rapid.T) {
				k1, k2 := keys.Draw(t, "key1"), keys.Draw(t, "key2")
				require.NoError(t, m.Delete(ctx, k1, k2))
				delete(model, k1)
				delete(model, k2)
			},
			"incr": func(t *rapid.T) {
				k, d, ttl := keys.Draw(t, "key"), deltas.Draw(t, "delta"), ttls.Draw(t, "ttl")
				got, err := m.Incr(ctx, k, d, ttl)
				e, ok := live(k)
				if !ok {
					require.NoError(t, err)
					require.Equal(t, d, got)
					model[k] = modelEntry{strconv.FormatInt(d, 10), expiry(ttl)}
					return
				}
				n, perr := strconv.ParseInt(e.val, 10, 64)
				canonical := perr == nil && strconv.FormatInt(n, 10) == e.val
				overflow := (d > 0 && n > math.MaxInt64-d) || (d < 0 && n < math.MinInt64-d)
				if !canonical || overflow {
					require.Error(t, err)
					require.False(t, errors.Is(err, cache.ErrMiss))
					return
				}
				require.NoError(t, err)
				require.Equal(t, n+d, got)
				e.val = strconv.FormatInt(n+d, 10)
				model[k] = e // the expiry is kept
			},
			"ttl": func(t *rapid.T) {
				k := keys.Draw(t, "key")
				got, err := m.TTL(ctx, k)
				e, ok := live(k)
				switch {
				case !ok:
					require.ErrorIs(t, err, cache.ErrMiss)
				case e.expires.IsZero():
					require.NoError(t, err)
					require.Zero(t, got)
				default:
					require.NoError(t, err)
					require.Equal(t, e.expires.Sub(clock.Now()), got)
				}
			},
		})
	})
}

// TestMemoryIncrSums checks that any sequence of increments on one key,
// from several goroutines, adds up.
func TestMemoryIncrSums(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		deltas := rapid.SliceOfN(rapid.Int64Range(-1000, 1000), 1, 200).Draw(t, "deltas")
		m := cache.NewMemory(cache.WithJanitorInterval(0))
		defer m.Close()
		var want int64
		var wg sync.WaitGroup
		errs := make(chan error, len(deltas))
		for i, d := range deltas {
			want += d
			wg.Go(func() {
				_, err := m.Incr(context.Background(), "n", d, time.Duration(i)*time.Hour)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		got, err := m.Incr(context.Background(), "n", 0, 0)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
}

func BenchmarkMemoryGet(b *testing.B) {
	ctx := context.Background()
	m := cache.NewMemory()
	b.Cleanup(func() { _ = m.Close() })
	const n = 1024
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "session:" + strconv.Itoa(i)
		require.NoError(b, m.Set(ctx, keys[i], []byte("0123456789abcdef0123456789abcdef"), time.Hour))
	}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := m.Get(ctx, keys[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := m.Get(ctx, keys[i%n]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

func BenchmarkMemoryIncr(b *testing.B) {
	ctx := context.Background()
	m := cache.NewMemory()
	b.Cleanup(func() { _ = m.Close() })
	const n = 1024
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "ratelimit:" + strconv.Itoa(i)
	}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := m.Incr(ctx, keys[i%n], 1, time.Hour); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := m.Incr(ctx, keys[i%n], 1, time.Hour); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
