package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

var _ Cache = (*Redis)(nil)

// subscribeTimeout bounds the wait for Redis to confirm a subscription when
// the caller's context has no deadline, so a wedged server cannot hang
// start-up.
const subscribeTimeout = 10 * time.Second

// pingTimeout bounds OpenRedis's reachability check when the caller's
// context has no deadline.
const pingTimeout = 5 * time.Second

// incrScript is INCRBY plus "PEXPIRE only if this call created the key", in
// one round trip and atomically, which neither a plain INCRBY+PEXPIRE pair
// (a crash between them leaves a counter that never expires) nor EXPIRE NX
// (it also fires on an existing key without expiry) can give.
var incrScript = redis.NewScript(`
local created = redis.call('EXISTS', KEYS[1]) == 0
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if created and ttl > 0 then
	redis.call('PEXPIRE', KEYS[1], ttl)
end
return n
`)

// Redis is the Cache shared by every Gatehouse instance: counters, one-time
// challenges and the deny list hold across instances, and Publish reaches
// subscribers in all of them.
//
// It survives Redis outages in a degraded mode: a monitor pings the server
// every second; while it does not answer (or as soon as a command fails to
// reach it) every call fails at once with an error wrapping
// gatehouse.ErrUnavailable instead of waiting on dial timeouts, so callers
// fall back to the database (and the rate limiter to in-process limits)
// without delay. When Redis answers again the mode ends by itself and
// Generation changes, telling in-process copies kept coherent by pub/sub
// that invalidations may have been lost. Subscriptions reconnect and
// resubscribe on their own.
type Redis struct {
	client redis.UniversalClient
	prefix string
	closed atomic.Bool

	down   atomic.Bool   // degraded: the server does not answer
	gen    atomic.Uint64 // bumped each time the server is back
	logger *slog.Logger
	name   string // the deployment, for logs
	stop   chan struct{}
	done   chan struct{}

	mu   sync.Mutex
	subs map[*redisSubscription]struct{}
}

// monitorInterval is how often the monitor pings Redis; a ping may take
// most of it.
const monitorInterval = time.Second

// NewRedis wraps an existing client; the Redis takes ownership and closes it
// in Close. Use it when the client needs options a URL cannot express.
func NewRedis(client redis.UniversalClient) *Redis {
	r := &Redis{client: client, subs: make(map[*redisSubscription]struct{}),
		logger: slog.New(slog.DiscardHandler), name: "redis", stop: make(chan struct{}), done: make(chan struct{})}
	telemetry.BreakerStateChanged(breakerName, 0, 0)
	client.AddHook(newTracingHook())
	go r.monitor()
	return r
}

// quietRedis drops go-redis's own log lines: it prints one per failed dial
// to stderr, unstructured, every second of an outage; the monitor logs
// when degraded mode starts and ends instead.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedis{}) }

// breakerName labels Redis in gatehouse_circuit_breaker_state: 0 while it
// answers, 2 (open) in degraded mode.
const breakerName = "redis"

// RedisOption adjusts OpenRedis.
type RedisOption func(*redisOpenConfig)

type redisOpenConfig struct {
	allowDown bool
	logger    *slog.Logger
}

// AllowUnreachable makes OpenRedis return a Redis in degraded mode, rather
// than an error, when the server cannot be reached (refused, timed out,
// unknown host): the server starts and leaves degraded mode once Redis
// answers. A wrong password or URL still fails.
func AllowUnreachable() RedisOption { return func(c *redisOpenConfig) { c.allowDown = true } }

// WithRedisLogger logs the start and end of degraded mode (default: none).
func WithRedisLogger(l *slog.Logger) RedisOption { return func(c *redisOpenConfig) { c.logger = l } }

// Degraded reports whether Redis is currently taken as unreachable.
func (r *Redis) Degraded() bool { return r.down.Load() }

// Generation implements Cache.
func (r *Redis) Generation() (uint64, bool) { return r.gen.Load(), !r.down.Load() }

// errDown is what every call answers in degraded mode.
var errDown = gatehouse.Unavailable(errors.New("redis is unreachable (degraded mode)"))

// unreachable reports whether err says the server could not be reached,
// as opposed to a refused command or the caller's own context ending.
func unreachable(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || ctx.Err() != nil {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		redis.HasErrorPrefix(err, "LOADING") || redis.HasErrorPrefix(err, "MASTERDOWN") ||
		redis.HasErrorPrefix(err, "CLUSTERDOWN") || redis.HasErrorPrefix(err, "TRYAGAIN")
}

// setDown records a change of reachability: logged, exported, and on the
// way back a new Generation.
func (r *Redis) setDown(down bool, cause error) {
	if !r.down.CompareAndSwap(!down, down) {
		return
	}
	if down {
		telemetry.BreakerStateChanged(breakerName, 0, 2)
		r.logger.Warn("Redis is unreachable: degraded mode (rate limits per instance, caches read from the database, live notifications and one-time challenges unavailable) until it answers again",
			"redis", r.name, "err", cause)
		return
	}
	r.gen.Add(1)
	telemetry.BreakerStateChanged(breakerName, 2, 0)
	r.logger.Info("Redis answers again: leaving degraded mode", "redis", r.name)
}

// monitor pings Redis every monitorInterval until Close, entering and
// leaving degraded mode.
func (r *Redis) monitor() {
	defer close(r.done)
	t := time.NewTicker(monitorInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), monitorInterval*3/4)
		err := r.client.Ping(ctx).Err()
		cancel()
		r.setDown(err != nil, err)
	}
}

// check fails fast in degraded mode.
func (r *Redis) check() error {
	if r.closed.Load() {
		return ErrClosed
	}
	if r.down.Load() {
		return errDown
	}
	return nil
}

// failed notes err of a call: a server that could not be reached puts the
// cache in degraded mode at once, so the next calls do not wait on it too.
// The error it returns wraps gatehouse.ErrUnavailable then.
func (r *Redis) failed(ctx context.Context, err error) error {
	if unreachable(ctx, err) {
		r.setDown(true, err)
		return gatehouse.Unavailable(err)
	}
	return err
}

// SetPrefix puts prefix before every key and channel name, so several
// deployments (or test runs) can share one Redis without seeing each
// other's keys. Call it before the cache is used.
func (r *Redis) SetPrefix(prefix string) { r.prefix = prefix }

// Prefix is the key prefix set with SetPrefix.
func (r *Redis) Prefix() string { return r.prefix }

// Client is the underlying go-redis client, for packages that run their
// own commands on the same connections (the rate limiter). It stays owned
// by the Redis: do not close it.
func (r *Redis) Client() redis.UniversalClient { return r.client }

// OpenRedis parses rawURL (see ParseRedisURL), connects and pings, so a
// wrong address or password fails at start-up rather than on the first
// request. Errors name the servers but never the password.
func OpenRedis(ctx context.Context, rawURL string, options ...RedisOption) (*Redis, error) {
	var oc redisOpenConfig
	for _, o := range options {
		o(&oc)
	}
	opts, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	// Without this go-redis ignores a context's deadline while it waits for
	// an answer (up to its 3 s read timeout, 4 s for a pooled connection),
	// so a frozen server would hold the rate limiter's and the health
	// check's shorter budgets hostage.
	opts.ContextTimeoutEnabled = true
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pingTimeout)
		defer cancel()
	}
	// Probe with a client that does not re-dial each attempt five times:
	// at start-up a refused connection is an answer, not a blip to ride out,
	// and the cause (rather than "deadline exceeded") is what the operator
	// needs to read. Command retries stay, so a cluster or sentinel set with
	// one node down still passes.
	probeOpts := *opts
	probeOpts.DialerRetries = 1
	probe := redis.NewUniversalClient(&probeOpts)
	err = probe.Ping(ctx).Err()
	_ = probe.Close()
	if err != nil && !(oc.allowDown && unreachable(context.Background(), err)) {
		return nil, redact(fmt.Errorf("cache: connect to redis %s: %w", describe(opts), err),
			opts.Password, opts.SentinelPassword)
	}
	r := NewRedis(redis.NewUniversalClient(opts))
	r.name = describe(opts)
	if oc.logger != nil {
		r.logger = oc.logger
	}
	if err != nil {
		r.setDown(true, redact(err, opts.Password, opts.SentinelPassword))
	}
	return r, nil
}

// describe names the deployment without credentials, for error messages.
func describe(o *redis.UniversalOptions) string {
	kind := "server"
	switch {
	case o.MasterName != "":
		kind = fmt.Sprintf("sentinel master %q via", o.MasterName)
	case o.IsClusterMode || len(o.Addrs) > 1:
		kind = "cluster"
	}
	return kind + " " + strings.Join(o.Addrs, ",")
}

// wrap adds the operation and key to err, and turns go-redis's "client is
// closed" into ErrClosed so both implementations fail alike after Close.
func wrap(op, key string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		err = ErrClosed
	}
	if key == "" {
		return fmt.Errorf("cache: %s: %w", op, err)
	}
	return fmt.Errorf("cache: %s %s: %w", op, key, err)
}

// Get implements Cache.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, wrap("get", key, err)
	}
	v, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, wrap("get", key, r.failed(ctx, err))
	}
	return v, nil
}

// Set implements Cache.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.check(); err != nil {
		return wrap("set", key, err)
	}
	if ttl < 0 {
		// go-redis reads -1ns as KEEPTTL; refuse rather than guess.
		return wrap("set", key, errNegativeTTL)
	}
	if err := r.client.Set(ctx, r.prefix+key, value, ttl).Err(); err != nil {
		return wrap("set", key, r.failed(ctx, err))
	}
	return nil
}

// SetNX implements Cache.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := r.check(); err != nil {
		return false, wrap("setnx", key, err)
	}
	if ttl < 0 {
		return false, wrap("setnx", key, errNegativeTTL)
	}
	ok, err := r.client.SetNX(ctx, r.prefix+key, value, ttl).Result()
	if err != nil {
		return false, wrap("setnx", key, r.failed(ctx, err))
	}
	return ok, nil
}

// Take implements Cache with GETDEL (Redis 6.2+), which is atomic on the
// server, so two instances can never both consume one secret.
func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, wrap("take", key, err)
	}
	v, err := r.client.GetDel(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, wrap("take", key, r.failed(ctx, err))
	}
	return v, nil
}

// Delete implements Cache. Several keys are deleted with one DEL each in a
// pipeline: one round trip, and no CROSSSLOT error on a cluster.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if err := r.check(); err != nil {
		return wrap("delete", strings.Join(keys, ","), err)
	}
	switch len(keys) {
	case 0:
		return nil
	case 1:
		if err := r.client.Del(ctx, r.prefix+keys[0]).Err(); err != nil {
			return wrap("delete", keys[0], r.failed(ctx, err))
		}
		return nil
	}
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, r.prefix+k)
		}
		return nil
	})
	if err != nil {
		return wrap("delete", strings.Join(keys, ","), r.failed(ctx, err))
	}
	return nil
}

// Incr implements Cache.
func (r *Redis) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := r.check(); err != nil {
		return 0, wrap("incr", key, err)
	}
	if ttl < 0 {
		return 0, wrap("incr", key, errNegativeTTL)
	}
	ms := ttl.Milliseconds()
	if ttl > 0 && ms == 0 {
		ms = 1 // Redis counts in milliseconds; never turn a tiny ttl into "forever".
	}
	n, err := incrScript.Run(ctx, r.client, []string{r.prefix + key}, delta, ms).Int64()
	if err != nil {
		return 0, wrap("incr", key, r.failed(ctx, err))
	}
	return n, nil
}

// TTL implements Cache.
func (r *Redis) TTL(ctx context.Context, key string) (time.Duration, error) {
	if err := r.check(); err != nil {
		return 0, wrap("ttl", key, err)
	}
	d, err := r.client.PTTL(ctx, r.prefix+key).Result()
	if err != nil {
		return 0, wrap("ttl", key, r.failed(ctx, err))
	}
	// go-redis passes PTTL's sentinels through unscaled: -2 absent, -1 no expiry.
	switch d {
	case -2:
		return 0, ErrMiss
	case -1:
		return 0, nil
	}
	return d, nil
}

// Ping implements Cache. It asks the server even in degraded mode, so a
// health check sees the truth.
func (r *Redis) Ping(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return wrap("ping", "", r.failed(ctx, err))
	}
	r.setDown(false, nil) // an answer is an answer, whoever asked
	return nil
}

// Publish implements Cache.
func (r *Redis) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := r.check(); err != nil {
		return wrap("publish", channel, err)
	}
	if err := r.client.Publish(ctx, r.prefix+channel, payload).Err(); err != nil {
		return wrap("publish", channel, r.failed(ctx, err))
	}
	return nil
}

// Subscribe implements Cache. It returns only after Redis has confirmed
// every channel, so a message published right after it returns is not lost.
// The subscription holds its own connection, reconnects (and resubscribes)
// on its own, and drops messages when its buffer of
// DefaultSubscriptionBuffer is full rather than stall the connection.
func (r *Redis) Subscribe(ctx context.Context, channels ...string) (Subscription, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if len(channels) == 0 {
		return nil, errNoChannels
	}
	op := strings.Join(channels, ",")
	full := make([]string, len(channels))
	want := make(map[string]struct{}, len(channels))
	for i, c := range channels {
		full[i] = r.prefix + c
		want[full[i]] = struct{}{}
	}
	ps := r.client.Subscribe(ctx, full...)

	var early []Message
	// In degraded mode there is nobody to confirm: go-redis subscribes when
	// the server is back, and Generation tells that messages were lost.
	for len(want) > 0 && !r.down.Load() {
		msg, err := ps.ReceiveTimeout(ctx, subscribeTimeout)
		if err != nil {
			_ = ps.Close()
			return nil, wrap("subscribe", op, r.failed(ctx, err))
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			delete(want, m.Channel)
		case *redis.Message:
			// Published on an already confirmed channel while we wait for
			// the others: it is after Subscribe "returned" for that channel.
			early = append(early, Message{Channel: strings.TrimPrefix(m.Channel, r.prefix), Payload: []byte(m.Payload)})
		}
	}

	sub := &redisSubscription{
		r:       r,
		ps:      ps,
		out:     make(chan Message, DefaultSubscriptionBuffer),
		stop:    make(chan struct{}),
		outDone: make(chan struct{}),
	}
	for _, m := range early {
		sub.deliver(m)
	}
	go sub.pump(ps.Channel(redis.WithChannelSize(DefaultSubscriptionBuffer)))

	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		_ = sub.Close()
		return nil, ErrClosed
	}
	r.subs[sub] = struct{}{}
	r.mu.Unlock()
	return sub, nil
}

// Close closes every open subscription and the client. Later calls return
// ErrClosed.
func (r *Redis) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	close(r.stop)
	<-r.done
	r.mu.Lock()
	subs := make([]*redisSubscription, 0, len(r.subs))
	for s := range r.subs {
		subs = append(subs, s)
	}
	r.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("cache: close redis: %w", err)
	}
	return nil
}

type redisSubscription struct {
	r       *Redis
	ps      *redis.PubSub
	out     chan Message
	stop    chan struct{}
	outDone chan struct{} // closed once out is closed
	once    sync.Once
}

func (s *redisSubscription) C() <-chan Message { return s.out }

// deliver never blocks: a full buffer drops the message, per Subscription.
func (s *redisSubscription) deliver(m Message) {
	select {
	case s.out <- m:
	default:
	}
}

// pump copies from go-redis's channel, which must be drained promptly (its
// reader waits up to a minute on a full channel), into out, dropping when
// out is full. It alone sends on and closes out.
func (s *redisSubscription) pump(src <-chan *redis.Message) {
	defer close(s.outDone)
	for {
		select {
		case <-s.stop:
			close(s.out)
			// Keep draining until go-redis notices the close, so its reader
			// goroutine is never left blocked on a send.
			go func() {
				for range src {
				}
			}()
			return
		case m, ok := <-src:
			if !ok {
				close(s.out)
				return
			}
			s.deliver(Message{Channel: strings.TrimPrefix(m.Channel, s.r.prefix), Payload: []byte(m.Payload)})
		}
	}
}

// Close implements Subscription. When it returns, C is closed.
func (s *redisSubscription) Close() error {
	err := ErrClosed
	s.once.Do(func() {
		close(s.stop)
		err = s.ps.Close()
		<-s.outDone
		s.r.mu.Lock()
		delete(s.r.subs, s)
		s.r.mu.Unlock()
		if err != nil && !errors.Is(err, redis.ErrClosed) {
			err = fmt.Errorf("cache: close subscription: %w", err)
		} else {
			err = nil
		}
	})
	return err
}
