package app_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
)

// redisCounter counts the commands a Redis client sends (PINGs of the
// health watch aside: they run on their own schedule, not per request).
type redisCounter struct{ n atomic.Int64 }

func (c *redisCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *redisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !strings.EqualFold(cmd.Name(), "ping") {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *redisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// cacheSetups are the cache configurations hot-path tests run on: the
// in-process cache always, Redis when the test Redis is set.
func cacheSetups() map[string]map[string]string {
	setups := map[string]map[string]string{"memory": nil}
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		setups["redis"] = map[string]string{"GATEHOUSE_REDIS_URL": u}
	}
	return setups
}

// A warm bearer request, /auth/me or POST /authz/check, is answered from
// memory: token verified, session known alive, permissions and user cached,
// with no database statement and no Redis command. Background work (jobs,
// the audit linker) may use the database at any time, so the claim is that
// some window of 20 warm requests costs nothing at all; a request that
// needed a round trip would cost at least 20 in every window.
func TestWarmBearerRequestsNeedNoRoundTrip(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		for name, extra := range cacheSetups() {
			t.Run(eng+"/"+name, func(t *testing.T) {
				env := apptest.New(t, eng, extra)
				env.Register("hot@example.com", apptest.StrongPassword)
				tok := env.Login("hot@example.com", apptest.StrongPassword)
				rc := &redisCounter{}
				if r, ok := env.App.Cache.(*cache.Redis); ok {
					r.Client().AddHook(rc)
				}
				requests := func() {
					for range 10 {
						r := env.Do(http.MethodGet, "/auth/me", nil, tok.Access)
						require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
						r = env.Do(http.MethodPost, "/authz/check", map[string]any{"permission": "profile:read"}, tok.Access)
						require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
					}
				}
				db0, r0 := env.App.DB.Statements(), rc.n.Load()
				requests() // warm: the first requests read the truth
				require.NotZero(t, env.App.DB.Statements()-db0, "the counter counts")
				if name == "redis" {
					require.NotZero(t, rc.n.Load()-r0, "the counter counts")
				}
				var dbDelta uint64
				var redisDelta int64
				for range 10 {
					db0, r0 := env.App.DB.Statements(), rc.n.Load()
					requests()
					dbDelta, redisDelta = env.App.DB.Statements()-db0, rc.n.Load()-r0
					if dbDelta == 0 && redisDelta == 0 {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				t.Fatalf("every window of 20 warm requests made round trips; the last: %d database statements, %d Redis commands", dbDelta, redisDelta)
			})
		}
	}
}

// A session revoked on one instance stops its access token on another at
// once (within a second): two servers over one database and one Redis.
func TestRevocationReachesEveryInstance(t *testing.T) {
	twoInstances(t, func(t *testing.T, a, b *apptest.Env) {
		a.Register("two@example.com", apptest.StrongPassword)
		tok := a.Login("two@example.com", apptest.StrongPassword)
		other := a.Login("two@example.com", apptest.StrongPassword)
		// B vouches for both sessions from memory.
		for range 3 {
			require.Equal(t, http.StatusOK, b.Do(http.MethodGet, "/auth/me", nil, tok.Access).Status)
			require.Equal(t, http.StatusOK, b.Do(http.MethodGet, "/auth/me", nil, other.Access).Status)
		}

		// Revoked on A (as its user, from the other session) ...
		r := a.Do(http.MethodDelete, "/sessions/"+tok.SessionID, nil, other.Access)
		require.Equal(t, http.StatusNoContent, r.Status, string(r.Raw))
		// ... refused on B within a second.
		refusedWithin(t, b, tok.Access, time.Second)
		require.Equal(t, http.StatusOK, b.Do(http.MethodGet, "/auth/me", nil, other.Access).Status, "the other session lives")

		// Logout on B stops the token on A.
		require.Equal(t, http.StatusOK, a.Do(http.MethodGet, "/auth/me", nil, other.Access).Status)
		r = b.Do(http.MethodPost, "/auth/logout", nil, other.Access)
		require.Less(t, r.Status, 300, string(r.Raw))
		refusedWithin(t, a, other.Access, time.Second)
	})
}

// A profile change on one instance shows in /auth/me on the other.
func TestProfileChangeReachesEveryInstance(t *testing.T) {
	twoInstances(t, func(t *testing.T, a, b *apptest.Env) {
		a.Register("name@example.com", apptest.StrongPassword)
		tok := a.Login("name@example.com", apptest.StrongPassword)
		require.Equal(t, "", b.Do(http.MethodGet, "/auth/me", nil, tok.Access).Str("name"))
		r := a.Do(http.MethodPut, "/users/profile", map[string]any{"name": "Ada"}, tok.Access)
		require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
		require.Eventually(t, func() bool {
			return b.Do(http.MethodGet, "/auth/me", nil, tok.Access).Str("name") == "Ada"
		}, time.Second, 10*time.Millisecond)
	})
}

// twoInstances runs fn, on each engine two servers can share (not one
// SQLite file), with two servers over one database and one Redis.
func twoInstances(t *testing.T, fn func(t *testing.T, a, b *apptest.Env)) {
	redisURL := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("GATEHOUSE_TEST_REDIS_URL not set")
	}
	for _, eng := range apptest.Engines(t) {
		if eng == "sqlite" {
			continue // one SQLite file is not shared by two servers
		}
		t.Run(eng, func(t *testing.T) {
			a := apptest.New(t, eng, map[string]string{"GATEHOUSE_REDIS_URL": redisURL})
			b := apptest.New(t, eng, map[string]string{
				"GATEHOUSE_REDIS_URL":    redisURL,
				"GATEHOUSE_DATABASE_URL": a.App.Config.DatabaseURL,
				"GATEHOUSE_REDIS_PREFIX": a.App.Config.RedisPrefix,
			})
			fn(t, a, b)
		})
	}
}

// A role granted on one instance shows in /auth/me and in permission
// checks on the other; locally at once.
func TestRoleChangeIsSeenAtOnce(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, nil)
			id := env.Register("roles@example.com", apptest.StrongPassword)
			tok := env.Login("roles@example.com", apptest.StrongPassword)
			me := env.Do(http.MethodGet, "/auth/me", nil, tok.Access)
			require.Equal(t, http.StatusOK, me.Status)
			roles := func() []any {
				r := env.Do(http.MethodGet, "/auth/me", nil, tok.Access)
				list, _ := r.JSON["roles"].([]any)
				return list
			}
			before := roles()
			require.NoError(t, env.App.DB.SetUserRoles(context.Background(), id, []string{"user", "admin"}))
			require.Len(t, roles(), len(before)+1, "the cached user was dropped when its roles changed")
		})
	}
}

func refusedWithin(t *testing.T, env *apptest.Env, access string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		status := env.Do(http.MethodGet, "/auth/me", nil, access).Status
		if status == http.StatusUnauthorized {
			return
		}
		require.Equal(t, http.StatusOK, status)
		if time.Now().After(deadline) {
			t.Fatalf("the revoked token was still accepted after %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
