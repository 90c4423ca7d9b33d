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

// ErrMiss means the key does not exist or has expired.
var ErrMiss = errors.New("cache: miss")

// ErrClosed means the cache or subscription was closed.
var ErrClosed = errors.New("cache: closed")

// Message is one published payload.
type Message struct {
	Channel string
	Payload []byte
}

// Subscription delivers messages published on its channels after Subscribe
// returned. Messages may be dropped when the receiver falls far behind;
// callers treat pub/sub as a hint (e.g. "invalidate"), never as a log.
type Subscription interface {
	// C is closed when the subscription is closed.
	C() <-chan Message
	Close() error
}

// Cache is the contract both implementations meet. A ttl of zero means no
// expiry. Errors other than ErrMiss mean the cache could not be reached;
// callers must then fall back to the database, never to "allow".
type Cache interface {
	// Get returns the value, or ErrMiss.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only when key is absent and reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Take atomically returns and deletes the value (single-use secrets),
	// or ErrMiss. Of concurrent Takes of one key exactly one succeeds.
	Take(ctx context.Context, key string) ([]byte, error)
	// Delete removes keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Incr adds delta to the integer at key (absent counts as 0), sets ttl
	// when the key is created by this call, and returns the new value.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// TTL returns the remaining lifetime of key; ErrMiss when absent, 0 when
	// it has no expiry.
	TTL(ctx context.Context, key string) (time.Duration, error)
	// Publish sends payload to every current subscriber of channel, in this
	// process and (Redis) every other instance.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe listens on channels until the subscription is closed.
	Subscribe(ctx context.Context, channels ...string) (Subscription, error)
	// Ping checks the cache answers.
	Ping(ctx context.Context) error
	// Close releases resources; later calls return ErrClosed.
	Close() error
}
