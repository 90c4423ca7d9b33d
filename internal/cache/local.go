package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// LocalChannel is the pub/sub channel on which Locals of every instance
// hear of changes: the payload is "<name>\x00<key>", or "<name>\x00" alone
// for "everything in that cache".
const LocalChannel = "cache.local.invalidate"

// DefaultLocalSize is the number of entries a Local keeps when its
// options do not say.
const DefaultLocalSize = 100_000

// Local is a size-bounded, least-recently-used, in-process copy of values
// whose truth is elsewhere (the database, the shared cache), for the
// per-request hot path: a hit costs no round trip at all. It stays
// coherent across instances through the shared cache's pub/sub: whoever
// changes the truth calls Invalidate after the change committed, which
// drops the entry here at once and, through LocalChannel, on every other
// instance.
//
// It trusts itself only while invalidations can reach it: while the
// shared cache reports its pub/sub down (Generation's live is false)
// every lookup misses, and entries stored under another generation (before
// an outage, during which messages may have been lost) are never returned.
// Entries also expire after their TTL, which bounds staleness should a
// message be dropped (a subscriber far behind) or a change be made by a
// process that cannot publish (a CLI on the in-process cache).
type Local[V any] struct {
	name   string
	shared Cache
	ttl    time.Duration
	size   int
	now    func() time.Time
	logger *slog.Logger

	mu         sync.Mutex
	items      map[string]*localItem[V]
	head, tail *localItem[V] // head is the most recently used
	// seq counts invalidations; a value loaded while one happened is not
	// stored, so a load racing a change never caches what it replaced.
	seq atomic.Uint64

	stats telemetry.CacheStats

	sub     Subscription
	done    chan struct{}
	started atomic.Bool
}

type localItem[V any] struct {
	key        string
	val        V
	expires    time.Time
	gen        uint64
	prev, next *localItem[V]
}

// LocalOptions tune a Local.
type LocalOptions struct {
	// Size bounds the entries kept (DefaultLocalSize when 0); the least
	// recently used entry goes first. A negative size keeps nothing.
	Size int
	// TTL is how long an entry is believed without news (default 1 min).
	TTL    time.Duration
	Now    func() time.Time
	Logger *slog.Logger
	// Stats counts hits and misses (gatehouse_cache_requests_total); the
	// zero value counts nothing.
	Stats telemetry.CacheStats
}

// NewLocal makes a Local named name (unique per process: it addresses
// invalidations) over shared. Start subscribes it.
func NewLocal[V any](shared Cache, name string, o LocalOptions) *Local[V] {
	if o.Size == 0 {
		o.Size = DefaultLocalSize
	}
	if o.TTL <= 0 {
		o.TTL = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Local[V]{
		name: name, shared: shared, ttl: o.TTL, size: o.Size, now: o.Now, logger: o.Logger,
		items: map[string]*localItem[V]{}, stats: o.Stats,
	}
}

// Start listens for invalidations from every instance until Close.
func (l *Local[V]) Start(ctx context.Context) error {
	sub, err := l.shared.Subscribe(ctx, LocalChannel)
	if err != nil {
		return fmt.Errorf("cache %s: subscribe: %w", l.name, err)
	}
	l.sub, l.done = sub, make(chan struct{})
	l.started.Store(true)
	go func() {
		defer close(l.done)
		prefix := l.name + "\x00"
		for m := range sub.C() {
			p := string(m.Payload)
			if len(p) < len(prefix) || p[:len(prefix)] != prefix {
				continue
			}
			if key := p[len(prefix):]; key == "" {
				l.dropAll()
			} else {
				l.Drop(key)
			}
		}
	}()
	return nil
}

// Close stops listening.
func (l *Local[V]) Close() error {
	if l.sub == nil {
		return nil
	}
	l.started.Store(false) // deaf from now on: keep nothing new
	err := l.sub.Close()
	<-l.done
	l.dropAll()
	return err
}

// Get returns the entry for key when it may be believed.
func (l *Local[V]) Get(key string) (V, bool) {
	gen, live := l.shared.Generation()
	now := l.now()
	l.mu.Lock()
	it, ok := l.items[key]
	if ok && (!live || it.gen != gen || !now.Before(it.expires)) {
		l.unlink(it)
		delete(l.items, key)
		ok = false
	}
	if ok {
		l.toFront(it)
		v := it.val
		l.mu.Unlock()
		l.stats.Hit()
		return v, true
	}
	l.mu.Unlock()
	l.stats.Miss()
	var zero V
	return zero, false
}

// Version is a point in the stream of invalidations: take it before
// reading the truth, and pass it to Add with what was read.
func (l *Local[V]) Version() uint64 { return l.seq.Load() }

// Add stores val under key for ttl (at most the Local's TTL; ≤ 0 means
// the Local's TTL), unless an invalidation happened since version (the
// value read may then be older than the change) or invalidations cannot
// currently reach this instance (before Start, or while the shared
// cache's pub/sub is down).
func (l *Local[V]) Add(version uint64, key string, val V, ttl time.Duration) {
	if l.size < 0 || !l.started.Load() {
		return
	}
	if ttl <= 0 || ttl > l.ttl {
		ttl = l.ttl
	}
	gen, live := l.shared.Generation()
	if !live {
		return
	}
	expires := l.now().Add(ttl)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seq.Load() != version {
		return
	}
	if it, ok := l.items[key]; ok {
		it.val, it.expires, it.gen = val, expires, gen
		l.toFront(it)
		return
	}
	it := &localItem[V]{key: key, val: val, expires: expires, gen: gen}
	l.items[key] = it
	l.pushFront(it)
	for len(l.items) > l.size && l.tail != nil {
		old := l.tail
		l.unlink(old)
		delete(l.items, old.key)
	}
}

// Load returns the entry for key, or calls load (the truth) and keeps
// what it returns for ttl (see Add). Errors of load are returned, and
// nothing is kept.
func (l *Local[V]) Load(ctx context.Context, key string, ttl time.Duration, load func(ctx context.Context) (V, error)) (V, error) {
	if v, ok := l.Get(key); ok {
		return v, nil
	}
	version := l.Version()
	v, err := load(ctx)
	if err != nil {
		return v, err
	}
	l.Add(version, key, v, ttl)
	return v, nil
}

// Invalidate drops keys here at once and publishes their invalidation to
// every instance. Call it after the change committed. A failed publish is
// logged: other instances keep their copies until the TTL ends.
func (l *Local[V]) Invalidate(ctx context.Context, keys ...string) {
	for _, k := range keys {
		if k == "" {
			continue
		}
		l.Drop(k)
		l.publish(ctx, k)
	}
}

// InvalidateAll drops every entry here and on every instance.
func (l *Local[V]) InvalidateAll(ctx context.Context) {
	l.dropAll()
	l.publish(ctx, "")
}

func (l *Local[V]) publish(ctx context.Context, key string) {
	if err := l.shared.Publish(context.WithoutCancel(ctx), LocalChannel, []byte(l.name+"\x00"+key)); err != nil {
		l.logger.ErrorContext(ctx, "cache: invalidation not published; other instances may use a stale copy until it expires",
			"cache", l.name, "ttl", l.ttl, "err", err)
	}
}

// Drop removes keys here only (what a received invalidation does).
func (l *Local[V]) Drop(keys ...string) {
	l.seq.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if it, ok := l.items[k]; ok {
			l.unlink(it)
			delete(l.items, k)
		}
	}
}

func (l *Local[V]) dropAll() {
	l.seq.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.items)
	l.head, l.tail = nil, nil
}

// Len is the number of entries held (believable or not).
func (l *Local[V]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}

// The list helpers run under l.mu.

func (l *Local[V]) pushFront(it *localItem[V]) {
	it.prev, it.next = nil, l.head
	if l.head != nil {
		l.head.prev = it
	}
	l.head = it
	if l.tail == nil {
		l.tail = it
	}
}

func (l *Local[V]) unlink(it *localItem[V]) {
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		l.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		l.tail = it.prev
	}
	it.prev, it.next = nil, nil
}

func (l *Local[V]) toFront(it *localItem[V]) {
	if l.head == it {
		return
	}
	l.unlink(it)
	l.pushFront(it)
}
