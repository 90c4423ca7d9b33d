package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// pagedLists are the lists that read a user's (or every role's) items whole
// and page them in memory.
var pagedLists = []string{"/sessions", "/devices", "/auth/webauthn/credentials", "/admin/roles", "/oauth/accounts"}

// walkPages follows next_cursor from the first page of path with the limit
// and answers every item in order, checking each page's shape on the way.
func walkPages(t *testing.T, env *apptest.Env, path, tok string, limit int) []map[string]any {
	t.Helper()
	var items []map[string]any
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 50, "%s: the walk never ends", path)
		q := fmt.Sprintf("%s?limit=%d", path, limit)
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := env.Do(http.MethodGet, q, nil, tok)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", q, r.Raw)
		require.Contains(t, r.JSON, "next_cursor", "%s: next_cursor is always present", q)
		page := r.JSON["items"].([]any)
		require.LessOrEqual(t, len(page), limit, q)
		for _, it := range page {
			items = append(items, it.(map[string]any))
		}
		if r.JSON["next_cursor"] == nil {
			return items
		}
		require.Len(t, page, limit, "%s: only the last page is short", q)
		cursor = r.JSON["next_cursor"].(string)
		require.NotEmpty(t, cursor, q)
	}
}

func pagedIDs(items []map[string]any) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it["id"].(string))
	}
	return out
}

// requirePaged checks that the whole list of path (one default page) has at
// least atLeast items, and that walking it limit=1 and limit=2 at a time gives
// every item exactly once, in the same order.
func requirePaged(t *testing.T, env *apptest.Env, path, tok string, atLeast int) []map[string]any {
	t.Helper()
	whole := env.Do(http.MethodGet, path, nil, tok)
	require.Equal(t, http.StatusOK, whole.Status, string(whole.Raw))
	require.Contains(t, whole.JSON, "next_cursor")
	require.Nil(t, whole.JSON["next_cursor"], "%s: the default limit (50) holds every item", path)
	all := []map[string]any{}
	for _, it := range whole.JSON["items"].([]any) {
		all = append(all, it.(map[string]any))
	}
	require.GreaterOrEqual(t, len(all), atLeast, path)
	want := pagedIDs(all)
	seen := map[string]bool{}
	for _, id := range want {
		require.False(t, seen[id], "%s: %s listed twice", path, id)
		seen[id] = true
	}
	for _, limit := range []int{1, 2, max(len(all), 1), 200} {
		require.Equal(t, want, pagedIDs(walkPages(t, env, path, tok, limit)), "%s with limit=%d", path, limit)
	}
	return all
}

// requireBadPaging checks that bad limit and cursor values are 422
// validation_failed naming the parameter.
func requireBadPaging(t *testing.T, env *apptest.Env, path, tok string) {
	t.Helper()
	stale := base64.RawURLEncoding.EncodeToString([]byte(gatehouse.NewID()))
	for _, tc := range []struct{ query, param string }{
		{"limit=0", "query.limit"},
		{"limit=-1", "query.limit"},
		{"limit=201", "query.limit"},
		{"limit=abc", "query.limit"},
		{"cursor=garbage", "query.cursor"},
		{"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("not-an-id")), "query.cursor"},
		{"limit=1&cursor=" + stale, "query.cursor"}, // well-formed, but names no listed item
	} {
		r := env.Do(http.MethodGet, path+"?"+tc.query, nil, tok)
		apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed", "%s?%s", path, tc.query)
		require.Contains(t, string(r.Raw), tc.param, "%s?%s", path, tc.query)
	}
}

// The lists that used to answer everything in one page take limit and
// cursor like the others: every item exactly once, next_cursor null on the
// last page, bad values 422.
func TestPagingOfSmallLists(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, nil)
			ctx := t.Context()
			_, err := env.App.Accounts.CreateUser(ctx, "pager@example.com", apptest.StrongPassword, []string{gatehouse.RoleAdmin}, true)
			require.NoError(t, err)

			// Five sign-ins from five devices.
			var tok apptest.Tokens
			for i := range 5 {
				r := env.Do(http.MethodPost, "/auth/login", map[string]any{
					"email": "pager@example.com", "password": apptest.StrongPassword, "device_id": fmt.Sprintf("pager-device-%d", i)}, "")
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				tok = apptest.Tokens{Access: r.Str("access_token"), SessionID: r.Str("session_id")}
			}

			sessions := requirePaged(t, env, "/sessions", tok.Access, 5)
			current := 0
			for _, s := range walkPages(t, env, "/sessions", tok.Access, 2) {
				if s["current"] == true {
					current++
					require.Equal(t, tok.SessionID, s["id"])
				}
			}
			require.Equal(t, 1, current, "exactly one session is current: %v", sessions)

			requirePaged(t, env, "/devices", tok.Access, 5)

			for _, name := range []string{"pager-a", "pager-b", "pager-c"} {
				r := env.Do(http.MethodPost, "/admin/roles", map[string]any{"name": name, "permissions": []string{"users:read"}}, tok.Access)
				require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
			}
			roles := requirePaged(t, env, "/admin/roles", tok.Access, 6) // 3 system roles + 3
			for i := 1; i < len(roles); i++ {
				require.Less(t, roles[i-1]["name"].(string), roles[i]["name"].(string), "roles are by name")
			}

			// No passkeys, no linked accounts: one empty, last page.
			for _, path := range []string{"/auth/webauthn/credentials", "/oauth/accounts"} {
				require.Empty(t, requirePaged(t, env, path, tok.Access, 0), path)
			}

			for _, path := range pagedLists {
				requireBadPaging(t, env, path, tok.Access)
			}

			// A cursor whose item is gone is refused rather than skipping
			// or repeating items silently.
			r := env.Do(http.MethodGet, "/sessions?limit=1", nil, tok.Access)
			require.Equal(t, http.StatusOK, r.Status)
			cursor := r.JSON["next_cursor"].(string)
			first := r.JSON["items"].([]any)[0].(map[string]any)["id"].(string)
			require.Equal(t, tok.SessionID, first, "the session in use is the most recently active")
			r = env.Do(http.MethodGet, "/sessions?limit=1&cursor="+cursor, nil, tok.Access)
			require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
			second := r.JSON["items"].([]any)[0].(map[string]any)["id"].(string)
			require.Equal(t, http.StatusNoContent, env.Do(http.MethodDelete, "/sessions/"+second, nil, tok.Access).Status)
			r = env.Do(http.MethodGet, "/sessions?limit=1&cursor="+r.JSON["next_cursor"].(string), nil, tok.Access)
			apptest.Expect(t, r, http.StatusUnprocessableEntity, "validation_failed")
			require.Contains(t, string(r.Raw), "query.cursor")
			require.Equal(t, http.StatusOK, env.Do(http.MethodGet, "/sessions?limit=1&cursor="+cursor, nil, tok.Access).Status)
		})
	}
}
