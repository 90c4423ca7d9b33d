package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/ratelimit"
)

// contract is what every Limiter must do. Windows are long enough that no
// request is earned back while a case runs, so it needs no clock.
func contract(t *testing.T, l ratelimit.Limiter) {
	ctx := context.Background()
	hour := func(n int) ratelimit.Limit { return ratelimit.Limit{Count: n, Window: time.Hour} }

	t.Run("burst then refuse", func(t *testing.T) {
		key := gatehouse.NewID()
		for i := range 5 {
			res, err := l.Allow(ctx, key, hour(5))
			require.NoError(t, err)
			require.True(t, res.Allowed, "request %d", i+1)
			require.Equal(t, 4-i, res.Remaining)
			require.Zero(t, res.RetryAfter)
			require.InDelta(t, float64(time.Duration(i+1)*12*time.Minute), float64(res.ResetAfter), float64(5*time.Second))
		}
		res, err := l.Allow(ctx, key, hour(5))
		require.NoError(t, err)
		require.False(t, res.Allowed)
		require.Zero(t, res.Remaining)
		require.Equal(t, hour(5), res.Limit)
		// One request is earned back every 12 minutes.
		require.InDelta(t, float64(12*time.Minute), float64(res.RetryAfter), float64(5*time.Second))
		require.InDelta(t, float64(time.Hour), float64(res.ResetAfter), float64(5*time.Second))
	})
	t.Run("keys are independent", func(t *testing.T) {
		a, b := gatehouse.NewID(), gatehouse.NewID()
		res, err := l.Allow(ctx, a, hour(1))
		require.NoError(t, err)
		require.True(t, res.Allowed)
		res, err = l.Allow(ctx, a, hour(1))
		require.NoError(t, err)
		require.False(t, res.Allowed)
		res, err = l.Allow(ctx, b, hour(1))
		require.NoError(t, err)
		require.True(t, res.Allowed)
	})
	t.Run("invalid limit allows", func(t *testing.T) {
		for _, lim := range []ratelimit.Limit{{}, {Count: 0, Window: time.Minute}, {Count: 3}} {
			res, err := l.Allow(ctx, gatehouse.NewID(), lim)
			require.NoError(t, err)
			require.True(t, res.Allowed)
		}
	})
	t.Run("concurrent requests never exceed the burst", func(t *testing.T) {
		key := gatehouse.NewID()
		var allowed atomic.Int32
		var wg sync.WaitGroup
		for range 40 {
			wg.Go(func() {
				res, err := l.Allow(ctx, key, hour(15))
				if err == nil && res.Allowed {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 15, allowed.Load())
	})
}

func TestMemoryContract(t *testing.T) { contract(t, ratelimit.NewMemory()) }

func redisURL(t *testing.T) string {
	u := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if u == "" {
		t.Skip("GATEHOUSE_TEST_REDIS_URL not set; e.g. GATEHOUSE_TEST_REDIS_URL=redis://127.0.0.1:6379/0")
	}
	return u
}

func redisClient(t *testing.T, rawURL string) redis.UniversalClient {
	opts, err := cache.ParseRedisURL(rawURL)
	require.NoError(t, err)
	c := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisContract(t *testing.T) {
	contract(t, ratelimit.NewRedis(redisClient(t, redisURL(t)), "test:"+t.Name()+":"))
}

// Every key the limiter writes starts with the deployment's prefix
// (GATEHOUSE_REDIS_PREFIX), where ACL key patterns and clean-ups look;
// redis_rate's own "rate:" comes after it.
func TestRedisKeysStartWithThePrefix(t *testing.T) {
	client := redisClient(t, redisURL(t))
	prefix := "test:" + gatehouse.NewID() + ":"
	l := ratelimit.NewRedis(client, prefix)
	ctx := context.Background()
	_, err := l.Allow(ctx, "ip:192.0.2.1", ratelimit.Limit{Count: 5, Window: time.Minute})
	require.NoError(t, err)

	n, err := client.Exists(ctx, prefix+"rate:ip:192.0.2.1").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the key is prefix + rate: + key")
	n, err = client.Exists(ctx, "rate:"+prefix+"ip:192.0.2.1").Result()
	require.NoError(t, err)
	require.Zero(t, n, "nothing before the prefix")
	require.NoError(t, client.Del(ctx, prefix+"rate:ip:192.0.2.1").Err())
}

func TestFallbackContract(t *testing.T) {
	contract(t, ratelimit.NewFallback(ratelimit.NewRedis(redisClient(t, redisURL(t)), "test:"+t.Name()+":"), ratelimit.NewMemory(), ratelimit.FallbackOptions{}))
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, string(p))
	return len(p), nil
}

func (s *logSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// With Redis unreachable the limits still hold, in-process; the outage is
// logged once and every local decision is counted.
func TestFallbackLimitsWhenRedisUnreachable(t *testing.T) {
	logs := &logSink{}
	reg := prometheus.NewRegistry()
	dead := redis.NewClient(&redis.Options{Addr: closedPort(t), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = dead.Close() })
	f := ratelimit.NewFallback(ratelimit.NewRedis(dead, ""), ratelimit.NewMemory(), ratelimit.FallbackOptions{
		Logger: newLogger(logs), Registerer: reg, ProbeInterval: time.Nanosecond, // probe on every request
	})
	lim := ratelimit.Limit{Count: 3, Window: time.Minute}
	var allowed int
	for range 10 {
		res, err := f.Allow(t.Context(), "login:ip:192.0.2.1", lim)
		require.NoError(t, err)
		if res.Allowed {
			allowed++
		} else {
			require.Positive(t, res.RetryAfter)
		}
	}
	require.Equal(t, 3, allowed)
	require.Equal(t, 1, logs.count(), "one log line per outage, not per request")
	require.Equal(t, 10.0, fallbacks(t, reg))
}

func fallbacks(t *testing.T, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	require.Equal(t, "gatehouse_ratelimit_fallback_total", mfs[0].GetName())
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}

func newLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// An outage ends when Redis answers again: the end is logged, and
// decisions are shared (made by Redis) again.
func TestFallbackRecovers(t *testing.T) {
	opts, err := cache.ParseRedisURL(redisURL(t))
	require.NoError(t, err)
	target, addr := opts.Addrs[0], closedPort(t)
	opts.Addrs, opts.MaxRetries, opts.DialerRetries = []string{addr}, -1, 1
	client := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	logs := &logSink{}
	now := time.Unix(1_700_000_000, 0)
	f := ratelimit.NewFallback(ratelimit.NewRedis(client, "test:"+t.Name()+":"), ratelimit.NewMemory(), ratelimit.FallbackOptions{
		Logger: newLogger(logs), Now: func() time.Time { return now },
	})
	key := gatehouse.NewID()
	lim := ratelimit.Limit{Count: 1, Window: time.Hour}
	res, err := f.Allow(t.Context(), key, lim) // Redis down: decided locally
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, 1, logs.count())

	proxy(t, addr, target) // Redis is reachable at addr from now on
	res, err = f.Allow(t.Context(), key, lim)
	require.NoError(t, err)
	require.False(t, res.Allowed, "within the probe interval the local limiter still decides")

	now = now.Add(ratelimit.DefaultProbeInterval)
	res, err = f.Allow(t.Context(), key, lim)
	require.NoError(t, err)
	require.True(t, res.Allowed, "Redis decides again and has not seen the key")
	require.Equal(t, 2, logs.count())
	res, err = f.Allow(t.Context(), key, lim)
	require.NoError(t, err)
	require.False(t, res.Allowed)
}

// proxy forwards TCP connections on addr to target until the test ends.
func proxy(t *testing.T, addr, target string) {
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}

// countingLimiter counts its calls and allows everything.
type countingLimiter struct{ calls atomic.Int32 }

func (c *countingLimiter) Allow(context.Context, string, ratelimit.Limit) (ratelimit.Result, error) {
	c.calls.Add(1)
	return ratelimit.Result{Allowed: true}, nil
}

// While the primary's owner reports it down (the Redis cache in degraded
// mode), the local limiter decides at once: no request waits on a probe
// of a server already known not to answer. When it is up again, the
// primary decides again.
func TestFallbackSkipsAPrimaryKnownDown(t *testing.T) {
	primary := &countingLimiter{}
	var down atomic.Bool
	down.Store(true)
	reg := prometheus.NewRegistry()
	f := ratelimit.NewFallback(primary, ratelimit.NewMemory(), ratelimit.FallbackOptions{
		Registerer: reg, ProbeInterval: time.Nanosecond, PrimaryDown: down.Load,
	})
	lim := ratelimit.Limit{Count: 2, Window: time.Minute}
	var allowed int
	for range 4 {
		res, err := f.Allow(t.Context(), "api:user:1", lim)
		require.NoError(t, err)
		if res.Allowed {
			allowed++
		}
	}
	require.Equal(t, 2, allowed, "the local limiter holds the limit")
	require.Zero(t, primary.calls.Load(), "the primary is not asked while known down")
	require.Equal(t, 4.0, fallbacks(t, reg))

	down.Store(false)
	res, err := f.Allow(t.Context(), "api:user:1", lim)
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, int32(1), primary.calls.Load())
}
