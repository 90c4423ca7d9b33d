package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// adminPerms are the permissions that open the admin console; each page
// and action checks its own, the same as its API operation.
var adminPerms = []string{"users:read", "roles:read", "audit:read", webhookPerm}

// AdminLink is one more section of the admin console, served by another
// package on the same router (the OpenID Provider's OAuth clients page):
// the console's menu shows it to holders of Permission.
type AdminLink struct {
	Label, Path, Permission string
}

// adminSection is a menu entry of the console.
type adminSection struct {
	Label, Path string
}

// isAdmin reports whether the user may open the admin console.
func (p *Pages) isAdmin(r *http.Request, userID string) bool {
	if p.d.Admin.Authz == nil {
		return false
	}
	for _, perm := range adminPerms {
		if ok, err := p.d.Admin.Authz.Can(r.Context(), userID, perm); err == nil && ok {
			return true
		}
	}
	for _, s := range p.d.AdminLinks {
		if p.allowed(r, userID, s.Permission) {
			return true
		}
	}
	return false
}

func (p *Pages) allowed(r *http.Request, userID, perm string) bool {
	ok, err := p.d.Admin.Authz.Can(r.Context(), userID, perm)
	return err == nil && ok
}

// adminData wraps an admin page's data with the console's menu.
type adminData struct {
	Menu []adminSection
	Page any
}

func (p *Pages) adminView(r *http.Request, si signedIn, title string, page any) view {
	v := p.me(r, si, title)
	var menu []adminSection
	for _, s := range []AdminLink{
		{"Users", "/admin/users", "users:read"}, {"Roles", "/admin/roles", "roles:read"},
		{"Audit log", "/admin/audit", "audit:read"}, {"Webhooks", "/admin/webhooks", webhookPerm}, {"Signing keys", "/admin/keys", "keys:read"},
	} {
		if p.allowed(r, si.user.ID, s.Permission) {
			menu = append(menu, adminSection{s.Label, s.Path})
		}
	}
	for _, s := range p.d.AdminLinks {
		if p.allowed(r, si.user.ID, s.Permission) {
			menu = append(menu, adminSection{s.Label, s.Path})
		}
	}
	v.Data = adminData{Menu: menu, Page: page}
	return v
}

// admin opens an admin page for holders of perm: false means it answered
// (a redirect to sign in, or 403 in words).
func (p *Pages) admin(w http.ResponseWriter, r *http.Request, perm string) (signedIn, bool) {
	var si signedIn
	var ok bool
	if r.Method == http.MethodGet {
		si, ok = p.requireUser(w, r)
	} else {
		si, ok = p.postSignedIn(w, r)
	}
	if !ok {
		return si, false
	}
	if p.d.Admin.Authz == nil || !p.allowed(r, si.user.ID, perm) {
		msg := "you do not have the " + perm + " permission this page needs"
		if perm == "" {
			msg = "the admin console is for holders of an admin permission (users:read, roles:read or audit:read)"
		}
		p.fail(w, r, "sent", p.me(r, si, "Admin"), gatehouse.Errorf(gatehouse.CodePermissionDenied, "%s", msg))
		return si, false
	}
	return si, true
}

func (p *Pages) registerAdmin(h registerFn) {
	h("GET /admin", p.adminHome)
	h("GET /admin/users", p.adminUsers)
	h("GET /admin/users/{id}", p.adminUser)
	h("POST /admin/users/{id}/roles", p.adminAction("roles:assign", "role", p.setRoles))
	h("POST /admin/users/{id}/lock", p.adminAction("users:lock", "locked", p.lock))
	h("POST /admin/users/{id}/unlock", p.adminAction("users:lock", "unlocked", p.unlock))
	h("POST /admin/users/{id}/sessions/{sid}/revoke", p.adminAction("users:lock", "session", p.adminRevoke))
	h("GET /admin/roles", p.adminRoles)
	h("POST /admin/roles", p.adminAction("roles:write", "role", p.createRole))
	h("POST /admin/roles/{id}", p.adminAction("roles:write", "role", p.updateRole))
	h("POST /admin/roles/{id}/delete", p.adminAction("roles:write", "role-deleted", p.deleteRole))
	h("GET /admin/audit", p.adminAudit)
	h("GET /admin/keys", p.adminKeys)
	p.registerAdminWebhooks(h)
}

func (p *Pages) adminHome(w http.ResponseWriter, r *http.Request) {
	si, ok := p.requireUser(w, r)
	if !ok {
		return
	}
	if !p.isAdmin(r, si.user.ID) {
		p.fail(w, r, "sent", p.me(r, si, "Admin"), gatehouse.Errorf(gatehouse.CodePermissionDenied,
			"the admin console is for holders of an admin permission (users:read, roles:read or audit:read)"))
		return
	}
	v := p.adminView(r, si, "Admin", nil)
	if menu := v.Data.(adminData).Menu; len(menu) > 0 {
		http.Redirect(w, r, menu[0].Path, http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "admin", v)
}

// adminAction runs an admin form post checked by perm, then goes back to
// where the form says (an admin path) with its notice.
func (p *Pages) adminAction(perm, notice string, do func(r *http.Request, si signedIn) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		si, ok := p.admin(w, r, perm)
		if !ok {
			return
		}
		back, err := do(r, si)
		if err != nil {
			p.fail(w, r, "admin", p.adminView(r, si, "Admin", nil), err)
			return
		}
		http.Redirect(w, r, back+"?notice="+notice, http.StatusSeeOther)
	}
}

type usersPage struct {
	Q     string
	Users []gatehouse.User
	Next  string
	Now   time.Time
}

func (p *Pages) adminUsers(w http.ResponseWriter, r *http.Request) {
	si, ok := p.admin(w, r, "users:read")
	if !ok {
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	const pageSize = 50
	users, err := p.d.Admin.Roles.ListUsers(r.Context(), store.UserQuery{Search: q, After: r.URL.Query().Get("after"), Limit: pageSize + 1})
	if err != nil {
		p.fail(w, r, "admin", p.adminView(r, si, "Users", nil), err)
		return
	}
	d := usersPage{Q: q, Users: users, Now: p.now()}
	if len(users) > pageSize {
		d.Users = users[:pageSize]
		d.Next = users[pageSize-1].ID
	}
	p.render(w, r, http.StatusOK, "admin-users", p.adminView(r, si, "Users", d))
}

type userPage struct {
	User     gatehouse.User
	Locked   bool
	Sessions []gatehouse.Session
	Roles    []gatehouse.Role
	CanRoles bool
	CanLock  bool
}

func (p *Pages) adminUser(w http.ResponseWriter, r *http.Request) {
	si, ok := p.admin(w, r, "users:read")
	if !ok {
		return
	}
	u, err := p.d.Admin.Accounts.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		p.fail(w, r, "admin", p.adminView(r, si, "User", nil), err)
		return
	}
	d := userPage{User: u, Locked: u.Locked(p.now()), CanRoles: p.allowed(r, si.user.ID, "roles:assign"),
		CanLock: p.allowed(r, si.user.ID, "users:lock")}
	if p.d.Admin.Sessions != nil {
		d.Sessions, _ = p.d.Admin.Sessions.List(r.Context(), u.ID)
	}
	if d.CanRoles {
		d.Roles, _ = p.d.Admin.Roles.ListRoles(r.Context())
	}
	v := p.adminView(r, si, string(u.Email), d)
	v.Notice = notices[r.URL.Query().Get("notice")]
	p.render(w, r, http.StatusOK, "admin-user", v)
}

func (p *Pages) setRoles(r *http.Request, si signedIn) (string, error) {
	id := r.PathValue("id")
	_, err := p.d.Admin.Roles.SetUserRoles(r.Context(), si.user.ID, id, r.PostForm["roles"])
	return "/admin/users/" + id, err
}

func (p *Pages) lock(r *http.Request, si signedIn) (string, error) {
	id := r.PathValue("id")
	_, err := p.d.Admin.Accounts.Lock(r.Context(), si.user.ID, id, r.PostFormValue("reason"))
	return "/admin/users/" + id, err
}

func (p *Pages) unlock(r *http.Request, si signedIn) (string, error) {
	id := r.PathValue("id")
	_, err := p.d.Admin.Accounts.Unlock(r.Context(), si.user.ID, id)
	return "/admin/users/" + id, err
}

func (p *Pages) adminRevoke(r *http.Request, _ signedIn) (string, error) {
	id := r.PathValue("id")
	return "/admin/users/" + id, p.d.Admin.Sessions.Revoke(r.Context(), id, r.PathValue("sid"), "admin_revoked")
}

type rolesPage struct {
	Roles    []gatehouse.Role
	CanWrite bool
}

func (p *Pages) adminRoles(w http.ResponseWriter, r *http.Request) {
	si, ok := p.admin(w, r, "roles:read")
	if !ok {
		return
	}
	roles, err := p.d.Admin.Roles.ListRoles(r.Context())
	if err != nil {
		p.fail(w, r, "admin", p.adminView(r, si, "Roles", nil), err)
		return
	}
	v := p.adminView(r, si, "Roles", rolesPage{Roles: roles, CanWrite: p.allowed(r, si.user.ID, "roles:write")})
	v.Notice = notices[r.URL.Query().Get("notice")]
	p.render(w, r, http.StatusOK, "admin-roles", v)
}

// permissionList reads a space- or comma-separated permission list.
func permissionList(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
}

func (p *Pages) createRole(r *http.Request, si signedIn) (string, error) {
	_, err := p.d.Admin.Roles.CreateRole(r.Context(), si.user.ID, r.PostFormValue("name"), r.PostFormValue("description"),
		permissionList(r.PostFormValue("permissions")))
	return "/admin/roles", err
}

func (p *Pages) updateRole(r *http.Request, si signedIn) (string, error) {
	desc, perms := r.PostFormValue("description"), permissionList(r.PostFormValue("permissions"))
	_, err := p.d.Admin.Roles.UpdateRole(r.Context(), si.user.ID, r.PathValue("id"), &desc, &perms)
	return "/admin/roles", err
}

func (p *Pages) deleteRole(r *http.Request, si signedIn) (string, error) {
	return "/admin/roles", p.d.Admin.Roles.DeleteRole(r.Context(), si.user.ID, r.PathValue("id"))
}

type auditPage struct {
	UserID, Action, From, To, MinRisk string
	Logs                              []gatehouse.AuditLog
	Next                              string
}

func (p *Pages) adminAudit(w http.ResponseWriter, r *http.Request) {
	si, ok := p.admin(w, r, "audit:read")
	if !ok {
		return
	}
	qs := r.URL.Query()
	d := auditPage{UserID: qs.Get("user_id"), Action: qs.Get("action"), From: qs.Get("from"), To: qs.Get("to"), MinRisk: qs.Get("min_risk")}
	const pageSize = 50
	q := store.AuditQuery{UserID: d.UserID, Action: d.Action, Before: qs.Get("before"), Limit: pageSize + 1}
	fail := func(err error) { p.fail(w, r, "admin-audit", p.adminView(r, si, "Audit log", d), err) }
	for _, f := range []struct {
		name, v string
		dst     **time.Time
	}{{"from", d.From, &q.From}, {"to", d.To, &q.To}} {
		if f.v == "" {
			continue
		}
		t, err := parseWhen(f.v)
		if err != nil {
			fail(gatehouse.InvalidField(f.name, f.name+" must be a date and time like 2026-01-31T13:45"))
			return
		}
		*f.dst = &t
	}
	if d.MinRisk != "" {
		n, err := strconv.Atoi(d.MinRisk)
		if err != nil || n < 0 || n > 100 {
			fail(gatehouse.InvalidField("min_risk", "the minimum risk is a number from 0 to 100"))
			return
		}
		q.MinRisk = n
	}
	logs, err := p.d.Admin.Audit.ListAuditLogs(r.Context(), q)
	if err != nil {
		fail(err)
		return
	}
	d.Logs = logs
	if len(logs) > pageSize {
		d.Logs = logs[:pageSize]
		d.Next = logs[pageSize-1].ID
	}
	p.render(w, r, http.StatusOK, "admin-audit", p.adminView(r, si, "Audit log", d))
}

// parseWhen reads a datetime-local field's value (UTC) or RFC 3339.
func parseWhen(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, gatehouse.InvalidField("when", "not a date")
}

type keysPage struct {
	Keys []gatehouse.SigningKey
}

func (p *Pages) adminKeys(w http.ResponseWriter, r *http.Request) {
	si, ok := p.admin(w, r, "keys:read")
	if !ok {
		return
	}
	var d keysPage
	if p.d.Admin.Keys != nil {
		keys, err := p.d.Admin.Keys.List(r.Context())
		if err != nil {
			p.fail(w, r, "admin", p.adminView(r, si, "Signing keys", nil), err)
			return
		}
		d.Keys = keys
	}
	p.render(w, r, http.StatusOK, "admin-keys", p.adminView(r, si, "Signing keys", d))
}
