package cache_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/cache/cachetest"
)

// redisURL returns the Redis the tests may use, or skips: CI sets
// GATEHOUSE_TEST_REDIS_URL; a laptop without Redis still runs the rest.
func redisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if u == "" {
		tb.Skip("GATEHOUSE_TEST_REDIS_URL not set; e.g. GATEHOUSE_TEST_REDIS_URL=redis://127.0.0.1:6379/0")
	}
	return u
}

func openRedis(tb testing.TB) *cache.Redis {
	tb.Helper()
	r, err := cache.OpenRedis(context.Background(), redisURL(tb))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRedis(t *testing.T) {
	u := redisURL(t)
	cachetest.Run(t, func(t *testing.T) cache.Cache {
		r, err := cache.OpenRedis(t.Context(), u)
		require.NoError(t, err)
		return r
	})
}

func TestOpenWithURLIsRedis(t *testing.T) {
	c, err := cache.Open(t.Context(), redisURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.IsType(t, &cache.Redis{}, c)
	require.NoError(t, c.Ping(t.Context()))
}

// A Redis that wants no password answers AUTH with an error; the error
// must still not echo the password.
func TestOpenRedisRejectedAuthDoesNotLeakPassword(t *testing.T) {
	u, err := url.Parse(redisURL(t))
	require.NoError(t, err)
	if _, ok := u.User.Password(); ok {
		t.Skip("test Redis has a password")
	}
	const secret = "n0t-the-Passw0rd"
	u.User = url.UserPassword("nobody", secret)
	_, err = cache.OpenRedis(t.Context(), u.String())
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
}

func TestOpenRedisUnreachableFailsFastWithoutPassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	for _, raw := range []string{
		"redis://admin:" + secret + "@127.0.0.1:1/0",
		"redis://:" + secret + "@127.0.0.1:1,127.0.0.1:2",
		"redis-sentinel://:" + secret + "@127.0.0.1:1/mymaster?sentinel_password=" + secret,
	} {
		start := time.Now()
		_, err := cache.OpenRedis(context.Background(), raw)
		require.Error(t, err, raw)
		require.Less(t, time.Since(start), 6*time.Second, "must fail fast")
		require.NotContains(t, err.Error(), secret)
		require.Contains(t, err.Error(), "127.0.0.1:1", "the error should name the server")
		t.Log(err)
	}
}

func TestOpenRedisHonoursContextDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	// 192.0.2.0/24 is TEST-NET-1: never routed, so only the deadline ends it.
	_, err := cache.OpenRedis(ctx, "redis://192.0.2.1:6379")
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestOpenRejectsBadURL(t *testing.T) {
	_, err := cache.Open(t.Context(), "http://localhost")
	require.Error(t, err)
}

// Every operation on an unreachable server reports an error that is not
// ErrMiss (callers must then not treat it as "absent") and names the key.
func TestRedisUnreachableErrors(t *testing.T) {
	ctx := t.Context()
	client := redis.NewClient(&redis.Options{
		Addr:          "127.0.0.1:1",
		MaxRetries:    -1,
		DialerRetries: 1,
	})
	r := cache.NewRedis(client)
	t.Cleanup(func() { _ = r.Close() })

	check := func(err error) {
		t.Helper()
		require.Error(t, err)
		require.NotErrorIs(t, err, cache.ErrMiss)
		require.NotErrorIs(t, err, cache.ErrClosed)
	}
	_, err := r.Get(ctx, "k")
	check(err)
	require.Contains(t, err.Error(), "get k")
	check(r.Set(ctx, "k", []byte("v"), time.Minute))
	_, err = r.SetNX(ctx, "k", []byte("v"), time.Minute)
	check(err)
	_, err = r.Take(ctx, "k")
	check(err)
	check(r.Delete(ctx, "k"))
	check(r.Delete(ctx, "k", "l"))
	_, err = r.Incr(ctx, "k", 1, time.Minute)
	check(err)
	_, err = r.TTL(ctx, "k")
	check(err)
	check(r.Publish(ctx, "c", nil))
	check(r.Ping(ctx))
	// The first failure put it in degraded mode: calls now fail at once,
	// as unavailable, without trying the server.
	require.True(t, r.Degraded())
	_, err = r.Get(ctx, "k")
	require.ErrorIs(t, err, gatehouse.ErrUnavailable)
	require.ErrorContains(t, err, "degraded mode")
	_, live := r.Generation()
	require.False(t, live)
	// A subscription is accepted: it connects when the server is back.
	sub, err := r.Subscribe(ctx, "c")
	require.NoError(t, err)
	require.NoError(t, sub.Close())
}

// A closed client underneath (closed by its owner behind our back) reads as
// ErrClosed, like a closed Memory.
func TestRedisClientClosedUnderneath(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	r := cache.NewRedis(client)
	require.NoError(t, client.Close())
	_, err := r.Get(t.Context(), "k")
	require.ErrorIs(t, err, cache.ErrClosed)
	require.Error(t, r.Close(), "the client was already closed")
}

// Incr rounds a sub-millisecond ttl up rather than storing a counter that
// never expires.
func TestRedisIncrTinyTTL(t *testing.T) {
	r := openRedis(t)
	key := "cachetest:tinyttl:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, err := r.Incr(t.Context(), key, 1, time.Microsecond)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := r.Get(t.Context(), key)
		return err == cache.ErrMiss
	}, time.Second, 5*time.Millisecond)
}

func BenchmarkRedisGet(b *testing.B) {
	r := openRedis(b)
	ctx := context.Background()
	key := "cachetest:bench:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.NoError(b, r.Set(ctx, key, []byte("0123456789abcdef0123456789abcdef"), time.Minute))
	b.Cleanup(func() { _ = r.Delete(context.Background(), key) })
	for b.Loop() {
		if _, err := r.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRedisPrefixSeparatesDeployments: two caches on one Redis with
// different prefixes share no key and no channel, and subscribers see
// channel names without the prefix.
func TestRedisPrefixSeparatesDeployments(t *testing.T) {
	ctx := t.Context()
	a, b := openRedis(t), openRedis(t)
	a.SetPrefix("a:" + t.Name() + ":")
	b.SetPrefix("b:" + t.Name() + ":")

	require.NoError(t, a.Set(ctx, "k", []byte("from a"), time.Minute))
	_, err := b.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss)
	n, err := b.Incr(ctx, "k", 1, time.Minute)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	v, err := a.Take(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "from a", string(v))

	subA, err := a.Subscribe(ctx, "news")
	require.NoError(t, err)
	defer subA.Close()
	subB, err := b.Subscribe(ctx, "news")
	require.NoError(t, err)
	defer subB.Close()
	require.NoError(t, a.Publish(ctx, "news", []byte("hello")))
	select {
	case m := <-subA.C():
		require.Equal(t, "news", m.Channel)
		require.Equal(t, "hello", string(m.Payload))
	case <-time.After(5 * time.Second):
		t.Fatal("a's subscriber got nothing")
	}
	select {
	case m := <-subB.C():
		t.Fatalf("b's subscriber got a's message %q", m.Payload)
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, b.Delete(ctx, "k", "other"))
	require.NoError(t, a.Delete(ctx, "k"))
}

// A server that stops answering (frozen, not gone) costs a call no more
// than its context allows: go-redis's own 3 s read timeout would otherwise
// hold the rate limiter's and the health check's shorter budgets hostage.
func TestRedisFrozenServerHonoursContextDeadline(t *testing.T) {
	opts, err := cache.ParseRedisURL(redisURL(t))
	require.NoError(t, err)
	p := newFreezingProxy(t, opts.Addrs[0])
	u, err := url.Parse(redisURL(t))
	require.NoError(t, err)
	u.Host = p.addr
	r, err := cache.OpenRedis(t.Context(), u.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	require.NoError(t, r.Set(t.Context(), "frozen:"+t.Name(), []byte("v"), time.Minute))

	p.freeze()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = r.Get(ctx, "frozen:"+t.Name())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2500*time.Millisecond, "ended by the context, not by go-redis's 3 s read timeout")
}

// freezingProxy forwards TCP connections to target until freeze, after
// which it reads nothing more and answers nothing, like a SIGSTOPped server.
type freezingProxy struct {
	addr   string
	frozen chan struct{}
}

func newFreezingProxy(t *testing.T, target string) *freezingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &freezingProxy{addr: ln.Addr().String(), frozen: make(chan struct{})}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		p.freeze()
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			pipe := func(dst, src net.Conn) {
				defer conns.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					select {
					case <-p.frozen:
						<-t.Context().Done()
						_ = dst.Close()
						_ = src.Close()
						return
					default:
					}
					if err != nil {
						_ = dst.Close()
						return
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						_ = src.Close()
						return
					}
				}
			}
			conns.Add(2)
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	return p
}

func (p *freezingProxy) freeze() {
	select {
	case <-p.frozen:
	default:
		close(p.frozen)
	}
}
