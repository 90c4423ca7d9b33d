package web_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/browsertest"
)

// A passkey added on the account page (Chromium's virtual authenticator,
// with user verification) signs in from the login page's button: the
// pages' one script, under their CSP.
func TestBrowserPasskey(t *testing.T) {
	browsertest.ChromiumPath(t)
	// WebAuthn needs a domain: the server is reached as localhost on a
	// port chosen first, which the configuration names as the origin.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	origin := "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")
	env := apptest.New(t, "sqlite", map[string]string{"GATEHOUSE_WEBAUTHN_RP_ID": "localhost", "GATEHOUSE_WEBAUTHN_ORIGINS": origin})
	srv := &http.Server{Handler: env.App.HTTP.Handler()} //nolint:gosec // a test server
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	email := "passkey-person@example.com"
	env.Register(email, apptest.StrongPassword)

	b := newTab(t, origin)
	_, err = chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	})
	require.NoError(t, err)

	b.login(email, apptest.StrongPassword)
	b.do(chromedp.WaitVisible(chromedp.CSS(`#add-passkey`)))
	b.fill(map[string]string{"pk-name": "Test key"})
	b.press(`#add-passkey`)
	require.Contains(t, b.text(), "Your passkey is saved.")
	require.Contains(t, b.text(), "Test key")

	// The button, in a browser without conditional UI (autofill).
	noAutofill, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `PublicKeyCredential.isConditionalMediationAvailable = undefined;`})
	require.NoError(t, err)
	b.press(`header button.link`)
	require.Contains(t, b.text(), "You are signed out.")
	b.do(chromedp.WaitVisible(chromedp.CSS(`#passkey`)))
	b.press(`#passkey`)
	require.Equal(t, email, b.value(`#my-email`))
	require.Contains(t, b.text(), "(two-step)", "a verified passkey is two factors")

	// Conditional UI: the login page asks for a passkey with mediation
	// "conditional" as it opens, and the browser offers it in the email
	// field's autofill; the virtual authenticator answers at once, which
	// is the person picking it.
	_, err = chromedp.Call(b.ctx, page.RemoveScriptToEvaluateOnNewDocument, page.RemoveScriptToEvaluateOnNewDocumentParams{Identifier: noAutofill.Identifier})
	require.NoError(t, err)
	b.press(`header button.link`)
	b.waitFor("/account")
	require.Equal(t, email, b.value(`#my-email`))
	require.Contains(t, b.text(), "(two-step)")
}
