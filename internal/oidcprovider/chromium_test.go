package oidcprovider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/browsertest"
	"github.com/gatehouse-auth/gatehouse/internal/oidcprovider"
)

// The relying party's front channel once in a real browser: headless
// Chromium follows the authorization request through the hosted /login
// page and the consent page (their CSP, cookies and forms as a person
// gets them) back to the RP's callback; the RP exchanges the code and
// verifies the ID token with go-oidc.
func TestCodeFlowInChromium(t *testing.T) {
	chrome := browsertest.ChromiumPath(t)
	for _, firstParty := range []bool{false, true} {
		t.Run(map[bool]string{false: "consent", true: "first-party"}[firstParty], func(t *testing.T) {
			chromiumFlow(t, chrome, firstParty)
		})
	}
}

// chromiumFlow runs the flow; a first-party client skips the consent
// page, so the sign-in form's redirects lead to the RP.
func chromiumFlow(t *testing.T, chrome string, firstParty bool) {
	e, email := setup(t, "sqlite")

	var (
		mu  sync.Mutex
		got url.Values
	)
	rpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r) // the browser's favicon
			return
		}
		mu.Lock()
		got = r.URL.Query()
		mu.Unlock()
		fmt.Fprint(w, `<!doctype html><title>RP</title><h1 id="rp">signed in</h1>`)
	}))
	t.Cleanup(rpSrv.Close)
	callback := rpSrv.URL + "/cb"
	id, secret := newClient(t, e, oidcprovider.ClientInput{Name: "Wiki", FirstParty: firstParty, RedirectURIs: []string{callback}})
	r := newRP(t, e, id, secret)
	r.conf.RedirectURL = callback
	verifier := oauth2.GenerateVerifier()
	// The browser reaches the server at its own address; the provider's
	// redirects are relative until the one to the RP.
	start := strings.Replace(r.conf.AuthCodeURL("st", oidc.Nonce("nn"), oauth2.S256ChallengeOption(verifier)), issuer, e.Server.URL, 1)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.ProxyServer("http://127.0.0.1:9"), // nothing but loopback
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(start), chromedp.WaitVisible(chromedp.CSS(`#password`))), "the login page")
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`#email`), email),
		chromedp.SetValue(chromedp.CSS(`#password`), apptest.StrongPassword), chromedp.Click(chromedp.CSS(`#signin`))))
	if !firstParty {
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
			chromedp.Click(chromedp.CSS(`button[value="allow"]`))), "the consent page")
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#rp`))), "back at the RP")

	mu.Lock()
	q := got
	mu.Unlock()
	require.Equal(t, "st", q.Get("state"))
	require.NotEmpty(t, q.Get("code"))
	tok, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: id}).Verify(r.ctx, tok.Extra("id_token").(string))
	require.NoError(t, err)
	require.Equal(t, "nn", idt.Nonce)
	var claims struct {
		Email string `json:"email"`
	}
	require.NoError(t, idt.Claims(&claims))
	require.Equal(t, email, claims.Email)
}
