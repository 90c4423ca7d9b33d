package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// Fault tests: the built binary under sign-in load while a dependency
// fails. What they hold it to: a failing dependency answers 503 (with
// Retry-After), never another 5xx; a Redis outage answers nothing but what
// a healthy server would; and everything recovers without a restart.

// burnCPUEnv makes the test binary a CPU burner (see TestMain).
const burnCPUEnv = "GATEHOUSE_TEST_BURN_CPU"

// burnCPU keeps three goroutines per CPU busy until killed.
func burnCPU() {
	for range 3 * runtime.NumCPU() {
		go func() {
			for x := 0; ; x++ {
				_ = x * x
			}
		}()
	}
	select {}
}

// saturateCPUs starts a process that keeps every CPU busy until the test
// ends, as the shell loops of issue #14 did.
func saturateCPUs(t *testing.T) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), burnCPUEnv+"=1")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// faultEnv is the environment of a server under a fault test: rate limits
// off (the load comes from one address), light Argon2 so the machine's
// time goes to what is tested.
func faultEnv(t *testing.T, extra ...string) []string {
	return baseEnv(t.TempDir(), append([]string{
		"GATEHOUSE_SECRET_KEY=" + strings.Repeat("f", 40),
		"GATEHOUSE_RATE_LIMIT_ENABLED=false",
		"GATEHOUSE_ARGON2_MEMORY_KIB=1024", "GATEHOUSE_ARGON2_ITERATIONS=1", "GATEHOUSE_ARGON2_PARALLELISM=1",
	}, extra...)...)
}

const faultPassword = "Vortex-quill-58-Harbor-mango"

// registerAccounts makes n accounts load0..load<n-1>@example.com.
func registerAccounts(t *testing.T, s *server, n int) []string {
	t.Helper()
	emails := make([]string, n)
	for i := range emails {
		emails[i] = fmt.Sprintf("load%d@example.com", i)
		status, body := call(t, s, "POST", "/auth/register", "", map[string]any{"email": emails[i], "password": faultPassword})
		require.Equal(t, http.StatusCreated, status, body)
	}
	return emails
}

// tally counts answers by status, and the first problems of each status.
type tally struct {
	mu       sync.Mutex
	byStatus map[int]int
	samples  map[int][]string
	noRetry  int // 503s without Retry-After
	errs     int // transport errors
}

func newTally() *tally { return &tally{byStatus: map[int]int{}, samples: map[int][]string{}} }

func (c *tally) add(status int, body []byte, h http.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byStatus[status]++
	if status != http.StatusOK && len(c.samples[status]) < 3 {
		c.samples[status] = append(c.samples[status], string(body))
	}
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		c.noRetry++
	}
}

func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []int
	for k := range c.byStatus {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d x %d; ", k, c.byStatus[k])
	}
	fmt.Fprintf(&b, "transport errors %d; samples %v", c.errs, c.samples)
	return b.String()
}

func (c *tally) count(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byStatus[status]
}

// requireOnly fails unless every answer had one of the statuses, and every
// 503 said when to retry.
func (c *tally) requireOnly(t *testing.T, statuses ...int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for st, n := range c.byStatus {
		require.Contains(t, statuses, st, "%d answers of status %d: %v", n, st, c.samples[st])
	}
	require.Zero(t, c.errs, "transport errors")
	require.Zero(t, c.noRetry, "503 without Retry-After")
}

// signInLoad keeps workers signing in to the accounts, each worker on its
// own keep-alive connection, until ctx ends.
func signInLoad(ctx context.Context, base string, emails []string, workers int, c *tally) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 60 * time.Second}
			for i := w; ctx.Err() == nil; i++ {
				b, _ := json.Marshal(map[string]string{"email": emails[i%len(emails)], "password": faultPassword})
				req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/auth/login", bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					c.mu.Lock()
					c.errs++
					c.mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				c.add(resp.StatusCode, body, resp.Header)
			}
		})
	}
	return &wg
}

// loadFor runs the sign-in load for d and returns the tally.
func loadFor(t *testing.T, s *server, emails []string, workers int, d time.Duration) *tally {
	t.Helper()
	c := newTally()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	signInLoad(ctx, s.base, emails, workers, c).Wait()
	t.Logf("%d workers for %s: %s", workers, d, c)
	return c
}

// 32 concurrent sign-ins over 8 accounts while every CPU is busy in another
// process: nothing but 200 (and 503 for overload), on both engines. Three
// seconds are hundreds of sign-ins queueing behind one another, which is
// what overload is; longer only slows the tests running beside it.
func TestSignInsUnderCPUSaturation(t *testing.T) {
	engines := map[string][]string{"sqlite": nil}
	if os.Getenv(sqltest.PostgresURLEnv) != "" {
		engines["postgres"] = []string{"GATEHOUSE_DATABASE_URL=" + sqltest.PostgresURL(t)}
	}
	for name, extra := range engines {
		t.Run(name, func(t *testing.T) {
			s := start(t, faultEnv(t, extra...))
			emails := registerAccounts(t, s, 8)
			saturateCPUs(t)
			c := loadFor(t, s, emails, 32, 3*time.Second)
			c.requireOnly(t, http.StatusOK, http.StatusServiceUnavailable)
			require.Positive(t, c.count(http.StatusOK))
			s.stop(t)
			require.NotContains(t, s.logs.String(), `"status":500`)
		})
	}
}

// PostgreSQL stopped under load: while it is down every sign-in answers 503
// with Retry-After, never another 5xx; once it is back they all succeed
// again, without a restart of Gatehouse. The outage lasts until sign-ins
// have answered 503, and a second more.
func TestPostgresOutageUnderLoad(t *testing.T) {
	pg := startPrivatePostgres(t)
	s := start(t, faultEnv(t, "GATEHOUSE_DATABASE_URL="+pg.URL()))
	emails := registerAccounts(t, s, 8)

	c := newTally()
	ctx, cancel := context.WithCancel(context.Background())
	wg := signInLoad(ctx, s.base, emails, 16, c)
	time.Sleep(time.Second)
	pg.stop()
	eventually(t, "sign-ins to see the outage", 30*time.Second, func() bool { return c.count(http.StatusServiceUnavailable) > 0 })
	time.Sleep(time.Second)
	pg.start()
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	t.Logf("through the outage: %s", c)
	c.requireOnly(t, http.StatusOK, http.StatusServiceUnavailable)
	require.Positive(t, c.count(http.StatusServiceUnavailable), "the outage was seen")

	// Recovered: a second round is all 200.
	eventually(t, "sign-ins to succeed again", 30*time.Second, func() bool {
		status, _ := call(t, s, "POST", "/auth/login", "", map[string]any{"email": emails[0], "password": faultPassword})
		return status == http.StatusOK
	})
	after := loadFor(t, s, emails, 8, time.Second)
	after.requireOnly(t, http.StatusOK)
	code, body, _ := get(t, s.base+"/api/v1/health/ready")
	require.Equal(t, http.StatusOK, code, body)
	s.stop(t)
	require.NotContains(t, s.logs.String(), `"status":500`)
}

// Redis killed and restarted under load, with two instances sharing it:
// no 5xx at all (sign-ins fall back to the database and in-process limits),
// and a session revoked while Redis was down stays revoked on both
// instances afterwards. Then the same with Redis frozen (SIGSTOP) rather
// than killed, so its data, the revoked session's "alive" mark included,
// survives the outage.
func TestRedisOutageUnderLoad(t *testing.T) {
	rd := startPrivateRedis(t)
	env := faultEnv(t, "GATEHOUSE_DATABASE_URL="+sqltest.PostgresURL(t), "GATEHOUSE_REDIS_URL="+rd.URL(),
		"GATEHOUSE_RATE_LIMIT_ENABLED=true", "GATEHOUSE_RATE_LIMIT_LOGIN=100000/1m", "GATEHOUSE_RATE_LIMIT_API=100000/1m")
	a, b := start(t, env), start(t, env)
	emails := registerAccounts(t, a, 8)

	for _, outage := range []struct {
		name       string
		down, back func()
	}{
		{"killed", rd.kill, rd.start},
		{"frozen", rd.pause, rd.resume},
	} {
		t.Run(outage.name, func(t *testing.T) {
			// A session both instances have seen (each cached it alive).
			status, body := call(t, a, "POST", "/auth/login", "", map[string]any{"email": emails[0], "password": faultPassword})
			require.Equal(t, http.StatusOK, status, body)
			token := body["access_token"].(string)
			for _, s := range []*server{a, b} {
				status, _ := call(t, s, "GET", "/auth/me", token, nil)
				require.Equal(t, http.StatusOK, status)
			}

			c := newTally()
			ctx, cancel := context.WithCancel(context.Background())
			wg := signInLoad(ctx, a.base, emails, 8, c)
			wg2 := signInLoad(ctx, b.base, emails, 8, c)
			time.Sleep(time.Second)
			outage.down()
			waitReady(t, `"status":"degraded"`, a, b)
			time.Sleep(time.Second) // sign-ins in degraded mode
			status, body = call(t, a, "POST", "/auth/logout", token, nil)
			require.Equal(t, http.StatusNoContent, status, body)
			status, _ = call(t, a, "GET", "/auth/me", token, nil)
			require.Equal(t, http.StatusUnauthorized, status, "revoked during the outage")
			for _, s := range []*server{a, b} {
				code, body, _ := get(t, s.base+"/api/v1/health/ready")
				require.Equal(t, http.StatusOK, code, "a Redis outage keeps the instance in")
				require.Contains(t, body, `"status":"degraded"`)
			}
			outage.back()
			waitReady(t, `"status":"ok"`, a, b)
			cancel()
			wg.Wait()
			wg2.Wait()
			t.Logf("through the outage: %s", c)
			c.requireOnly(t, http.StatusOK)

			// The instance that did not revoke it first: it must not go by
			// an alive mark that survived in Redis.
			for _, s := range []*server{b, a} {
				status, _ := call(t, s, "GET", "/auth/me", token, nil)
				require.Equal(t, http.StatusUnauthorized, status, "still revoked after the outage")
				code, body, _ := get(t, s.base+"/api/v1/health/ready")
				require.Equal(t, http.StatusOK, code)
				require.Contains(t, body, `"status":"ok"`)
			}
		})
	}
	for _, s := range []*server{a, b} {
		s.stop(t)
		logs := s.logs.String()
		require.NotContains(t, logs, `"status":500`)
		require.Contains(t, logs, "Redis is unreachable: degraded mode")
		require.Contains(t, logs, "Redis answers again: leaving degraded mode")
	}
}

// waitReady waits until every instance's readiness answer says want.
func waitReady(t *testing.T, want string, servers ...*server) {
	t.Helper()
	for _, s := range servers {
		eventually(t, "ready to say "+want, 30*time.Second, func() bool {
			_, body, _ := get(t, s.base+"/api/v1/health/ready")
			return strings.Contains(body, want)
		})
	}
}

// Redis down when the server starts: it starts anyway, ready says
// degraded, sign-ins work, and it leaves degraded mode by itself once
// Redis is up.
func TestRedisDownAtBoot(t *testing.T) {
	t.Parallel()
	rd := startPrivateRedis(t)
	rd.kill()
	s := start(t, faultEnv(t, "GATEHOUSE_DATABASE_URL="+sqltest.PostgresURL(t), "GATEHOUSE_REDIS_URL="+rd.URL()))
	code, body, _ := get(t, s.base+"/api/v1/health/ready")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"status":"degraded"`)
	require.Regexp(t, `"cache":"(unavailable|timeout)"`, body, "the cache check names the outage")
	emails := registerAccounts(t, s, 1)
	status, body2 := call(t, s, "POST", "/auth/login", "", map[string]any{"email": emails[0], "password": faultPassword})
	require.Equal(t, http.StatusOK, status, body2)
	code, body, _ = get(t, s.base+"/api/v1/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `gatehouse_circuit_breaker_state{name="redis"} 2`)

	rd.start()
	eventually(t, "the server to leave degraded mode", 15*time.Second, func() bool {
		_, body, _ := get(t, s.base+"/api/v1/health/ready")
		return strings.Contains(body, `"status":"ok"`)
	})
	eventually(t, "the breaker gauge to say closed", 5*time.Second, func() bool {
		_, body, _ := get(t, s.base+"/api/v1/metrics")
		return strings.Contains(body, `gatehouse_circuit_breaker_state{name="redis"} 0`)
	})
	s.stop(t)
	require.Contains(t, s.logs.String(), "Redis is unreachable: degraded mode")
}

// A server killed with SIGKILL while webhook deliveries are in flight (the
// receiver holds every request open): after a restart each delivery
// arrives once, through River's rescue of the jobs the dead process left
// running. River takes a job back only once it has been running longer
// than jobs.RescueStuckJobsAfter and its own Timeout, looking every 30 s:
// about a minute after the crash (internal/jobs'
// TestCrashedJobsAreRescuedLongOnesAreNot holds those rules). Rather than
// wait that out, the test moves the dead attempts' start an hour back, and
// the dead leader's lease (seconds) into the past, as the passing time
// would: the restarted server leads at once and its first look finds them.
func TestSIGKILLWithDeliveriesInFlight(t *testing.T) {
	t.Parallel()
	pg := sqltest.PostgresURL(t)
	var (
		hold     atomic.Bool
		mu       sync.Mutex
		okays    = map[string]int{}
		inFlight atomic.Int32
	)
	hold.Store(true)
	release := make(chan struct{})
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if hold.Load() {
			inFlight.Add(1)
			<-release // the sender dies waiting
			return
		}
		mu.Lock()
		okays[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rc.Close()
	defer close(release)
	env := baseEnv(t.TempDir(), "GATEHOUSE_DATABASE_URL="+pg, "GATEHOUSE_SECRET_KEY="+strings.Repeat("k", 40),
		"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE=true", "GATEHOUSE_RATE_LIMIT_ENABLED=false",
		"GATEHOUSE_ARGON2_MEMORY_KIB=64", "GATEHOUSE_ARGON2_ITERATIONS=1", "GATEHOUSE_ARGON2_PARALLELISM=1")
	s := start(t, env)
	emails := registerAccounts(t, s, 1)
	status, body := call(t, s, "POST", "/auth/login", "", map[string]any{"email": emails[0], "password": faultPassword})
	require.Equal(t, http.StatusOK, status, body)
	owner := body["access_token"].(string)
	status, body = call(t, s, "POST", "/webhooks", owner, map[string]any{"url": rc.URL + "/hook", "events": []string{"user.login"}})
	require.Equal(t, http.StatusCreated, status, body)
	hookID := body["id"].(string)
	const logins = 3
	for range logins {
		status, _ := call(t, s, "POST", "/auth/login", "", map[string]any{"email": emails[0], "password": faultPassword})
		require.Equal(t, http.StatusOK, status)
	}
	eventually(t, "every delivery in flight", 30*time.Second, func() bool { return inFlight.Load() == logins })
	require.NoError(t, s.cmd.Process.Kill())
	<-s.done
	killed := time.Now()
	db, err := sql.Open("pgx", pg)
	require.NoError(t, err)
	defer db.Close()
	res, err := db.Exec(`UPDATE river_job SET attempted_at = attempted_at - interval '1 hour' WHERE state = 'running'`)
	require.NoError(t, err)
	running, err := res.RowsAffected()
	require.NoError(t, err)
	require.GreaterOrEqual(t, running, int64(logins), "the deliveries were running when the process died")
	_, err = db.Exec(`UPDATE river_leader SET expires_at = now() - interval '1 hour'`)
	require.NoError(t, err)

	hold.Store(false)
	again := start(t, env)
	eventually(t, "every delivery recorded as succeeded after the restart", 60*time.Second, func() bool {
		status, body := call(t, again, "GET", "/webhooks/"+hookID+"/deliveries", owner, nil)
		require.Equal(t, http.StatusOK, status, body)
		items := body["items"].([]any)
		for _, it := range items {
			if it.(map[string]any)["status"] != "succeeded" {
				return false
			}
		}
		return len(items) == logins
	})
	t.Logf("in-flight deliveries all succeeded %s after the kill", time.Since(killed).Round(time.Second))
	mu.Lock()
	require.Len(t, okays, logins)
	for id, n := range okays {
		require.Equal(t, 1, n, "event %s answered 2xx more than once", id)
	}
	mu.Unlock()
	again.stop(t)
}
