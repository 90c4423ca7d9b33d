package oidcprovider_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// admin signs in an administrator and a plain user; it returns their
// access tokens.
func admin(t *testing.T, e *apptest.Env) (adminToken, userToken string) {
	t.Helper()
	_, err := e.App.Accounts.CreateUser(t.Context(), "root@example.com", apptest.StrongPassword, []string{"admin"}, true)
	require.NoError(t, err)
	_, err = e.App.Accounts.CreateUser(t.Context(), "ada@example.com", apptest.StrongPassword, nil, true)
	require.NoError(t, err)
	return e.Login("root@example.com", apptest.StrongPassword).Access, e.Login("ada@example.com", apptest.StrongPassword).Access
}

func TestAdminClients(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e := apptest.New(t, engine, nil)
			root, user := admin(t, e)

			body := map[string]any{"name": "Grafana", "redirect_uris": []string{"https://grafana.example.com/login/generic_oauth"},
				"scopes": []string{"openid", "profile", "email", "users:read"}}
			apptest.Expect(t, e.Do("POST", "/admin/clients", body, user), http.StatusForbidden, "permission_denied")
			r := e.Do("POST", "/admin/clients", body, root)
			apptest.Expect(t, r, http.StatusCreated, "")
			id, secret := r.Str("client_id"), r.Str("client_secret")
			require.NotEmpty(t, id)
			require.Len(t, secret, 43)
			require.Equal(t, []any{"authorization_code", "refresh_token"}, r.JSON["grant_types"])

			r = e.Do("GET", "/admin/clients/"+id, nil, root)
			apptest.Expect(t, r, http.StatusOK, "")
			require.NotContains(t, r.JSON, "client_secret", "never shown again")
			require.Equal(t, "Grafana", r.Str("name"))

			r = e.Do("GET", "/admin/clients?limit=1", nil, root)
			apptest.Expect(t, r, http.StatusOK, "")
			require.Len(t, r.JSON["items"], 1)

			r = e.Do("PUT", "/admin/clients/"+id, map[string]any{"name": "Grafana 2", "first_party": true}, root)
			apptest.Expect(t, r, http.StatusOK, "")
			require.Equal(t, "Grafana 2", r.Str("name"))
			require.Equal(t, true, r.JSON["first_party"])
			require.Equal(t, []any{"https://grafana.example.com/login/generic_oauth"}, r.JSON["redirect_uris"], "omitted lists stay")

			r = e.Do("POST", "/admin/clients/"+id+"/secret", nil, root)
			apptest.Expect(t, r, http.StatusOK, "")
			require.Len(t, r.Str("client_secret"), 43)
			require.NotEqual(t, secret, r.Str("client_secret"))

			// Validation names the field.
			for field, bad := range map[string]map[string]any{
				"redirect_uris": {"name": "x", "redirect_uris": []string{"http://evil.example/cb"}},
				"grant_types":   {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "grant_types": []string{"implicit"}},
				"scopes":        {"name": "x", "redirect_uris": []string{"https://a.example/cb"}, "scopes": []string{"*"}},
			} {
				r := e.Do("POST", "/admin/clients", bad, root)
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", field)
				require.Contains(t, string(r.Raw), "body."+field, "the error names the field")
			}
			pub := e.Do("POST", "/admin/clients", map[string]any{"name": "spa", "public": true, "redirect_uris": []string{"http://localhost:3000/cb"}}, root)
			apptest.Expect(t, pub, http.StatusCreated, "")
			require.Empty(t, pub.Str("client_secret"))
			apptest.Expect(t, e.Do("POST", "/admin/clients/"+pub.Str("client_id")+"/secret", nil, root), http.StatusUnprocessableEntity, "validation_failed")

			apptest.Expect(t, e.Do("DELETE", "/admin/clients/"+id, nil, root), http.StatusNoContent, "")
			apptest.Expect(t, e.Do("GET", "/admin/clients/"+id, nil, root), http.StatusNotFound, "not_found")
			apptest.Expect(t, e.Do("DELETE", "/admin/clients/"+id, nil, root), http.StatusNotFound, "not_found")

			r = e.Do("GET", "/auth/consents", nil, user)
			apptest.Expect(t, r, http.StatusOK, "")
			require.Empty(t, r.JSON["items"])
			apptest.Expect(t, e.Do("DELETE", "/auth/consents/"+id, nil, user), http.StatusNotFound, "not_found")
		})
	}
}
