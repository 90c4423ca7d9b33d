package ratelimit

import (
	"context"
	"fmt"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

var _ Limiter = (*Redis)(nil)

// Redis is the limiter every instance shares: redis_rate's GCRA script
// decides atomically in one round trip, on Redis's clock, under the key
// "rate:" + key.
type Redis struct {
	rl     *redis_rate.Limiter
	prefix string
}

// NewRedis makes a limiter on client (the cache's client; it stays the
// caller's to close), with prefix before its keys (the cache's prefix).
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{rl: redis_rate.NewLimiter(client), prefix: prefix}
}

// Allow implements Limiter. It fails when Redis does.
func (r *Redis) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	if !limit.Valid() {
		return Result{Limit: limit, Allowed: true, Remaining: limit.Count}, nil
	}
	res, err := r.rl.Allow(ctx, r.prefix+key, redis_rate.Limit{Rate: limit.Count, Burst: limit.Count, Period: limit.Window})
	if err != nil {
		return Result{}, fmt.Errorf("rate limit %s: %w", key, err)
	}
	out := Result{Limit: limit, Allowed: res.Allowed > 0, Remaining: res.Remaining, ResetAfter: max(res.ResetAfter, 0)}
	if !out.Allowed {
		out.RetryAfter = max(res.RetryAfter, 0)
	}
	return out, nil
}
