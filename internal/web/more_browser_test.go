package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// A sign-in by an emailed link, on the browser that asked for it.
func TestBrowserMagicLink(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newTab(t, env.Server.URL)
	b.open("/login?return_to=%2Faccount%23sessions-h")
	b.fill(map[string]string{"ml-email": email})
	b.press(`#send-link`)
	require.Contains(t, b.text(), "Check your email")
	var tok string
	for tok == "" { // the first email is the verification
		tok = apptest.TokenFromLink(env.Mail.WaitFor(t, email, 10*time.Second).Text, "http://gatehouse.test/magic-link")
	}
	b.open("/magic-link?token=" + tok)
	b.press(`#continue`)
	require.Equal(t, email, b.value(`#my-email`))
	require.Contains(t, b.location(), "/account")

	b.open("/magic-link?token=" + tok)
	b.press(`#continue`)
	require.Contains(t, b.text(), "invalid, expired or already used")
}

// Two browsers of one person: signing the other one out from the account
// page signs it out at its next request. Then an administrator goes
// through the console (users, a user, roles, the audit log and its chain,
// webhooks, keys) and locks the person, whose browser can no longer sign
// in.
func TestBrowserSessionsAndAdminLock(t *testing.T) {
	env, email := newEnv(t, nil)
	_, err := env.App.Accounts.CreateUser(context.Background(), "console-boss@example.com", apptest.StrongPassword, []string{"admin"}, true)
	require.NoError(t, err)
	a := newTab(t, env.Server.URL)
	a.login(email, apptest.StrongPassword)
	other := newTab(t, env.Server.URL)
	other.login(email, apptest.StrongPassword)
	require.Equal(t, email, other.value(`#my-email`))

	a.open("/account")
	a.press(`button.revoke`) // the only other session
	require.Contains(t, a.text(), "The session is signed out.")
	require.Zero(t, a.count(`button.revoke`), "no other session is left")
	other.open("/account")
	require.Contains(t, other.location(), "/login?return_to=%2Faccount", "the other browser is signed out")

	boss := newTab(t, env.Server.URL)
	boss.login("console-boss@example.com", apptest.StrongPassword)
	boss.open("/admin")
	require.Contains(t, boss.location(), "/admin/users")
	boss.fill(map[string]string{"q": strings.Split(email, "@")[0]})
	boss.press(`form[role=search] button`)
	boss.press(`tbody a`)
	require.Contains(t, boss.text(), "Live sessions")
	boss.fill(map[string]string{"reason": "suspicious activity"})
	boss.press(`#lock`)
	require.Contains(t, boss.text(), "The account is locked.")
	require.Equal(t, "locked", boss.value(`#user-state`))
	for _, path := range []string{"/admin/roles", "/admin/audit?action=user.locked", "/admin/audit/chain", "/admin/webhooks", "/admin/keys"} {
		boss.open(path)
	}
	require.Contains(t, boss.text(), "active", "the keys page lists the active key")

	a.open("/account")
	require.Contains(t, a.location(), "/login", "a lock ends the person's sessions")
	a.fill(map[string]string{"email": email, "password": apptest.StrongPassword})
	a.press(`#signin`)
	require.Contains(t, a.text(), "This account is locked")
}

// count is how many elements match sel.
func (b *tab) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
	require.NoError(b.t, err)
	return n
}
