package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// Text PostgreSQL cannot hold (invalid UTF-8, U+0000) is answered the same
// on both engines: 404 in a path, 422 naming the field in a query or a
// JSON body, and a User-Agent of stray bytes is cleaned, not a 500 that
// would skip the audit row, the lockout count and tell registered emails
// apart.
func TestUnstorableTextIsRefusedOrCleaned(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, map[string]string{"GATEHOUSE_LOCKOUT_THRESHOLD": "3"})
			env.Register("nul@example.com", apptest.StrongPassword)
			tok := env.Login("nul@example.com", apptest.StrongPassword)
			_, err := env.App.Accounts.CreateUser(t.Context(), "root@example.com", apptest.StrongPassword, []string{gatehouse.RoleAdmin}, true)
			require.NoError(t, err)
			admin := env.Login("root@example.com", apptest.StrongPassword).Access

			for _, path := range []string{"/sessions/%FF%FE", "/sessions/a%00b", "/devices/%FF/trust", "/admin/users/%00"} {
				method := "DELETE"
				if path == "/devices/%FF/trust" {
					method = "PUT"
				}
				apptest.Expect(t, env.Do(method, path, nil, tok.Access), http.StatusNotFound, "not_found", path)
			}
			for path, field := range map[string]string{
				"/admin/users?q=a%00b":                   "query.q",
				"/admin/users?q=%FF":                     "query.q",
				"/admin/audit-logs?action=%00":           "query.action",
				"/admin/audit-logs?user_id=x&limit=1%00": "query.limit",
			} {
				r := env.Do("GET", path, nil, admin)
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", path)
				require.Equal(t, field, r.JSON["errors"].([]any)[0].(map[string]any)["location"], path)
			}
			for _, c := range []struct {
				method, path, field string
				body                map[string]any
			}{
				{"POST", "/auth/register", "body.name", map[string]any{"email": "other@example.com", "password": apptest.StrongPassword, "name": "Bob\x00X"}},
				{"POST", "/auth/login", "body.device_id", map[string]any{"email": "nul@example.com", "password": apptest.StrongPassword, "device_id": "d\x00"}},
				{"PUT", "/users/profile", "body.name", map[string]any{"name": "A\x00B"}},
				{"PUT", "/users/profile", "body.notification_preferences.security.alert[1]",
					map[string]any{"notification_preferences": map[string]any{"security.alert": []any{"email", "\x00"}}}},
			} {
				r := env.Do(c.method, c.path, c.body, tok.Access)
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "%s %s", c.method, c.path)
				require.Equal(t, c.field, r.JSON["errors"].([]any)[0].(map[string]any)["location"], c.path)
			}
			// Secrets with NUL are wrong secrets, answered as such.
			r1, err := env.Send("POST", "/auth/refresh", map[string]any{"refresh_token": "a\x00b"}, "", nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusUnauthorized, r1.Status, string(r1.Raw))
			r1, err = env.Send("POST", "/auth/login", map[string]any{"email": "nul@example.com", "password": "pw\x00"}, "", nil)
			require.NoError(t, err)
			apptest.Expect(t, r1, http.StatusUnauthorized, "invalid_credentials")
			apptest.Expect(t, env.Do("GET", "/auth/magic-link/verify?token=a%00b", nil, ""), http.StatusBadRequest, "invalid_token")

			// Media types are case-insensitive.
			r0, err := env.Send("POST", "/auth/login", map[string]any{"email": "nul@example.com", "password": apptest.StrongPassword}, "",
				map[string]string{"Content-Type": "APPLICATION/JSON; charset=UTF-8"})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, r0.Status, string(r0.Raw))

			// The escape written out as text is not a NUL.
			r := env.Do("PUT", "/users/profile", map[string]any{"name": `back\u0000slash`}, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))

			// A User-Agent of stray bytes: wrong passwords count toward the
			// lockout and answer like an unknown email; the right one signs in.
			bad := map[string]string{"User-Agent": "x\xff\xfe"}
			for range 2 {
				r, err := env.Send("POST", "/auth/login", map[string]any{"email": "nul@example.com", "password": "wrong-password-1"}, "", bad)
				require.NoError(t, err)
				apptest.Expect(t, r, http.StatusUnauthorized, "invalid_credentials")
			}
			r, err = env.Send("POST", "/auth/login", map[string]any{"email": "nul@example.com", "password": apptest.StrongPassword}, "", bad)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			sessions := env.Do("GET", "/sessions", nil, r.Str("access_token"))
			require.Contains(t, string(sessions.Raw), "\"user_agent\":\"x\ufffd\"", "a run of stray bytes becomes one U+FFFD")
			for range 3 {
				r, err = env.Send("POST", "/auth/login", map[string]any{"email": "nul@example.com", "password": "wrong-password-1"}, "", bad)
				require.NoError(t, err)
			}
			r, err = env.Send("POST", "/auth/login", map[string]any{"email": "nul@example.com", "password": apptest.StrongPassword}, "", bad)
			require.NoError(t, err)
			apptest.Expect(t, r, http.StatusLocked, "account_locked")
		})
	}
}

// Issue #16: a sign-in posted without a JSON content type (what a plain
// HTML form or a no-cors fetch from another site sends: login CSRF), or
// with keys in another case, or with a key twice, signs nobody in.
func TestLoginBodiesAreStrict(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, nil)
			env.Register("strict@example.com", apptest.StrongPassword)
			send := func(body, contentType string) *apptest.Response {
				t.Helper()
				req, err := http.NewRequest("POST", env.URL+"/auth/login", strings.NewReader(body))
				require.NoError(t, err)
				if contentType != "" {
					req.Header.Set("Content-Type", contentType)
				}
				resp, err := env.Server.Client().Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				raw, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				out := &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
				require.NoError(t, json.Unmarshal(raw, &out.JSON), "%s", raw)
				return out
			}
			right := `{"email":"strict@example.com","password":"` + apptest.StrongPassword + `"}`
			for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8"} {
				apptest.Expect(t, send(right, ct), http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type %q", ct)
			}
			apptest.Expect(t, send(`{"email":"strict@example.com","Password":"`+apptest.StrongPassword+`"}`, "application/json"),
				http.StatusUnprocessableEntity, "validation_failed")
			apptest.Expect(t, send(`{"email":"strict@example.com","password":"wrong","password":"`+apptest.StrongPassword+`"}`, "application/json"),
				http.StatusBadRequest, "malformed_json")
			r := send(right, "application/json")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			sessions := env.Do("GET", "/sessions", nil, r.Str("access_token"))
			require.Len(t, sessions.JSON["items"], 1, "only the well-formed sign-in made a session")
		})
	}
}
