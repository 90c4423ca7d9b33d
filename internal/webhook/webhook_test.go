package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/events"
	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// verify is an independent Standard Webhooks verifier, written from the
// specification: the key is the base64 part of the secret, the signed
// content "id.timestamp.body", the header a space-separated list of
// "v1,<base64>" signatures.
func verify(secret, id, ts string, body []byte, header string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(header) {
		v, b64, ok := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if ok && v == "v1" && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// TestProperty85_SignatureInclusion: every signature verifies with an
// independent implementation, and any change to id, timestamp or body
// breaks it.
func TestProperty85_SignatureInclusion(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		key := rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(rt, "key")
		secret := webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key)
		id := rapid.StringMatching(`[a-z0-9-]{1,40}`).Draw(rt, "id")
		ts := rapid.Int64Range(0, 1<<40).Draw(rt, "ts")
		body := rapid.SliceOf(rapid.Byte()).Draw(rt, "body")
		sig := webhook.Sign(key, id, ts, body)
		tss := strconv.FormatInt(ts, 10)
		require.True(t, verify(secret, id, tss, body, sig))
		require.False(t, verify(secret, id+"x", tss, body, sig))
		require.False(t, verify(secret, id, strconv.FormatInt(ts+1, 10), body, sig))
		require.False(t, verify(secret, id, tss, append(body, '!'), sig))
	})
}

// --- end to end, through the whole server ---

type received struct {
	header http.Header
	body   []byte
	path   string
}

// receiver is a webhook endpoint that records every request and answers
// with what answer returns for the n-th (1-based) one.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, path: r.URL.Path})
		n := len(rc.got)
		rc.mu.Unlock()
		rc.answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	// Most conditions hold within a few job runs; polling each 20 ms for
	// a minute would spend the CPU the jobs need (a check is an API call).
	pause := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

const otherPassword = "mango-Vortex-quill-58-Harbor"

type user struct {
	id, email, token string
	passwords        [2]string
}

// env is a running server whose webhooks may reach loopback (allowPrivate)
// and retry at once.
func newEnv(t *testing.T, engine string, allowPrivate bool) *apptest.Env {
	env := apptest.New(t, engine, map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": strconv.FormatBool(allowPrivate)})
	env.App.Webhooks.SetBackoff(func(int) time.Duration { return 0 })
	t.Cleanup(func() { logJobsIfFailed(t, env) })
	return env
}

// logJobsIfFailed logs the newest jobs of a failed test, with their
// state, attempts and errors: a fan-out or delivery a test waited for in
// vain shows why (a handler error retried later, a job still scheduled).
func logJobsIfFailed(t *testing.T, env *apptest.Env) {
	if !t.Failed() {
		return
	}
	rows, err := env.App.DB.DB().QueryContext(context.Background(),
		`SELECT id, kind, state, attempt, CAST(errors AS TEXT) FROM river_job ORDER BY id DESC LIMIT 20`)
	if err != nil {
		t.Logf("jobs: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, attempt int64
			kind, state string
			errs        sql.NullString
		)
		if err := rows.Scan(&id, &kind, &state, &attempt, &errs); err != nil {
			t.Logf("jobs: %v", err)
			return
		}
		t.Logf("job %d %s %s attempt %d errors %s", id, kind, state, attempt, errs.String)
	}
}

// signUp registers through the API and signs in.
func signUp(env *apptest.Env, email string) *user {
	u := &user{email: email, passwords: [2]string{apptest.StrongPassword, otherPassword}}
	u.id = env.Register(email, apptest.StrongPassword)
	u.token = env.Login(email, apptest.StrongPassword).Access
	return u
}

// changePassword causes a user.password_changed event.
func (u *user) changePassword(t *testing.T, env *apptest.Env) {
	r := env.Do("POST", "/users/password/change", map[string]any{"current_password": u.passwords[0], "new_password": u.passwords[1]}, u.token)
	require.Equal(t, http.StatusNoContent, r.Status, string(r.Raw))
	u.passwords[0], u.passwords[1] = u.passwords[1], u.passwords[0]
}

func createHook(t *testing.T, env *apptest.Env, token, url string, events ...string) (id, secret string) {
	r := env.Do("POST", "/webhooks", map[string]any{"url": url, "events": events, "description": "test"}, token)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	return r.Str("id"), r.Str("secret")
}

func deliveries(t *testing.T, env *apptest.Env, token, hookID string) []map[string]any {
	r := env.Do("GET", "/webhooks/"+hookID+"/deliveries", nil, token)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	var out []map[string]any
	for _, it := range r.JSON["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// waitDelivery waits until the webhook's newest delivery has the status.
func waitDelivery(t *testing.T, env *apptest.Env, token, hookID, want string) map[string]any {
	var d map[string]any
	waitFor(t, "a "+want+" delivery", func() bool {
		list := deliveries(t, env, token, hookID)
		if len(list) > 0 && list[0]["status"] == want {
			d = list[0]
			return true
		}
		return false
	})
	return d
}

func historyStatuses(d map[string]any) []float64 {
	var out []float64
	for _, a := range d["history"].([]any) {
		s, _ := a.(map[string]any)["response_status"].(float64)
		out = append(out, s)
	}
	return out
}

// at returns the requests made to path.
func (rc *receiver) at(path string) []received {
	var out []received
	for _, r := range rc.requests() {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// sentinel subscribes a webhook at /sentinel to the caused events, waits
// until no event waits for its fan-out, and returns how many deliveries
// it has then: once it has that many more than events were caused since,
// every one of those events has been fanned out (one transaction each).
func sentinel(t *testing.T, env *apptest.Env, u *user, rc *receiver) int {
	id, _ := createHook(t, env, u.token, rc.URL+"/sentinel", causable...)
	params := river.NewJobListParams().Kinds(events.Args{}.Kind()).
		States(rivertype.JobStateAvailable, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled)
	waitFor(t, "earlier events' fan-out", func() bool {
		res, err := env.App.Jobs.River().JobList(t.Context(), params)
		require.NoError(t, err)
		return len(res.Jobs) == 0
	})
	return len(deliveries(t, env, u.token, id))
}

// cause makes the event a case draws: a sign-in or a password change.
func cause(t *testing.T, env *apptest.Env, u *user, event string) {
	if event == string(gatehouse.EventUserLogin) {
		env.Login(u.email, u.passwords[0])
		return
	}
	u.changePassword(t, env)
}

var causable = []string{string(gatehouse.EventUserLogin), string(gatehouse.EventUserPasswordChanged)}

// requireSigned checks a request is a signed Standard Webhooks delivery of
// one of the user's events and returns its body.
func requireSigned(t require.TestingT, r received, secret, userID string) webhook.Payload {
	h := r.header
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, webhook.UserAgent, h.Get("User-Agent"))
	require.True(t, verify(secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), r.body, h.Get("webhook-signature")))
	var body webhook.Payload
	require.NoError(t, json.Unmarshal(r.body, &body))
	require.Equal(t, h.Get("webhook-id"), body.ID)
	require.Equal(t, userID, body.Data["user_id"])
	require.False(t, body.Timestamp.IsZero())
	return body
}

// TestProperty83_EventTriggersWebhook: whatever a webhook subscribes to
// and whatever the user then does, the webhook receives exactly the
// events it subscribed to, each once, signed, and listed as delivered.
func TestProperty83_EventTriggersWebhook(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, true)
			rc := newReceiver(t, status(http.StatusOK))
			alice := signUp(env, "alice@example.com")
			caused := sentinel(t, env, alice, rc)
			apptest.CheckN(t, 8, func(rt *rapid.T) {
				events := rapid.SliceOfNDistinct(rapid.SampledFrom(append([]string{webhook.AllEvents}, causable...)), 1, 2, rapid.ID[string]).Draw(rt, "subscribed")
				path := "/hook/" + gatehouse.NewID()
				hookID, secret := createHook(t, env, alice.token, rc.URL+path, events...)
				var want []string
				for _, e := range rapid.SliceOfN(rapid.SampledFrom(causable), 1, 3).Draw(rt, "caused") {
					cause(t, env, alice, e)
					caused++
					if slices.Contains(events, e) || slices.Contains(events, webhook.AllEvents) {
						want = append(want, e)
					}
				}
				waitFor(t, "the sentinel's deliveries", func() bool { return len(rc.at("/sentinel")) == caused })
				// "*" also brings events of other kinds (device.new ...): only
				// the caused kinds are counted.
				var got []string
				ids := map[string]bool{}
				waitFor(t, "the deliveries", func() bool {
					got, ids = nil, map[string]bool{}
					for _, r := range rc.at(path) {
						body := requireSigned(rt, r, secret, alice.id)
						if slices.Contains(causable, body.Type) {
							got = append(got, body.Type)
							ids[body.ID] = true
						}
					}
					return len(got) >= len(want)
				})
				require.ElementsMatch(rt, want, got, "subscribed to %v", events)
				require.Len(rt, ids, len(want), "each event once")
				listed := 0
				for _, d := range deliveries(t, env, alice.token, hookID) {
					if slices.Contains(causable, d["event_type"].(string)) {
						require.True(rt, ids[d["event_id"].(string)])
						listed++
					}
				}
				require.Equal(rt, len(want), listed)
				require.Equal(rt, http.StatusNoContent, env.Do("DELETE", "/webhooks/"+hookID, nil, alice.token).Status)
			})
		})
	}
}

// TestResend: a delivered event can be re-sent with the same webhook-id
// and body; its history lists both attempts.
func TestResend(t *testing.T) {
	t.Parallel()
	env := newEnv(t, "sqlite", true)
	rc := newReceiver(t, status(http.StatusOK))
	alice := signUp(env, "alice@example.com")
	hookID, secret := createHook(t, env, alice.token, rc.URL+"/hook", string(gatehouse.EventUserPasswordChanged))
	alice.changePassword(t, env)
	waitFor(t, "the delivery", func() bool { return len(rc.requests()) == 1 })
	req := rc.requests()[0]
	body := requireSigned(t, req, secret, alice.id)
	require.Equal(t, strconv.FormatInt(env.Clock.Now().Unix(), 10), req.header.Get("webhook-timestamp"))

	d := waitDelivery(t, env, alice.token, hookID, "succeeded")
	require.Equal(t, body.ID, d["event_id"])
	require.Equal(t, "user.password_changed", d["event_type"])
	require.EqualValues(t, 1, d["attempts"])
	require.EqualValues(t, 200, d["response_status"])
	require.Nil(t, d["last_error"])
	require.NotNil(t, d["delivered_at"])
	require.Equal(t, []float64{200}, historyStatuses(d))

	r := env.Do("POST", "/webhooks/"+hookID+"/deliveries/"+d["id"].(string)+"/retry", nil, alice.token)
	require.Equal(t, http.StatusAccepted, r.Status, string(r.Raw))
	require.Equal(t, "pending", r.Str("status"))
	waitFor(t, "the re-sent delivery", func() bool { return len(rc.requests()) == 2 })
	again := rc.requests()[1]
	require.Equal(t, req.header.Get("webhook-id"), again.header.Get("webhook-id"))
	require.Equal(t, req.body, again.body)
	d = waitDelivery(t, env, alice.token, hookID, "succeeded")
	require.EqualValues(t, 2, d["attempts"])

	r = env.Do("POST", "/webhooks/"+hookID+"/deliveries/"+gatehouse.NewID()+"/retry", nil, alice.token)
	require.Equal(t, http.StatusNotFound, r.Status)
}

// TestProperty84_RetryOnFailure: whatever failures come first (5xx, 4xx,
// a dropped connection), the delivery is retried with the same
// webhook-id until it succeeds, and every attempt is recorded.
func TestProperty84_RetryOnFailure(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, true)
			var mu sync.Mutex
			failFirst := map[string][]int{} // path -> answers before success; 0 drops the connection
			seen := map[string]int{}
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen[r.URL.Path]++
				n, fails := seen[r.URL.Path], failFirst[r.URL.Path]
				mu.Unlock()
				switch {
				case n > len(fails):
					w.WriteHeader(http.StatusNoContent)
				case fails[n-1] == 0:
					conn, _, _ := w.(http.Hijacker).Hijack()
					_ = conn.Close()
				default:
					w.WriteHeader(fails[n-1])
				}
			})
			alice := signUp(env, "alice@example.com")
			apptest.CheckN(t, 6, func(rt *rapid.T) {
				fails := rapid.SliceOfN(rapid.SampledFrom([]int{0, 404, 429, 500, 503}), 0, 3).Draw(rt, "failures")
				path := "/hook/" + gatehouse.NewID()
				mu.Lock()
				failFirst[path] = fails
				mu.Unlock()
				hookID, secret := createHook(t, env, alice.token, rc.URL+path, "user.password_changed")
				alice.changePassword(t, env)

				d := waitDelivery(t, env, alice.token, hookID, "succeeded")
				require.EqualValues(rt, len(fails)+1, d["attempts"])
				statuses := make([]float64, 0, len(fails)+1)
				for _, f := range fails {
					statuses = append(statuses, float64(f))
				}
				require.Equal(rt, append(statuses, 204), historyStatuses(d))
				reqs := rc.at(path)
				require.Len(rt, reqs, len(fails)+1)
				for _, r := range reqs {
					require.Equal(rt, d["event_id"], requireSigned(rt, r, secret, alice.id).ID)
				}
				hook := env.Do("GET", "/webhooks/"+hookID, nil, alice.token)
				require.Nil(rt, hook.JSON["failing_since"], "a success ends the failing run")
				require.Equal(rt, http.StatusNoContent, env.Do("DELETE", "/webhooks/"+hookID, nil, alice.token).Status)
			})
		})
	}
}

// TestGoneAndRedirects: 410 disables the webhook at once; a redirect is
// not followed and counts as a failure until the attempts run out.
func TestGoneAndRedirects(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, true)
			gone := newReceiver(t, status(http.StatusGone))
			redirect := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					w.WriteHeader(http.StatusOK)
					return
				}
				http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			})
			sentinel := newReceiver(t, status(http.StatusOK))
			alice := signUp(env, "alice@example.com")
			goneID, _ := createHook(t, env, alice.token, gone.URL, "user.password_changed")
			redirectID, _ := createHook(t, env, alice.token, redirect.URL+"/start", "user.password_changed")
			sentinelID, _ := createHook(t, env, alice.token, sentinel.URL, "user.password_changed")

			alice.changePassword(t, env)
			d := waitDelivery(t, env, alice.token, goneID, "failed")
			require.EqualValues(t, 1, d["attempts"])
			require.EqualValues(t, 410, d["response_status"])
			hook := env.Do("GET", "/webhooks/"+goneID, nil, alice.token)
			require.Equal(t, false, hook.JSON["active"])

			d = waitDelivery(t, env, alice.token, redirectID, "failed")
			require.EqualValues(t, webhook.DefaultMaxAttempts, d["attempts"])
			for _, s := range historyStatuses(d) {
				require.EqualValues(t, 307, s)
			}
			for _, r := range redirect.requests() {
				require.Equal(t, "/start", r.path, "the redirect was not followed")
			}

			// The disabled webhook gets nothing more: once the sentinel has
			// the next event, its fan-out (one transaction) is done.
			alice.changePassword(t, env)
			waitFor(t, "the sentinel's second delivery", func() bool { return len(sentinel.requests()) == 2 })
			require.Len(t, gone.requests(), 1)
			require.Len(t, deliveries(t, env, alice.token, goneID), 1)

			// Retrying on a disabled webhook is a conflict until it is back on.
			r := env.Do("POST", "/webhooks/"+sentinelID+"/deliveries/"+d["id"].(string)+"/retry", nil, alice.token)
			require.Equal(t, http.StatusNotFound, r.Status, "a delivery of another webhook")
			goneDelivery := deliveries(t, env, alice.token, goneID)[0]["id"].(string)
			r = env.Do("POST", "/webhooks/"+goneID+"/deliveries/"+goneDelivery+"/retry", nil, alice.token)
			require.Equal(t, http.StatusConflict, r.Status, string(r.Raw))
		})
	}
}

// TestProperty87_DeletionStopsEvents: of any set of webhooks, the ones
// deleted get nothing of later events and the others get each of them.
func TestProperty87_DeletionStopsEvents(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, true)
			rc := newReceiver(t, status(http.StatusOK))
			alice := signUp(env, "alice@example.com")
			caused := sentinel(t, env, alice, rc)
			apptest.CheckN(t, 6, func(rt *rapid.T) {
				deleted := rapid.SliceOfN(rapid.Bool(), 1, 3).Draw(rt, "deleted")
				paths, ids := make([]string, len(deleted)), make([]string, len(deleted))
				for i, del := range deleted {
					paths[i] = "/hook/" + gatehouse.NewID()
					ids[i], _ = createHook(t, env, alice.token, rc.URL+paths[i], "user.password_changed")
					if del {
						require.Equal(rt, http.StatusNoContent, env.Do("DELETE", "/webhooks/"+ids[i], nil, alice.token).Status)
						require.Equal(rt, http.StatusNotFound, env.Do("GET", "/webhooks/"+ids[i], nil, alice.token).Status)
						require.Equal(rt, http.StatusNotFound, env.Do("DELETE", "/webhooks/"+ids[i], nil, alice.token).Status)
					}
				}
				alice.changePassword(t, env)
				caused++
				waitFor(t, "the sentinel's delivery", func() bool { return len(rc.at("/sentinel")) == caused })
				for i, del := range deleted {
					if del {
						require.Empty(rt, rc.at(paths[i]))
						continue
					}
					waitFor(t, "a kept webhook's delivery", func() bool { return len(rc.at(paths[i])) == 1 })
					require.Equal(rt, http.StatusNoContent, env.Do("DELETE", "/webhooks/"+ids[i], nil, alice.token).Status)
				}
			})
		})
	}
}

// TestDisabledAfterDaysOfFailure: a webhook that has failed without a
// success for more than five days is disabled and its owner emailed.
func TestDisabledAfterDaysOfFailure(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, true)
			second, release := make(chan struct{}), make(chan struct{})
			rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 2 {
					close(second)
					<-release
				}
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			alice := signUp(env, "alice@example.com")
			hookID, _ := createHook(t, env, alice.token, rc.URL, "user.password_changed")
			alice.changePassword(t, env)

			<-second // the first failure is recorded; the second attempt waits
			env.Clock.Advance(webhook.DefaultDisableAfter + time.Minute)
			close(release)
			alice.token = env.Login(alice.email, alice.passwords[0]).Access // the old token expired meanwhile

			d := waitDelivery(t, env, alice.token, hookID, "failed")
			require.EqualValues(t, 2, d["attempts"])
			hook := env.Do("GET", "/webhooks/"+hookID, nil, alice.token)
			require.Equal(t, false, hook.JSON["active"])
			require.NotNil(t, hook.JSON["failing_since"])
			for {
				m := env.Mail.WaitFor(t, alice.email, 30*time.Second)
				if strings.Contains(m.Subject, "webhook was disabled") {
					require.Contains(t, m.Text, rc.URL)
					break
				}
			}

			// Turning it back on forgets the failures.
			r := env.Do("PUT", "/webhooks/"+hookID, map[string]any{"active": true}, alice.token)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.Equal(t, true, r.JSON["active"])
			require.Nil(t, r.JSON["failing_since"])
		})
	}
}

// TestAPIRules: validation, ownership and the all-users permission, with
// private addresses not allowed.
func TestAPIRules(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, false)
			alice, bob := signUp(env, "alice@example.com"), signUp(env, "bob@example.com")

			for _, u := range []string{"http://127.0.0.1/hook", "http://[::ffff:127.0.0.1]/hook", "http://100.64.0.1/", "http://localhost:8080/", "ftp://example.com/", "https://u:p@example.com/",
				"http://127.1/", "http://0x7f000001/", "http://2130706433/", "http://0177.0.0.1/", "http://0/", "http://127.0.0.1./", "http://1.2.3.4.5/"} {
				r := env.Do("POST", "/webhooks", map[string]any{"url": u, "events": []string{"user.login"}}, alice.token)
				require.Equal(t, http.StatusUnprocessableEntity, r.Status, u)
				require.Equal(t, "validation_failed", r.Code())
				require.Equal(t, "body.url", r.JSON["errors"].([]any)[0].(map[string]any)["location"], u)
			}
			r := env.Do("POST", "/webhooks", map[string]any{"url": "https://example.com/", "events": []string{"user.login", "nope"}}, alice.token)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status)
			require.Equal(t, "body.events[1]", r.JSON["errors"].([]any)[0].(map[string]any)["location"])
			r = env.Do("POST", "/webhooks", map[string]any{"url": "https://example.com/", "events": []string{}}, alice.token)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status)
			r = env.Do("POST", "/webhooks", map[string]any{"url": "https://example.com/", "events": []string{"*"}, "description": "a\u0000b"}, alice.token)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
			r = env.Do("POST", "/webhooks", map[string]any{"url": "https://example.com/", "events": []string{"*"}, "all_users": true}, alice.token)
			require.Equal(t, http.StatusForbidden, r.Status)
			require.Equal(t, "permission_denied", r.Code())
			require.Equal(t, http.StatusUnauthorized, env.Do("GET", "/webhooks", nil, "").Status)

			id, _ := createHook(t, env, alice.token, "https://example.com/hook", "user.login", "user.login", "*")
			got := env.Do("GET", "/webhooks/"+id, nil, alice.token)
			require.Equal(t, http.StatusOK, got.Status)
			require.Equal(t, []any{"user.login", "*"}, got.JSON["events"], "repeats dropped")
			require.NotContains(t, string(got.Raw), "secret")

			for _, u := range []string{"http://10.1.2.3/", "http://10.1/", "http://0xa9fea9fe/latest/meta-data"} {
				r = env.Do("PUT", "/webhooks/"+id, map[string]any{"url": u}, alice.token)
				require.Equal(t, http.StatusUnprocessableEntity, r.Status, u)
				require.Equal(t, "body.url", r.JSON["errors"].([]any)[0].(map[string]any)["location"], u)
			}
			r = env.Do("PUT", "/webhooks/"+id, map[string]any{"description": "new", "events": []string{"device.new"}}, alice.token)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.Equal(t, "new", r.JSON["description"])
			require.Equal(t, "https://example.com/hook", r.JSON["url"])

			// Bob sees none of it.
			for _, req := range []struct{ method, path string }{
				{"GET", "/webhooks/" + id}, {"PUT", "/webhooks/" + id}, {"DELETE", "/webhooks/" + id},
				{"GET", "/webhooks/" + id + "/deliveries"}, {"POST", "/webhooks/" + id + "/deliveries/" + gatehouse.NewID() + "/retry"},
				{"GET", "/webhooks/not-an-id"},
			} {
				var body any
				if req.method == "PUT" {
					body = map[string]any{"active": false}
				}
				r := env.Do(req.method, req.path, body, bob.token)
				require.Equal(t, http.StatusNotFound, r.Status, req)
				require.Equal(t, "not_found", r.Code())
			}
			r = env.Do("GET", "/webhooks", nil, bob.token)
			require.Empty(t, r.JSON["items"])
			require.Equal(t, http.StatusOK, env.Do("GET", "/webhooks/"+id, nil, alice.token).Status)

			types := env.Do("GET", "/webhooks/event-types", nil, bob.token)
			require.Equal(t, http.StatusOK, types.Status)
			require.Contains(t, types.JSON["items"], "user.login")
		})
	}
}

// TestAllUsers: a holder of webhooks:all receives other users' events.
func TestAllUsers(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, true)
			_, err := env.App.Accounts.CreateUser(t.Context(), "admin@example.com", apptest.StrongPassword, []string{gatehouse.RoleAdmin}, true)
			require.NoError(t, err)
			admin := env.Login("admin@example.com", apptest.StrongPassword).Access
			rc := newReceiver(t, status(http.StatusOK))
			r := env.Do("POST", "/webhooks", map[string]any{"url": rc.URL, "events": []string{"user.password_changed"}, "all_users": true}, admin)
			require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
			require.Equal(t, true, r.JSON["all_users"])

			bob := signUp(env, "bob@example.com")
			bob.changePassword(t, env)
			waitFor(t, "bob's event at the admin's webhook", func() bool { return len(rc.requests()) == 1 })
			var body struct {
				Data map[string]any `json:"data"`
			}
			require.NoError(t, json.Unmarshal(rc.requests()[0].body, &body))
			require.Equal(t, bob.id, body.Data["user_id"])
		})
	}
}

// TestProperty82_CreationGeneratesSecret: every webhook gets its own
// whsec_ secret of 32 random bytes, shown only in the create answer.
func TestProperty82_CreationGeneratesSecret(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, false)
			alice := signUp(env, "alice@example.com")
			seen := map[string]bool{}
			all := append([]string{"*"}, func() (s []string) {
				for _, e := range gatehouse.EventTypes {
					s = append(s, string(e))
				}
				return s
			}()...)
			env.Check(t, func(rt *rapid.T) {
				events := rapid.SliceOfNDistinct(rapid.SampledFrom(all), 1, 5, rapid.ID[string]).Draw(rt, "events")
				r := env.Do("POST", "/webhooks", map[string]any{"url": "https://example.com/h", "events": events}, alice.token)
				require.Equal(rt, http.StatusCreated, r.Status, string(r.Raw))
				secret := r.Str("secret")
				require.True(rt, strings.HasPrefix(secret, "whsec_"))
				key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
				require.NoError(rt, err)
				require.Len(rt, key, 32)
				require.False(rt, seen[secret], "secrets are unique")
				seen[secret] = true
				got := env.Do("GET", "/webhooks/"+r.Str("id"), nil, alice.token)
				require.NotContains(rt, string(got.Raw), secret)
				require.NotContains(rt, got.JSON, "secret")
				// Stay under webhook.MaxWebhooksPerUser.
				require.Equal(rt, http.StatusNoContent, env.Do("DELETE", "/webhooks/"+r.Str("id"), nil, alice.token).Status)
			})
		})
	}
}

// TestProperty86_ListOwnership: whoever creates webhooks, each user's list
// holds exactly their own.
func TestProperty86_ListOwnership(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, eng, false)
			users := []*user{signUp(env, "alice@example.com"), signUp(env, "bob@example.com")}
			owned := map[string][]string{}
			list := func(u *user) []string {
				var ids []string
				cursor := ""
				for {
					r := env.Do("GET", "/webhooks?limit=200&cursor="+cursor, nil, u.token)
					require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
					for _, it := range r.JSON["items"].([]any) {
						ids = append(ids, it.(map[string]any)["id"].(string))
					}
					next, _ := r.JSON["next_cursor"].(string)
					if next == "" {
						return ids
					}
					cursor = next
				}
			}
			env.Check(t, func(rt *rapid.T) {
				u := rapid.SampledFrom(users).Draw(rt, "owner")
				full := len(owned[u.id]) >= webhook.MaxWebhooksPerUser
				if (rapid.Bool().Draw(rt, "delete") || full) && len(owned[u.id]) > 0 {
					i := rapid.IntRange(0, len(owned[u.id])-1).Draw(rt, "which")
					r := env.Do("DELETE", "/webhooks/"+owned[u.id][i], nil, u.token)
					require.Equal(rt, http.StatusNoContent, r.Status)
					owned[u.id] = slices.Delete(owned[u.id], i, i+1)
				} else {
					id, _ := createHook(t, env, u.token, "https://example.com/h", "user.login")
					owned[u.id] = append(owned[u.id], id)
				}
				for _, v := range users {
					require.ElementsMatch(rt, owned[v.id], list(v))
				}
			})
		})
	}
}
