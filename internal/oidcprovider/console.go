package oidcprovider

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-auth/gatehouse"
)

// The admin console's "OAuth clients" section: list, register (the secret
// shown once), change redirect URIs and settings, rotate the secret,
// delete. It is served inside the hosted pages' console, which checks the
// sign-in, the CSRF token and the permission of each page, the same as the
// admin API's operation (clients:read to look, clients:write to change).

// ConsolePath is the section's page, for the console's menu.
const ConsolePath = "/admin/clients"

// Console serves a page of the admin console (a *web.Pages).
type Console interface {
	AdminSection(perm string, page func(r *http.Request, userID, csrf string) (title string, body template.HTML, redirect string, err error)) http.HandlerFunc
}

// Permissions answers whether a user holds a permission (an
// *authz.Checker).
type Permissions interface {
	Can(ctx context.Context, userID, perm string) (bool, error)
}

// consolePage is the section's template data.
type consolePage struct {
	CSRF     string
	Notice   string
	CanWrite bool
	Clients  []gatehouse.Client
	Next     string
	Client   *gatehouse.Client // the detail page's
	Secret   string            // a new secret, shown this once
	Form     clientForm        // the new-client form, kept on an error
}

// clientForm is what the create and update forms post.
type clientForm struct {
	Name, RedirectURIs, PostLogoutURIs, Scopes string
	GrantTypes                                 []string
	Public, FirstParty                         bool
}

var consoleNotices = map[string]string{
	"saved":   "The client is saved.",
	"deleted": "The client is deleted, and every session it was granted has ended.",
}

const consolePageSize = 100

// RegisterConsole puts the section's pages on mux.
func (c *Clients) RegisterConsole(mux *http.ServeMux, pages Console, perms Permissions) {
	s := &console{c: c, perms: perms}
	mux.HandleFunc("GET "+ConsolePath, pages.AdminSection("clients:read", s.list))
	mux.HandleFunc("POST "+ConsolePath, pages.AdminSection("clients:write", s.create))
	mux.HandleFunc("GET "+ConsolePath+"/{id}", pages.AdminSection("clients:read", s.detail))
	mux.HandleFunc("POST "+ConsolePath+"/{id}", pages.AdminSection("clients:write", s.update))
	mux.HandleFunc("POST "+ConsolePath+"/{id}/secret", pages.AdminSection("clients:write", s.rotate))
	mux.HandleFunc("POST "+ConsolePath+"/{id}/delete", pages.AdminSection("clients:write", s.delete))
}

type console struct {
	c     *Clients
	perms Permissions
}

func (s *console) page(r *http.Request, userID, csrf string) consolePage {
	ok, err := s.perms.Can(r.Context(), userID, "clients:write")
	return consolePage{CSRF: csrf, CanWrite: err == nil && ok, Notice: consoleNotices[r.URL.Query().Get("notice")],
		Form: clientForm{Scopes: strings.Join(oidcScopes, " "),
			GrantTypes: []string{gatehouse.GrantAuthorizationCode, gatehouse.GrantRefreshToken}}}
}

func (s *console) render(name string, d consolePage) template.HTML {
	var b bytes.Buffer
	if err := consoleTmpl.ExecuteTemplate(&b, name, d); err != nil {
		return template.HTML(template.HTMLEscapeString(err.Error())) //nolint:gosec // escaped
	}
	return template.HTML(b.String()) //nolint:gosec // made by html/template
}

func (s *console) list(r *http.Request, userID, csrf string) (string, template.HTML, string, error) {
	d := s.page(r, userID, csrf)
	cls, err := s.c.List(r.Context(), r.URL.Query().Get("after"), consolePageSize+1)
	if err != nil {
		return "OAuth clients", "", "", err
	}
	d.Clients = cls
	if len(cls) > consolePageSize {
		d.Clients, d.Next = cls[:consolePageSize], cls[consolePageSize-1].ID
	}
	return "OAuth clients", s.render("list", d), "", nil
}

func (s *console) detail(r *http.Request, userID, csrf string) (string, template.HTML, string, error) {
	cl, err := s.c.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return "OAuth client", "", "", err
	}
	d := s.page(r, userID, csrf)
	d.Client = &cl
	return cl.Name, s.render("detail", d), "", nil
}

// lines reads a textarea of URIs, one a line (or space-separated).
func lines(s string) []string {
	return strings.Fields(s)
}

func readForm(r *http.Request) (clientForm, ClientInput) {
	f := clientForm{Name: r.PostFormValue("name"), RedirectURIs: r.PostFormValue("redirect_uris"),
		PostLogoutURIs: r.PostFormValue("post_logout_redirect_uris"), Scopes: r.PostFormValue("scopes"),
		GrantTypes: r.PostForm["grant_types"], Public: r.PostFormValue("public") == "on", FirstParty: r.PostFormValue("first_party") == "on"}
	in := ClientInput{Name: f.Name, RedirectURIs: lines(f.RedirectURIs), PostLogoutRedirectURIs: lines(f.PostLogoutURIs),
		Scopes: strings.Fields(strings.ReplaceAll(f.Scopes, ",", " ")), GrantTypes: f.GrantTypes, Public: f.Public, FirstParty: f.FirstParty}
	if in.GrantTypes == nil {
		in.GrantTypes = []string{} // none ticked: say so, rather than take the defaults
	}
	return f, in
}

func (s *console) create(r *http.Request, userID, csrf string) (string, template.HTML, string, error) {
	f, in := readForm(r)
	cl, secret, err := s.c.Create(r.Context(), userID, in)
	d := s.page(r, userID, csrf)
	if err != nil {
		d.Form = f
		return "OAuth clients", s.render("new", d), "", err
	}
	d.Client, d.Secret = &cl, secret
	return cl.Name, s.render("detail", d), "", nil
}

func (s *console) update(r *http.Request, userID, csrf string) (string, template.HTML, string, error) {
	id := r.PathValue("id")
	_, in := readForm(r)
	cl, err := s.c.Update(r.Context(), userID, id, in)
	if err != nil {
		if cur, gerr := s.c.Get(r.Context(), id); gerr == nil {
			d := s.page(r, userID, csrf)
			d.Client = &cur
			return cur.Name, s.render("detail", d), "", err
		}
		return "OAuth client", "", "", err
	}
	return "", "", ConsolePath + "/" + url.PathEscape(cl.ID) + "?notice=saved", nil
}

func (s *console) rotate(r *http.Request, userID, csrf string) (string, template.HTML, string, error) {
	id := r.PathValue("id")
	secret, err := s.c.RotateSecret(r.Context(), userID, id)
	cl, gerr := s.c.Get(r.Context(), id)
	if gerr != nil {
		return "OAuth client", "", "", gerr
	}
	d := s.page(r, userID, csrf)
	d.Client, d.Secret = &cl, secret
	return cl.Name, s.render("detail", d), "", err
}

func (s *console) delete(r *http.Request, userID, _ string) (string, template.HTML, string, error) {
	if err := s.c.Delete(r.Context(), userID, r.PathValue("id")); err != nil {
		return "OAuth client", "", "", err
	}
	return "", "", ConsolePath + "?notice=deleted", nil
}

var consoleTmpl = template.Must(template.New("console").Funcs(template.FuncMap{
	"join": strings.Join, "has": slices.Contains[[]string],
	"grants": func() []string {
		return []string{gatehouse.GrantAuthorizationCode, gatehouse.GrantRefreshToken, gatehouse.GrantClientCredentials}
	},
	"form": func(c gatehouse.Client) clientForm {
		return clientForm{Name: c.Name, RedirectURIs: strings.Join(c.RedirectURIs, "\n"), PostLogoutURIs: strings.Join(c.PostLogoutRedirectURIs, "\n"),
			Scopes: strings.Join(c.Scopes, " "), GrantTypes: c.GrantTypes, Public: c.Public, FirstParty: c.FirstParty}
	},
	"ctype": func(c gatehouse.Client) string {
		if c.Public {
			return "public (PKCE)"
		}
		return "confidential"
	},
}).Parse(`
{{define "notice"}}{{if .Notice}}<p class="notice" id="notice">{{.Notice}}</p>{{end}}{{end}}

{{define "list"}}{{template "notice" .}}
<div class="table"><table id="clients"><caption class="hint">Applications that sign users in with OpenID Connect</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Client id</th><th scope="col">Type</th><th scope="col">Redirect URIs</th></tr></thead><tbody>
{{range .Clients}}<tr><th scope="row"><a href="/admin/clients/{{.ID}}">{{.Name}}</a>{{if .FirstParty}} <span class="hint">(first-party)</span>{{end}}</th>
<td><code>{{.ID}}</code></td><td>{{ctype .}}</td><td>{{range .RedirectURIs}}<code>{{.}}</code><br>{{end}}</td></tr>
{{else}}<tr><td colspan="4">No clients yet.</td></tr>{{end}}</tbody></table></div>
{{if .Next}}<p><a href="/admin/clients?after={{.Next}}">Next page</a></p>{{end}}
{{if .CanWrite}}{{template "new" .}}{{end}}{{end}}

{{define "new"}}<h2 id="new-client">Register a client</h2>
<form method="post" action="/admin/clients" class="card"><input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="c-name">Name</label><input id="c-name" name="name" value="{{.Form.Name}}" required maxlength="200">
{{template "fields" .Form}}
<label class="choice"><input type="checkbox" name="public"{{if .Form.Public}} checked{{end}}> Public client (a browser or native app: no secret, PKCE required)</label>
<button type="submit">Register</button></form>{{end}}

{{define "fields"}}
<label for="c-redirect">Redirect URIs <span class="hint">(one a line, matched exactly)</span></label><textarea id="c-redirect" name="redirect_uris" rows="3">{{.RedirectURIs}}</textarea>
<label for="c-logout">Post-logout redirect URIs <span class="hint">(one a line)</span></label><textarea id="c-logout" name="post_logout_redirect_uris" rows="2">{{.PostLogoutURIs}}</textarea>
<label for="c-scopes">Scopes <span class="hint">(space-separated: openid profile email offline_access and permissions such as users:read)</span></label><input id="c-scopes" name="scopes" value="{{.Scopes}}">
<fieldset><legend>Grant types</legend>{{$g := .GrantTypes}}{{range $x := grants}}<label class="choice"><input type="checkbox" name="grant_types" value="{{$x}}"{{if has $g $x}} checked{{end}}> {{$x}}</label>{{end}}</fieldset>
<label class="choice"><input type="checkbox" name="first_party"{{if .FirstParty}} checked{{end}}> First-party (your own app: users are not asked for consent)</label>{{end}}

{{define "detail"}}{{template "notice" .}}{{with .Client}}
{{if $.Secret}}<div class="card" id="secret-once"><p><strong>Copy the client secret now: it is shown this once.</strong> Gatehouse keeps only its hash.</p>
<p><code id="client-secret">{{$.Secret}}</code></p></div>{{end}}
<dl class="card">
<dt>Client id</dt><dd><code id="client-id">{{.ID}}</code></dd>
<dt>Type</dt><dd>{{ctype .}}</dd>
<dt>Grant types</dt><dd>{{join .GrantTypes " "}}</dd>
<dt>Scopes</dt><dd><code>{{join .Scopes " "}}</code></dd>
<dt>Redirect URIs</dt><dd id="redirect-uris">{{range .RedirectURIs}}<code>{{.}}</code><br>{{end}}</dd>
<dt>Post-logout redirect URIs</dt><dd>{{range .PostLogoutRedirectURIs}}<code>{{.}}</code><br>{{end}}</dd>
<dt>Consent</dt><dd>{{if .FirstParty}}first-party: not asked{{else}}asked on first use{{end}}</dd>
</dl>
{{if $.CanWrite}}<h2>Change</h2>
<form method="post" action="/admin/clients/{{.ID}}" class="card"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="c-name">Name</label><input id="c-name" name="name" value="{{.Name}}" required maxlength="200">
{{template "fields" (form .)}}
<button type="submit">Save</button></form>
{{if not .Public}}<form method="post" action="/admin/clients/{{.ID}}/secret" class="card"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<p>A new secret replaces the current one at once: the application stops working until it has the new one.</p>
<button type="submit" class="secondary" id="rotate">Rotate the secret</button></form>{{end}}
<form method="post" action="/admin/clients/{{.ID}}/delete" class="card"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<p>Deleting the client ends every session it was granted.</p>
<button type="submit" class="danger" id="delete">Delete the client</button></form>{{end}}
{{end}}<p><a href="/admin/clients">All clients</a></p>{{end}}
`))
