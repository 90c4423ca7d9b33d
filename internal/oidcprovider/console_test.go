package oidcprovider_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// clientToken asks for a client_credentials token; it returns the status.
func clientToken(t *testing.T, e *apptest.Env, id, secret, scope string) int {
	t.Helper()
	req, err := http.NewRequest("POST", issuer+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := (&http.Client{Transport: toServer{addr: strings.TrimPrefix(e.Server.URL, "http://")}}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

var (
	secretRe   = regexp.MustCompile(`id="client-secret">([^<]+)<`)
	clientIDRe = regexp.MustCompile(`id="client-id">([^<]+)<`)
)

// consoleBrowser signs a browser in to the admin console's clients page.
func consoleBrowser(t *testing.T, e *apptest.Env, email string) *rp {
	t.Helper()
	b := newRP(t, e, "x", "")
	resp := b.open("GET", "/admin/clients", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b.signIn(email)
	return b
}

// form posts a console form with the browser's CSRF token.
func (r *rp) form(path string, f url.Values) *http.Response {
	r.t.Helper()
	if f == nil {
		f = url.Values{}
	}
	f.Set("csrf", r.hidden().Get("csrf"))
	return r.open("POST", path, f)
}

// The admin console's OAuth clients section: register (the secret shown
// once, and it works), change the redirect URIs, rotate the secret (the
// old one stops), delete; each action with the admin API's permission,
// and a client is given only permissions its administrator holds.
func TestAdminConsoleClients(t *testing.T) {
	e := apptest.New(t, "sqlite", nil)
	ctx := t.Context()
	root, err := e.App.Accounts.CreateUser(ctx, "root@example.com", apptest.StrongPassword, []string{"admin"}, true)
	require.NoError(t, err)
	_, err = e.App.Roles.CreateRole(ctx, root.ID, "client-viewer", "", []string{"clients:read"})
	require.NoError(t, err)
	_, err = e.App.Roles.CreateRole(ctx, root.ID, "client-admin", "", []string{"clients:read", "clients:write", "users:read"})
	require.NoError(t, err)
	for email, roles := range map[string][]string{"boss@example.com": {"client-admin"}, "viewer@example.com": {"client-viewer"},
		"ada@example.com": nil} {
		_, err := e.App.Accounts.CreateUser(ctx, email, apptest.StrongPassword, roles, true)
		require.NoError(t, err)
	}

	b := consoleBrowser(t, e, "boss@example.com")
	require.Contains(t, b.last, "No clients yet.")
	require.Contains(t, b.last, `href="/admin/clients"`, "the console's menu names the section")
	require.Contains(t, b.last, `href="/admin"`, "clients:read alone opens the console")

	// Register: the secret is shown once, and it works.
	form := url.Values{"name": {"Billing"}, "redirect_uris": {rpCallback}, "scopes": {"openid users:read"},
		"grant_types": {"authorization_code", "client_credentials"}}
	resp := b.form("/admin/clients", form)
	require.Equal(t, http.StatusOK, resp.StatusCode, b.last)
	require.Contains(t, b.last, "shown this once")
	id, secret := clientIDRe.FindStringSubmatch(b.last)[1], html.UnescapeString(secretRe.FindStringSubmatch(b.last)[1])
	require.Equal(t, http.StatusOK, clientToken(t, e, id, secret, "users:read"))
	b.open("GET", "/admin/clients/"+id, nil)
	require.NotContains(t, b.last, "client-secret", "never shown again")
	require.NotContains(t, b.last, secret)
	b.open("GET", "/admin/clients", nil)
	require.Contains(t, b.last, "Billing")

	// A post without the form's CSRF token changes nothing.
	resp = b.open("POST", "/admin/clients/"+id+"/delete", url.Values{})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	_, err = e.App.Clients.Get(ctx, id)
	require.NoError(t, err)
	b.open("GET", "/admin/clients", nil)

	// Invalid input is said in words, the form kept.
	resp = b.form("/admin/clients", url.Values{"name": {"Evil"}, "redirect_uris": {"http://evil.example/cb"},
		"scopes": {"openid"}, "grant_types": {"authorization_code"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, b.last, "http is allowed only on a loopback host")
	require.Contains(t, b.last, `value="Evil"`)

	// Not beyond the administrator's own permissions (audit:read is not theirs).
	resp = b.form("/admin/clients", url.Values{"name": {"Spy"}, "scopes": {"audit:read"}, "grant_types": {"client_credentials"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, b.last, "audit:read")
	resp = b.form("/admin/clients/"+id, url.Values{"name": {"Billing"}, "redirect_uris": {rpCallback},
		"scopes": {"openid users:read audit:read"}, "grant_types": {"authorization_code", "client_credentials"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Change the redirect URIs.
	resp = b.form("/admin/clients/"+id, url.Values{"name": {"Billing 2"}, "redirect_uris": {rpCallback + "\r\n" + rpLoggedOut},
		"scopes": {"openid users:read"}, "grant_types": {"authorization_code", "client_credentials"}, "first_party": {"on"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, b.last)
	require.Contains(t, b.last, "The client is saved.")
	cl, err := e.App.Clients.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "Billing 2", cl.Name)
	require.Equal(t, []string{rpCallback, rpLoggedOut}, cl.RedirectURIs)
	require.True(t, cl.FirstParty)

	// Rotate: the old secret stops at once.
	resp = b.form("/admin/clients/"+id+"/secret", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, b.last)
	rotated := html.UnescapeString(secretRe.FindStringSubmatch(b.last)[1])
	require.NotEqual(t, secret, rotated)
	require.Equal(t, http.StatusUnauthorized, clientToken(t, e, id, secret, "users:read"))
	require.Equal(t, http.StatusOK, clientToken(t, e, id, rotated, "users:read"))

	// A viewer sees the clients but cannot change them; a user without
	// clients:read cannot see them.
	v := consoleBrowser(t, e, "viewer@example.com")
	require.Contains(t, v.last, "Billing 2")
	require.NotContains(t, v.last, "Register a client")
	v.open("GET", "/admin/clients/"+id, nil)
	require.NotContains(t, v.last, "Rotate the secret")
	for _, path := range []string{"/admin/clients/" + id + "/secret", "/admin/clients/" + id + "/delete", "/admin/clients"} {
		resp = v.form(path, url.Values{"name": {"x"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, path)
		require.Contains(t, v.last, "clients:write")
	}
	require.Equal(t, http.StatusOK, clientToken(t, e, id, rotated, "users:read"), "the viewer rotated nothing")
	u := newRP(t, e, "x", "")
	u.open("GET", "/admin/clients", nil)
	resp = u.signIn("ada@example.com")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// The admin API applies the same rule.
	tok := e.Login("boss@example.com", apptest.StrongPassword).Access
	r := e.Do("POST", "/admin/clients", map[string]any{"name": "Spy", "grant_types": []string{"client_credentials"},
		"scopes": []string{"audit:read"}}, tok)
	apptest.Expect(t, r, http.StatusForbidden, "permission_denied")

	// Delete: its tokens stop.
	resp = b.form("/admin/clients/"+id+"/delete", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, b.last)
	require.Contains(t, b.last, "The client is deleted")
	require.Equal(t, http.StatusUnauthorized, clientToken(t, e, id, rotated, "users:read"))
	resp = b.open("GET", "/admin/clients/"+id, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	var audit []string
	for _, ev := range e.Events() {
		if strings.HasPrefix(string(ev.Type), "client.") {
			audit = append(audit, string(ev.Type))
		}
	}
	j, _ := json.Marshal(audit)
	require.Contains(t, string(j), "client.created")
	require.Contains(t, string(j), "client.deleted")
}
