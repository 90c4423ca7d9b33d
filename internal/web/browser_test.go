package web_test

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/browsertest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/web"
)

// watchViolations keeps every CSP violation of a document (injected through
// the protocol, so the page's CSP does not apply to it).
const watchViolations = `window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline"));
});`

// tab is one headless Chromium tab on a server.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// newTab starts a headless Chromium (its own profile, so its own cookies)
// that reaches only loopback.
func newTab(t *testing.T, base string) *tab {
	chrome := browsertest.ChromiumPath(t)
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
		chromedp.ProxyServer("http://127.0.0.1:9"), // nothing but loopback
		chromedp.WindowSize(1280, 1000),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx), "start chromium (%s)", chrome)
	for _, src := range []string{watchViolations, axeSource} {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		require.NoError(t, err)
	}
	return &tab{t: t, ctx: ctx, base: base}
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, actions...))
}

// open navigates to a path, waits for the page's heading and checks the
// page.
func (b *tab) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	b.check()
}

// fill types into the inputs by id.
func (b *tab) fill(fields map[string]string) {
	b.t.Helper()
	for id, v := range fields {
		b.do(chromedp.SetValue(chromedp.CSS("#"+id), v))
	}
}

// press clicks a button and waits for the next page's heading to be
// visible, then checks the page broke no CSP rule.
func (b *tab) press(sel string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](`window.__before = true`), chromedp.Click(chromedp.CSS(sel)))
	b.settled()
}

// settled waits for a new document (the form's answer) to finish loading,
// then checks it (see check).
func (b *tab) settled() {
	b.t.Helper()
	b.until(func() bool {
		done, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!window.__before && document.readyState === "complete"`))
		return err == nil && done
	}, "a new page after the click")
	b.check()
}

// waitFor waits until the browser shows a loaded page whose address
// contains path, after navigations the page made by itself, and checks it.
func (b *tab) waitFor(path string) {
	b.t.Helper()
	b.until(func() bool {
		loc, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.href : ""`))
		return err == nil && strings.Contains(loc, path)
	}, "a page at "+path)
	b.check()
}

// until polls cond for up to 30 seconds.
func (b *tab) until(cond func() bool, what string) {
	b.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		require.True(b.t, time.Now().Before(deadline), "no %s (at %s)", what, b.location())
	}
}

// check runs on every page the tests see: no CSP violation, no axe-core
// violation (WCAG 2.2 A and AA rules and axe's best practices, colour
// contrast included, in the scheme Chromium shows), and a full-page
// screenshot at 1280 and 375 px.
func (b *tab) check() {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`window.__violations || []`))
	require.NoError(b.t, err)
	require.Empty(b.t, v, "CSP violations on %s", b.location())
	b.axe()
	b.screenshot()
}

//go:embed testdata/axe/axe.min.js
var axeSource string

// axe runs axe-core on the page (newTab injects it into every document
// through the protocol, so the page's CSP does not apply to it) and fails
// on any violation, listing each rule with the elements it found.
func (b *tab) axe() {
	b.t.Helper()
	const run = `(async () => {
  const r = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}});
  return r.violations.map(v => v.id + " (" + v.impact + "): " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join(", "));
})()`
	found, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](run, chromedp.EvalAwaitPromise))
	require.NoError(b.t, err, "axe-core on %s", b.location())
	require.Empty(b.t, found, "accessibility violations on %s", b.location())
}

// shots is where the screenshots go: GATEHOUSE_PAGES_SCREENSHOTS, else a
// temporary directory made once per test run, named in the log (CI keeps
// it as an artefact).
var shots = sync.OnceValue(func() string {
	if dir := os.Getenv("GATEHOUSE_PAGES_SCREENSHOTS"); dir != "" {
		return dir
	}
	dir, err := os.MkdirTemp("", "gatehouse-pages-")
	if err != nil {
		return ""
	}
	return dir
})

var (
	logShots   sync.Once
	tokenParam = regexp.MustCompile(`token=[^&]*`)
)

// screenshot saves the page at 1280 px and at 375 px wide (a phone), full
// length, as <test>_<path>_<width>.png.
func (b *tab) screenshot() {
	b.t.Helper()
	dir := shots()
	if dir == "" {
		return
	}
	logShots.Do(func() { b.t.Logf("page screenshots: %s", dir) })
	// The path names the page; a token in it (a secret, even a test's) is
	// left out.
	path := tokenParam.ReplaceAllString(strings.TrimPrefix(b.location(), b.base), "token")
	name := strings.NewReplacer("/", "_", "?", "_", "&", "_", "=", "_", "%", "_").Replace(path)
	if len(name) > 60 {
		name = name[:60]
	}
	name = strings.ReplaceAll(b.t.Name(), "/", "-") + name
	for _, width := range []int64{1280, 375} {
		b.do(chromedp.EmulateViewport(width, 900))
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
		require.NoError(b.t, err)
		require.NoError(b.t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s_%d.png", name, width)), png, 0o644))
	}
	b.do(chromedp.EmulateViewport(1280, 1000))
}

func (b *tab) text() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	require.NoError(b.t, err)
	return s
}

func (b *tab) location() string {
	s, _ := chromedp.Run(b.ctx, chromedp.Location())
	return s
}

func (b *tab) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err)
	return strings.TrimSpace(s)
}

// login signs in through the form.
func (b *tab) login(email, password string) {
	b.t.Helper()
	b.open("/login")
	b.fill(map[string]string{"email": email, "password": password})
	b.press(`#signin`)
}

// One person's whole way through the pages in a real browser: sign up,
// verify by the emailed link, sign in, turn on TOTP from the page's key,
// change the profile, sign out, and sign in again with the second factor.
// It runs on every engine the tests have (PostgreSQL when
// GATEHOUSE_TEST_POSTGRES_URL is set), one after the other.
func TestBrowserSignUpToMFA(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) { signUpToMFA(t, apptest.New(t, engine, nil)) })
	}
}

func signUpToMFA(t *testing.T, env *apptest.Env) {
	b := newTab(t, env.Server.URL)
	email := "browser-person@example.com"

	b.open("/register")
	b.fill(map[string]string{"name": "Browser Person", "email": email, "password": apptest.StrongPassword, "password2": apptest.StrongPassword})
	b.press(`#create`)
	require.Contains(t, b.text(), "Check your email")

	tok := apptest.TokenFromLink(env.Mail.WaitFor(t, email, 10*time.Second).Text, "http://gatehouse.test/verify-email")
	require.NotEmpty(t, tok)
	b.open("/verify-email?token=" + tok)
	b.press(`#verify`)
	require.Contains(t, b.text(), "your email address is verified")

	b.login(email, apptest.StrongPassword)
	require.Equal(t, email, b.value(`#my-email`))
	require.Contains(t, b.text(), "(verified)")
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{env.Server.URL}})
	require.NoError(t, err)
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == web.InsecureSessionCookie {
			session = c
		}
	}
	require.NotNil(t, session, "the browser holds the session cookie")
	require.True(t, session.HTTPOnly)
	require.Equal(t, network.CookieSameSiteLax, session.SameSite)

	// TOTP: the key on the page makes the code.
	b.press(`#setup-totp`)
	secret := b.value(`#totp-secret`)
	require.NotEmpty(t, secret)
	code, err := mfa.TOTPCode(secret, env.Clock.Now())
	require.NoError(t, err)
	b.fill(map[string]string{"code": code})
	b.press(`#activate`)
	require.Contains(t, b.text(), "Two-step verification is on.")
	codes := strings.Fields(b.value(`#backup-codes`))
	require.Len(t, codes, 10)

	// A profile change.
	b.open("/account")
	require.Contains(t, b.value(`#mfa-status`), "totp")
	b.fill(map[string]string{"name": "Renamed Person"})
	b.press(`#save-profile`)
	require.Contains(t, b.text(), "Your profile is saved.")
	name, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(`#name`)))
	require.NoError(t, err)
	require.Equal(t, "Renamed Person", name)

	// Sign out, then in again: now the second factor is asked for.
	b.press(`header button.link`)
	require.Contains(t, b.text(), "You are signed out.")
	b.open("/account")
	require.Contains(t, b.location(), "/login?return_to=%2Faccount")
	b.fill(map[string]string{"email": email, "password": apptest.StrongPassword})
	b.press(`#signin`)
	require.Contains(t, b.text(), "Two-step verification")
	env.Clock.Advance(30 * time.Second) // the activation spent the last step's code
	code, err = mfa.TOTPCode(secret, env.Clock.Now())
	require.NoError(t, err)
	b.fill(map[string]string{"code": code})
	b.press(`#verify`)
	require.Equal(t, email, b.value(`#my-email`))
	require.Contains(t, b.location(), "/account")
}

// A form posted from another origin is refused in words, and the
// browser stays signed in; a plain user is refused the admin console;
// return_to to another site is not followed.
func TestBrowserRefusals(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newTab(t, env.Server.URL)
	b.open("/login?return_to=" + "https%3A%2F%2Fevil.example%2F")
	require.Contains(t, b.text(), "does not allow")
	b.fill(map[string]string{"email": email, "password": apptest.StrongPassword})
	b.press(`#signin`)
	require.Equal(t, email, b.value(`#my-email`))

	// Another origin (another port is another origin, though the same
	// site, so SameSite lets the cookie through: the CSRF check must stop
	// it).
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><title>x</title><h1>Win a prize</h1><form method="post" action="` +
			env.Server.URL + `/logout"><input type="hidden" name="csrf" value="guess"><button id="go">Claim</button></form></html>`))
	}))
	t.Cleanup(evil.Close)
	b.do(chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS(`#go`)))
	b.press(`#go`)
	require.Contains(t, b.text(), "did not come from this site")
	b.open("/account")
	require.Equal(t, email, b.value(`#my-email`), "still signed in")

	b.open("/admin")
	require.Contains(t, b.text(), "admin console is for holders of an admin permission")
}

// Reset by the emailed link, in the browser; then the new password signs
// in.
func TestBrowserPasswordReset(t *testing.T) {
	env, email := newEnv(t, nil)
	b := newTab(t, env.Server.URL)
	b.open("/forgot-password")
	b.fill(map[string]string{"email": email})
	b.press(`#send`)
	require.Contains(t, b.text(), "Check your email")
	var tok string
	for tok == "" {
		tok = apptest.TokenFromLink(env.Mail.WaitFor(t, email, 10*time.Second).Text, "http://gatehouse.test/reset-password")
	}
	b.open("/reset-password?token=" + tok)
	const next = "mossy-Lantern-quiet-58-Harbor"
	b.fill(map[string]string{"password": next, "password2": next})
	b.press(`#set`)
	require.Contains(t, b.text(), "Your password is set")
	b.login(email, next)
	require.Equal(t, email, b.value(`#my-email`))
}
