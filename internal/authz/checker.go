package authz

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// InvalidationChannel carries "user:<id>" or "all" whenever permissions
// change, so every instance drops its cached sets.
const InvalidationChannel = "authz.invalidate"

// PermissionStore reads a user's permissions from the database.
type PermissionStore interface {
	UserPermissions(ctx context.Context, userID string) ([]string, error)
}

// Checker answers permission checks from per-user compiled sets.
type Checker struct {
	store  PermissionStore
	cache  cache.Cache
	ttl    time.Duration
	now    func() time.Time
	logger *slog.Logger
	stats  telemetry.CacheStats

	mu      sync.RWMutex
	entries map[string]entry
	// gen counts invalidations seen; a set loaded while one happened is
	// not kept, so a load racing a change can never cache stale data.
	gen atomic.Uint64

	sub  cache.Subscription
	done chan struct{}
}

type entry struct {
	set     *Set
	expires time.Time
	cgen    uint64 // the cache's Generation when loaded
}

// CheckerOptions tune a Checker.
type CheckerOptions struct {
	TTL    time.Duration // default 5m
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics counts lookups in gatehouse_cache_requests_total{cache="permissions"}
	// (nil: none).
	Metrics *telemetry.Metrics
}

// NewChecker makes a Checker; Start subscribes it to invalidations.
func NewChecker(st PermissionStore, c cache.Cache, o CheckerOptions) *Checker {
	if o.TTL == 0 {
		o.TTL = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Checker{store: st, cache: c, ttl: o.TTL, now: o.Now, logger: o.Logger, entries: map[string]entry{},
		stats: o.Metrics.Cache("permissions")}
}

// Start listens for invalidations from every instance (this one included)
// until Close.
func (c *Checker) Start(ctx context.Context) error {
	sub, err := c.cache.Subscribe(ctx, InvalidationChannel)
	if err != nil {
		return fmt.Errorf("authz: subscribe: %w", err)
	}
	c.sub, c.done = sub, make(chan struct{})
	go func() {
		defer close(c.done)
		for m := range sub.C() {
			c.apply(string(m.Payload))
		}
	}()
	return nil
}

// Close stops listening.
func (c *Checker) Close() error {
	if c.sub == nil {
		return nil
	}
	err := c.sub.Close()
	<-c.done
	return err
}

func (c *Checker) apply(msg string) {
	c.gen.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if msg == "all" {
		clear(c.entries)
		return
	}
	if len(msg) > 5 && msg[:5] == "user:" {
		delete(c.entries, msg[5:])
	}
}

// Can reports whether the user holds perm. Errors mean the database could
// not be read; callers deny.
func (c *Checker) Can(ctx context.Context, userID, perm string) (bool, error) {
	s, err := c.Set(ctx, userID)
	if err != nil {
		return false, err
	}
	return s.Allows(perm), nil
}

// Set returns the user's compiled permissions. A cached set is used only
// while invalidations can reach this instance: while the cache's pub/sub is
// down (Redis unreachable) every check reads the database, and sets cached
// before an outage are dropped after it, since a change on another
// instance meanwhile was never heard of here.
func (c *Checker) Set(ctx context.Context, userID string) (*Set, error) {
	cgen, live := c.cache.Generation()
	c.mu.RLock()
	e, ok := c.entries[userID]
	c.mu.RUnlock()
	if ok && live && e.cgen == cgen && c.now().Before(e.expires) {
		c.stats.Hit()
		return e.set, nil
	}
	c.stats.Miss()
	gen := c.gen.Load()
	perms, err := c.store.UserPermissions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("authz: load permissions: %w", err)
	}
	s := Compile(perms)
	if !live {
		return s, nil
	}
	c.mu.Lock()
	if c.gen.Load() == gen {
		if len(c.entries) >= maxEntries {
			c.sweep()
		}
		c.entries[userID] = entry{set: s, expires: c.now().Add(c.ttl), cgen: cgen}
	}
	c.mu.Unlock()
	return s, nil
}

// maxEntries bounds the cache, so checks of many unknown user ids cannot
// grow it without limit.
const maxEntries = 100_000

// sweep drops expired entries, and everything if that is not enough.
// Callers hold c.mu.
func (c *Checker) sweep() {
	now := c.now()
	for id, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, id)
		}
	}
	if len(c.entries) >= maxEntries {
		clear(c.entries)
	}
}

// InvalidateUser drops the user's cached set here and on every instance.
// Call it after the change committed.
func (c *Checker) InvalidateUser(ctx context.Context, userID string) {
	c.invalidate(ctx, "user:"+userID)
}

// InvalidateAll drops every cached set here and on every instance (a
// role's permissions changed).
func (c *Checker) InvalidateAll(ctx context.Context) { c.invalidate(ctx, "all") }

func (c *Checker) invalidate(ctx context.Context, msg string) {
	c.apply(msg) // at once here, whatever pub/sub does
	if err := c.cache.Publish(ctx, InvalidationChannel, []byte(msg)); err != nil {
		// Other instances keep stale sets until their TTL: log loudly.
		c.logger.ErrorContext(ctx, "authz: invalidation not published; other instances may use stale permissions for up to the cache TTL", "err", err)
	}
}
