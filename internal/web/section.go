package web

import (
	"html/template"
	"net/http"
)

// AdminSection serves a page of a console section another package
// provides (see AdminLink), checked and dressed like the console's own
// pages: the browser must be signed in and hold perm, a post must carry
// the form's CSRF token, and the page shows in the console's layout, menu
// and Content-Security-Policy. page gets the signed-in user and the CSRF
// token its forms carry; it answers the page's title and markup (made by
// its own html/template, so escaped there), or a path to go to after a
// post. An error is shown in words above the markup, with its status.
func (p *Pages) AdminSection(perm string,
	page func(r *http.Request, userID, csrf string) (title string, body template.HTML, redirect string, err error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		si, ok := p.admin(w, r, perm)
		if !ok {
			return
		}
		title, body, redirect, err := page(r, si.user.ID, p.csrfToken(w, r))
		if err == nil && redirect != "" {
			http.Redirect(w, r, redirect, http.StatusSeeOther)
			return
		}
		v := p.adminView(r, si, title, body)
		if err != nil {
			p.fail(w, r, "admin-section", v, err)
			return
		}
		p.render(w, r, http.StatusOK, "admin-section", v)
	}
}
