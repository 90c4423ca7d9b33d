package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// The console's webhooks: an admin's own webhooks with their recent
// deliveries, turned off and on; a moderator (no webhooks:all) is refused.
// And the audit chain's status: intact, then broken where a row was
// changed behind the application's back.
func TestAdminWebhooksAndAuditChain(t *testing.T) {
	env, email := newEnv(t, map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true"})
	ctx := context.Background()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(receiver.Close)
	_, err := env.App.Accounts.CreateUser(ctx, "hooks-boss@example.com", apptest.StrongPassword, []string{"admin"}, true)
	require.NoError(t, err)
	_, err = env.App.Accounts.CreateUser(ctx, "hooks-mod@example.com", apptest.StrongPassword, []string{"moderator"}, true)
	require.NoError(t, err)
	boss := env.Login("hooks-boss@example.com", apptest.StrongPassword)
	r := env.Do("POST", "/webhooks", map[string]any{"url": receiver.URL + "/hook", "events": []string{"user.login"},
		"all_users": true, "description": "audit feed"}, boss.Access)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	hookID := r.Str("id")
	env.Login(email, apptest.StrongPassword) // an event for the webhook

	b := newBrowser(t, env)
	b.login("hooks-boss@example.com", apptest.StrongPassword)
	b.get("/admin/webhooks")
	require.Contains(t, b.last, `href="/admin/webhooks"`, "in the menu")
	require.Contains(t, b.last, receiver.URL+"/hook")
	require.Contains(t, b.last, "every user")
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := b.get("/admin/webhooks/" + hookID)
		require.Equal(t, http.StatusOK, resp.StatusCode, b.last)
		if strings.Contains(b.last, "HTTP 503") {
			break
		}
		require.True(t, time.Now().Before(deadline), "no failed delivery listed:\n%s", b.last)
		time.Sleep(100 * time.Millisecond)
	}
	require.Contains(t, b.last, `class="delivery"><td>user.login`)
	b.post("/admin/webhooks/"+hookID+"/active", url.Values{"active": {"false"}})
	require.Contains(t, b.last, "The webhook is updated.")
	require.Contains(t, b.last, `id="webhook-state">off`)
	require.NotContains(t, b.last, "Send again", "no resending to a webhook that is off")

	m := newBrowser(t, env)
	m.login("hooks-mod@example.com", apptest.StrongPassword)
	resp := m.get("/admin/webhooks/" + hookID)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, m.last, "webhooks:all")
	resp = m.post("/admin/webhooks/"+hookID+"/delete", nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	b.post("/admin/webhooks/"+hookID+"/delete", nil)
	require.Contains(t, b.last, "The webhook is deleted.")
	require.Contains(t, b.last, "No webhooks.")

	// The chain: intact once the rows are linked, then broken.
	db := env.App.DB.DB()
	var linked int
	for deadline := time.Now().Add(20 * time.Second); linked < 3; time.Sleep(50 * time.Millisecond) {
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM audit_logs WHERE seq > 0`).Scan(&linked))
		require.True(t, time.Now().Before(deadline), "audit rows not linked")
	}
	resp = b.get("/admin/audit/chain")
	require.Equal(t, http.StatusOK, resp.StatusCode, b.last)
	require.Contains(t, b.last, "<strong>Intact</strong>")
	m.get("/admin/audit/chain")
	require.Contains(t, m.last, "<strong>Intact</strong>", "audit:read is enough")
	_, err = db.ExecContext(ctx, `DROP TRIGGER audit_logs_no_update`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `UPDATE audit_logs SET action = 'user.logout' WHERE seq = 2`)
	require.NoError(t, err)
	b.get("/admin/audit/chain")
	require.Contains(t, b.last, "<strong>Broken</strong> at row 2")

	plain := newBrowser(t, env)
	plain.login(email, apptest.StrongPassword)
	resp = plain.get("/admin/audit/chain")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}
