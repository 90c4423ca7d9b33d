package authz_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// problemLocations returns the locations of a problem's errors[].
func problemLocations(r *apptest.Response) []string {
	var out []string
	errs, _ := r.JSON["errors"].([]any)
	for _, e := range errs {
		m, _ := e.(map[string]any)
		loc, _ := m["location"].(string)
		out = append(out, loc)
	}
	return out
}

// userRoles reads the user's roles as the administrator sees them.
func (f *fixture) userRoles(t *testing.T, id string) []string {
	t.Helper()
	r := f.Do("GET", "/admin/users/"+id, nil, f.AdminToken)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
	return strs(r.JSON["roles"])
}

// denials lists the user's authz.denied rows, oldest first, as (route,
// permission) pairs.
func (f *fixture) denials(t *testing.T, userID string) [][2]any {
	t.Helper()
	logs, err := f.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: userID, Action: audit.ActionDenied, Limit: 100})
	require.NoError(t, err)
	out := make([][2]any, 0, len(logs))
	for _, l := range slices.Backward(logs) {
		out = append(out, [2]any{l.Metadata["route"], l.Metadata["permission"]})
	}
	return out
}

// The rules of role management and the administration API, on one server
// per engine.
func TestAdministrationRules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		t.Run("moderator cannot assign or remove admin", func(t *testing.T) {
			_, modToken := f.NewUser(t, "moderator")
			targetID, _ := f.NewUser(t)
			adminID, _ := f.NewUser(t, "admin")

			// A plain moderator lacks roles:assign altogether.
			r := f.Do("PUT", "/admin/users/"+targetID+"/roles", map[string]any{"roles": []string{"user", "admin"}}, modToken)
			apptest.Expect(t, r, http.StatusForbidden, "permission_denied")

			// With roles:assign, the moderator still cannot hand out or take
			// away more than the moderator holds.
			_, assigner := f.CreateRole(t, []string{"roles:assign"})
			modID, modToken := f.NewUser(t, "moderator")
			f.SetRoles(t, modID, "user", "moderator", assigner)
			for _, tc := range []struct {
				user  string
				roles []string
			}{
				{targetID, []string{"user", "admin"}},
				{adminID, []string{"user"}},
				{adminID, []string{"user", "moderator"}},
			} {
				before := f.userRoles(t, tc.user)
				r := f.Do("PUT", "/admin/users/"+tc.user+"/roles", map[string]any{"roles": tc.roles}, modToken)
				apptest.Expect(t, r, http.StatusForbidden, "permission_denied", "roles %v", tc.roles)
				require.Equal(t, before, f.userRoles(t, tc.user), "a refused assignment changes nothing")
			}
			// What the moderator does hold, the moderator may assign.
			r = f.Do("PUT", "/admin/users/"+targetID+"/roles", map[string]any{"roles": []string{"user", "moderator"}}, modToken)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			require.Equal(t, []string{"moderator", "user"}, strs(r.JSON["roles"]))
		})

		t.Run("roles:assign and users:read cannot assign roles:write", func(t *testing.T) {
			_, actorRole := f.CreateRole(t, []string{"roles:assign", "users:read"})
			_, writer := f.CreateRole(t, []string{"roles:write"})
			_, reader := f.CreateRole(t, []string{"users:read"})
			_, actor := f.NewUser(t, actorRole)
			targetID, _ := f.NewUser(t)

			r := f.Do("PUT", "/admin/users/"+targetID+"/roles", map[string]any{"roles": []string{"user", writer}}, actor)
			apptest.Expect(t, r, http.StatusForbidden, "permission_denied")
			require.Equal(t, []string{"user"}, f.userRoles(t, targetID))

			r = f.Do("PUT", "/admin/users/"+targetID+"/roles", map[string]any{"roles": []string{"user", reader}}, actor)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)

			// Removing a role is held to the same rule.
			f.SetRoles(t, targetID, "user", reader, writer)
			r = f.Do("PUT", "/admin/users/"+targetID+"/roles", map[string]any{"roles": []string{"user", reader}}, actor)
			apptest.Expect(t, r, http.StatusForbidden, "permission_denied")
			require.Contains(t, f.userRoles(t, targetID), writer)
		})

		t.Run("a refused grant is an authz.denied audit row naming what was lacked", func(t *testing.T) {
			_, actorRole := f.CreateRole(t, []string{"roles:write", "roles:assign", "users:read"})
			actorID, actor := f.NewUser(t, actorRole)
			targetID, _ := f.NewUser(t)
			above, aboveName := f.CreateRole(t, []string{"users:lock", "billing:read"})
			apptest.Expect(t, f.Do("POST", "/admin/roles", map[string]any{"name": f.Name("beyond"), "permissions": []string{"users:read", "users:lock", "billing:*"}}, actor),
				http.StatusForbidden, "permission_denied")
			apptest.Expect(t, f.Do("DELETE", "/admin/roles/"+above, nil, actor), http.StatusForbidden, "permission_denied")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+targetID+"/roles", map[string]any{"roles": []string{"user", aboveName}}, actor),
				http.StatusForbidden, "permission_denied")
			// Other refusals of role management are not authorization failures.
			apptest.Expect(t, f.Do("DELETE", "/admin/roles/"+f.RoleIDs(t)["admin"]["id"].(string), nil, f.AdminToken), http.StatusConflict, "system_role")

			logs, err := f.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: actorID, Action: audit.ActionDenied, Limit: 10})
			require.NoError(t, err)
			var got [][2]any
			for _, l := range logs {
				got = append(got, [2]any{l.Metadata["route"], l.Metadata["permission"]})
			}
			require.ElementsMatch(t, [][2]any{
				{"POST /api/v1/admin/roles", "billing:* users:lock"},
				{"DELETE /api/v1/admin/roles/" + above, "billing:read users:lock"},
				{"PUT /api/v1/admin/users/" + targetID + "/roles", "billing:read users:lock"},
			}, got)
			admin, err := f.App.DB.ListAuditLogs(t.Context(), store.AuditQuery{UserID: f.AdminID, Action: audit.ActionDenied, Limit: 10})
			require.NoError(t, err)
			require.Empty(t, admin)
		})

		t.Run("nobody creates, changes or deletes a role beyond their own permissions", func(t *testing.T) {
			_, actorRole := f.CreateRole(t, []string{"roles:write", "users:read"})
			_, actor := f.NewUser(t, actorRole)
			for _, perms := range [][]string{{"users:lock"}, {"users:*"}, {"*"}, {"users:read", "billing:read"}} {
				r := f.Do("POST", "/admin/roles", map[string]any{"name": f.Name("beyond"), "permissions": perms}, actor)
				apptest.Expect(t, r, http.StatusForbidden, "permission_denied", "%v", perms)
			}
			r := f.Do("POST", "/admin/roles", map[string]any{"name": f.Name("within"), "permissions": []string{"users:read", "roles:write"}}, actor)
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Raw)
			within := r.Str("id")

			r = f.Do("PUT", "/admin/roles/"+within, map[string]any{"permissions": []string{"users:lock"}}, actor)
			apptest.Expect(t, r, http.StatusForbidden, "permission_denied")
			roles := f.RoleIDs(t)
			// Shrinking a role above the actor is editing it, too.
			r = f.Do("PUT", "/admin/roles/"+roles["moderator"]["id"].(string), map[string]any{"permissions": []string{"users:read"}}, actor)
			apptest.Expect(t, r, http.StatusForbidden, "permission_denied")
			above, _ := f.CreateRole(t, []string{"users:lock"})
			r = f.Do("DELETE", "/admin/roles/"+above, nil, actor)
			apptest.Expect(t, r, http.StatusForbidden, "permission_denied")
			require.ElementsMatch(t, []any{"audit:read", "users:lock", "users:read"}, f.RoleIDs(t)["moderator"]["permissions"])
		})

		t.Run("admin's permissions never change", func(t *testing.T) {
			adminRole := f.RoleIDs(t)["admin"]["id"].(string)
			for _, perms := range [][]string{{"users:read"}, {"*"}, {}} {
				r := f.Do("PUT", "/admin/roles/"+adminRole, map[string]any{"permissions": perms}, f.AdminToken)
				apptest.Expect(t, r, http.StatusConflict, "system_role", "%v", perms)
			}
			require.Equal(t, []any{"*"}, f.RoleIDs(t)["admin"]["permissions"])
			r := f.Do("PUT", "/admin/roles/no-such-role", map[string]any{"permissions": []string{}}, f.AdminToken)
			apptest.Expect(t, r, http.StatusNotFound, "not_found")
			require.True(t, f.Check(t, f.AdminToken, "roles:write"))
		})

		t.Run("invalid permission strings are named", func(t *testing.T) {
			id, _ := f.CreateRole(t, []string{})
			for _, bad := range []string{"", "users", "Users:Read", "*:read", "users:read:x", "users :read", ":read", "users:", strings.Repeat("a", 65) + ":b"} {
				r := f.Do("POST", "/admin/roles", map[string]any{"name": f.Name("bad"), "permissions": []string{"users:read", bad}}, f.AdminToken)
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "%q", bad)
				require.Equal(t, []string{"body.permissions[1]"}, problemLocations(r), "%q", bad)

				r = f.Do("PUT", "/admin/roles/"+id, map[string]any{"permissions": []string{bad}}, f.AdminToken)
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "%q", bad)
				require.Equal(t, []string{"body.permissions[0]"}, problemLocations(r), "%q", bad)
			}
			r := f.Do("POST", "/admin/roles", map[string]any{"name": "Not A Name", "permissions": []string{}}, f.AdminToken)
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed")
			r = f.Do("POST", "/admin/roles", map[string]any{"name": "admin", "permissions": []string{}}, f.AdminToken)
			apptest.Expect(t, r, http.StatusConflict, "conflict")
		})

		t.Run("unknown role names are refused", func(t *testing.T) {
			targetID, _ := f.NewUser(t)
			// The location names the position in the request, not in the
			// sorted set the service works on.
			for _, tc := range []struct {
				roles []string
				loc   string
			}{
				{[]string{"user", "no-such-role"}, "body.roles[1]"},
				{[]string{"zz-no-such-role", "moderator", "user"}, "body.roles[0]"},
				{[]string{"user", "Admin"}, "body.roles[1]"},
			} {
				r := f.Do("PUT", "/admin/users/"+targetID+"/roles", map[string]any{"roles": tc.roles}, f.AdminToken)
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "%v", tc.roles)
				require.Equal(t, []string{tc.loc}, problemLocations(r), "%v", tc.roles)
			}
			require.Equal(t, []string{"user"}, f.userRoles(t, targetID))
			// A required list is a list: null is not "none".
			r := f.Do("PUT", "/admin/users/"+targetID+"/roles", map[string]any{"roles": nil}, f.AdminToken)
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed")
			require.Equal(t, []string{"body.roles"}, problemLocations(r))
			require.Equal(t, []string{"user"}, f.userRoles(t, targetID))
			r = f.Do("POST", "/admin/roles", map[string]any{"name": f.Name("nullperms"), "permissions": nil}, f.AdminToken)
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed")
			require.Equal(t, []string{"body.permissions"}, problemLocations(r))
			r = f.Do("PUT", "/admin/users/no-such-user/roles", map[string]any{"roles": []string{"user"}}, f.AdminToken)
			apptest.Expect(t, r, http.StatusNotFound, "not_found")
		})

		t.Run("list users: pagination, search, bad cursors", func(t *testing.T) {
			for range 5 {
				f.NewUser(t)
			}
			needle := f.Name("needle")
			for range 3 {
				f.Register(needle+"-"+f.Email("x"), apptest.StrongPassword)
			}
			r := f.Do("GET", "/admin/users?limit=200", nil, f.AdminToken)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			require.Nil(t, r.JSON["next_cursor"])
			var all []string
			for _, it := range r.JSON["items"].([]any) {
				all = append(all, it.(map[string]any)["id"].(string))
			}
			require.GreaterOrEqual(t, len(all), 10)

			walk := func(query string) []string {
				var ids []string
				cursor := ""
				for pages := 0; ; pages++ {
					require.Less(t, pages, 100, "pagination does not end")
					q := query + "&limit=2"
					if cursor != "" {
						q += "&cursor=" + url.QueryEscape(cursor)
					}
					r := f.Do("GET", "/admin/users?"+q, nil, f.AdminToken)
					require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
					items := r.JSON["items"].([]any)
					require.LessOrEqual(t, len(items), 2)
					for _, it := range items {
						ids = append(ids, it.(map[string]any)["id"].(string))
					}
					next, _ := r.JSON["next_cursor"].(string)
					if next == "" {
						require.Nil(t, r.JSON["next_cursor"])
						return ids
					}
					require.Len(t, items, 2, "only the last page is short")
					cursor = next
				}
			}
			walked := walk("")
			require.Equal(t, all, walked, "walking with limit=2 visits every user once, in order")
			require.Len(t, slices.Compact(slices.Sorted(slices.Values(walked))), len(walked), "no duplicates")

			found := walk("q=" + url.QueryEscape(strings.ToUpper(needle)))
			require.Len(t, found, 3, "q is a case-insensitive substring search")
			for _, id := range found {
				r := f.Do("GET", "/admin/users/"+id, nil, f.AdminToken)
				require.Contains(t, r.Str("email"), needle)
			}
			r = f.Do("GET", "/admin/users?q="+url.QueryEscape("%"), nil, f.AdminToken)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			require.Empty(t, r.JSON["items"], "LIKE wildcards in q match literally")

			for _, q := range []string{
				"cursor=" + url.QueryEscape("!!not base64!!"),
				"cursor=" + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("x", 65))),
				"limit=0", "limit=201", "limit=two",
			} {
				r := f.Do("GET", "/admin/users?"+q, nil, f.AdminToken)
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", q)
			}
			r = f.Do("GET", "/admin/users/no-such-user", nil, f.AdminToken)
			apptest.Expect(t, r, http.StatusNotFound, "not_found")
		})

		t.Run("a cursor that decodes to no id is refused", func(t *testing.T) {
			// A forged cursor decoding to invalid UTF-8 or NUL once reached
			// the query (500 on PostgreSQL); only id-shaped cursors pass now.
			for _, raw := range []string{"\xff\xfe", "\x00", "not-an-id"} {
				q := "cursor=" + base64.RawURLEncoding.EncodeToString([]byte(raw))
				r := f.Do("GET", "/admin/users?"+q, nil, f.AdminToken)
				apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "%q", raw)
			}
		})

		t.Run("lock and unlock", func(t *testing.T) {
			email := f.Email("lockme")
			u, err := f.App.Accounts.CreateUser(t.Context(), email, apptest.StrongPassword, nil, true)
			require.NoError(t, err)
			token := f.Login(email, apptest.StrongPassword).Access
			require.Equal(t, http.StatusOK, f.Do("GET", "/auth/me", nil, token).Status)

			// A moderator holds users:lock.
			_, mod := f.NewUser(t, "moderator")
			r := f.Do("PUT", "/admin/users/"+u.ID+"/lock", map[string]any{"reason": "testing"}, mod)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			require.Equal(t, true, r.JSON["locked"])

			apptest.Expect(t, f.Do("GET", "/auth/me", nil, token), http.StatusUnauthorized, "unauthorized", "the locked user's token stops working at once")
			apptest.Expect(t, f.Do("POST", "/authz/check", map[string]any{"permission": "users:read"}, token), http.StatusUnauthorized, "unauthorized")
			login := map[string]any{"email": email, "password": apptest.StrongPassword}
			apptest.Expect(t, f.Do("POST", "/auth/login", login, ""), http.StatusLocked, "account_locked")
			wrong := map[string]any{"email": email, "password": apptest.StrongPassword + "x"}
			apptest.Expect(t, f.Do("POST", "/auth/login", wrong, ""), http.StatusUnauthorized, "invalid_credentials")
			require.Equal(t, true, f.Do("GET", "/admin/users/"+u.ID, nil, f.AdminToken).JSON["locked"])

			// A plain user cannot unlock.
			_, plain := f.NewUser(t)
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+u.ID+"/unlock", nil, plain), http.StatusForbidden, "permission_denied")

			r = f.Do("PUT", "/admin/users/"+u.ID+"/unlock", nil, mod)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			require.Equal(t, false, r.JSON["locked"])
			token = f.Login(email, apptest.StrongPassword).Access
			require.Equal(t, http.StatusOK, f.Do("GET", "/auth/me", nil, token).Status)

			apptest.Expect(t, f.Do("PUT", "/admin/users/no-such-user/lock", nil, f.AdminToken), http.StatusNotFound, "not_found")
		})

		t.Run("nobody locks, unlocks or changes the roles of a user holding more", func(t *testing.T) {
			modID, mod := f.NewUser(t, "moderator")
			adminID, adminToken := f.NewUser(t, "admin")
			deniedBefore := f.denials(t, modID)

			// A moderator holds users:lock, but the administrator holds "*".
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+adminID+"/lock", map[string]any{"reason": "coup"}, mod),
				http.StatusForbidden, "permission_denied")
			require.Equal(t, http.StatusOK, f.Do("GET", "/auth/me", nil, adminToken).Status, "the administrator's sessions live on")
			require.Equal(t, false, f.Do("GET", "/admin/users/"+adminID, nil, f.AdminToken).JSON["locked"])

			// Nor unlock one another administrator locked.
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+adminID+"/lock", nil, f.AdminToken), http.StatusOK, "")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+adminID+"/unlock", nil, mod), http.StatusForbidden, "permission_denied")
			require.Equal(t, true, f.Do("GET", "/admin/users/"+adminID, nil, f.AdminToken).JSON["locked"])
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+adminID+"/unlock", nil, f.AdminToken), http.StatusOK, "")

			// With roles:assign, adding a role the moderator holds to an
			// administrator is still acting on someone who holds more.
			_, assigner := f.CreateRole(t, []string{"roles:assign"})
			f.SetRoles(t, modID, "user", "moderator", assigner)
			before := f.userRoles(t, adminID)
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+adminID+"/roles", map[string]any{"roles": append(slices.Clone(before), "moderator")}, mod),
				http.StatusForbidden, "permission_denied")
			require.Equal(t, before, f.userRoles(t, adminID))

			// Each refusal is an authz.denied row naming what was lacked.
			got := f.denials(t, modID)[len(deniedBefore):]
			require.Equal(t, [][2]any{
				{"PUT /api/v1/admin/users/" + adminID + "/lock", "*"},
				{"PUT /api/v1/admin/users/" + adminID + "/unlock", "*"},
				{"PUT /api/v1/admin/users/" + adminID + "/roles", "*"},
			}, got)

			// Less than a moderator cannot lock a moderator; an equal can, and
			// an administrator can lock anyone else.
			_, lockerRole := f.CreateRole(t, []string{"users:lock"})
			_, locker := f.NewUser(t, lockerRole)
			otherModID, _ := f.NewUser(t, "moderator")
			r := f.Do("PUT", "/admin/users/"+otherModID+"/lock", nil, locker)
			apptest.Expect(t, r, http.StatusForbidden, "permission_denied")
			_, peer := f.NewUser(t, "moderator")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+otherModID+"/lock", nil, peer), http.StatusOK, "")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+otherModID+"/unlock", nil, locker), http.StatusForbidden, "permission_denied")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+otherModID+"/unlock", nil, f.AdminToken), http.StatusOK, "")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+modID+"/lock", nil, f.AdminToken), http.StatusOK, "")
		})

		t.Run("no administrator locks or unmakes themselves", func(t *testing.T) {
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+f.AdminID+"/lock", nil, f.AdminToken), http.StatusConflict, "conflict")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+f.AdminID+"/roles", map[string]any{"roles": []string{"user"}}, f.AdminToken),
				http.StatusConflict, "conflict")
			r := f.Do("GET", "/admin/users/"+f.AdminID, nil, f.AdminToken)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			require.Equal(t, false, r.JSON["locked"])
			require.Contains(t, r.JSON["roles"], "admin")

			// Another administrator may do both.
			otherID, other := f.NewUser(t, "admin")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+otherID+"/roles", map[string]any{"roles": []string{"user"}}, f.AdminToken), http.StatusOK, "")
			apptest.Expect(t, f.Do("PUT", "/admin/users/"+otherID+"/lock", nil, f.AdminToken), http.StatusOK, "")
			apptest.Expect(t, f.Do("GET", "/auth/me", nil, other), http.StatusUnauthorized, "unauthorized")
		})

		t.Run("checking another user's permissions needs authz:check", func(t *testing.T) {
			modID, _ := f.NewUser(t, "moderator")
			_, plain := f.NewUser(t)
			r := f.Do("POST", "/authz/check", map[string]any{"permission": "users:read", "user_id": modID}, plain)
			apptest.Expect(t, r, http.StatusForbidden, "permission_denied")

			plainID, plain := f.NewUser(t)
			r = f.Do("POST", "/authz/check", map[string]any{"permission": "users:read", "user_id": plainID}, plain)
			require.Equal(t, http.StatusOK, r.Status, "one's own id needs nothing: %s", r.Raw)
			require.Equal(t, false, r.JSON["allowed"])

			_, checkerRole := f.CreateRole(t, []string{"authz:check"})
			_, checker := f.NewUser(t, checkerRole)
			for perm, want := range map[string]bool{"users:read": true, "users:lock": true, "roles:write": false, "authz:check": false, "users:*": false} {
				r := f.Do("POST", "/authz/check", map[string]any{"permission": perm, "user_id": modID}, checker)
				require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
				require.Equal(t, want, r.JSON["allowed"], "moderator %s", perm)
			}
			r = f.Do("POST", "/authz/check", map[string]any{"permission": "billing:refund", "user_id": f.AdminID}, checker)
			require.Equal(t, true, r.JSON["allowed"], "%s", r.Raw)
			r = f.Do("POST", "/authz/check", map[string]any{"permission": "users:read", "user_id": "no-such-user"}, checker)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			require.Equal(t, false, r.JSON["allowed"], "an unknown user holds nothing")

			apptest.Expect(t, f.Do("POST", "/authz/check", map[string]any{"permission": "Users:Read"}, checker), http.StatusUnprocessableEntity, "validation_failed")
			apptest.Expect(t, f.Do("POST", "/authz/check", map[string]any{"permission": "users:read"}, ""), http.StatusUnauthorized, "unauthorized")
		})

		t.Run("OpenAPI marks every admin operation with x-permission", func(t *testing.T) {
			r := f.Do("GET", "/openapi.json", nil, "")
			require.Equal(t, http.StatusOK, r.Status)
			paths := r.JSON["paths"].(map[string]any)
			// The contract's tables (API.md, "Administration" and "OpenID Provider"); every
			// operation here but the audit log must be served.
			contract := map[string]string{
				"GET /admin/users": "users:read", "GET /admin/users/{id}": "users:read",
				"PUT /admin/users/{id}/roles": "roles:assign", "PUT /admin/users/{id}/lock": "users:lock",
				"PUT /admin/users/{id}/unlock": "users:lock", "GET /admin/roles": "roles:read",
				"POST /admin/roles": "roles:write", "PUT /admin/roles/{id}": "roles:write",
				"DELETE /admin/roles/{id}": "roles:write", "GET /admin/audit-logs": "audit:read",
				// API.md, "OpenID Provider".
				"GET /admin/clients": "clients:read", "GET /admin/clients/{id}": "clients:read",
				"POST /admin/clients": "clients:write", "PUT /admin/clients/{id}": "clients:write",
				"DELETE /admin/clients/{id}": "clients:write", "POST /admin/clients/{id}/secret": "clients:write",
			}
			got := map[string]string{}
			for path, item := range paths {
				for method, op := range item.(map[string]any) {
					m, ok := op.(map[string]any)
					if !ok {
						continue
					}
					perm, has := m["x-permission"].(string)
					if strings.HasPrefix(path, "/admin/") {
						require.True(t, has, "%s %s has no x-permission", method, path)
						require.NotEmpty(t, m["security"], "%s %s", method, path)
						require.Contains(t, m["description"], "`"+perm+"`", "%s %s documents its permission", method, path)
					}
					if has {
						got[strings.ToUpper(method)+" "+path] = perm
					}
				}
			}
			for op, perm := range got {
				require.Contains(t, contract, op, "%s is not in the contract", op)
				require.Equal(t, contract[op], perm, op)
			}
			for op := range contract {
				if op != "GET /admin/audit-logs" {
					require.Contains(t, got, op)
				}
			}
		})
	})
}
