package ratelimit

import (
	"context"
	"sync"
	"time"
)

var _ Limiter = (*Memory)(nil)

// DefaultMaxKeys bounds the keys a Memory tracks (about 100 bytes each).
const DefaultMaxKeys = 100_000

// sweepInterval is how often, at most, a Memory drops keys that are back
// to their full limit; a full table sweeps at once.
const sweepInterval = time.Minute

// Memory is the in-process GCRA limiter: one instance's view only, so it
// is for a single Gatehouse instance and for riding out a Redis outage.
// Memory stays bounded: a key whose limit has fully recovered holds no
// information and is dropped, and when more than MaxKeys keys are live at
// once a tenth of them is forgotten (those keys start afresh), so a flood
// of distinct keys cannot exhaust the process.
type Memory struct {
	now     func() time.Time
	maxKeys int

	mu        sync.Mutex
	tat       map[string]time.Time // theoretical arrival time of each key
	lastSweep time.Time
}

// MemoryOption adjusts a Memory.
type MemoryOption func(*Memory)

// WithClock sets the clock (default time.Now); tests move it.
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) { m.now = now }
}

// WithMaxKeys caps the keys tracked at once (default DefaultMaxKeys).
func WithMaxKeys(n int) MemoryOption {
	return func(m *Memory) { m.maxKeys = max(n, 1) }
}

// NewMemory makes an empty in-process limiter.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{now: time.Now, maxKeys: DefaultMaxKeys, tat: map[string]time.Time{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Allow implements Limiter with the same arithmetic as redis_rate's script.
// It never fails.
func (m *Memory) Allow(_ context.Context, key string, limit Limit) (Result, error) {
	if !limit.Valid() {
		return Result{Limit: limit, Allowed: true, Remaining: limit.Count}, nil
	}
	now := m.now()
	interval := limit.interval()
	burst := interval * time.Duration(limit.Count)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	tat, ok := m.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	// The request fits when the debt it leaves is at most one burst.
	if over := next.Sub(now) - burst; over > 0 {
		return Result{Limit: limit, ResetAfter: tat.Sub(now), RetryAfter: over}, nil
	}
	m.tat[key] = next
	return Result{
		Limit: limit, Allowed: true,
		Remaining:  int((burst - next.Sub(now)) / interval),
		ResetAfter: next.Sub(now),
	}, nil
}

// sweep drops recovered keys now and then, and makes room when full.
func (m *Memory) sweep(now time.Time) {
	full := len(m.tat) >= m.maxKeys
	if !full && now.Sub(m.lastSweep) < sweepInterval {
		return
	}
	m.lastSweep = now
	for k, t := range m.tat {
		if !t.After(now) {
			delete(m.tat, k)
		}
	}
	if len(m.tat) < m.maxKeys {
		return
	}
	// Every key is live: forget some (map order is random) rather than
	// grow or refuse newcomers.
	drop := max(m.maxKeys/10, 1)
	for k := range m.tat {
		if drop == 0 {
			break
		}
		delete(m.tat, k)
		drop--
	}
}

// Len is the number of keys tracked.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tat)
}
