package app_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
)

// prefixTestDB is the Redis database the prefix test writes in. The test
// Redis is shared by every test run on the machine, which writes keys in
// database 0; this one is left to the test, so the keys that appear in it
// during the flow are the flow's own. Nothing is flushed: the test deletes
// only the keys under its own prefix.
const prefixTestDB = "13"

// Every Redis key and pub/sub channel Gatehouse uses starts with
// GATEHOUSE_REDIS_PREFIX, so ACL key patterns (~prefix*) and clean-ups by
// prefix cover all of a deployment: a flow touching the rate limiter,
// risk counters, sessions and their deny list, WebSocket tickets, the
// permission cache's invalidations and live notifications writes no key
// and publishes on no channel outside it.
func TestEveryRedisKeyStartsWithThePrefix(t *testing.T) {
	raw := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if raw == "" {
		t.Skip("GATEHOUSE_TEST_REDIS_URL not set")
	}
	u, err := url.Parse(raw)
	if err != nil || strings.Contains(u.Host, ",") || u.Scheme != "redis" && u.Scheme != "rediss" {
		t.Skip("the prefix test needs a single-server GATEHOUSE_TEST_REDIS_URL")
	}
	u.Path = "/" + prefixTestDB
	opts, err := cache.ParseRedisURL(u.String())
	require.NoError(t, err)
	rdb := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()

	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			prefix := "gh-prefix-test:" + gatehouse.NewID() + ":"
			before := scanKeys(t, rdb, "*")
			// What the flow wrote goes, inside the prefix or not.
			t.Cleanup(func() {
				for k := range scanKeys(t, rdb, "*") {
					if !before[k] {
						_ = rdb.Del(context.Background(), k).Err()
					}
				}
			})

			// Messages on every channel, whoever publishes them; the
			// flow's are those that name its users.
			ps := rdb.PSubscribe(ctx, "*")
			_, err := ps.Receive(ctx)
			require.NoError(t, err)
			var mu sync.Mutex
			var published []*redis.Message
			done := make(chan struct{})
			go func() {
				defer close(done)
				for m := range ps.Channel() {
					mu.Lock()
					published = append(published, m)
					mu.Unlock()
				}
			}()
			t.Cleanup(func() { _ = ps.Close(); <-done })

			env := apptest.New(t, eng, map[string]string{
				"GATEHOUSE_REDIS_URL":          u.String(),
				"GATEHOUSE_REDIS_PREFIX":       prefix,
				"GATEHOUSE_RATE_LIMIT_ENABLED": "true",
			})
			ids := redisFlow(t, env)

			// Live notifications go out from the event worker: wait for
			// one naming a user of the flow.
			ours := func() []*redis.Message {
				mu.Lock()
				defer mu.Unlock()
				var out []*redis.Message
				for _, m := range published {
					if slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(m.Payload, id) }) {
						out = append(out, m)
					}
				}
				return out
			}
			require.Eventually(t, func() bool {
				return slices.ContainsFunc(ours(), func(m *redis.Message) bool { return strings.HasSuffix(m.Channel, "notify:user") })
			}, 15*time.Second, 50*time.Millisecond, "no live notification was published")
			for _, m := range ours() {
				require.True(t, strings.HasPrefix(m.Channel, prefix), "channel %q does not start with the prefix", m.Channel)
			}
			subscribed, err := rdb.PubSubChannels(ctx, prefix+"*").Result()
			require.NoError(t, err)
			require.NotEmpty(t, subscribed, "the instance subscribes under the prefix")

			var added []string
			for k := range scanKeys(t, rdb, "*") {
				if !before[k] {
					added = append(added, k)
				}
			}
			require.True(t, slices.ContainsFunc(added, func(k string) bool { return strings.HasPrefix(k, prefix+"rate:") }),
				"the flow used the Redis rate limiter: %q", added)
			for _, k := range added {
				require.True(t, strings.HasPrefix(k, prefix), "key %q does not start with the prefix %q", k, prefix)
			}
		})
	}
}

// redisFlow signs users up and in and out, fails a login, opens a
// WebSocket ticket, changes a password and a user's roles, and answers
// the ids of the users involved.
func redisFlow(t *testing.T, env *apptest.Env) []string {
	t.Helper()
	ctx := context.Background()
	admin, err := env.App.Accounts.CreateUser(ctx, "root@example.com", apptest.StrongPassword, []string{"admin"}, true)
	require.NoError(t, err)
	adminTok := env.Login("root@example.com", apptest.StrongPassword)

	id := env.Register("ada@example.com", apptest.StrongPassword)
	r := env.Do("POST", "/auth/login", map[string]any{"email": "ada@example.com", "password": "not the password at all"}, "")
	require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))
	tok := env.Login("ada@example.com", apptest.StrongPassword)
	require.Equal(t, http.StatusOK, env.Do("GET", "/auth/me", nil, tok.Access).Status)
	require.Equal(t, http.StatusAccepted, env.Do("POST", "/auth/password/forgot", map[string]any{"email": "ada@example.com"}, "").Status)
	r = env.Do("POST", "/ws/ticket", nil, tok.Access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = env.Do("PUT", "/admin/users/"+id+"/roles", map[string]any{"roles": []string{"user", "moderator"}}, adminTok.Access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	r = env.Do("POST", "/users/password/change", map[string]any{"current_password": apptest.StrongPassword, "new_password": "mango-Vortex-quill-58-Harbor"}, tok.Access)
	require.Equal(t, http.StatusNoContent, r.Status, string(r.Raw))
	require.Equal(t, http.StatusNoContent, env.Do("POST", "/auth/logout", nil, adminTok.Access).Status)
	return []string{admin.ID, id}
}

// scanKeys lists the keys matching pattern with SCAN (never KEYS).
func scanKeys(t *testing.T, rdb redis.UniversalClient, pattern string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	iter := rdb.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		keys[iter.Val()] = true
	}
	require.NoError(t, iter.Err())
	return keys
}
