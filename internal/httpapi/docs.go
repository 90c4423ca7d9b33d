package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Tags group operations in the docs; resource files use these names.
const (
	TagOperations = "Operations"
	TagKeys       = "Keys"
)

// SecurityBearer names the bearer-token security scheme; operations that
// need a signed-in user declare
//
//	Security: []map[string][]string{{httpapi.SecurityBearer: {}}}
const SecurityBearer = "bearer"

// DefaultServiceName brands the docs page when Deps.ServiceName is empty.
const DefaultServiceName = "Gatehouse"

// apiConfig is the Huma configuration: OpenAPI 3.1 at BasePath/openapi.json
// (and .yaml), our problem+json errors. Huma's docs page is off: it loads
// its renderer from a public CDN, so it is a blank page on a machine
// without internet; registerDocs serves ours from the binary instead.
//
// Huma's default create hook (a transformer adding "$schema" to every
// response body and Link headers) and the /schemas route are left out: the
// answers are exactly the documented objects.
func apiConfig(version string) huma.Config {
	cfg := huma.DefaultConfig("Gatehouse API", version)
	cfg.CreateHooks = nil
	cfg.SchemasPath = ""
	cfg.OpenAPIPath = "/openapi"
	cfg.DocsPath = ""
	cfg.Transformers = []huma.Transformer{transformProblems}
	cfg.Info.Description = "Gatehouse is a self-hosted authentication and authorization server. " +
		"Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`. " +
		"Authenticated calls send `Authorization: Bearer <access_token>`. " +
		"Request bodies are JSON sent with `Content-Type: application/json` (a non-empty body without it is 415 " +
		"unsupported_media_type); keys are exact-case and appear once per object (a repeated key is 400 malformed_json, " +
		"a key in another case or unknown is 422 validation_failed). " +
		"Every answer carries `X-Request-ID`. " +
		"JSON, HTML, YAML and text answers of 1 KiB or more are compressed (`br` or `gzip`, as `Accept-Encoding` allows; " +
		"`Vary: Accept-Encoding`), except answers not to be stored sent to a cookie-carrying request that may come from another site. " +
		"Public documents (the JWKS, this document, the OpenID discovery document, the docs page) carry a strong `ETag`: " +
		"`If-None-Match` with it answers `304 Not Modified` without a body. Answers with tokens or personal data are " +
		"`Cache-Control: no-store`. GETs of resources and lists take `fields` (a comma-separated list) to return only those " +
		"fields (of each item, for a list); an unknown field is 422 naming `query.fields`."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		SecurityBearer: {
			Type:         "http",
			Scheme:       "bearer",
			BearerFormat: "JWT",
			Description:  "An RS256 access token (typ at+jwt) from /auth/login, /auth/refresh or /auth/mfa/verify.",
		},
	}
	cfg.Tags = []*huma.Tag{
		{Name: TagOperations, Description: "Health, readiness and metrics for operators and orchestrators."},
		{Name: TagKeys, Description: "Public keys that verify Gatehouse access tokens."},
	}
	return cfg
}

// The docs page: Swagger UI (swagger-ui-dist, vendored under docsui/ with
// its license; docsui/README.md says which release and how to update it),
// started by docsui/docs.js, all served from the binary. Nothing is
// fetched from another host, so the page works offline, and its policy
// allows scripts and styles from this origin only: no inline script, no
// eval, no inline style.
//
//go:embed docsui/index.html docsui/docs.js docsui/docs.css docsui/swagger-ui-dist/swagger-ui-bundle.js docsui/swagger-ui-dist/swagger-ui.css
var docsFS embed.FS

// DocsCSP is the docs page's Content-Security-Policy. img-src allows data:
// because Swagger UI's stylesheet draws its icons as data: URIs.
const DocsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docsAssetPath is where the page's scripts and styles are served; each
// name carries a hash of its content, so they can be cached for good.
const docsAssetPath = BasePath + "/docs/assets/"

// docsAsset is one embedded file of the docs page.
type docsAsset struct {
	// URL is the absolute path it is served at (with its content hash).
	URL string
	// Integrity is its Subresource Integrity value (sha384-...).
	Integrity string

	contentType string
	body        []byte
	etag        string

	gzOnce sync.Once
	gz     []byte
}

// gzipped compresses the asset on first use: the bundle shrinks about
// fourfold, and a process that never serves the page never pays for it.
func (a *docsAsset) gzipped() []byte {
	a.gzOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level cannot fail
		_, _ = zw.Write(a.body)                                  // writes to a bytes.Buffer do not fail
		_ = zw.Close()
		a.gz = buf.Bytes()
	})
	return a.gz
}

// docsPageAssets are the files the page links, by role.
type docsPageAssets struct {
	Bundle, CSS, PageJS, PageCSS *docsAsset
	byName                       map[string]*docsAsset
}

var (
	docsAssets   = loadDocsAssets()
	docsTemplate = template.Must(template.ParseFS(docsFS, "docsui/index.html"))
)

func loadDocsAssets() *docsPageAssets {
	all := &docsPageAssets{byName: map[string]*docsAsset{}}
	load := func(file, contentType string) *docsAsset {
		body, err := docsFS.ReadFile(file)
		if err != nil {
			panic("docs page asset missing from the binary: " + err.Error())
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:8])
		base := path.Base(file)
		ext := path.Ext(base)
		name := strings.TrimSuffix(base, ext) + "." + hash + ext
		sri := sha512.Sum384(body)
		a := &docsAsset{
			URL:         docsAssetPath + name,
			Integrity:   "sha384-" + base64.StdEncoding.EncodeToString(sri[:]),
			contentType: contentType,
			body:        body,
			etag:        `"` + hash + `"`,
		}
		all.byName[name] = a
		return a
	}
	const js, css = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
	all.Bundle = load("docsui/swagger-ui-dist/swagger-ui-bundle.js", js)
	all.CSS = load("docsui/swagger-ui-dist/swagger-ui.css", css)
	all.PageJS = load("docsui/docs.js", js)
	all.PageCSS = load("docsui/docs.css", css)
	return all
}

// registerDocs serves the docs page and its assets. They are plain routes,
// not operations: the OpenAPI document describes the API, not its docs.
func (s *Server) registerDocs() {
	serviceName := s.serviceName
	if strings.TrimSpace(serviceName) == "" {
		serviceName = DefaultServiceName
	}
	var page bytes.Buffer
	err := docsTemplate.Execute(&page, struct {
		*docsPageAssets
		Name, SpecURL string
	}{docsAssets, serviceName, BasePath + "/openapi.json"})
	if err != nil {
		panic("render the docs page: " + err.Error()) // only a broken template, caught by any test
	}
	body := page.Bytes()
	s.mux.HandleFunc("GET "+BasePath+"/docs", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", DocsCSP)
		h.Set("Content-Type", "text/html; charset=utf-8")
		// The page names the assets by hash: it must be revalidated so an
		// upgrade's new assets are picked up; it carries nothing secret.
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
	s.mux.HandleFunc("GET "+docsAssetPath+"{name}", serveDocsAsset)
}

// serveDocsAsset answers one asset, compressed when the client takes gzip.
// A name whose hash is not the current one is 404, never an old or a
// different file under a cacheable name.
func serveDocsAsset(w http.ResponseWriter, r *http.Request) {
	a := docsAssets.byName[r.PathValue("name")]
	if a == nil {
		writeProblem(w, r, newProblem(http.StatusNotFound, "no such resource"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Add("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = a.gzipped()
		etag = strings.TrimSuffix(etag, `"`) + `-gzip"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
