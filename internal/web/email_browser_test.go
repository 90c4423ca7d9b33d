package web_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// An email change from the account page: the link goes to the new
// address, and opening it on the signed-in browser switches the account.
func TestBrowserEmailChange(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newTab(t, env.Server.URL)
	b.login(email, apptest.StrongPassword)
	next := "changed-" + email
	b.fill(map[string]string{"new_email": next})
	b.press(`#change-email`)
	require.Contains(t, b.text(), "We emailed a link to the new address")
	require.Equal(t, email, b.value(`#my-email`), "nothing changes before the link is opened")

	tok := apptest.TokenFromLink(env.Mail.WaitFor(t, next, 10*time.Second).Text, "http://gatehouse.test/confirm-email")
	require.NotEmpty(t, tok)
	b.open("/confirm-email?token=" + tok)
	b.press(`#confirm-email`)
	require.Contains(t, b.text(), "Your email address is changed.")
	require.Equal(t, next, b.value(`#my-email`))
	require.Contains(t, b.text(), "(verified)")

	b.open("/confirm-email?token=" + tok)
	b.press(`#confirm-email`)
	require.Contains(t, b.text(), "invalid, expired or already used")
}
