package httpapi_test

import (
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

var update = flag.Bool("update", false, "rewrite api/openapi.json from the code")

func TestDocsPage(t *testing.T) {
	e := newEnv(t, func(d *httpapi.Deps) { d.ServiceName = `Acme <Auth> & "Co"` })
	rec := e.get("/api/v1/docs")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
	body := rec.Body.String()

	// Branded with the service name, escaped.
	require.Contains(t, body, "<title>Acme &lt;Auth&gt; &amp; &#34;Co&#34; API reference</title>")
	require.Contains(t, body, "<h1>Acme &lt;Auth&gt; &amp; &#34;Co&#34; API</h1>")
	require.NotContains(t, body, "<Auth>")
	require.Contains(t, body, `data-spec-url="/api/v1/openapi.json"`)

	// Its own CSP: this origin only, no inline script or style, no eval.
	csp := rec.Header().Get("Content-Security-Policy")
	require.Equal(t, httpapi.DocsCSP, csp)
	for _, d := range []string{
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
		"connect-src 'self'", "font-src 'self' data:", "frame-ancestors 'none'",
	} {
		require.Contains(t, strings.Split(csp, "; "), d)
	}
	require.NotContains(t, csp, "unsafe")
	require.NotContains(t, csp, "http")
	require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))

	// Every script, stylesheet and link is on this server (or a data: URI),
	// and each asset is served as what it is, under a name that carries its
	// content hash, with a matching integrity value.
	refs := pageRefs(t, body)
	var scripts, styles int
	for _, ref := range refs {
		if strings.HasPrefix(ref.url, "data:") {
			continue
		}
		require.True(t, strings.HasPrefix(ref.url, "/api/v1/"), "%s %s is not on this server", ref.tag, ref.url)
		if !strings.HasPrefix(ref.url, "/api/v1/docs/assets/") {
			continue
		}
		switch ref.tag {
		case "script":
			scripts++
		case "link":
			styles++
		}
		checkDocsAsset(t, e, ref)
	}
	require.Equal(t, 2, scripts, "the renderer and its starter")
	require.Equal(t, 2, styles, "the renderer's stylesheet and the page's")
}

func TestDocsPageDefaultName(t *testing.T) {
	rec := newEnv(t, nil).get("/api/v1/docs")
	require.Contains(t, rec.Body.String(), "<title>Gatehouse API reference</title>")
	require.Equal(t, http.StatusNotFound, newEnv(t, nil).get("/api/v1/docs/").Code)
}

type pageRef struct{ tag, url, integrity string }

// pageRefs returns every URL the page would load or link: script src,
// link href, img src, a href.
func pageRefs(t *testing.T, page string) []pageRef {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	require.NoError(t, err)
	var out []pageRef
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		var ref pageRef
		ref.tag = n.Data
		for _, a := range n.Attr {
			switch {
			case a.Key == "src" || a.Key == "href":
				ref.url = a.Val
			case a.Key == "integrity":
				ref.integrity = a.Val
			case a.Key == "style" || strings.HasPrefix(a.Key, "on"):
				t.Fatalf("<%s %s=...>: inline style or script is not allowed by the page's CSP", n.Data, a.Key)
			}
		}
		if n.Data == "script" || n.Data == "style" {
			require.NotEmpty(t, ref.url, "inline <%s> is not allowed by the page's CSP", n.Data)
		}
		if ref.url != "" {
			out = append(out, ref)
		}
	}
	return out
}

// checkDocsAsset fetches one asset the page names and checks how it is
// served: type, caching, hash in the name, integrity, revalidation, gzip.
func checkDocsAsset(t *testing.T, e *testEnv, ref pageRef) {
	t.Helper()
	rec := e.get(ref.url)
	require.Equal(t, http.StatusOK, rec.Code, ref.url)
	body := rec.Body.Bytes()
	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(ref.url)]
	require.NotEmpty(t, want, ref.url)
	require.Equal(t, want, rec.Header().Get("Content-Type"), ref.url)
	require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
	require.Equal(t, "public, max-age=31536000, immutable", rec.Header().Get("Cache-Control"), ref.url)
	require.Empty(t, rec.Header().Get("Content-Encoding"))

	// name.<first 16 hex of SHA-256>.ext, and the SRI value of the body.
	name := path.Base(ref.url)
	parts := strings.Split(name, ".")
	require.Len(t, parts, 3, name)
	sum := sha256.Sum256(body)
	require.Equal(t, hex.EncodeToString(sum[:8]), parts[1], "%s: the name's hash is the content's", name)
	sri := sha512.Sum384(body)
	require.Equal(t, "sha384-"+base64.StdEncoding.EncodeToString(sri[:]), ref.integrity, name)

	// The embedded file is the one in the repository (the vendored release
	// unchanged, or our own starter).
	var onDisk []byte
	for _, dir := range []string{"docsui", "docsui/swagger-ui-dist"} {
		if b, err := os.ReadFile(filepath.Join(dir, parts[0]+"."+parts[2])); err == nil {
			onDisk = b
		}
	}
	require.Equal(t, onDisk, body, "%s is served as it is in docsui/", name)

	// Revalidation by ETag.
	etag := rec.Header().Get("ETag")
	require.NotEmpty(t, etag)
	req := httptest.NewRequest(http.MethodGet, ref.url, nil)
	req.Header.Set("If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, e.do(req).Code, name)

	// gzip when the client takes it, with its own ETag; the same bytes.
	req = httptest.NewRequest(http.MethodGet, ref.url, nil)
	req.Header.Set("Accept-Encoding", "br, gzip;q=0.8")
	gz := e.do(req)
	require.Equal(t, http.StatusOK, gz.Code)
	require.Equal(t, "gzip", gz.Header().Get("Content-Encoding"))
	require.Contains(t, gz.Header().Values("Vary"), "Accept-Encoding")
	require.NotEqual(t, etag, gz.Header().Get("ETag"))
	zr, err := gzip.NewReader(gz.Body)
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, body, plain, name)

	// HEAD answers the headers alone.
	head := e.do(httptest.NewRequest(http.MethodHead, ref.url, nil))
	require.Equal(t, http.StatusOK, head.Code)
	require.Equal(t, want, head.Header().Get("Content-Type"))
	require.Empty(t, head.Body.Bytes())
}

// An asset name with another hash is 404, never a stale file under a name
// caches keep for a year.
func TestDocsAssetUnknownName(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{
		"/api/v1/docs/assets/swagger-ui-bundle.0000000000000000.js",
		"/api/v1/docs/assets/swagger-ui-bundle.js",
		"/api/v1/docs/assets/index.html",
		"/api/v1/docs/assets/",
	} {
		rec := e.get(p)
		require.Equal(t, http.StatusNotFound, rec.Code, p)
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), p)
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"), p)
	}
}

// The vendored release and the README that names it agree.
func TestDocsVendoredVersion(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("docsui", "swagger-ui-dist", "package.json"))
	require.NoError(t, err)
	var pkg struct{ Name, Version, License string }
	require.NoError(t, json.Unmarshal(raw, &pkg))
	require.Equal(t, "swagger-ui-dist", pkg.Name)
	require.Contains(t, []string{"Apache-2.0", "MIT"}, pkg.License)
	readme, err := os.ReadFile(filepath.Join("docsui", "README.md"))
	require.NoError(t, err)
	require.Contains(t, string(readme), "swagger-ui-dist@"+pkg.Version, "docsui/README.md names the vendored version")
	for _, f := range []string{"LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"} {
		_, err := os.Stat(filepath.Join("docsui", "swagger-ui-dist", f))
		require.NoError(t, err, "the vendored release keeps its %s", f)
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.get("/api/v1/openapi.json")
	require.Equal(t, http.StatusOK, rec.Code)
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title   string `json:"title"`
			Version string `json:"version"`
		} `json:"info"`
		Servers    []struct{ URL string } `json:"servers"`
		Components struct {
			SecuritySchemes map[string]struct {
				Type, Scheme, BearerFormat string
			} `json:"securitySchemes"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			OperationID string   `json:"operationId"`
			Summary     string   `json:"summary"`
			Tags        []string `json:"tags"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)
	require.Equal(t, "Gatehouse API", doc.Info.Title)
	require.Equal(t, "1.2.3", doc.Info.Version)
	require.Equal(t, "/api/v1", doc.Servers[0].URL)
	require.Equal(t, "http", doc.Components.SecuritySchemes["bearer"].Type)
	require.Equal(t, "bearer", doc.Components.SecuritySchemes["bearer"].Scheme)
	require.Equal(t, "JWT", doc.Components.SecuritySchemes["bearer"].BearerFormat)
	for _, p := range []string{"/health", "/health/live", "/health/ready", "/metrics", "/.well-known/jwks.json"} {
		op := doc.Paths[p]["get"]
		require.NotEmpty(t, op.OperationID, p)
		require.NotEmpty(t, op.Summary, p)
		require.NotEmpty(t, op.Tags, p)
	}
	require.Equal(t, http.StatusOK, e.get("/api/v1/openapi.yaml").Code)
}

// TestOpenAPIGolden keeps api/openapi.json in step with the code. The
// document's info.version is the build version, so it is left out of the
// comparison.
func TestOpenAPIGolden(t *testing.T) {
	spec, err := httpapi.OpenAPIJSON()
	require.NoError(t, err)
	got := append(spec, '\n') // what `gatehouse openapi` prints
	golden := filepath.Join("..", "..", "api", "openapi.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
		return
	}
	want, err := os.ReadFile(golden)
	if os.IsNotExist(err) {
		t.Fatal("api/openapi.json is missing: run `go run ./cmd/gatehouse openapi > api/openapi.json`")
	}
	require.NoError(t, err)
	if !sameSpec(t, want, got) {
		t.Fatal("api/openapi.json is stale: run `go run ./cmd/gatehouse openapi > api/openapi.json`" +
			" (or `go test ./internal/httpapi -run TestOpenAPIGolden -update`)")
	}
}

func sameSpec(t *testing.T, a, b []byte) bool {
	t.Helper()
	norm := func(raw []byte) string {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return "invalid: " + err.Error()
		}
		if info, ok := doc["info"].(map[string]any); ok {
			info["version"] = "(ignored)"
		}
		out, err := json.Marshal(doc)
		require.NoError(t, err)
		return string(out)
	}
	return norm(a) == norm(b)
}

func TestOpenAPIIsDeterministic(t *testing.T) {
	a, err := httpapi.OpenAPIJSON()
	require.NoError(t, err)
	b, err := httpapi.New(httpapi.Deps{}).OpenAPIJSON()
	require.NoError(t, err)
	require.Equal(t, string(a), string(b))
	require.True(t, json.Valid(a))
}
