package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/fingerprint"
)

// Bad input to the device and confirmation operations answers 422 naming
// the field (or 400/401/404 as documented), never a 500; the principal
// carries its session's trust score for the rate limiter.
func TestDeviceOperationsRefuseBadInput(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, nil)
			env.Register("dora@example.com", apptest.StrongPassword)
			tok := env.Login("dora@example.com", apptest.StrongPassword)

			require.Equal(t, http.StatusUnauthorized, env.Do("GET", "/devices", nil, "").Status)
			list := env.Do("GET", "/devices", nil, tok.Access)
			require.Equal(t, http.StatusOK, list.Status)
			require.Nil(t, list.JSON["next_cursor"])
			id := list.JSON["items"].([]any)[0].(map[string]any)["id"].(string)

			r := env.Do("PUT", "/devices/"+id+"/trust", map[string]any{"trusted": "yes"}, tok.Access)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
			require.Equal(t, "validation_failed", r.Code())
			require.Contains(t, string(r.Raw), "body.trusted")
			r = env.Do("PUT", "/devices/"+id+"/trust", map[string]any{}, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.Equal(t, true, r.JSON["trusted"], "trusted defaults to true")
			require.Equal(t, http.StatusNotFound, env.Do("PUT", "/devices/nope/trust", nil, tok.Access).Status)
			require.Equal(t, http.StatusNotFound, env.Do("DELETE", "/devices/nope", nil, tok.Access).Status)

			r = env.Do("POST", "/auth/login/confirm", map[string]any{}, "")
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Raw))
			require.Contains(t, string(r.Raw), "body.token")
			r = env.Do("POST", "/auth/login/confirm", map[string]any{"token": "bogus"}, "")
			require.Equal(t, http.StatusBadRequest, r.Status, string(r.Raw))
			require.Equal(t, "invalid_token", r.Code())
			// Nothing spends a confirmation token on a GET.
			r = env.Do("GET", "/auth/login/confirm?token=bogus", nil, "")
			require.Contains(t, []int{http.StatusMethodNotAllowed, http.StatusNotFound}, r.Status, string(r.Raw))

			// The trust score rides in the principal, from the database and
			// then from the cache alike.
			sessions := env.Do("GET", "/sessions", nil, tok.Access)
			want := int(sessions.JSON["items"].([]any)[0].(map[string]any)["trust_score"].(float64))
			for range 2 {
				p, err := env.App.Sessions.Authenticate(context.Background(), tok.Access)
				require.NoError(t, err)
				require.Equal(t, want, p.TrustScore)
			}

			// A malformed device cookie is replaced on sign-in by a random one.
			env.Header = http.Header{"Cookie": {fingerprint.CookieName + "=not-a-fingerprint"}}
			r = env.Do("POST", "/auth/login", map[string]any{"email": "dora@example.com", "password": apptest.StrongPassword}, "")
			env.Header = nil
			require.Equal(t, http.StatusOK, r.Status)
			first := deviceCookieOf(t, r)
			require.True(t, fingerprint.ValidCookie(first), first)
		})
	}
}

// deviceCookieOf is the device cookie an answer sets.
func deviceCookieOf(t *testing.T, r *apptest.Response) string {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == fingerprint.CookieName {
			require.True(t, c.Secure && c.HttpOnly, "Secure, HttpOnly")
			require.Equal(t, http.SameSiteLaxMode, c.SameSite)
			require.Equal(t, "/", c.Path)
			return c.Value
		}
	}
	require.Fail(t, "no device cookie set", r.Header)
	return ""
}

// Every sign-in route gives a browser without a device cookie a fresh
// random one: two such browsers with the same User-Agent never share it,
// and it is not the value earlier versions derived from the User-Agent.
// A request presenting a valid cookie keeps it.
func TestDeviceCookieIsRandomPerBrowser(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, nil)
			env.Register("cleo@example.com", apptest.StrongPassword)
			cred := map[string]any{"email": "cleo@example.com", "password": apptest.StrongPassword}
			seen := map[string]bool{}
			for range 3 {
				r := env.Do("POST", "/auth/login", cred, "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				c := deviceCookieOf(t, r)
				require.True(t, fingerprint.ValidCookie(c), c)
				require.False(t, seen[c], "two cookieless sign-ins with one User-Agent share a cookie")
				seen[c] = true
			}
			// A failed sign-in on a sign-in route gets one too.
			r := env.Do("POST", "/auth/login", map[string]any{"email": "cleo@example.com", "password": "wrong"}, "")
			require.Equal(t, http.StatusUnauthorized, r.Status)
			require.False(t, seen[deviceCookieOf(t, r)])

			var kept string
			for c := range seen {
				kept = c
			}
			env.Header = http.Header{"Cookie": {fingerprint.CookieName + "=" + kept}}
			r = env.Do("POST", "/auth/login", cred, "")
			env.Header = nil
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			require.Empty(t, r.Header.Values("Set-Cookie"), "a valid cookie is kept")
		})
	}
}
