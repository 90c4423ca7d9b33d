package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/oauth/oauthtest"
	"github.com/gatehouse-auth/gatehouse/internal/web"
)

// A social button signs in on this browser and goes on to return_to,
// with no token ever shown; a one-time code brought by a link to a browser
// that did not start the flow signs nobody in.
func TestSocialLoginThroughThePages(t *testing.T) {
	var env *apptest.Env
	google := oauthtest.Start(t, oauthtest.OIDC, nil)
	env = apptest.New(t, "sqlite", google.Env("google"))
	b := newBrowser(t, env)
	// The server's public URL is http://gatehouse.test: redirects there go
	// to the test server.
	server, _ := url.Parse(env.Server.URL)
	b.c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == "gatehouse.test" {
			req.URL.Host, req.Host = server.Host, ""
		}
		return nil
	}
	b.get("/login")
	require.Contains(t, b.last, `href="/login/social/google"`)
	b.get("/login/social/google?return_to=" + url.QueryEscape("/account?via=social"))
	require.Contains(t, b.url, "/account?via=social", b.last)
	require.Contains(t, b.last, "person@example.com")
	require.NotContains(t, b.last, "access_token")
	require.NotNil(t, b.cookie(web.InsecureSessionCookie))

	other := newBrowser(t, env)
	resp := other.get("/login/social-done?code=whatever")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, other.last, "invalid, expired or already used")
	require.Nil(t, other.cookie(web.InsecureSessionCookie))
}
