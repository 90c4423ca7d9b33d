package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// auditEnv is a running server with audit rows written straight to the
// store, and tokens for an admin, a moderator and a plain user.
type auditEnv struct {
	*apptest.Env
	admin, moderator, plain string // access tokens
	alice, bob              string // user ids the rows are about
	rows                    []gatehouse.AuditLog
	t0                      time.Time
}

// Actions of the fixture carry a "test." prefix so rows that services
// write (logins of the test's own users, once the audit writers exist) are
// told apart.
const (
	actLogin  = "test.login"
	actFailed = "test.login_failed"
	actLocked = "test.locked"
)

func newAuditEnv(t *testing.T, engine string) *auditEnv {
	t.Helper()
	env := apptest.New(t, engine, nil)
	ctx := t.Context()
	e := &auditEnv{Env: env, t0: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	for _, u := range []struct {
		email string
		role  string
		tok   *string
	}{
		{"admin@example.com", gatehouse.RoleAdmin, &e.admin},
		{"mod@example.com", gatehouse.RoleModerator, &e.moderator},
		{"plain@example.com", gatehouse.RoleUser, &e.plain},
	} {
		_, err := env.App.Accounts.CreateUser(ctx, u.email, apptest.StrongPassword, []string{u.role}, true)
		require.NoError(t, err)
		*u.tok = env.Login(u.email, apptest.StrongPassword).Access
	}
	e.alice, e.bob = gatehouse.NewID(), gatehouse.NewID()

	// 12 rows a minute apart, ids ascending with time: alice's and bob's
	// alternate, every third is a failure, risk climbs 0..99.
	ids := make([]string, 12)
	for i := range ids {
		ids[i] = gatehouse.NewID()
	}
	slices.Sort(ids)
	for i, id := range ids {
		l := gatehouse.AuditLog{
			ID: id, ActorID: e.alice, UserID: e.alice, Action: actLogin,
			Resource: "session:s" + id[:8], IPAddress: "203.0.113.7", UserAgent: "curl/8.0",
			Metadata:  map[string]any{"i": float64(i), "city": "Zürich"},
			RiskScore: i * 9, CreatedAt: e.t0.Add(time.Duration(i) * time.Minute),
		}
		if i%2 == 1 {
			l.UserID, l.ActorID = e.bob, e.bob
		}
		if i%3 == 2 {
			l.Action = actFailed
		}
		if i == 11 { // a system action: no actor, no client, no metadata
			l.Action, l.ActorID, l.IPAddress, l.UserAgent, l.Resource, l.Metadata = actLocked, "", "", "", "", nil
		}
		require.NoError(t, env.App.DB.CreateAuditLog(ctx, l))
		e.rows = append(e.rows, l)
	}
	return e
}

// list GETs /admin/audit-logs with q as the admin.
func (e *auditEnv) list(q url.Values) *apptest.Response {
	return e.Do(http.MethodGet, "/admin/audit-logs?"+q.Encode(), nil, e.admin)
}

// ids returns the ids of a list answer's items, failing t unless it is 200.
func ids(t *testing.T, r *apptest.Response) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	items, ok := r.JSON["items"].([]any)
	require.True(t, ok, "items is an array: %s", r.Raw)
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

// want is the fixture ids, newest first, of the rows keep accepts.
func (e *auditEnv) want(keep func(i int, l gatehouse.AuditLog) bool) []string {
	out := []string{}
	for i := len(e.rows) - 1; i >= 0; i-- {
		if keep(i, e.rows[i]) {
			out = append(out, e.rows[i].ID)
		}
	}
	return out
}

// onlyFixture drops ids that are not the fixture's (rows services wrote).
func (e *auditEnv) onlyFixture(ids []string) []string {
	return slices.DeleteFunc(ids, func(id string) bool {
		return !slices.ContainsFunc(e.rows, func(l gatehouse.AuditLog) bool { return l.ID == id })
	})
}

func TestAdminAuditLogs(t *testing.T) {
	for _, engine := range apptest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			e := newAuditEnv(t, engine)
			t.Run("Shape", func(t *testing.T) { testAuditShape(t, e) })
			t.Run("Filters", func(t *testing.T) { testAuditFilters(t, e) })
			t.Run("Pagination", func(t *testing.T) { testAuditPagination(t, e) })
			t.Run("Access", func(t *testing.T) { testAuditAccess(t, e) })
			t.Run("Validation", func(t *testing.T) { testAuditValidation(t, e) })
		})
	}
}

func testAuditShape(t *testing.T, e *auditEnv) {
	r := e.list(url.Values{"user_id": {e.bob}, "limit": {"200"}})
	require.Equal(t, e.want(func(i int, l gatehouse.AuditLog) bool { return l.UserID == e.bob }), ids(t, r))
	require.Nil(t, r.JSON["next_cursor"], "one page: next_cursor is null")
	require.Contains(t, r.JSON, "next_cursor")

	items := r.JSON["items"].([]any)
	system := items[0].(map[string]any) // row 11
	require.Equal(t, map[string]any{
		"id": e.rows[11].ID, "actor_id": nil, "user_id": e.bob, "action": actLocked,
		"resource": nil, "ip_address": nil, "user_agent": nil, "metadata": map[string]any{},
		"risk_score": float64(99), "created_at": "2025-06-01T12:11:00Z",
	}, system)
	full := items[1].(map[string]any) // row 9
	l := e.rows[9]
	require.Equal(t, map[string]any{
		"id": l.ID, "actor_id": e.bob, "user_id": e.bob, "action": actLogin,
		"resource": l.Resource, "ip_address": "203.0.113.7", "user_agent": "curl/8.0",
		"metadata":   map[string]any{"i": float64(9), "city": "Zürich"},
		"risk_score": float64(81), "created_at": "2025-06-01T12:09:00Z",
	}, full)
}

func testAuditFilters(t *testing.T, e *auditEnv) {
	at := func(i int) string { return e.rows[i].CreatedAt.Format(time.RFC3339) }
	for _, tc := range []struct {
		name string
		q    url.Values
		keep func(i int, l gatehouse.AuditLog) bool
	}{
		{"user", url.Values{"user_id": {e.alice}},
			func(i int, l gatehouse.AuditLog) bool { return l.UserID == e.alice }},
		{"unknown user", url.Values{"user_id": {gatehouse.NewID()}},
			func(int, gatehouse.AuditLog) bool { return false }},
		{"action", url.Values{"action": {actFailed}},
			func(i int, l gatehouse.AuditLog) bool { return l.Action == actFailed }},
		{"from inclusive", url.Values{"from": {at(8)}, "action": {actLogin}},
			func(i int, l gatehouse.AuditLog) bool { return i >= 8 && l.Action == actLogin }},
		{"to exclusive", url.Values{"to": {at(3)}, "user_id": {e.alice}},
			func(i int, l gatehouse.AuditLog) bool { return i < 3 && l.UserID == e.alice }},
		{"window with offset", url.Values{"from": {e.rows[2].CreatedAt.In(time.FixedZone("", -5*3600)).Format(time.RFC3339)}, "to": {"2025-06-01T14:06:00.5+02:00"}, "user_id": {e.bob}},
			func(i int, l gatehouse.AuditLog) bool { return i >= 2 && i <= 6 && l.UserID == e.bob }},
		{"min risk", url.Values{"min_risk": {"50"}, "user_id": {e.alice}},
			func(i int, l gatehouse.AuditLog) bool { return l.RiskScore >= 50 && l.UserID == e.alice }},
		{"min risk 0", url.Values{"min_risk": {"0"}, "user_id": {e.alice}},
			func(i int, l gatehouse.AuditLog) bool { return l.UserID == e.alice }},
		{"combined", url.Values{"user_id": {e.bob}, "action": {actFailed}, "min_risk": {"20"}, "from": {at(0)}, "to": {at(11)}},
			func(i int, l gatehouse.AuditLog) bool {
				return l.UserID == e.bob && l.Action == actFailed && l.RiskScore >= 20 && i < 11
			}},
	} {
		want := e.want(tc.keep)
		if tc.name != "unknown user" {
			require.NotEmpty(t, want, "%s: the fixture changed", tc.name)
		}
		got := e.onlyFixture(ids(t, e.list(tc.q)))
		require.Equal(t, want, got, tc.name)
	}
}

func testAuditPagination(t *testing.T, e *auditEnv) {
	for _, q := range []url.Values{
		{"limit": {"5"}},
		{"limit": {"1"}, "user_id": {e.alice}},
		{"limit": {"2"}, "action": {actLogin}, "min_risk": {"10"}},
	} {
		var (
			got   []string
			pages int
		)
		for {
			r := e.list(q)
			page := ids(t, r)
			got = append(got, page...)
			pages++
			require.LessOrEqual(t, pages, 50, "pagination does not end")
			next, _ := r.JSON["next_cursor"].(string)
			if next == "" {
				require.Nil(t, r.JSON["next_cursor"])
				break
			}
			require.Len(t, page, mustAtoi(t, q.Get("limit")), "only the last page is short")
			q.Set("cursor", next)
		}
		// Newest first, no duplicates, and every fixture row the filter
		// selects, in order.
		require.True(t, slices.IsSortedFunc(got, func(a, b string) int { return strings.Compare(b, a) }), "%v", got)
		require.Equal(t, len(got), len(slices.Compact(slices.Clone(got))))
		want := e.want(func(i int, l gatehouse.AuditLog) bool {
			return (q.Get("user_id") == "" || l.UserID == q.Get("user_id")) &&
				(q.Get("action") == "" || l.Action == q.Get("action")) &&
				(q.Get("min_risk") == "" || l.RiskScore >= mustAtoi(t, q.Get("min_risk")))
		})
		require.Equal(t, want, e.onlyFixture(got), "query %v", q)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', s)
		n = n*10 + int(c-'0')
	}
	return n
}

func testAuditAccess(t *testing.T, e *auditEnv) {
	r := e.Do(http.MethodGet, "/admin/audit-logs", nil, "")
	require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))
	require.Equal(t, "unauthorized", r.Code())

	r = e.Do(http.MethodGet, "/admin/audit-logs", nil, "not-a-token")
	require.Equal(t, http.StatusUnauthorized, r.Status, string(r.Raw))

	r = e.Do(http.MethodGet, "/admin/audit-logs", nil, e.plain)
	require.Equal(t, http.StatusForbidden, r.Status, string(r.Raw))
	require.Equal(t, "permission_denied", r.Code())
	require.NotContains(t, string(r.Raw), e.rows[0].ID)

	// audit:read through the moderator role is enough.
	r = e.Do(http.MethodGet, "/admin/audit-logs?user_id="+e.alice, nil, e.moderator)
	require.Equal(t, e.want(func(i int, l gatehouse.AuditLog) bool { return l.UserID == e.alice }), ids(t, r))
}

func testAuditValidation(t *testing.T, e *auditEnv) {
	for _, tc := range []struct {
		query, location string
	}{
		{"from=yesterday", "query.from"},
		{"from=2025-06-01", "query.from"},
		{"to=2025-13-01T00:00:00Z", "query.to"},
		{"min_risk=101", "query.min_risk"},
		{"min_risk=-1", "query.min_risk"},
		{"min_risk=high", "query.min_risk"},
		{"limit=0", "query.limit"},
		{"limit=201", "query.limit"},
		{"cursor=%21%21%21", "query.cursor"},
		{"cursor=" + strings.Repeat("QUFB", 30), "query.cursor"},
		{"user_id=" + strings.Repeat("x", 65), "query.user_id"},
		// PostgreSQL refuses these in text parameters; they must not 500.
		{"user_id=%00", "query.user_id"},
		{"action=%FF", "query.action"},
		{"cursor=AAAA", "query.cursor"}, // three NUL bytes
		{"cursor=_w", "query.cursor"},   // 0xFF
	} {
		r := e.Do(http.MethodGet, "/admin/audit-logs?"+tc.query, nil, e.admin)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", tc.query, r.Raw)
		require.Equal(t, "validation_failed", r.Code(), tc.query)
		errs, _ := r.JSON["errors"].([]any)
		var locations []string
		for _, fe := range errs {
			locations = append(locations, fe.(map[string]any)["location"].(string))
		}
		require.Contains(t, locations, tc.location, "%s: %s", tc.query, r.Raw)
	}
	// An unknown but well-formed cursor is no error: it is a position
	// (here past the oldest row).
	r := e.list(url.Values{"cursor": {base64.RawURLEncoding.EncodeToString([]byte("00000000-0000-7000-8000-000000000000"))}})
	require.Empty(t, ids(t, r))
}
