package session_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/session"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// leeway is the token verifier's default clock-skew allowance.
const leeway = 30 * time.Second

var emailSeq atomic.Int64

// uniqueEmail returns an address no other test or iteration uses, so one
// Env can serve every iteration of a property. The local part is spelled
// with letters that StrongPassword lacks (and no digits, which the policy
// reads as leet), so the policy never finds the email in the password.
func uniqueEmail(prefix string) string {
	const alphabet = "bgjkmwxy"
	n := emailSeq.Add(1)
	var b []byte
	for ; n > 0; n /= int64(len(alphabet)) {
		b = append(b, alphabet[n%int64(len(alphabet))])
	}
	return "pk" + prefix + "-" + string(b) + "@example.com"
}

// register makes a fresh account and returns its id and email.
func register(e *apptest.Env, prefix string) (id, email string) {
	email = uniqueEmail(prefix)
	return e.Register(email, apptest.StrongPassword), email
}

// signUp registers a fresh account and signs it in n times, returning the
// user's id and the tokens of each session, in order.
func signUp(e *apptest.Env, prefix string, n int) (string, []apptest.Tokens) {
	email := uniqueEmail(prefix)
	id := e.Register(email, apptest.StrongPassword)
	out := make([]apptest.Tokens, n)
	for i := range out {
		out[i] = e.Login(email, apptest.StrongPassword)
	}
	return id, out
}

func refresh(e *apptest.Env, rt string) *apptest.Response {
	return e.Do("POST", "/auth/refresh", map[string]any{"refresh_token": rt}, "")
}

func me(e *apptest.Env, access string) *apptest.Response {
	return e.Do("GET", "/auth/me", nil, access)
}

// requireTokenResponse checks the TokenResponse shape and returns the
// session's new credentials.
func requireTokenResponse(t require.TestingT, r *apptest.Response, ttl time.Duration) apptest.Tokens {
	require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Raw)
	require.Equal(t, "Bearer", r.Str("token_type"))
	require.EqualValues(t, ttl/time.Second, r.JSON["expires_in"])
	tk := apptest.Tokens{Access: r.Str("access_token"), Refresh: r.Str("refresh_token"), SessionID: r.Str("session_id")}
	require.NotEmpty(t, tk.Access)
	require.NotEmpty(t, tk.Refresh)
	require.NotEmpty(t, tk.SessionID)
	user, ok := r.JSON["user"].(map[string]any)
	require.True(t, ok, "user object in %s", r.Raw)
	require.NotEmpty(t, user["id"])
	return tk
}

// decodeJWT returns a compact JWS's header and payload, unverified.
func decodeJWT(t require.TestingT, raw string) (header, payload map[string]any) {
	parts := strings.Split(raw, ".")
	require.Len(t, parts, 3)
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, dst))
	}
	return header, payload
}

// revocationReasons returns the reason of every session.revoked event of
// the session, read straight from the audit trail.
func revocationReasons(t require.TestingT, e *apptest.Env, userID, sessionID string) []string {
	q := `SELECT metadata FROM audit_logs WHERE action = ? AND user_id = ?`
	if e.App.DB.Dialect() == store.Postgres {
		q = `SELECT metadata FROM audit_logs WHERE action = $1 AND user_id = $2`
	}
	rows, err := e.App.DB.DB().QueryContext(context.Background(), q, string(gatehouse.EventSessionRevoked), userID)
	require.NoError(t, err)
	defer rows.Close()
	var reasons []string
	for rows.Next() {
		var raw []byte
		require.NoError(t, rows.Scan(&raw))
		var data map[string]any
		require.NoError(t, json.Unmarshal(raw, &data))
		if data["session_id"] == sessionID {
			reason, _ := data["reason"].(string)
			reasons = append(reasons, reason)
		}
	}
	require.NoError(t, rows.Err())
	return reasons
}

// requireRevoked asserts the database holds the session as revoked.
func requireRevoked(t require.TestingT, e *apptest.Env, sessionID string) {
	sess, err := e.App.DB.GetSession(context.Background(), sessionID)
	require.NoError(t, err)
	require.NotNil(t, sess.RevokedAt, "session %s should be revoked", sessionID)
}

// listSessions returns GET /sessions' items by id.
func listSessions(t require.TestingT, e *apptest.Env, access string) map[string]map[string]any {
	r := e.Do("GET", "/sessions", nil, access)
	require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Raw)
	items, ok := r.JSON["items"].([]any)
	require.True(t, ok, "items in %s", r.Raw)
	out := make(map[string]map[string]any, len(items))
	for _, it := range items {
		m := it.(map[string]any)
		id, _ := m["id"].(string)
		require.NotContains(t, out, id, "duplicate session in list")
		out[id] = m
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newService builds a session.Service on the Env's database, key ring and
// clock, with the given cache: a second instance of the server's sessions,
// for what the HTTP API cannot reach.
func newService(e *apptest.Env, c cache.Cache) (*session.Service, *token.Service) {
	cfg := e.App.Config
	tokens := token.New(e.App.Ring, token.Options{Issuer: cfg.PublicURL, Audience: cfg.TokenAudience, TTL: cfg.AccessTokenTTL, Now: e.Clock.Now})
	svc := session.New(e.App.DB, c, tokens, e.App.Bus, session.Options{
		Lifetime: cfg.RefreshTokenTTL, IdleTimeout: cfg.SessionIdleTimeout, Now: e.Clock.Now, Logger: discardLogger(),
	})
	return svc, tokens
}

// rawClient sends requests without the test's Fatal, for goroutines.
type rawClient struct {
	e *apptest.Env
	c *http.Client
}

func newRawClient(e *apptest.Env) rawClient {
	tr := e.Server.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return rawClient{e: e, c: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do returns the status and problem code (or the decoded body's
// refresh_token for a 200).
func (rc rawClient) do(method, path string, body any, bearer string) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, rc.e.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := rc.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &m); err != nil {
			return 0, nil, err
		}
	}
	return resp.StatusCode, m, nil
}

// quietJobs stops the Env's job workers. No session behaviour tested here
// depends on a job being worked (jobs are still inserted in the same
// transactions as before), while the workers' 20 ms polling of six queues
// costs much of two cores under -race: on SQLite it also queues every
// request behind the polls on the single connection (about 0.5 s per
// request instead of 10 ms). TestConcurrentRefreshExactlyOneWins keeps
// them running on PostgreSQL.
func quietJobs(t testing.TB, e *apptest.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.App.Worker.Stop(ctx))
}
