package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// The backup and master key rotation round trips make the same things on
// a running server and check, on the server that runs afterwards (on the
// restored database, or with only the new master key), that each still
// works: a session's refresh token refreshes and its access token is
// accepted (the signing key ring), a TOTP code computed from the secret
// shown at enrolment signs in (the sealed TOTP secret), and a webhook
// delivery verifies with the secret shown when it was made (the sealed
// webhook secret). An SMS enrolment leaves a queued SMS job with a sealed
// body.

const roundTripPassword = "Vortex-quill-58-Harbor-mango"

// roundTripEnv is the CLI environment over a fresh database of the engine,
// with the master key; roundTripServer starts the server on the same.
func roundTripEnv(t *testing.T, engine, secretKey string) map[string]string {
	env := engineEnv(t, engine)
	env["GATEHOUSE_SECRET_KEY"] = secretKey
	for k, v := range map[string]string{
		"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true", "GATEHOUSE_RATE_LIMIT_ENABLED": "false",
		"GATEHOUSE_ARGON2_MEMORY_KIB": "64", "GATEHOUSE_ARGON2_ITERATIONS": "1", "GATEHOUSE_ARGON2_PARALLELISM": "1",
	} {
		env[k] = v
	}
	return env
}

func roundTripServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	var extra []string
	for k, v := range env {
		if k != "GATEHOUSE_DATA_DIR" && k != "GATEHOUSE_LOG_LEVEL" {
			extra = append(extra, k+"="+v)
		}
	}
	return start(t, baseEnv(env["GATEHOUSE_DATA_DIR"], extra...))
}

// signedHooks receives webhook deliveries and keeps them.
type signedHooks struct {
	*httptest.Server
	mu  sync.Mutex
	got []delivery
}

type delivery struct {
	id, timestamp, signature string
	body                     []byte
}

func newSignedHooks(t *testing.T) *signedHooks {
	h := &signedHooks{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, delivery{r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body})
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *signedHooks) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func (h *signedHooks) since(n int) []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]delivery(nil), h.got[n:]...)
}

// fixture is what populate made and check proves still works.
type fixture struct {
	email      string
	access     string // an access token issued before
	refresh    string // the newest refresh token of that session
	totpSecret string
	lastStep   int64 // the TOTP step last used
	hookKey    []byte
	hooks      *signedHooks
}

// populate makes an account with a session, TOTP and a webhook, and a
// second account with a pending SMS factor (its code goes out as a job).
func populate(t *testing.T, s *server, hooks *signedHooks) *fixture {
	t.Helper()
	f := &fixture{email: "round@example.com", hooks: hooks}
	status, body := call(t, s, "POST", "/auth/register", "", map[string]any{"email": f.email, "password": roundTripPassword})
	require.Equal(t, http.StatusCreated, status, body)
	status, body = call(t, s, "POST", "/auth/login", "", map[string]any{"email": f.email, "password": roundTripPassword})
	require.Equal(t, http.StatusOK, status, body)
	f.access, f.refresh = body["access_token"].(string), body["refresh_token"].(string)

	status, body = call(t, s, "POST", "/webhooks", f.access, map[string]any{"url": hooks.URL + "/hook", "events": []string{"*"}})
	require.Equal(t, http.StatusCreated, status, body)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(body["secret"].(string), webhook.SecretPrefix))
	require.NoError(t, err)
	f.hookKey = key

	status, body = call(t, s, "POST", "/auth/mfa/setup", f.access, map[string]any{"method": "totp"})
	require.Equal(t, http.StatusOK, status, body)
	f.totpSecret = body["secret"].(string)
	status, body = call(t, s, "POST", "/auth/mfa/activate", f.access, map[string]any{"method": "totp", "code": f.totpCode(t)})
	require.Equal(t, http.StatusOK, status, body)

	status, body = call(t, s, "POST", "/auth/register", "", map[string]any{"email": "texts@example.com", "password": roundTripPassword})
	require.Equal(t, http.StatusCreated, status, body)
	status, body = call(t, s, "POST", "/auth/login", "", map[string]any{"email": "texts@example.com", "password": roundTripPassword})
	require.Equal(t, http.StatusOK, status, body)
	status, body = call(t, s, "POST", "/auth/mfa/setup", body["access_token"].(string), map[string]any{"method": "sms", "phone_number": "+14155552671"})
	require.Equal(t, http.StatusOK, status, body)

	eventually(t, "a signed webhook delivery", 30*time.Second, func() bool { return hooks.count() > 0 })
	f.requireSigned(t, hooks.since(0))
	return f
}

// totpCode is a code for the next unused step the server accepts (the
// current one or one either side), waiting when they are used up.
func (f *fixture) totpCode(t *testing.T) string {
	t.Helper()
	for {
		cur := time.Now().Unix() / 30
		step := max(f.lastStep+1, cur-1)
		if step <= cur+1 {
			f.lastStep = step
			code, err := hotp.GenerateCodeCustom(f.totpSecret, uint64(step), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			require.NoError(t, err)
			return code
		}
		time.Sleep(time.Second)
	}
}

// requireSigned checks every delivery's signature with the webhook secret
// shown when the webhook was made.
func (f *fixture) requireSigned(t *testing.T, ds []delivery) {
	t.Helper()
	for _, d := range ds {
		var ts int64
		_, err := fmt.Sscan(d.timestamp, &ts)
		require.NoError(t, err)
		require.Contains(t, strings.Fields(d.signature), webhook.Sign(f.hookKey, d.id, ts, d.body),
			"delivery %s verifies with the original secret", d.id)
	}
}

// check proves on s that everything populate made still works.
func (f *fixture) check(t *testing.T, s *server) {
	t.Helper()
	status, body := call(t, s, "GET", "/auth/me", f.access, nil)
	require.Equal(t, http.StatusOK, status, "an access token signed before is accepted: %v", body)

	status, body = call(t, s, "POST", "/auth/refresh", "", map[string]any{"refresh_token": f.refresh})
	require.Equal(t, http.StatusOK, status, "the refresh token refreshes: %v", body)
	f.refresh = body["refresh_token"].(string)

	seen := f.hooks.count()
	status, body = call(t, s, "POST", "/auth/login", "", map[string]any{"email": f.email, "password": roundTripPassword})
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, true, body["mfa_required"], body)
	status, body = call(t, s, "POST", "/auth/mfa/verify", "", map[string]any{"challenge_id": body["challenge_id"], "method": "totp", "code": f.totpCode(t)})
	require.Equal(t, http.StatusOK, status, "a TOTP code from the enrolled secret signs in: %v", body)
	require.NotEmpty(t, body["access_token"])

	eventually(t, "a webhook delivery of the new sign-in", 30*time.Second, func() bool {
		for _, d := range f.hooks.since(seen) {
			if strings.Contains(string(d.body), `"user.login"`) {
				return true
			}
		}
		return false
	})
	f.requireSigned(t, f.hooks.since(seen))
}
