package webhook_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/events"
	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// A host whose circuit is open gets nothing: its deliveries are snoozed,
// which records no attempt and spends none of the job's, and a probe after
// the open time closes the circuit again. The state shows in /metrics.
func TestOpenCircuitSnoozesDeliveries(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, true)
			env.App.Webhooks.SetBreakers(2, 200*time.Millisecond)
			rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n <= 3 {
					w.WriteHeader(http.StatusBadGateway)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			alice := signUp(env, "alice@example.com")
			hookID, _ := createHook(t, env, alice.token, rc.URL, "user.password_changed")
			alice.changePassword(t, env)

			// Two failures open the circuit; the probe after it fails and
			// opens it again; the next probe succeeds.
			d := waitDelivery(t, env, alice.token, hookID, "succeeded")
			require.Equal(t, []float64{502, 502, 502, 200}, historyStatuses(d))
			require.Len(t, rc.requests(), 4)
			res, err := env.App.Jobs.River().JobList(t.Context(), river.NewJobListParams().Kinds(webhook.DeliverArgs{}.Kind()))
			require.NoError(t, err)
			require.Len(t, res.Jobs, 1)
			require.Equal(t, 4, res.Jobs[0].Attempt, "snoozes spent no attempts")

			resp, err := http.Get(env.URL + "/metrics")
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			host := strings.TrimPrefix(rc.URL, "http://")
			require.Contains(t, string(body), `gatehouse_circuit_breaker_state{name="webhook:`+host+`"} 0`)
		})
	}
}

// The cleanup job deletes finished deliveries past the retention, with
// their attempts, and keeps newer and pending ones.
func TestCleanupDeletesOldDeliveries(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, true)
			ok := newReceiver(t, status(http.StatusOK))
			down := newReceiver(t, status(http.StatusServiceUnavailable))
			alice := signUp(env, "alice@example.com")
			okID, _ := createHook(t, env, alice.token, ok.URL, "user.password_changed")
			downID, _ := createHook(t, env, alice.token, down.URL, "user.password_changed")
			env.App.Webhooks.SetBackoff(func(int) time.Duration { return time.Hour })

			alice.changePassword(t, env)
			waitDelivery(t, env, alice.token, okID, "succeeded")
			waitFor(t, "the failed first attempt", func() bool {
				list := deliveries(t, env, alice.token, downID)
				return len(list) == 1 && len(list[0]["history"].([]any)) == 1
			})

			startupCleanupsDone(t, env)
			env.Clock.Advance(webhook.DefaultDeliveryRetention + time.Hour)
			alice.token = env.Login(alice.email, alice.passwords[0]).Access
			alice.changePassword(t, env)
			waitFor(t, "the second delivery", func() bool { return len(deliveries(t, env, alice.token, okID)) == 2 })
			waitDelivery(t, env, alice.token, okID, "succeeded")

			w := webhook.NewCleanupWorker(env.App.DB, 0, env.Clock.Now, nil)
			require.NoError(t, w.Work(t.Context(), nil))
			list := deliveries(t, env, alice.token, okID)
			require.Len(t, list, 1, "the old one went")
			require.Equal(t, env.Clock.Now().Format(time.RFC3339), mustTime(t, list[0]["created_at"]).Format(time.RFC3339))
			require.Len(t, deliveries(t, env, alice.token, downID), 2, "pending ones stay, whatever their age")
		})
	}
}

func mustTime(t *testing.T, v any) time.Time {
	ts, err := time.Parse(time.RFC3339Nano, v.(string))
	require.NoError(t, err)
	return ts
}

// startupCleanupsDone waits until the event and delivery cleanups that the
// leader runs once at start (then hourly) have run. They read the test
// clock: run after a test moved it weeks ahead, they would take the rows
// of the test's next event for old ones (seen under load, when electing
// the leader took seconds).
func startupCleanupsDone(t *testing.T, env *apptest.Env) {
	params := river.NewJobListParams().Kinds(events.CleanupArgs{}.Kind(), webhook.CleanupArgs{}.Kind()).
		States(rivertype.JobStateCompleted)
	waitFor(t, "the start-up cleanups", func() bool {
		res, err := env.App.Jobs.River().JobList(t.Context(), params)
		require.NoError(t, err)
		return len(res.Jobs) == 2
	})
}
