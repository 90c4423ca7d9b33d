package device_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest/risktest"
)

// forEachEngine runs fn on a fresh server per engine, in parallel.
func forEachEngine(t *testing.T, fn func(t *testing.T, env *apptest.Env)) {
	risktest.ForEachEngine(t, func(*testing.T) map[string]string {
		return map[string]string{"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1"}
	}, fn)
}

var newUser = risktest.NewUser

// client is how a sign-in presents itself. Its requests come from the
// test browser named Browser (else its User-Agent), which presents and
// keeps the device cookie the server sets, as browsers do; NoCookie is a
// client without a cookie jar that is no browser (a script), whose device
// the server names by its User-Agent.
type client struct {
	UA, DeviceID, IP string
	Browser          string
	NoCookie         bool
}

// browsers are the test browsers, per server.
var browsers risktest.Browsers

// browser is the test browser c's requests come from.
func (c client) browser(env *apptest.Env) *risktest.Browser {
	name := c.Browser
	if name == "" {
		name = c.UA
	}
	return browsers.Get(env, name)
}

// cookie is the device cookie c presents.
func (c client) cookie(env *apptest.Env) string {
	if c.NoCookie {
		return ""
	}
	return c.browser(env).Cookie
}

// do sends a request as c.
func do(env *apptest.Env, c client, method, path string, body any, bearer string) *apptest.Response {
	b := &risktest.Browser{Script: true}
	if !c.NoCookie {
		b = c.browser(env)
	}
	b.UA, b.IP = c.UA, c.IP
	return b.Do(env, method, path, body, bearer)
}

// login signs in as c and requires tokens.
func login(t require.TestingT, env *apptest.Env, email string, c client) apptest.Tokens {
	body := map[string]any{"email": email, "password": apptest.StrongPassword}
	if c.DeviceID != "" {
		body["device_id"] = c.DeviceID
	}
	r := do(env, c, "POST", "/auth/login", body, "")
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	require.NotEmpty(t, r.Str("access_token"), string(r.Raw))
	return apptest.Tokens{Access: r.Str("access_token"), Refresh: r.Str("refresh_token"), SessionID: r.Str("session_id")}
}

// items is a list answer's items.
func items(t require.TestingT, r *apptest.Response) []map[string]any {
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	var out []map[string]any
	for _, it := range r.JSON["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

func devicesOf(t require.TestingT, env *apptest.Env, access string) []map[string]any {
	return items(t, env.Do("GET", "/devices", nil, access))
}

// sessionTrust is the trust score GET /sessions shows for the session.
func sessionTrust(t require.TestingT, env *apptest.Env, access, sessionID string) int {
	for _, s := range items(t, env.Do("GET", "/sessions", nil, access)) {
		if s["id"] == sessionID {
			return int(s["trust_score"].(float64))
		}
	}
	require.Fail(t, "session not listed", sessionID)
	return 0
}

// auditCount counts the user's audit rows of an action.
func auditCount(t require.TestingT, env *apptest.Env, userID, action string) int {
	return len(risktest.Audits(t, env, userID, action))
}
