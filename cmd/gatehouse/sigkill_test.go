package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to look into River's table
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// hookReceiver answers 503 until healthy is set, then 204, and remembers
// which webhook-ids it answered with a 2xx, and how often.
type hookReceiver struct {
	*httptest.Server
	healthy atomic.Bool
	mu      sync.Mutex
	seen    map[string]int // webhook-id -> requests
	okays   map[string]int // webhook-id -> 2xx answers
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{seen: map[string]int{}, okays: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.seen[id]++
		if !rc.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rc.okays[id]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *hookReceiver) counts() (seen, okays map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen, okays = map[string]int{}, map[string]int{}
	for k, v := range rc.seen {
		seen[k] = v
	}
	for k, v := range rc.okays {
		okays[k] = v
	}
	return seen, okays
}

// call sends a JSON request to the API and decodes the JSON answer.
func call(t *testing.T, s *server, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, s.base+"/api/v1"+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A server killed with SIGKILL while webhook deliveries wait for their
// retry loses none: after a restart every event reaches the receiver, and
// none is answered 2xx twice. The receiver fails every request before the
// kill, so every 2xx comes after the restart, from the jobs committed
// before it.
func TestSIGKILLWithDeliveriesPending(t *testing.T) {
	t.Parallel()
	pg := sqltest.PostgresURL(t)
	rc := newHookReceiver(t)
	env := baseEnv(t.TempDir(), "GATEHOUSE_DATABASE_URL="+pg, "GATEHOUSE_SECRET_KEY="+strings.Repeat("k", 40),
		"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE=true", "GATEHOUSE_RATE_LIMIT_ENABLED=false",
		"GATEHOUSE_ARGON2_MEMORY_KIB=64", "GATEHOUSE_ARGON2_ITERATIONS=1", "GATEHOUSE_ARGON2_PARALLELISM=1")
	s := start(t, env)

	// Fewer deliveries than the failures that open the host's circuit
	// (the sign-in that made the webhook may count too: its fan-out can
	// run after the webhook exists).
	const password, logins = "Vortex-quill-58-Harbor-mango", 3
	status, body := call(t, s, "POST", "/auth/register", "", map[string]any{"email": "kill@example.com", "password": password})
	require.Equal(t, http.StatusCreated, status, body)
	login := func(s *server) string {
		status, body := call(t, s, "POST", "/auth/login", "", map[string]any{"email": "kill@example.com", "password": password})
		require.Equal(t, http.StatusOK, status, body)
		return body["access_token"].(string)
	}
	owner := login(s)
	status, body = call(t, s, "POST", "/webhooks", owner, map[string]any{"url": rc.URL + "/hook", "events": []string{"user.login"}})
	require.Equal(t, http.StatusCreated, status, body)
	hookID := body["id"].(string)
	for range logins {
		login(s)
	}

	// Every delivery has failed once and waits (seconds) for its retry,
	// and no job is mid-run: then the process dies without warning.
	db, err := sql.Open("pgx", pg)
	require.NoError(t, err)
	defer db.Close()
	var pending int
	eventually(t, "a failed first attempt of every delivery", 30*time.Second, func() bool {
		seen, _ := rc.counts()
		var attempted, busy int
		// A job to retry soon is "available" with a later scheduled_at,
		// later ones "retryable".
		require.NoError(t, db.QueryRow(`SELECT
			count(*) FILTER (WHERE kind = 'webhook.deliver' AND state IN ('available', 'retryable', 'scheduled')),
			count(*) FILTER (WHERE kind = 'webhook.deliver' AND state IN ('available', 'retryable') AND attempt = 1),
			count(*) FILTER (WHERE state = 'running' OR (kind = 'event' AND state <> 'completed'))
			FROM river_job`).Scan(&pending, &attempted, &busy))
		return pending >= logins && attempted == pending && len(seen) == pending && busy == 0
	})
	require.NoError(t, s.cmd.Process.Kill())
	<-s.done

	rc.healthy.Store(true)
	again := start(t, env)
	// The receiver sees a delivery before the server records its answer:
	// wait for the records. The token from before the kill still works; a
	// new sign-in would make one more user.login delivery, racing with the
	// list.
	var items []any
	eventually(t, "every delivery recorded as succeeded after the restart", 45*time.Second, func() bool {
		status, body = call(t, again, "GET", "/webhooks/"+hookID+"/deliveries", owner, nil)
		require.Equal(t, http.StatusOK, status, body)
		items = body["items"].([]any)
		for _, it := range items {
			if it.(map[string]any)["status"] != "succeeded" {
				return false
			}
		}
		return len(items) == pending
	})
	for _, it := range items {
		require.EqualValues(t, 2, it.(map[string]any)["attempts"], "one failure before the kill, one success after")
	}
	again.stop(t)

	seen, okays := rc.counts()
	require.Len(t, seen, pending, "no other event")
	for id, n := range okays {
		require.Equal(t, 1, n, "event %s answered 2xx more than once", id)
		require.Equal(t, 2, seen[id])
	}
}
