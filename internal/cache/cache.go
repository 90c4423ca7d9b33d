// Package cache is the lossy, shared state of Gatehouse: key/value with TTL,
// atomic counters, set-if-absent, take-once, and publish/subscribe. Nothing
// in it must survive a restart; the SQL database is the source of truth.
// Two implementations satisfy Cache: Memory (one process) and Redis (many
// instances). Both pass the same contract test in cachetest.
package cache

import (
	"context"
	"errors"
	"time"
)

// Open returns the cache the configuration asks for: the in-process Memory
// when redisURL is empty (a single instance needs nothing else), otherwise a
// Redis client for the URL (see ParseRedisURL), checked with a PING so a
// misconfiguration stops start-up instead of the first request.
func Open(ctx context.Context, redisURL string) (Cache, error) {
	if redisURL == "" {
		return NewMemory(), nil
	}
	return OpenRedis(ctx, redisURL)
}

// ErrMiss means the key does not exist or has expired.
var ErrMiss = errors.New("cache: miss")

// ErrClosed means the cache or subscription was closed.
var ErrClosed = errors.New("cache: closed")

// Misuse errors. They are not exported because callers cannot recover from
// them: they signal a bug in the caller, not a state of the cache.
var (
	errNegativeTTL = errors.New("negative ttl")
	errNotInteger  = errors.New("value is not an integer")
	errOverflow    = errors.New("increment would overflow")
	errNoChannels  = errors.New("cache: subscribe: no channels")
)

// Message is one published payload.
type Message struct {
	Channel string
	Payload []byte
}

// Subscription delivers messages published on its channels after Subscribe
// returned. Messages may be dropped when the receiver falls far behind, and
// are ordered per channel only (a Redis cluster routes each channel through
// its own node); callers treat pub/sub as a hint (e.g. "invalidate"), never
// as a log.
type Subscription interface {
	// C is closed when the subscription (or its cache) is closed.
	C() <-chan Message
	// Close stops delivery and closes C; later calls return ErrClosed.
	Close() error
}

// Cache is the contract both implementations meet. A ttl of zero means no
// expiry; a negative ttl is a caller bug and returns an error. Values are
// copied in and out, so callers may reuse their buffers. Errors other than
// ErrMiss and ErrClosed mean the cache could not be reached (or, for the
// misuse cases documented per method, refused the call); callers must then
// fall back to the database, never to "allow".
type Cache interface {
	// Get returns the value, or ErrMiss.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for ttl, replacing any value and any
	// previous expiry.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only when key is absent (or expired) and reports
	// whether it did; of concurrent SetNX calls on one key exactly one wins.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Take atomically returns and deletes the value (single-use secrets),
	// or ErrMiss. Of concurrent Takes of one key exactly one succeeds.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Incr adds delta to the integer at key (absent counts as 0), sets ttl
	// when the key is created by this call, and returns the new value. An
	// existing key keeps its expiry, so a fixed window is not extended by
	// traffic. It returns an error (not ErrMiss) when the stored value is not
	// a decimal int64 or the result would overflow.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// TTL returns the remaining lifetime of key; ErrMiss when absent, 0 when
	// it has no expiry.
	TTL(ctx context.Context, key string) (time.Duration, error)
	// Publish sends payload to every current subscriber of channel, in this
	// process and (Redis) every other instance.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe listens on channels until the subscription is closed. When it
	// returns, the subscription is active: a message published afterwards
	// is delivered (unless dropped for a full buffer). At least one channel
	// is required. Closing the cache closes its subscriptions.
	Subscribe(ctx context.Context, channels ...string) (Subscription, error)
	// Ping checks the cache answers.
	Ping(ctx context.Context) error
	// Generation tells holders of in-process copies kept coherent by this
	// cache's pub/sub (permission sets, ...) whether they may trust them:
	// live is false while messages cannot be delivered (Redis unreachable),
	// and gen changes whenever messages may have been lost (each time Redis
	// comes back). Keep a copy only while live, and drop copies made under
	// another gen. Memory is always (0, true).
	Generation() (gen uint64, live bool)
	// Close releases resources; later calls return ErrClosed.
	Close() error
}
