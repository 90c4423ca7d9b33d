package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// An admin finds a user, locks and unlocks them, changes their roles,
// signs out one of their sessions, manages roles, filters the audit log
// and sees the signing keys; each with the API's permission, so a
// moderator may lock but not assign roles.
func TestAdminConsole(t *testing.T) {
	env, email := newEnv(t, nil)
	ctx := context.Background()
	_, err := env.App.Accounts.CreateUser(ctx, "boss@example.com", apptest.StrongPassword, []string{"admin"}, true)
	require.NoError(t, err)
	_, err = env.App.Accounts.CreateUser(ctx, "mod@example.com", apptest.StrongPassword, []string{"moderator"}, true)
	require.NoError(t, err)
	b := newBrowser(t, env)
	b.login("boss@example.com", apptest.StrongPassword)
	require.Contains(t, b.last, `href="/admin"`)
	resp := b.get("/admin")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, b.url, "/admin/users")
	b.get("/admin/users?q=" + url.QueryEscape(strings.Split(email, "@")[0]))
	require.Contains(t, b.last, email)
	require.NotContains(t, b.last, "mod@example.com")
	_, rest, ok := strings.Cut(b.last, `href="/admin/users/`)
	require.True(t, ok)
	id, _, _ := strings.Cut(rest, `"`)

	resp = b.get("/admin/users/" + id)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, b.last, "Live sessions")
	resp = b.post("/admin/users/"+id+"/lock", url.Values{"reason": {"testing"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, b.last)
	require.Contains(t, b.last, "The account is locked.")
	require.Contains(t, b.last, `id="user-state">locked`)
	other := newBrowser(t, env)
	other.get("/login")
	resp = other.post("/login", url.Values{"email": {email}, "password": {apptest.StrongPassword}})
	require.Equal(t, http.StatusLocked, resp.StatusCode)
	require.Contains(t, other.last, "This account is locked")
	b.post("/admin/users/"+id+"/unlock", nil)
	require.Contains(t, b.last, `id="user-state">active`)

	b.post("/admin/users/"+id+"/roles", url.Values{"roles": {"user", "moderator"}})
	require.Contains(t, b.last, `id="user-roles">moderator, user`)
	env.Login(email, apptest.StrongPassword) // the lock ended the earlier session
	b.get("/admin/users/" + id)
	_, rest, ok = strings.Cut(b.last, "/sessions/")
	require.True(t, ok, "the user's session is listed")
	sid, _, _ := strings.Cut(rest, "/")
	b.post("/admin/users/"+id+"/sessions/"+sid+"/revoke", nil)
	require.NotContains(t, b.last, sid)

	b.get("/admin/roles")
	b.post("/admin/roles", url.Values{"name": {"auditor"}, "description": {"reads the log"}, "permissions": {"audit:read"}})
	require.Contains(t, b.last, "auditor")
	resp = b.post("/admin/roles", url.Values{"name": {"auditor"}, "permissions": {"audit:read"}})
	require.Equal(t, http.StatusConflict, resp.StatusCode, "a name taken twice is said in words")

	b.get("/admin/audit?action=user.locked&user_id=" + id)
	require.Contains(t, b.last, "user.locked")
	require.NotContains(t, b.last, "user.login<")
	resp = b.get("/admin/audit?min_risk=500")
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, b.last, "from 0 to 100")
	resp = b.get("/admin/keys")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, b.last, "active")

	// A moderator may lock, not assign roles nor read roles.
	m := newBrowser(t, env)
	m.login("mod@example.com", apptest.StrongPassword)
	m.get("/admin/users/" + id)
	require.NotContains(t, m.last, "Save roles")
	resp = m.post("/admin/users/"+id+"/roles", url.Values{"roles": {"admin"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, m.last, "roles:assign")
	resp = m.get("/admin/roles")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp = m.post("/admin/users/"+id+"/lock", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
