package httpapi_test

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

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/browsertest"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

// browserLog is what the page did, recorded from the tab's events.
type browserLog struct {
	mu       sync.Mutex
	requests []string // every URL the page asked for
	problems []string // console errors and warnings, exceptions, CSP reports
}

func (b *browserLog) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		var text []string
		for _, a := range ev.Args {
			if a.Description != "" {
				text = append(text, a.Description)
			} else {
				text = append(text, fmt.Sprint(a.Value))
			}
		}
		msg := strings.Join(text, " ")
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert ||
			strings.Contains(msg, "Content Security Policy") {
			b.problems = append(b.problems, "console."+string(ev.Type)+": "+msg)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, "exception: "+msg)
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		if e.Source == cdplog.EntrySourceNetwork && strings.HasSuffix(e.URL, httpapi.BasePath+"/auth/me") {
			// The API's own 401 for the test's made-up token, answered to
			// "Try it out": the answer the page should show, not a fault.
			return
		}
		if e.Level == cdplog.EntryLevelError || e.Level == cdplog.EntryLevelWarning || strings.Contains(e.Text, "Content Security Policy") {
			b.problems = append(b.problems, fmt.Sprintf("log %s/%s: %s (%s)", e.Source, e.Level, e.Text, e.URL))
		}
	}
}

func (b *browserLog) snapshot() (requests, problems []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...), append([]string(nil), b.problems...)
}

// watchViolations runs in every document before its own scripts (injected
// through the protocol, so the page's CSP does not apply to it) and keeps
// each securitypolicyviolation event, which also catches a violation the
// console would not show.
const watchViolations = `window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});`

// TestDocsPageInBrowser loads the docs page in headless Chromium from an
// in-process server and checks, as a reader would see it, that it works
// without internet: the operations render, nothing breaks the page's CSP,
// no request leaves the server, and a bearer token given to Authorize is
// sent on "Try it out" without landing in the URL or in storage.
func TestDocsPageInBrowser(t *testing.T) {
	chrome := browsertest.ChromiumPath(t)

	const token = "eyJ0ZXN0IjoidG9rZW4ifQ.docs-page-bearer-test"
	var (
		authMu   sync.Mutex
		authSeen []string
	)
	e := newEnv(t, func(d *httpapi.Deps) { d.ServiceName = `Acme "Auth" <Docs>` })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == httpapi.BasePath+"/auth/me" {
			authMu.Lock()
			authSeen = append(authSeen, r.Header.Get("Authorization"))
			authMu.Unlock()
		}
		e.h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	origin, err := url.Parse(srv.URL)
	require.NoError(t, err)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Every host but loopback goes to a proxy that is not there, so the
		// test sees the page as a machine without internet does, and a
		// request elsewhere fails fast (and is caught below) instead of
		// depending on the network.
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.WindowSize(1280, 1000),
	)
	t.Cleanup(cancelAlloc)
	var seen browserLog
	ctx, cancelTab := chromedp.NewContext(alloc, chromedp.WithListener(seen.listen))
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)

	// Start the browser, then arm the violation watcher for the page.
	require.NoError(t, chromedp.Do(ctx), "start chromium (%s)", chrome)
	_, err = chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchViolations})
	require.NoError(t, err)

	// The operation list renders from the spec, with the service's name.
	register := chromedp.CSS(`#operations-Authentication-register`)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+httpapi.BasePath+"/docs"),
		chromedp.WaitVisible(register),
	))
	summary, err := chromedp.Run(ctx, chromedp.Text(register))
	require.NoError(t, err)
	require.Contains(t, summary, "Register an account")
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	require.Equal(t, `Acme "Auth" <Docs> API reference`, title)
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	require.NoError(t, err)
	require.Equal(t, `Acme "Auth" <Docs> API`, heading)

	// Authorize with a bearer token in Swagger UI's own dialog.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.scheme-container button.authorize`)),
		chromedp.WaitVisible(chromedp.CSS(`.auth-container input`)),
		chromedp.SendKeys(chromedp.CSS(`.auth-container input`), token),
		chromedp.Click(chromedp.CSS(`.modal-ux button[aria-label="Apply credentials"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.modal-ux button[aria-label="Remove authorization"]`)),
		chromedp.Click(chromedp.CSS(`.modal-ux button.close-modal`)),
		chromedp.WaitNotPresent(chromedp.CSS(`.modal-ux`)),
	))

	// Try GET /auth/me: the request carries the token.
	me := `#operations-Authentication-get-me`
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(me+` .opblock-summary-control`)),
		chromedp.WaitVisible(chromedp.CSS(me+` button.try-out__btn`)),
		chromedp.Click(chromedp.CSS(me+` button.try-out__btn`)),
		chromedp.WaitVisible(chromedp.CSS(me+` button.execute`)),
		chromedp.Click(chromedp.CSS(me+` button.execute`)),
		chromedp.WaitVisible(chromedp.CSS(me+` .live-responses-table`)),
	))
	authMu.Lock()
	require.Equal(t, []string{"Bearer " + token}, authSeen, "Try it out sends the token given to Authorize")
	authMu.Unlock()
	shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(me+` .live-responses-table tr.response .response-col_status`)))
	require.NoError(t, err)
	require.Contains(t, shown, "401", "the page shows the API's answer to the made-up token")

	// The token is in no URL and in no storage.
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.NotContains(t, loc, token)
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`JSON.stringify(Object.assign({}, localStorage)) + JSON.stringify(Object.assign({}, sessionStorage)) + document.cookie`))
	require.NoError(t, err)
	require.NotContains(t, stored, token)

	violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__violations`))
	require.NoError(t, err)
	require.Empty(t, violations, "CSP violations")

	requests, problems := seen.snapshot()
	require.Empty(t, problems, "console errors, warnings or CSP reports")
	require.NotEmpty(t, requests)
	for _, r := range requests {
		u, err := url.Parse(r)
		require.NoError(t, err, r)
		if u.Scheme == "data" {
			continue
		}
		require.Equal(t, origin.Host, u.Host, "the page asked another host for %s", r)
		require.NotContains(t, r, token)
	}
	var sawBundle bool
	for _, r := range requests {
		sawBundle = sawBundle || strings.Contains(r, "/docs/assets/swagger-ui-bundle.")
	}
	require.True(t, sawBundle, "the renderer came from the server: %v", requests)

	// A reload forgets the token, as the page says.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(register),
	))
	locked, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".scheme-container button.authorize.locked").length`))
	require.NoError(t, err)
	require.Zero(t, locked, "no token survives a reload")
}
