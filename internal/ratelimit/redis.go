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
// prefix + "rate:" + key.
type Redis struct {
	rl *redis_rate.Limiter
}

// NewRedis makes a limiter on client (the cache's client; it stays the
// caller's to close), with prefix (the cache's GATEHOUSE_REDIS_PREFIX)
// before each of its keys.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{rl: redis_rate.NewLimiter(prefixed{UniversalClient: client, prefix: prefix})}
}

// prefixed puts prefix before the keys of the commands redis_rate sends.
// redis_rate v10 writes its own "rate:" before the caller's key, so a
// prefix handed to it with the key would land after that: every key of a
// deployment must start with the deployment's prefix, which ACL key
// patterns and clean-ups match on.
type prefixed struct {
	redis.UniversalClient
	prefix string
}

func (p prefixed) keys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = p.prefix + k
	}
	return out
}

func (p prefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.Eval(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalSha(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalRO(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalShaRO(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return p.UniversalClient.Del(ctx, p.keys(keys)...)
}

// Allow implements Limiter. It fails when Redis does.
func (r *Redis) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	if !limit.Valid() {
		return Result{Limit: limit, Allowed: true, Remaining: limit.Count}, nil
	}
	res, err := r.rl.Allow(ctx, key, redis_rate.Limit{Rate: limit.Count, Burst: limit.Count, Period: limit.Window})
	if err != nil {
		return Result{}, fmt.Errorf("rate limit %s: %w", key, err)
	}
	out := Result{Limit: limit, Allowed: res.Allowed > 0, Remaining: res.Remaining, ResetAfter: max(res.ResetAfter, 0)}
	if !out.Allowed {
		out.RetryAfter = max(res.RetryAfter, 0)
	}
	return out, nil
}
