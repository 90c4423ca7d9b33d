// Package cachetest is the contract every cache.Cache implementation must
// pass, so that code tested against the in-process cache behaves the same
// on Redis. Each implementation's test calls Run.
package cachetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
)

// Timing of the suite. Expiry tests use short real TTLs so they run on any
// implementation; waits poll rather than sleep so the suite stays fast.
const (
	shortTTL = 100 * time.Millisecond
	waitFor  = 3 * time.Second
	tick     = 5 * time.Millisecond
	quiet    = 100 * time.Millisecond // how long "no further message" is watched
	workers  = 20
)

// Run runs the contract suite. newCache must return a fresh, open cache on
// each call and be safe to call from parallel subtests; Run closes every
// cache it gets. Keys and channels carry a random prefix per subtest, so
// runs may share one Redis database with each other and with other data.
func Run(t *testing.T, newCache func(t *testing.T) cache.Cache) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, newCache)
			tc.fn(t, e)
		})
	}
}

// env is one subtest's cache and its key namespace.
type env struct {
	c      cache.Cache
	ctx    context.Context
	prefix string

	mu   sync.Mutex
	keys []string
}

func newEnv(t *testing.T, newCache func(t *testing.T) cache.Cache) *env {
	var b [8]byte
	_, _ = rand.Read(b[:])
	e := &env{
		c:      newCache(t),
		ctx:    t.Context(),
		prefix: "cachetest:" + hex.EncodeToString(b[:]) + ":",
	}
	t.Cleanup(func() {
		// Leave nothing behind in a shared Redis. The cache may already be
		// closed by the test; then there is nothing to clean.
		_ = e.c.Delete(context.Background(), e.keys...)
		_ = e.c.Close()
	})
	return e
}

// key namespaces name and remembers it for clean-up.
func (e *env) key(name string) string {
	k := e.prefix + name
	e.mu.Lock()
	e.keys = append(e.keys, k)
	e.mu.Unlock()
	return k
}

// channel namespaces a pub/sub channel name.
func (e *env) channel(name string) string { return e.prefix + "chan:" + name }

func (e *env) requireMiss(t *testing.T, key string) {
	t.Helper()
	_, err := e.c.Get(e.ctx, key)
	require.ErrorIs(t, err, cache.ErrMiss)
}

func (e *env) requireValue(t *testing.T, key, want string) {
	t.Helper()
	got, err := e.c.Get(e.ctx, key)
	require.NoError(t, err)
	require.Equal(t, want, string(got))
}

// eventuallyMiss waits until key has expired.
func (e *env) eventuallyMiss(t *testing.T, key string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := e.c.Get(e.ctx, key)
		return err == cache.ErrMiss
	}, waitFor, tick, "key %s should expire", key)
}

// receive waits for the next message on sub.
func receive(t *testing.T, sub cache.Subscription) cache.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C():
		require.True(t, ok, "subscription channel closed")
		return m
	case <-time.After(waitFor):
		require.FailNow(t, "no message received")
		return cache.Message{}
	}
}

// requireQuiet checks that nothing more arrives on sub for a while.
func requireQuiet(t *testing.T, sub cache.Subscription) {
	t.Helper()
	select {
	case m, ok := <-sub.C():
		require.False(t, ok, "unexpected message on %s: %q", m.Channel, m.Payload)
	case <-time.After(quiet):
	}
}

// requireClosed waits until sub's channel is closed, discarding buffered
// messages.
func requireClosed(t *testing.T, sub cache.Subscription) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case _, ok := <-sub.C():
			if !ok {
				return
			}
		case <-deadline:
			require.FailNow(t, "subscription channel not closed")
		}
	}
}

func (e *env) subscribe(t *testing.T, channels ...string) cache.Subscription {
	t.Helper()
	sub, err := e.c.Subscribe(e.ctx, channels...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// parallel runs fn on workers goroutines released at the same moment, to
// maximise the chance of catching a race between them.
func parallel(fn func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range workers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			fn(i)
		}()
	}
	start.Done()
	done.Wait()
}

type testCase struct {
	name string
	fn   func(t *testing.T, e *env)
}

var cases = []testCase{
	{"Get/Miss", func(t *testing.T, e *env) {
		e.requireMiss(t, e.key("absent"))
	}},
	{"Set/ThenGet", func(t *testing.T, e *env) {
		k := e.key("k")
		v := []byte("value")
		require.NoError(t, e.c.Set(e.ctx, k, v, 0))
		v[0] = 'X' // the cache must have copied it
		got, err := e.c.Get(e.ctx, k)
		require.NoError(t, err)
		require.Equal(t, "value", string(got))
		got[0] = 'Y' // and must hand out a copy
		e.requireValue(t, k, "value")
	}},
	{"Set/EmptyValue", func(t *testing.T, e *env) {
		for i, v := range [][]byte{nil, {}} {
			k := e.key(fmt.Sprint("empty", i))
			require.NoError(t, e.c.Set(e.ctx, k, v, 0))
			got, err := e.c.Get(e.ctx, k)
			require.NoError(t, err, "an empty value is a hit, not a miss")
			require.Empty(t, got)
		}
	}},
	{"Set/BinaryValue", func(t *testing.T, e *env) {
		k := e.key("bin")
		v := []byte{0, 1, 2, 0xff, '\r', '\n', 0}
		require.NoError(t, e.c.Set(e.ctx, k, v, 0))
		got, err := e.c.Get(e.ctx, k)
		require.NoError(t, err)
		require.Equal(t, v, got)
	}},
	{"Set/Overwrite", func(t *testing.T, e *env) {
		k := e.key("k")
		require.NoError(t, e.c.Set(e.ctx, k, []byte("one"), time.Hour))
		require.NoError(t, e.c.Set(e.ctx, k, []byte("two"), 0))
		e.requireValue(t, k, "two")
		ttl, err := e.c.TTL(e.ctx, k)
		require.NoError(t, err)
		require.Zero(t, ttl, "Set replaces the previous expiry")
	}},
	{"Set/Expiry", func(t *testing.T, e *env) {
		k := e.key("k")
		require.NoError(t, e.c.Set(e.ctx, k, []byte("v"), shortTTL))
		e.requireValue(t, k, "v")
		e.eventuallyMiss(t, k)
		_, err := e.c.TTL(e.ctx, k)
		require.ErrorIs(t, err, cache.ErrMiss)
	}},
	{"NegativeTTL", func(t *testing.T, e *env) {
		k := e.key("k")
		err := e.c.Set(e.ctx, k, []byte("v"), -time.Second)
		require.Error(t, err)
		require.NotErrorIs(t, err, cache.ErrMiss)
		_, err = e.c.SetNX(e.ctx, k, []byte("v"), -time.Second)
		require.Error(t, err)
		_, err = e.c.Incr(e.ctx, k, 1, -time.Second)
		require.Error(t, err)
		require.NotErrorIs(t, err, cache.ErrMiss)
		e.requireMiss(t, k)
	}},
	{"SetNX/Once", func(t *testing.T, e *env) {
		k := e.key("k")
		ok, err := e.c.SetNX(e.ctx, k, []byte("first"), time.Hour)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = e.c.SetNX(e.ctx, k, []byte("second"), time.Hour)
		require.NoError(t, err)
		require.False(t, ok)
		e.requireValue(t, k, "first")
		ttl, err := e.c.TTL(e.ctx, k)
		require.NoError(t, err)
		require.Greater(t, ttl, 59*time.Minute)
	}},
	{"SetNX/AfterExpiry", func(t *testing.T, e *env) {
		k := e.key("k")
		ok, err := e.c.SetNX(e.ctx, k, []byte("first"), shortTTL)
		require.NoError(t, err)
		require.True(t, ok)
		e.eventuallyMiss(t, k)
		ok, err = e.c.SetNX(e.ctx, k, []byte("second"), 0)
		require.NoError(t, err)
		require.True(t, ok, "an expired key counts as absent")
		e.requireValue(t, k, "second")
	}},
	{"SetNX/Concurrent", func(t *testing.T, e *env) {
		k := e.key("k")
		var wins atomic.Int32
		var winner atomic.Int64
		var errs atomic.Int32
		parallel(func(i int) {
			ok, err := e.c.SetNX(e.ctx, k, []byte(strconv.Itoa(i)), time.Minute)
			if err != nil {
				errs.Add(1)
			}
			if ok {
				wins.Add(1)
				winner.Store(int64(i))
			}
		})
		require.Zero(t, errs.Load())
		require.EqualValues(t, 1, wins.Load(), "exactly one SetNX wins")
		e.requireValue(t, k, strconv.FormatInt(winner.Load(), 10))
	}},
	{"Take/Once", func(t *testing.T, e *env) {
		k := e.key("k")
		_, err := e.c.Take(e.ctx, k)
		require.ErrorIs(t, err, cache.ErrMiss)
		require.NoError(t, e.c.Set(e.ctx, k, []byte("secret"), time.Minute))
		got, err := e.c.Take(e.ctx, k)
		require.NoError(t, err)
		require.Equal(t, "secret", string(got))
		e.requireMiss(t, k)
		_, err = e.c.Take(e.ctx, k)
		require.ErrorIs(t, err, cache.ErrMiss)
	}},
	{"Take/EmptyValue", func(t *testing.T, e *env) {
		k := e.key("k")
		require.NoError(t, e.c.Set(e.ctx, k, nil, 0))
		got, err := e.c.Take(e.ctx, k)
		require.NoError(t, err)
		require.Empty(t, got)
		e.requireMiss(t, k)
	}},
	{"Take/Expired", func(t *testing.T, e *env) {
		k := e.key("k")
		require.NoError(t, e.c.Set(e.ctx, k, []byte("v"), shortTTL))
		require.Eventually(t, func() bool {
			_, err := e.c.TTL(e.ctx, k)
			return err == cache.ErrMiss
		}, waitFor, tick)
		_, err := e.c.Take(e.ctx, k)
		require.ErrorIs(t, err, cache.ErrMiss)
	}},
	{"Take/Concurrent", func(t *testing.T, e *env) {
		k := e.key("k")
		require.NoError(t, e.c.Set(e.ctx, k, []byte("secret"), time.Minute))
		var wins, misses, errs atomic.Int32
		parallel(func(int) {
			v, err := e.c.Take(e.ctx, k)
			switch {
			case err == nil && string(v) == "secret":
				wins.Add(1)
			case err == cache.ErrMiss:
				misses.Add(1)
			default:
				errs.Add(1)
			}
		})
		require.Zero(t, errs.Load())
		require.EqualValues(t, 1, wins.Load(), "exactly one Take succeeds")
		require.EqualValues(t, workers-1, misses.Load())
	}},
	{"Delete/Several", func(t *testing.T, e *env) {
		a, b, c := e.key("a"), e.key("b"), e.key("c")
		require.NoError(t, e.c.Set(e.ctx, a, []byte("1"), 0))
		require.NoError(t, e.c.Set(e.ctx, b, []byte("2"), time.Minute))
		require.NoError(t, e.c.Set(e.ctx, c, []byte("3"), 0))
		require.NoError(t, e.c.Delete(e.ctx, a, b, e.key("absent")))
		e.requireMiss(t, a)
		e.requireMiss(t, b)
		e.requireValue(t, c, "3")
		require.NoError(t, e.c.Delete(e.ctx, c))
		e.requireMiss(t, c)
		require.NoError(t, e.c.Delete(e.ctx), "no keys is a no-op")
		require.NoError(t, e.c.Delete(e.ctx, e.key("absent")))
	}},
	{"Incr/Create", func(t *testing.T, e *env) {
		k := e.key("n")
		n, err := e.c.Incr(e.ctx, k, 5, time.Minute)
		require.NoError(t, err)
		require.EqualValues(t, 5, n)
		e.requireValue(t, k, "5") // counters read back as decimal text
		ttl, err := e.c.TTL(e.ctx, k)
		require.NoError(t, err)
		require.Greater(t, ttl, 50*time.Second)
		require.LessOrEqual(t, ttl, time.Minute)
		n, err = e.c.Incr(e.ctx, k, 2, time.Minute)
		require.NoError(t, err)
		require.EqualValues(t, 7, n)
	}},
	{"Incr/TTLOnlyOnCreate", func(t *testing.T, e *env) {
		k := e.key("n")
		_, err := e.c.Incr(e.ctx, k, 1, time.Hour)
		require.NoError(t, err)
		_, err = e.c.Incr(e.ctx, k, 1, 10*time.Second)
		require.NoError(t, err)
		_, err = e.c.Incr(e.ctx, k, 1, 0)
		require.NoError(t, err)
		ttl, err := e.c.TTL(e.ctx, k)
		require.NoError(t, err)
		require.Greater(t, ttl, 59*time.Minute, "later Incrs must not move the expiry")

		// A key that exists without expiry keeps having none.
		k2 := e.key("n2")
		require.NoError(t, e.c.Set(e.ctx, k2, []byte("10"), 0))
		n, err := e.c.Incr(e.ctx, k2, 1, time.Hour)
		require.NoError(t, err)
		require.EqualValues(t, 11, n)
		ttl, err = e.c.TTL(e.ctx, k2)
		require.NoError(t, err)
		require.Zero(t, ttl)

		// Created without a ttl: no expiry.
		k3 := e.key("n3")
		_, err = e.c.Incr(e.ctx, k3, 1, 0)
		require.NoError(t, err)
		ttl, err = e.c.TTL(e.ctx, k3)
		require.NoError(t, err)
		require.Zero(t, ttl)
	}},
	{"Incr/RestartsAfterExpiry", func(t *testing.T, e *env) {
		k := e.key("n")
		for range 3 {
			_, err := e.c.Incr(e.ctx, k, 1, shortTTL)
			require.NoError(t, err)
		}
		e.eventuallyMiss(t, k)
		n, err := e.c.Incr(e.ctx, k, 1, time.Minute)
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "an expired counter starts again from zero")
		ttl, err := e.c.TTL(e.ctx, k)
		require.NoError(t, err)
		require.Greater(t, ttl, 50*time.Second, "and gets the new ttl")
	}},
	{"Incr/NegativeAndZeroDelta", func(t *testing.T, e *env) {
		k := e.key("n")
		n, err := e.c.Incr(e.ctx, k, -3, 0)
		require.NoError(t, err)
		require.EqualValues(t, -3, n)
		n, err = e.c.Incr(e.ctx, k, 0, 0)
		require.NoError(t, err)
		require.EqualValues(t, -3, n)
		n, err = e.c.Incr(e.ctx, k, 10, 0)
		require.NoError(t, err)
		require.EqualValues(t, 7, n)
		n, err = e.c.Incr(e.ctx, e.key("zero"), 0, 0)
		require.NoError(t, err)
		require.Zero(t, n)
		e.requireValue(t, e.key("zero"), "0")
	}},
	{"Incr/NotAnInteger", func(t *testing.T, e *env) {
		for _, v := range []string{"abc", "", "1.5", "01", "+1", " 1", "-0", "99999999999999999999"} {
			k := e.key("s" + v)
			require.NoError(t, e.c.Set(e.ctx, k, []byte(v), 0))
			_, err := e.c.Incr(e.ctx, k, 1, 0)
			require.Error(t, err, "value %q", v)
			require.NotErrorIs(t, err, cache.ErrMiss)
			e.requireValue(t, k, v)
		}
	}},
	{"Incr/Overflow", func(t *testing.T, e *env) {
		k := e.key("max")
		require.NoError(t, e.c.Set(e.ctx, k, []byte(strconv.FormatInt(math.MaxInt64, 10)), 0))
		_, err := e.c.Incr(e.ctx, k, 1, 0)
		require.Error(t, err)
		e.requireValue(t, k, strconv.FormatInt(math.MaxInt64, 10))

		k = e.key("min")
		require.NoError(t, e.c.Set(e.ctx, k, []byte(strconv.FormatInt(math.MinInt64, 10)), 0))
		_, err = e.c.Incr(e.ctx, k, -1, 0)
		require.Error(t, err)
		n, err := e.c.Incr(e.ctx, k, math.MaxInt64, 0)
		require.NoError(t, err)
		require.EqualValues(t, -1, n)
	}},
	{"Incr/Concurrent", func(t *testing.T, e *env) {
		k := e.key("n")
		const per = 25
		seen := make([][]int64, workers)
		var errs atomic.Int32
		parallel(func(i int) {
			for range per {
				n, err := e.c.Incr(e.ctx, k, 1, time.Minute)
				if err != nil {
					errs.Add(1)
					continue
				}
				seen[i] = append(seen[i], n)
			}
		})
		require.Zero(t, errs.Load())
		e.requireValue(t, k, strconv.Itoa(workers*per))
		// Every increment saw a distinct total: no two read the same value.
		all := make(map[int64]bool)
		for _, s := range seen {
			for _, n := range s {
				require.False(t, all[n], "total %d returned twice", n)
				all[n] = true
			}
		}
		require.Len(t, all, workers*per)
	}},
	{"TTL", func(t *testing.T, e *env) {
		_, err := e.c.TTL(e.ctx, e.key("absent"))
		require.ErrorIs(t, err, cache.ErrMiss)

		forever := e.key("forever")
		require.NoError(t, e.c.Set(e.ctx, forever, []byte("v"), 0))
		ttl, err := e.c.TTL(e.ctx, forever)
		require.NoError(t, err)
		require.Zero(t, ttl, "no expiry reads as 0")

		hour := e.key("hour")
		require.NoError(t, e.c.Set(e.ctx, hour, []byte("v"), time.Hour))
		ttl, err = e.c.TTL(e.ctx, hour)
		require.NoError(t, err)
		require.Greater(t, ttl, 59*time.Minute)
		require.LessOrEqual(t, ttl, time.Hour)

		short := e.key("short")
		require.NoError(t, e.c.Set(e.ctx, short, []byte("v"), 2*shortTTL))
		ttl, err = e.c.TTL(e.ctx, short)
		if err == nil { // a slow runner may already have let it expire
			require.Greater(t, ttl, time.Duration(0))
			require.LessOrEqual(t, ttl, 2*shortTTL)
		}
		require.Eventually(t, func() bool {
			_, err := e.c.TTL(e.ctx, short)
			return err == cache.ErrMiss
		}, waitFor, tick)
	}},
	{"Ping", func(t *testing.T, e *env) {
		require.NoError(t, e.c.Ping(e.ctx))
	}},
	{"Publish/NoSubscribers", func(t *testing.T, e *env) {
		require.NoError(t, e.c.Publish(e.ctx, e.channel("nobody"), []byte("x")))
	}},
	{"Publish/FanOut", func(t *testing.T, e *env) {
		chA, chB := e.channel("a"), e.channel("b")
		a1 := e.subscribe(t, chA)
		a2 := e.subscribe(t, chA)
		b := e.subscribe(t, chB)
		// No sleep: messages published right after Subscribe returns count.
		require.NoError(t, e.c.Publish(e.ctx, chA, []byte("to a")))
		require.NoError(t, e.c.Publish(e.ctx, chB, []byte("to b")))
		for _, sub := range []cache.Subscription{a1, a2} {
			m := receive(t, sub)
			require.Equal(t, chA, m.Channel)
			require.Equal(t, "to a", string(m.Payload))
		}
		m := receive(t, b)
		require.Equal(t, chB, m.Channel, "b must not receive chA's message")
		require.Equal(t, "to b", string(m.Payload))
		requireQuiet(t, b)
	}},
	{"Publish/PayloadCopied", func(t *testing.T, e *env) {
		ch := e.channel("c")
		sub := e.subscribe(t, ch)
		p := []byte("payload")
		require.NoError(t, e.c.Publish(e.ctx, ch, p))
		p[0] = 'X'
		require.Equal(t, "payload", string(receive(t, sub).Payload))
	}},
	{"Subscribe/SeveralChannels", func(t *testing.T, e *env) {
		chA, chB, chC := e.channel("a"), e.channel("b"), e.channel("c")
		sub := e.subscribe(t, chA, chB)
		require.NoError(t, e.c.Publish(e.ctx, chA, []byte("1")))
		require.NoError(t, e.c.Publish(e.ctx, chC, []byte("not subscribed")))
		require.NoError(t, e.c.Publish(e.ctx, chB, []byte("2")))
		// Order across channels is not guaranteed (a cluster routes each
		// channel through its own node), so compare as a set.
		got := []cache.Message{receive(t, sub), receive(t, sub)}
		require.ElementsMatch(t, []cache.Message{
			{Channel: chA, Payload: []byte("1")},
			{Channel: chB, Payload: []byte("2")},
		}, got)
		requireQuiet(t, sub)
	}},
	{"Subscribe/NoChannels", func(t *testing.T, e *env) {
		_, err := e.c.Subscribe(e.ctx)
		require.Error(t, err)
	}},
	{"Subscription/Close", func(t *testing.T, e *env) {
		ch := e.channel("c")
		sub, err := e.c.Subscribe(e.ctx, ch)
		require.NoError(t, err)
		other := e.subscribe(t, ch)
		require.NoError(t, sub.Close())
		requireClosed(t, sub)
		require.ErrorIs(t, sub.Close(), cache.ErrClosed)
		// The channel and other subscribers carry on.
		require.NoError(t, e.c.Publish(e.ctx, ch, []byte("after")))
		require.Equal(t, "after", string(receive(t, other).Payload))
	}},
	{"Subscription/SlowReaderDoesNotBlock", func(t *testing.T, e *env) {
		ch := e.channel("c")
		slow := e.subscribe(t, ch) // never read until the end
		const n = 1000
		done := make(chan error, 1)
		go func() {
			for i := range n {
				if err := e.c.Publish(e.ctx, ch, []byte(strconv.Itoa(i))); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "Publish blocked on a subscriber that does not read")
		}
		// The reader still gets what fitted in its buffer...
		got := 0
	drain:
		for {
			select {
			case _, ok := <-slow.C():
				require.True(t, ok)
				got++
			case <-time.After(300 * time.Millisecond):
				break drain
			}
		}
		require.Positive(t, got)
		require.LessOrEqual(t, got, n)
		// ...and, once it catches up, new messages again.
		require.NoError(t, e.c.Publish(e.ctx, ch, []byte("last")))
		for m := receive(t, slow); string(m.Payload) != "last"; m = receive(t, slow) {
			// Skip stragglers still in flight from the burst.
		}
	}},
	{"Close", func(t *testing.T, e *env) {
		k := e.key("k")
		// With a ttl: the clean-up cannot delete it once the cache is closed.
		require.NoError(t, e.c.Set(e.ctx, k, []byte("v"), time.Minute))
		sub := e.subscribe(t, e.channel("c"))
		require.NoError(t, e.c.Close())
		requireClosed(t, sub)

		ctx := e.ctx
		_, err := e.c.Get(ctx, k)
		require.ErrorIs(t, err, cache.ErrClosed)
		require.ErrorIs(t, e.c.Set(ctx, k, []byte("v"), 0), cache.ErrClosed)
		_, err = e.c.SetNX(ctx, k, []byte("v"), 0)
		require.ErrorIs(t, err, cache.ErrClosed)
		_, err = e.c.Take(ctx, k)
		require.ErrorIs(t, err, cache.ErrClosed)
		require.ErrorIs(t, e.c.Delete(ctx, k), cache.ErrClosed)
		_, err = e.c.Incr(ctx, k, 1, 0)
		require.ErrorIs(t, err, cache.ErrClosed)
		_, err = e.c.TTL(ctx, k)
		require.ErrorIs(t, err, cache.ErrClosed)
		require.ErrorIs(t, e.c.Publish(ctx, e.channel("c"), nil), cache.ErrClosed)
		_, err = e.c.Subscribe(ctx, e.channel("c"))
		require.ErrorIs(t, err, cache.ErrClosed)
		require.ErrorIs(t, e.c.Ping(ctx), cache.ErrClosed)
		require.ErrorIs(t, e.c.Close(), cache.ErrClosed)
	}},
}
