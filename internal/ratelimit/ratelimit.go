// Package ratelimit decides whether one more request under a key fits its
// limit. Both implementations use GCRA (the generic cell rate algorithm):
// a key may spend its whole Count at once, then earns one request back
// every Window/Count. So no more than Count requests pass within any
// Window/Count, and over any span d no more than Count + d·Count/Window do.
// Redis (shared by every instance, one atomic script per decision) is the
// production limiter; Memory is the single-process equivalent; Fallback
// keeps limiting in-process while Redis is unreachable.
package ratelimit

import (
	"context"
	"time"
)

// Limit is Count requests per Window, which is also the largest burst.
type Limit struct {
	Count  int
	Window time.Duration
}

// Valid reports whether the limit can be enforced.
func (l Limit) Valid() bool { return l.Count > 0 && l.Window > 0 }

// interval is the time one request costs: Window/Count.
func (l Limit) interval() time.Duration { return l.Window / time.Duration(l.Count) }

// Result is the decision about one request.
type Result struct {
	Limit   Limit
	Allowed bool
	// Remaining is how many more requests would pass right now.
	Remaining int
	// ResetAfter is when the key is back to its full Count.
	ResetAfter time.Duration
	// RetryAfter is when a refused request would pass; zero when allowed.
	RetryAfter time.Duration
}

// Limiter decides about one request under key.
type Limiter interface {
	// Allow spends one request of key's limit if it fits. An invalid limit
	// allows everything. It fails only when the limiter's store does (a
	// Redis error); the caller then decides, it never means "allowed".
	Allow(ctx context.Context, key string, limit Limit) (Result, error)
}
