package web

import (
	"net/http"
	"net/url"
	"strings"
)

// Brand is the service's look on every page (GATEHOUSE_BRAND_*): an
// optional logo beside the service name, and an optional primary colour.
type Brand struct {
	// Logo is an image file's contents, served at /assets/brand-logo with
	// LogoType as its content type; or LogoURL names an https image, whose
	// origin the pages' CSP then allows for images.
	Logo     []byte
	LogoType string
	LogoURL  string
	// Color is the primary colour (#rrggbb) of buttons and links in the
	// light scheme; the configuration checks it keeps 4.5:1 contrast with
	// white button text. The dark scheme keeps its own.
	Color string
}

// brandLogoPath is where a logo file is served.
const brandLogoPath = "/assets/brand-logo"

// LogoSrc is the logo's address for an img tag ("" for none).
func (b Brand) LogoSrc() string {
	switch {
	case b.LogoURL != "":
		return b.LogoURL
	case len(b.Logo) > 0:
		return brandLogoPath
	}
	return ""
}

// logoOrigin is the origin of a logo served from elsewhere ("" for none).
func (b Brand) logoOrigin() string {
	u, err := url.Parse(b.LogoURL)
	if b.LogoURL == "" || err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func (p *Pages) brandLogo(w http.ResponseWriter, r *http.Request) {
	if len(p.d.Brand.Logo) == 0 {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", p.d.Brand.LogoType)
	h.Set("X-Content-Type-Options", "nosniff")
	// An SVG opened on its own runs no script and loads nothing.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	h.Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(p.d.Brand.Logo)
}

// brandCSS sets the primary colour of the light scheme.
func (p *Pages) brandCSS(w http.ResponseWriter, r *http.Request) {
	c := p.d.Brand.Color
	if c == "" || len(c) != 7 || strings.Trim(c[1:], "0123456789abcdefABCDEF") != "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write([]byte("@media not (prefers-color-scheme:dark){:root{--accent:" + c + ";--accent-fg:#fff}}\n"))
}
