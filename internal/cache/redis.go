package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
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
type Redis struct {
	client redis.UniversalClient
	prefix string
	closed atomic.Bool

	mu   sync.Mutex
	subs map[*redisSubscription]struct{}
}

// NewRedis wraps an existing client; the Redis takes ownership and closes it
// in Close. Use it when the client needs options a URL cannot express.
func NewRedis(client redis.UniversalClient) *Redis {
	return &Redis{client: client, subs: make(map[*redisSubscription]struct{})}
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
func OpenRedis(ctx context.Context, rawURL string) (*Redis, error) {
	opts, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
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
	if err != nil {
		return nil, redact(fmt.Errorf("cache: connect to redis %s: %w", describe(opts), err),
			opts.Password, opts.SentinelPassword)
	}
	return NewRedis(redis.NewUniversalClient(opts)), nil
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
	if r.closed.Load() {
		return nil, ErrClosed
	}
	v, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, wrap("get", key, err)
	}
	return v, nil
}

// Set implements Cache.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if ttl < 0 {
		// go-redis reads -1ns as KEEPTTL; refuse rather than guess.
		return wrap("set", key, errNegativeTTL)
	}
	if err := r.client.Set(ctx, r.prefix+key, value, ttl).Err(); err != nil {
		return wrap("set", key, err)
	}
	return nil
}

// SetNX implements Cache.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if r.closed.Load() {
		return false, ErrClosed
	}
	if ttl < 0 {
		return false, wrap("setnx", key, errNegativeTTL)
	}
	ok, err := r.client.SetNX(ctx, r.prefix+key, value, ttl).Result()
	if err != nil {
		return false, wrap("setnx", key, err)
	}
	return ok, nil
}

// Take implements Cache with GETDEL (Redis 6.2+), which is atomic on the
// server, so two instances can never both consume one secret.
func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	v, err := r.client.GetDel(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, wrap("take", key, err)
	}
	return v, nil
}

// Delete implements Cache. Several keys are deleted with one DEL each in a
// pipeline: one round trip, and no CROSSSLOT error on a cluster.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if r.closed.Load() {
		return ErrClosed
	}
	switch len(keys) {
	case 0:
		return nil
	case 1:
		if err := r.client.Del(ctx, r.prefix+keys[0]).Err(); err != nil {
			return wrap("delete", keys[0], err)
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
		return wrap("delete", strings.Join(keys, ","), err)
	}
	return nil
}

// Incr implements Cache.
func (r *Redis) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if r.closed.Load() {
		return 0, ErrClosed
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
		return 0, wrap("incr", key, err)
	}
	return n, nil
}

// TTL implements Cache.
func (r *Redis) TTL(ctx context.Context, key string) (time.Duration, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	d, err := r.client.PTTL(ctx, r.prefix+key).Result()
	if err != nil {
		return 0, wrap("ttl", key, err)
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

// Ping implements Cache.
func (r *Redis) Ping(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return wrap("ping", "", err)
	}
	return nil
}

// Publish implements Cache.
func (r *Redis) Publish(ctx context.Context, channel string, payload []byte) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := r.client.Publish(ctx, r.prefix+channel, payload).Err(); err != nil {
		return wrap("publish", channel, err)
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
	for len(want) > 0 {
		msg, err := ps.ReceiveTimeout(ctx, subscribeTimeout)
		if err != nil {
			_ = ps.Close()
			return nil, wrap("subscribe", op, err)
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
