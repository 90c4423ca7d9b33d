package cache

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for NewMemory; each can be overridden with a MemoryOption.
const (
	// DefaultJanitorInterval bounds how long expired keys that are never read
	// again keep holding memory. Reads expire keys lazily regardless.
	DefaultJanitorInterval = time.Minute
	// DefaultSubscriptionBuffer is how many undelivered messages a
	// subscription holds before newer ones are dropped. Large enough to ride
	// out a burst of invalidations, small enough that a stuck reader costs
	// little.
	DefaultSubscriptionBuffer = 128
)

// memoryShards spreads keys over independently locked maps so that
// unrelated keys (a rate-limit counter and a session lookup) do not contend.
const memoryShards = 64

var _ Cache = (*Memory)(nil)

// Generation implements Cache: in one process no message is ever lost.
func (m *Memory) Generation() (uint64, bool) { return 0, true }

// Memory is the single-process Cache, for a single Gatehouse instance and for
// tests. Its pub/sub reaches only subscribers in this process, so it must not
// be used when several instances share a database.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [memoryShards]memoryShard

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	janitor   sync.WaitGroup

	subMu     sync.RWMutex
	subs      map[string]map[*memorySubscription]struct{}
	subBuffer int
}

type memoryShard struct {
	mu sync.RWMutex
	m  map[string]memoryEntry
}

// memoryEntry is one stored value. value is owned by the cache: it is copied
// on the way in and out so callers can never alias it.
type memoryEntry struct {
	value   []byte
	expires time.Time // zero: no expiry
}

func (e memoryEntry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// expired reads the clock only for keys that can expire, which keeps Get on
// keys without a ttl off the clock entirely.
func (m *Memory) expired(e memoryEntry) bool {
	return !e.expires.IsZero() && !m.now().Before(e.expires)
}

// MemoryOption adjusts a Memory built by NewMemory.
type MemoryOption func(*memoryConfig)

type memoryConfig struct {
	now             func() time.Time
	janitorInterval time.Duration
	subBuffer       int
}

// WithClock replaces time.Now so tests can move time forward instead of
// sleeping through TTLs.
func WithClock(now func() time.Time) MemoryOption {
	return func(c *memoryConfig) {
		if now != nil {
			c.now = now
		}
	}
}

// WithJanitorInterval sets how often expired keys are swept; zero or a
// negative interval disables the sweep (keys then expire only when touched),
// which suits short-lived caches in tests.
func WithJanitorInterval(d time.Duration) MemoryOption {
	return func(c *memoryConfig) { c.janitorInterval = d }
}

// WithSubscriptionBuffer sets how many messages each subscription buffers
// before dropping; values below 1 are raised to 1.
func WithSubscriptionBuffer(n int) MemoryOption {
	return func(c *memoryConfig) { c.subBuffer = max(n, 1) }
}

// NewMemory returns an empty in-process cache. Its janitor goroutine runs
// until Close, so every NewMemory needs a matching Close.
func NewMemory(opts ...MemoryOption) *Memory {
	cfg := memoryConfig{
		now:             time.Now,
		janitorInterval: DefaultJanitorInterval,
		subBuffer:       DefaultSubscriptionBuffer,
	}
	for _, o := range opts {
		o(&cfg)
	}
	m := &Memory{
		now:       cfg.now,
		seed:      maphash.MakeSeed(),
		stop:      make(chan struct{}),
		subs:      make(map[string]map[*memorySubscription]struct{}),
		subBuffer: cfg.subBuffer,
	}
	for i := range m.shards {
		m.shards[i].m = make(map[string]memoryEntry)
	}
	if cfg.janitorInterval > 0 {
		m.janitor.Add(1)
		go m.runJanitor(cfg.janitorInterval)
	}
	return m
}

func (m *Memory) shard(key string) *memoryShard {
	return &m.shards[maphash.String(m.seed, key)%memoryShards]
}

// expiry converts a ttl into an absolute deadline; zero ttl means none.
func (m *Memory) expiry(ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return m.now().Add(ttl)
}

func clone(b []byte) []byte {
	return append([]byte{}, b...)
}

// Get implements Cache.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	s := m.shard(key)
	s.mu.RLock()
	e, ok := s.m[key]
	if !ok {
		s.mu.RUnlock()
		return nil, ErrMiss
	}
	if m.expired(e) {
		s.mu.RUnlock()
		m.evict(s, key)
		return nil, ErrMiss
	}
	v := clone(e.value)
	s.mu.RUnlock()
	return v, nil
}

// evict removes key if it is still expired; another writer may have replaced
// it between the read lock and this write lock.
func (m *Memory) evict(s *memoryShard, key string) {
	s.mu.Lock()
	if e, ok := s.m[key]; ok && m.expired(e) {
		delete(s.m, key)
	}
	s.mu.Unlock()
}

// Set implements Cache.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if ttl < 0 {
		return fmt.Errorf("cache: set %s: %w", key, errNegativeTTL)
	}
	e := memoryEntry{value: clone(value), expires: m.expiry(ttl)}
	s := m.shard(key)
	s.mu.Lock()
	s.m[key] = e
	s.mu.Unlock()
	return nil
}

// SetNX implements Cache.
func (m *Memory) SetNX(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if m.closed.Load() {
		return false, ErrClosed
	}
	if ttl < 0 {
		return false, fmt.Errorf("cache: setnx %s: %w", key, errNegativeTTL)
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok && !m.expired(e) {
		return false, nil
	}
	s.m[key] = memoryEntry{value: clone(value), expires: m.expiry(ttl)}
	return true, nil
}

// Take implements Cache.
func (m *Memory) Take(_ context.Context, key string) ([]byte, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, ErrMiss
	}
	delete(s.m, key)
	if m.expired(e) {
		return nil, ErrMiss
	}
	// The entry is gone from the map, so its buffer (never nil: Set and
	// Incr allocate it) can be handed over without a copy.
	return e.value, nil
}

// Delete implements Cache.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	if m.closed.Load() {
		return ErrClosed
	}
	for _, key := range keys {
		s := m.shard(key)
		s.mu.Lock()
		delete(s.m, key)
		s.mu.Unlock()
	}
	return nil
}

// Incr implements Cache. Like Redis INCRBY it refuses values that are not
// the canonical decimal form of an int64 and results that would overflow.
func (m *Memory) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	if ttl < 0 {
		return 0, fmt.Errorf("cache: incr %s: %w", key, errNegativeTTL)
	}
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok || m.expired(e) {
		e = memoryEntry{value: strconv.AppendInt(make([]byte, 0, 20), delta, 10), expires: m.expiry(ttl)}
		s.m[key] = e
		return delta, nil
	}
	n, err := parseCounter(e.value)
	if err != nil {
		return 0, fmt.Errorf("cache: incr %s: %w", key, err)
	}
	if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
		return 0, fmt.Errorf("cache: incr %s: %w", key, errOverflow)
	}
	n += delta
	// The buffer is private to the cache (Get and Set copy), so it can be
	// reused in place.
	e.value = strconv.AppendInt(e.value[:0], n, 10)
	s.m[key] = e
	return n, nil
}

// parseCounter accepts exactly what Redis INCRBY accepts: the canonical
// decimal form of an int64 (no sign on zero, no leading zeros or plus sign).
func parseCounter(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, errNotInteger
	}
	var buf [20]byte
	if !bytes.Equal(strconv.AppendInt(buf[:0], n, 10), b) {
		return 0, errNotInteger
	}
	return n, nil
}

// TTL implements Cache.
func (m *Memory) TTL(_ context.Context, key string) (time.Duration, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	s := m.shard(key)
	s.mu.RLock()
	e, ok := s.m[key]
	s.mu.RUnlock()
	if !ok {
		return 0, ErrMiss
	}
	if e.expires.IsZero() {
		return 0, nil
	}
	left := e.expires.Sub(m.now())
	if left <= 0 {
		m.evict(s, key)
		return 0, ErrMiss
	}
	return left, nil
}

// Ping implements Cache; an in-process cache always answers until closed.
func (m *Memory) Ping(context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Close stops the janitor, closes every open subscription and drops all
// keys. Later calls, including Close, return ErrClosed.
func (m *Memory) Close() error {
	err := ErrClosed
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.stop)
		m.janitor.Wait()

		m.subMu.Lock()
		for _, set := range m.subs {
			for sub := range set {
				sub.closeLocked()
			}
		}
		m.subs = nil
		m.subMu.Unlock()

		for i := range m.shards {
			s := &m.shards[i]
			s.mu.Lock()
			clear(s.m)
			s.mu.Unlock()
		}
		err = nil
	})
	return err
}

func (m *Memory) runJanitor(interval time.Duration) {
	defer m.janitor.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// sweep deletes every expired key, one shard at a time so readers of other
// shards are never blocked.
func (m *Memory) sweep() {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		now := m.now()
		for k, e := range s.m {
			if e.expired(now) {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

// Len reports how many keys are stored, expired ones not yet swept included.
// It exists for tests and metrics, not for logic.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Publish implements Cache. Delivery never blocks: a subscriber whose buffer
// is full loses the message, so one stuck reader cannot stall publishers.
func (m *Memory) Publish(_ context.Context, channel string, payload []byte) error {
	if m.closed.Load() {
		return ErrClosed
	}
	m.subMu.RLock()
	defer m.subMu.RUnlock()
	for sub := range m.subs[channel] {
		select {
		case sub.ch <- Message{Channel: channel, Payload: clone(payload)}:
		default:
		}
	}
	return nil
}

// Subscribe implements Cache.
func (m *Memory) Subscribe(_ context.Context, channels ...string) (Subscription, error) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	// Checked under subMu so a concurrent Close cannot miss this subscription.
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if len(channels) == 0 {
		return nil, errNoChannels
	}
	sub := &memorySubscription{
		m:        m,
		ch:       make(chan Message, m.subBuffer),
		channels: channels,
	}
	for _, c := range channels {
		set := m.subs[c]
		if set == nil {
			set = make(map[*memorySubscription]struct{})
			m.subs[c] = set
		}
		set[sub] = struct{}{}
	}
	return sub, nil
}

type memorySubscription struct {
	m        *Memory
	ch       chan Message
	channels []string
	closed   bool // guarded by m.subMu
}

func (s *memorySubscription) C() <-chan Message { return s.ch }

// Close implements Subscription; later calls return ErrClosed.
func (s *memorySubscription) Close() error {
	s.m.subMu.Lock()
	defer s.m.subMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, c := range s.channels {
		if set := s.m.subs[c]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(s.m.subs, c)
			}
		}
	}
	s.closeLocked()
	return nil
}

// closeLocked closes the channel; the caller holds m.subMu, which Publish
// also holds while sending, so no send can race with the close.
func (s *memorySubscription) closeLocked() {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}
