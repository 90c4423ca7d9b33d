package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// The smaller pages: home redirects, the sign-out question, a new
// verification link, role edits, assets.
func TestSmallPages(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newBrowser(t, env)
	b.get("/")
	require.Contains(t, b.url, "/login")
	b.get("/logout")
	require.Contains(t, b.last, "Sign out of Gatehouse on this browser?")
	resp := b.get("/assets/nope.css")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp = b.get("/assets/style.css")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/css")

	b.get("/verify-email?token=x")
	b.post("/verify-email/resend", url.Values{"email": {email}})
	require.Contains(t, b.last, "we emailed it a new link")
	b.get("/verify-email?token=x")
	resp = b.post("/verify-email", url.Values{"token": {"not-a-token"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, b.last, "invalid, expired or already used")

	b.get("/register")
	resp = b.post("/register", url.Values{"email": {email}, "password": {apptest.StrongPassword}, "password2": {apptest.StrongPassword}})
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Contains(t, b.last, "already exists")
	resp = b.post("/register", url.Values{"email": {"x@example.com"}, "password": {"a"}, "password2": {"b"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, b.last, "The two passwords differ.")

	_, err := env.App.Accounts.CreateUser(context.Background(), "boss2@example.com", apptest.StrongPassword, []string{"admin"}, true)
	require.NoError(t, err)
	b.login("boss2@example.com", apptest.StrongPassword)
	b.get("/")
	require.Contains(t, b.url, "/account")
	b.get("/admin/roles")
	b.post("/admin/roles", url.Values{"name": {"helpdesk"}, "permissions": {"users:read"}})
	before, _, ok := strings.Cut(b.last, `/delete"`) // only the new role can be deleted
	require.True(t, ok)
	id := before[strings.LastIndex(before, "/")+1:]
	b.post("/admin/roles/"+id, url.Values{"description": {"answers the phone"}, "permissions": {"users:read audit:read"}})
	require.Contains(t, b.last, "answers the phone")
	require.Contains(t, b.last, "users:read audit:read")
	b.post("/admin/roles/"+id+"/delete", nil)
	require.Contains(t, b.last, "The role is deleted.")
	require.NotContains(t, b.last, "helpdesk")
	b.get("/admin/audit?from=2020-01-01T00:00&to=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")))
	require.Contains(t, b.last, "user.login")
	resp = b.get("/admin/audit?from=yesterday")
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, b.last, "must be a date and time")
}
