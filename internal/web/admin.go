package web

import (
	"net/http"

	"github.com/gatehouse-auth/gatehouse"
)

// adminPerms are the permissions that open the admin console; each page
// and action checks its own, the same as its API operation.
var adminPerms = []string{"users:read", "roles:read", "audit:read"}

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
	return false
}

// can checks one permission of the signed-in user; false means it
// answered (403 in words).
func (p *Pages) can(w http.ResponseWriter, r *http.Request, si signedIn, perm string) bool {
	if p.d.Admin.Authz != nil {
		ok, err := p.d.Admin.Authz.Can(r.Context(), si.user.ID, perm)
		if err != nil {
			p.fail(w, r, "sent", p.me(r, si, "Admin"), err)
			return false
		}
		if ok {
			return true
		}
	}
	p.fail(w, r, "sent", p.me(r, si, "Admin"), gatehouse.Errorf(gatehouse.CodePermissionDenied,
		"you do not have the %s permission this page needs", perm))
	return false
}

func (p *Pages) registerAdmin(h registerFn) {
	h("GET /admin", p.adminHome)
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
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
}
