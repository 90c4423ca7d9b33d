package web_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// browser is a cookie-keeping HTTP client that reads pages as a browser
// would: it follows redirects, and sends forms with their CSRF token.
type browser struct {
	t    *testing.T
	env  *apptest.Env
	c    *http.Client
	last string // the body of the last page
	url  string // where the last page was
	xff  string // X-Forwarded-For to send ("" none)
}

func newBrowser(t *testing.T, env *apptest.Env) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, env: env, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the token of the last page's forms.
func (b *browser) csrf() string {
	m := csrfRe.FindStringSubmatch(b.last)
	require.NotNil(b.t, m, "no CSRF token on the page:\n%s", b.last)
	return m[1]
}

func (b *browser) do(req *http.Request) *http.Response {
	b.t.Helper()
	if b.xff != "" {
		req.Header.Set("X-Forwarded-For", b.xff)
	}
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	resp.Body.Close()
	b.last, b.url = string(body), resp.Request.URL.String()
	return resp
}

// get opens a page by path.
func (b *browser) get(path string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.env.Server.URL+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// post sends a form, with the last page's CSRF token unless it has one.
func (b *browser) post(path string, form url.Values) *http.Response {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf())
	}
	req, err := http.NewRequest(http.MethodPost, b.env.Server.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// cookie returns the named cookie the browser holds for the server.
func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.env.Server.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// login signs in through the login page and expects the account page.
func (b *browser) login(email, password string) {
	b.t.Helper()
	b.get("/login")
	resp := b.post("/login", url.Values{"email": {email}, "password": {password}})
	require.Equal(b.t, http.StatusOK, resp.StatusCode, b.last)
	require.Contains(b.t, b.url, "/account", b.last)
}

// newEnv is a SQLite server with an account, answered with its email.
func newEnv(t *testing.T, extra map[string]string) (*apptest.Env, string) {
	env := apptest.New(t, "sqlite", extra)
	email := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "@example.com"
	env.Register(email, apptest.StrongPassword)
	return env, email
}
