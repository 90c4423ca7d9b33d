package authz_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The subject of most properties is one account reused across cases: each
// case replaces its roles, so every case also starts from a set the
// previous case left in the checker's cache, and passes only if the
// assignment dropped it.

// Property 53: assigning a role through the API grants each of its
// permissions, and the user's profile lists the role.
func TestProperty53_AssignmentGrantsPermissions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		userID, token := f.NewUser(t)
		f.Env.Check(t, func(t *rapid.T) {
			perms := genPermissions.Draw(t, "perms")
			_, name := f.CreateRole(t, perms)
			require.ElementsMatch(t, []string{"user", name}, f.SetRoles(t, userID, name, "user"))

			for _, p := range perms {
				require.True(t, f.Check(t, token, p), "assigned %v, check %q", perms, p)
			}
			// ... and only them (the "user" role grants nothing).
			f.RequireChecks(t, token, probesFor(t), func(p string) bool { return grants(perms, p) }, "after assignment")
			require.Contains(t, f.MyRoles(t, token), name)
		})
	})
}

// Property 54: once a role is taken away, by a new assignment or by
// deleting the role, its permissions are denied at once.
func TestProperty54_RemovalRevokesPermissions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		userID, token := f.NewUser(t)
		f.Env.Check(t, func(t *rapid.T) {
			perms := genPermissions.Draw(t, "perms")
			probes := probesFor(t, perms)
			roleID, name := f.MakeRole(t, perms)
			f.Grant(t, userID, name)
			// Warm the cache with the granted answers.
			f.RequireChecks(t, token, probes, func(p string) bool { return grants(perms, p) }, "before removal")

			if rapid.Bool().Draw(t, "delete the role") {
				r := f.Do("DELETE", "/admin/roles/"+roleID, nil, f.AdminToken)
				require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Raw)
			} else {
				require.Equal(t, []string{"user"}, f.SetRoles(t, userID, "user"))
			}

			f.RequireChecks(t, token, probes, func(string) bool { return false }, "after removal")
			require.NotContains(t, f.MyRoles(t, token), name)
		})
	})
}

// Property 55: with several roles, a permission is allowed exactly when
// the union of their permissions grants it, wildcards included.
func TestProperty55_MultipleRolesUnion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		userID, token := f.NewUser(t)
		f.Env.Check(t, func(t *rapid.T) {
			n := rapid.IntRange(2, 4).Draw(t, "roles")
			names := []string{"user"}
			var union []string
			for i := range n {
				perms := rapid.SliceOfN(genPermission, 0, 4).Draw(t, "perms of role "+string(rune('a'+i)))
				_, name := f.MakeRole(t, perms)
				names = append(names, name)
				union = append(union, perms...)
			}
			got := f.SetRoles(t, userID, names...)
			require.ElementsMatch(t, names, got)

			f.RequireChecks(t, token, probesFor(t, union), func(p string) bool { return grants(union, p) }, "union")
			require.ElementsMatch(t, names, f.MyRoles(t, token))
		})
	})
}

// Property 56: answers are cached for five minutes: a change made behind
// the service's back (no invalidation) is not seen until the entry
// expires on the (test) clock, and is seen right after.
func TestProperty56_PermissionCaching(t *testing.T) {
	// The administrator asks about a fresh account each case; its token
	// must outlive the 100 x 5 minutes the clock moves.
	forEachEngineWith(t, map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "24h"}, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.Env.Check(t, func(t *rapid.T) {
			before := genPermissions.Draw(t, "before")
			after := rapid.SliceOfN(genPermission, 0, 5).Draw(t, "after")
			probes := probesFor(t, before, after)
			_, a := f.MakeRole(t, before)
			_, b := f.MakeRole(t, after)
			// A fresh account: its first check loads its set, and nothing
			// here publishes an invalidation that could drop the cached
			// entry behind the test's back.
			userID := f.PlainUser(t, a)
			check := func(want []string, msg string) {
				for _, p := range probes {
					require.Equal(t, grants(want, p), f.CheckFor(t, userID, p), "%s: check %q", msg, p)
				}
			}

			check(before, "first load")
			require.NoError(t, f.App.DB.SetUserRoles(ctx, userID, []string{"user", b}))
			check(before, "cached, right after the change")
			f.Clock.Advance(5*time.Minute - time.Second)
			check(before, "cached, a second before expiry")
			f.Clock.Advance(2 * time.Second) // 5m+1s after the first load
			check(after, "after expiry")
		})
	})
}

// Property 57: changing a role's permissions through the API is reflected
// by the very next check of a holder whose answers are cached, with no
// clock advance.
func TestProperty57_RoleModificationInvalidatesCache(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		userID, token := f.NewUser(t)
		f.Env.Check(t, func(t *rapid.T) {
			before := genPermissions.Draw(t, "before")
			after := rapid.SliceOfN(genPermission, 0, 5).Draw(t, "after")
			probes := probesFor(t, before, after)
			roleID, name := f.MakeRole(t, before)
			f.Grant(t, userID, name)
			f.RequireChecks(t, token, probes, func(p string) bool { return grants(before, p) }, "before the update")

			r := f.Do("PUT", "/admin/roles/"+roleID, map[string]any{"permissions": after}, f.AdminToken)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			want := append([]string{}, slices.Compact(slices.Sorted(slices.Values(after)))...)
			require.Equal(t, want, strs(r.JSON["permissions"]))

			f.RequireChecks(t, token, probes, func(p string) bool { return grants(after, p) }, "after the update")
		})
	})
}

// Property 58: system roles cannot be deleted (409 system_role) and stay
// listed; a custom role deletes (204), disappears, and its holders lose
// its permissions.
func TestProperty58_SystemRolesPreventDeletion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		roles := f.RoleIDs(t)
		system := []string{"admin", "moderator", "user"}
		for _, n := range system {
			require.Contains(t, roles, n)
			require.Equal(t, true, roles[n]["system"], n)
		}
		userID, token := f.NewUser(t)
		f.Env.Check(t, func(t *rapid.T) {
			sys := rapid.SampledFrom(system).Draw(t, "system role")
			r := f.Do("DELETE", "/admin/roles/"+roles[sys]["id"].(string), nil, f.AdminToken)
			require.Equal(t, http.StatusConflict, r.Status, "%s", r.Raw)
			require.Equal(t, "system_role", r.Code())

			perms := genPermissions.Draw(t, "custom perms")
			id, name := f.MakeRole(t, perms)
			f.Grant(t, userID, name)
			require.True(t, f.Check(t, token, perms[0]))
			r = f.Do("DELETE", "/admin/roles/"+id, nil, f.AdminToken)
			require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Raw)

			now := f.RoleIDs(t)
			for _, n := range system {
				require.Contains(t, now, n, "system role %s still listed", n)
			}
			require.NotContains(t, now, name)
			require.False(t, f.Check(t, token, perms[0]), "a deleted role grants nothing")
			require.Equal(t, http.StatusNotFound, f.Do("DELETE", "/admin/roles/"+id, nil, f.AdminToken).Status)
		})
		// The admin still holds everything, the seed is intact.
		require.True(t, f.Check(t, f.AdminToken, "anything:at-all"))
	})
}

// Property 59: every administration operation answers 401 without a
// token, 403 permission_denied to a user lacking its permission, and 2xx
// to one holding it (exactly, through its resource wildcard, or "*").
func TestProperty59_ProtectedResourceCheck(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		scene := newAdminScene(t, f)
		userID, token := f.NewUser(t)
		f.Env.Check(t, func(t *rapid.T) {
			ep := rapid.SampledFrom(adminEndpoints).Draw(t, "endpoint")

			path, body := ep.req(t, f, scene)
			r := f.Do(ep.method, path, body, "")
			require.Equal(t, http.StatusUnauthorized, r.Status, "%s without a token: %s", ep.name, r.Raw)
			require.Equal(t, "unauthorized", r.Code())

			lacking := rapid.SliceOfN(genPermission.Filter(func(p string) bool { return !grants([]string{p}, ep.perm) }), 0, 4).
				Draw(t, "lacking")
			_, lackName := f.MakeRole(t, lacking)
			f.Grant(t, userID, lackName)
			path, body = ep.req(t, f, scene)
			r = f.Do(ep.method, path, body, token)
			require.Equal(t, http.StatusForbidden, r.Status, "%s with %v: %s", ep.name, lacking, r.Raw)
			require.Equal(t, "permission_denied", r.Code())

			res, _, _ := strings.Cut(ep.perm, ":")
			grant := rapid.SampledFrom([]string{ep.perm, res + ":*", "*"}).Draw(t, "grant")
			_, grantName := f.MakeRole(t, append(lacking, grant))
			f.Grant(t, userID, grantName)
			path, body = ep.req(t, f, scene)
			r = f.Do(ep.method, path, body, token)
			require.Equal(t, ep.want, r.Status, "%s with %s: %s", ep.name, grant, r.Raw)
		})
	})
}

// Property 60: a user whose permissions do not cover an operation's
// permission is refused with 403 permission_denied, and /authz/check
// agrees.
func TestProperty60_MissingPermissionRejected(t *testing.T) {
	forEachEngine(t, func(t *testing.T, f *fixture) {
		scene := newAdminScene(t, f)
		userID, token := f.NewUser(t)
		f.Env.Check(t, func(t *rapid.T) {
			ep := rapid.SampledFrom(adminEndpoints).Draw(t, "endpoint")
			held := rapid.SliceOfN(genPermission.Filter(func(p string) bool { return !grants([]string{p}, ep.perm) }), 1, 6).
				Draw(t, "held")
			_, name := f.MakeRole(t, held)
			f.Grant(t, userID, name)

			path, body := ep.req(t, f, scene)
			r := f.Do(ep.method, path, body, token)
			require.Equal(t, http.StatusForbidden, r.Status, "%s with %v: %s", ep.name, held, r.Raw)
			require.Equal(t, "permission_denied", r.Code())
			require.Contains(t, r.Str("detail"), ep.perm)
			require.False(t, f.Check(t, token, ep.perm))
			// The drawn permissions themselves are held.
			require.True(t, f.Check(t, token, held[0]))
		})
	})
}
