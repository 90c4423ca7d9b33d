package webhook_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// TestWebhookCapPerUser: a user owns at most MaxWebhooksPerUser webhooks,
// inactive ones included, even when the creations race; the next one is a
// 409 naming the limit, deleting one makes room, and other users are not
// affected.
func TestWebhookCapPerUser(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, false)
			alice, bob := signUp(env, "alice@example.com"), signUp(env, "bob@example.com")
			const raced = 6
			var first string
			for i := range webhook.MaxWebhooksPerUser - raced/2 {
				r := env.Do("POST", "/webhooks", map[string]any{"url": fmt.Sprintf("https://example.com/%d", i), "events": []string{"user.login"}, "active": i%2 == 0}, alice.token)
				require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
				if first == "" {
					first = r.Str("id")
				}
			}

			// Concurrent creations cannot overshoot the cap together.
			statuses := make([]int, raced)
			var wg sync.WaitGroup
			for i := range raced {
				wg.Go(func() {
					statuses[i] = env.Do("POST", "/webhooks", map[string]any{"url": "https://example.com/race", "events": []string{"*"}}, alice.token).Status
				})
			}
			wg.Wait()
			created := 0
			for _, s := range statuses {
				require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, s)
				if s == http.StatusCreated {
					created++
				}
			}
			require.Equal(t, raced/2, created, "statuses %v", statuses)

			r := env.Do("POST", "/webhooks", map[string]any{"url": "https://example.com/over", "events": []string{"*"}, "active": false}, alice.token)
			require.Equal(t, http.StatusConflict, r.Status, string(r.Raw))
			require.Equal(t, "conflict", r.Code())
			require.Contains(t, r.Str("detail"), fmt.Sprint(webhook.MaxWebhooksPerUser))
			list := env.Do("GET", "/webhooks?limit=100", nil, alice.token)
			require.Len(t, list.JSON["items"], webhook.MaxWebhooksPerUser)

			createHook(t, env, bob.token, "https://example.com/bob", "user.login")

			require.Equal(t, http.StatusNoContent, env.Do("DELETE", "/webhooks/"+first, nil, alice.token).Status)
			createHook(t, env, alice.token, "https://example.com/again", "user.login")
		})
	}
}
