package authz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// fixture is one running server with a signed-in administrator.
type fixture struct {
	*apptest.Env
	AdminID    string
	AdminToken string
	seq        atomic.Int64
}

// newFixture starts the whole server on engine and signs in an
// administrator.
//
// The job workers are stopped at once: nothing here depends on events
// being fanned out (emails, webhooks), and on SQLite River's six queues,
// polled every 20 ms by apptest, share the single connection with the
// requests; under -race that makes every request about ten times slower.
// Jobs are still inserted in their transactions as in production.
func newFixture(t testing.TB, engine string, extra map[string]string) *fixture {
	t.Helper()
	env := apptest.New(t, engine, extra)
	ctx := context.Background()
	require.NoError(t, env.App.Worker.Stop(ctx))
	f := &fixture{Env: env}
	email := f.Email("admin")
	u, err := env.App.Accounts.CreateUser(ctx, email, apptest.StrongPassword, []string{"admin"}, true)
	require.NoError(t, err)
	f.AdminID = u.ID
	f.AdminToken = env.Login(email, apptest.StrongPassword).Access
	return f
}

// forEachEngine runs fn on every engine with one fixture per engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, f *fixture)) {
	forEachEngineWith(t, nil, fn)
}

// forEachEngineWith is forEachEngine with configuration overrides.
func forEachEngineWith(t *testing.T, extra map[string]string, fn func(t *testing.T, f *fixture)) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			fn(t, newFixture(t, eng, extra))
		})
	}
}

// Name returns a role name no other call on f returns.
func (f *fixture) Name(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, f.seq.Add(1))
}

// Email returns an address no other call on f returns.
func (f *fixture) Email(prefix string) string {
	// Zero-padded: short digit runs in the local part could match the
	// password under the policy's leet substitutions.
	return fmt.Sprintf("%s-%06d@example.com", prefix, f.seq.Add(1))
}

// NewUser makes a verified account holding "user" plus roles and signs it
// in.
func (f *fixture) NewUser(t require.TestingT, roles ...string) (id, token string) {
	email := f.Email("user")
	u, err := f.App.Accounts.CreateUser(context.Background(), email, apptest.StrongPassword, roles, true)
	require.NoError(t, err)
	return u.ID, f.Login(email, apptest.StrongPassword).Access
}

// MakeRole inserts a role straight into the store: setup for properties
// that are not about making roles. (Through the service every write also
// enqueues its event job, which on SQLite under -race costs about 20 ms;
// a property test makes hundreds of roles.)
func (f *fixture) MakeRole(t require.TestingT, perms []string) (id, name string) {
	now := f.Clock.Now().UTC()
	r := gatehouse.Role{ID: gatehouse.NewID(), Name: f.Name("r"), Permissions: perms, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, f.App.DB.CreateRole(context.Background(), r))
	return r.ID, r.Name
}

// Grant makes the user's roles exactly "user" plus roles, in the store,
// then drops the user's cached permissions as the service does: setup for
// properties that are not about assignment.
func (f *fixture) Grant(t require.TestingT, userID string, roles ...string) {
	ctx := context.Background()
	require.NoError(t, f.App.DB.SetUserRoles(ctx, userID, append([]string{"user"}, roles...)))
	f.App.Authz.InvalidateUser(ctx, userID)
}

// PlainUser inserts a verified account holding "user" plus roles straight
// into the store, without a password: for checks made by the
// administrator with user_id.
func (f *fixture) PlainUser(t require.TestingT, roles ...string) string {
	ctx := context.Background()
	now := f.Clock.Now().UTC()
	u := gatehouse.User{ID: gatehouse.NewID(), Email: gatehouse.Email(f.Email("plain")), EmailVerified: true, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, f.App.DB.CreateUser(ctx, u))
	require.NoError(t, f.App.DB.SetUserRoles(ctx, u.ID, append([]string{"user"}, roles...)))
	return u.ID
}

// CreateRole makes a role through the API as the administrator.
func (f *fixture) CreateRole(t require.TestingT, perms []string) (id, name string) {
	name = f.Name("r")
	r := f.Do("POST", "/admin/roles", map[string]any{"name": name, "permissions": perms}, f.AdminToken)
	require.Equal(t, http.StatusCreated, r.Status, "create role %v: %s", perms, r.Raw)
	return r.Str("id"), name
}

// SetRoles replaces the user's roles through the API as the administrator
// and returns the roles the answer lists.
func (f *fixture) SetRoles(t require.TestingT, userID string, roles ...string) []string {
	r := f.Do("PUT", "/admin/users/"+userID+"/roles", map[string]any{"roles": roles}, f.AdminToken)
	require.Equal(t, http.StatusOK, r.Status, "set roles %v: %s", roles, r.Raw)
	return strs(r.JSON["roles"])
}

// Check asks POST /authz/check whether the bearer holds perm.
func (f *fixture) Check(t require.TestingT, token, perm string) bool {
	r := f.Do("POST", "/authz/check", map[string]any{"permission": perm}, token)
	require.Equal(t, http.StatusOK, r.Status, "check %s: %s", perm, r.Raw)
	allowed, ok := r.JSON["allowed"].(bool)
	require.True(t, ok, "allowed missing: %s", r.Raw)
	return allowed
}

// CheckFor asks POST /authz/check, as the administrator, whether userID
// holds perm.
func (f *fixture) CheckFor(t require.TestingT, userID, perm string) bool {
	r := f.Do("POST", "/authz/check", map[string]any{"permission": perm, "user_id": userID}, f.AdminToken)
	require.Equal(t, http.StatusOK, r.Status, "check %s for %s: %s", perm, userID, r.Raw)
	allowed, ok := r.JSON["allowed"].(bool)
	require.True(t, ok, "allowed missing: %s", r.Raw)
	return allowed
}

// RequireChecks asserts /authz/check answers want(p) for every probe.
func (f *fixture) RequireChecks(t require.TestingT, token string, probes []string, want func(string) bool, msg string) {
	for _, p := range probes {
		require.Equal(t, want(p), f.Check(t, token, p), "%s: check %q", msg, p)
	}
}

// MyRoles returns the roles GET /auth/me lists for the bearer.
func (f *fixture) MyRoles(t require.TestingT, token string) []string {
	r := f.Do("GET", "/auth/me", nil, token)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
	return strs(r.JSON["roles"])
}

// RoleIDs maps role names to ids from GET /admin/roles.
func (f *fixture) RoleIDs(t require.TestingT) map[string]map[string]any {
	r := f.Do("GET", "/admin/roles", nil, f.AdminToken)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
	out := map[string]map[string]any{}
	for _, it := range r.JSON["items"].([]any) {
		m := it.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// tryCheck is Check for code that may not fail the test from its
// goroutine (require.Eventually's condition).
func tryCheck(env *apptest.Env, token, perm, userID string) (bool, error) {
	body, _ := json.Marshal(map[string]string{"permission": perm, "user_id": userID})
	req, err := http.NewRequest("POST", env.URL+"/authz/check", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := env.Server.Client().Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("check %s: %d %s", perm, resp.StatusCode, raw)
	}
	var out struct {
		Allowed *bool `json:"allowed"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Allowed == nil {
		return false, fmt.Errorf("check %s: bad answer %s", perm, raw)
	}
	return *out.Allowed, nil
}

func strs(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, _ := it.(string)
		out = append(out, s)
	}
	return out
}

// grants is the reference model of permission semantics, written without
// authz.Set: held grants probe when it holds "*", probe itself, or the
// wildcard of probe's resource. A wildcard probe ("users:*") is thereby
// granted only by "users:*" or "*", and "*" only by "*".
func grants(held []string, probe string) bool {
	res, _, _ := strings.Cut(probe, ":")
	for _, h := range held {
		if h == "*" || h == probe || h == res+":*" {
			return true
		}
	}
	return false
}

// A small universe, so that drawn roles overlap, wildcards hit and the
// admin API's own permissions (users:read, roles:assign ...) come up.
var (
	resources = []string{"users", "roles", "audit", "authz", "billing", "docs.v2"}
	actions   = []string{"read", "write", "lock", "assign", "check", "delete"}

	genExact = rapid.Custom(func(t *rapid.T) string {
		return rapid.SampledFrom(resources).Draw(t, "resource") + ":" + rapid.SampledFrom(actions).Draw(t, "action")
	})
	// genPermission draws a grantable permission: mostly exact, sometimes
	// a resource wildcard, rarely "*".
	genPermission = rapid.Custom(func(t *rapid.T) string {
		switch k := rapid.IntRange(0, 24).Draw(t, "kind"); {
		case k == 0:
			return "*"
		case k <= 5:
			return rapid.SampledFrom(resources).Draw(t, "resource") + ":*"
		default:
			return genExact.Draw(t, "exact")
		}
	})
	genPermissions = rapid.SliceOfN(genPermission, 1, 5)
)

// probesFor returns every permission in the given sets plus a few drawn
// ones, without repeats: what a check should be asked about.
func probesFor(t *rapid.T, sets ...[]string) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s...)
	}
	out = append(out, rapid.SliceOfN(genPermission, 1, 3).Draw(t, "probes")...)
	slices.Sort(out)
	return slices.Compact(out)
}

// endpoint is one permission-checked administration operation, with a
// request that succeeds when the caller holds perm and nothing else.
type endpoint struct {
	name   string
	method string
	perm   string
	want   int
	// req returns the path and body; it may set up what the call needs.
	req func(t require.TestingT, f *fixture, s *adminScene) (string, any)
}

// adminScene is what the endpoint requests act on.
type adminScene struct {
	victimID     string // a plain account, locked and unlocked at will
	editableRole string // id of a custom role without permissions
}

func newAdminScene(t require.TestingT, f *fixture) *adminScene {
	u, err := f.App.Accounts.CreateUser(context.Background(), f.Email("victim"), apptest.StrongPassword, nil, true)
	require.NoError(t, err)
	id, _ := f.MakeRole(t, []string{})
	return &adminScene{victimID: u.ID, editableRole: id}
}

var adminEndpoints = []endpoint{
	{"list users", "GET", "users:read", http.StatusOK, func(require.TestingT, *fixture, *adminScene) (string, any) {
		return "/admin/users?limit=5", nil
	}},
	{"get user", "GET", "users:read", http.StatusOK, func(_ require.TestingT, _ *fixture, s *adminScene) (string, any) {
		return "/admin/users/" + s.victimID, nil
	}},
	{"set user roles", "PUT", "roles:assign", http.StatusOK, func(_ require.TestingT, _ *fixture, s *adminScene) (string, any) {
		// The victim holds exactly "user", so nothing is added or removed
		// and the call needs no permission beyond roles:assign.
		return "/admin/users/" + s.victimID + "/roles", map[string]any{"roles": []string{"user"}}
	}},
	{"lock user", "PUT", "users:lock", http.StatusOK, func(_ require.TestingT, _ *fixture, s *adminScene) (string, any) {
		return "/admin/users/" + s.victimID + "/lock", map[string]any{"reason": "property test"}
	}},
	{"unlock user", "PUT", "users:lock", http.StatusOK, func(_ require.TestingT, _ *fixture, s *adminScene) (string, any) {
		return "/admin/users/" + s.victimID + "/unlock", nil
	}},
	{"list roles", "GET", "roles:read", http.StatusOK, func(require.TestingT, *fixture, *adminScene) (string, any) {
		return "/admin/roles", nil
	}},
	{"create role", "POST", "roles:write", http.StatusCreated, func(_ require.TestingT, f *fixture, _ *adminScene) (string, any) {
		return "/admin/roles", map[string]any{"name": f.Name("made"), "permissions": []string{}}
	}},
	{"update role", "PUT", "roles:write", http.StatusOK, func(_ require.TestingT, f *fixture, s *adminScene) (string, any) {
		return "/admin/roles/" + s.editableRole, map[string]any{"description": f.Name("d")}
	}},
	{"delete role", "DELETE", "roles:write", http.StatusNoContent, func(t require.TestingT, f *fixture, _ *adminScene) (string, any) {
		id, _ := f.MakeRole(t, []string{})
		return "/admin/roles/" + id, nil
	}},
}
