package httpapi

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
)

// The built-in pages that emailed links open by default (the operator may
// point GATEHOUSE_EMAIL_VERIFY_URL / GATEHOUSE_PASSWORD_RESET_URL at their
// own app instead; the step-up confirmation of a risky sign-in always
// opens ConfirmSignInPage). Opening a page spends nothing: the token is posted to
// the API only when the person acts, so link scanners cannot consume it.
//
//go:embed pages/*.html pages/style.css
var pageFS embed.FS

var pages = parsePages()

// parsePages parses the pages with the stylesheet as the "style" template.
func parsePages() *template.Template {
	css, err := pageFS.ReadFile("pages/style.css")
	if err != nil {
		panic(err)
	}
	t := template.Must(template.New("style").Parse(string(css)))
	return template.Must(t.ParseFS(pageFS, "pages/*.html"))
}

func (s *Server) registerPages() {
	for path, name := range map[string]string{
		"/verify-email": "verify-email.html", "/reset-password": "reset-password.html", ConfirmSignInPage: "confirm-sign-in.html",
	} {
		s.mux.HandleFunc("GET "+path, s.page(name))
	}
}

func (s *Server) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		nonce := base64.RawStdEncoding.EncodeToString(b[:])
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+
			"'; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
		if err := pages.ExecuteTemplate(w, name, map[string]any{"Nonce": nonce, "API": BasePath}); err != nil {
			s.logger.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		}
	}
}
