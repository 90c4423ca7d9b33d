package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/danielgtaylor/huma/v2"
	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

type thing struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

type thingList struct {
	Body struct {
		Items      []thing `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
}

type thingOne struct {
	Body thing
}

type bigOutput struct {
	Body struct {
		Text string `json:"text"`
	}
}

// registerThings adds a list, a resource and a big no-store answer, and
// counts the calls of the list.
func registerThings(e *testEnv) *atomic.Int32 {
	calls := &atomic.Int32{}
	api := e.srv.API()
	huma.Register(api, huma.Operation{OperationID: "test-things", Method: http.MethodGet, Path: "/test/things"},
		func(context.Context, *struct{}) (*thingList, error) {
			calls.Add(1)
			out := &thingList{}
			out.Body.Items = []thing{{"1", "one", "s1"}, {"2", "two", "s2"}}
			next := "abc"
			out.Body.NextCursor = &next
			return out, nil
		})
	huma.Register(api, huma.Operation{OperationID: "test-thing", Method: http.MethodGet, Path: "/test/thing"},
		func(context.Context, *struct{}) (*thingOne, error) {
			return &thingOne{Body: thing{"1", "one", "s1"}}, nil
		})
	huma.Register(api, huma.Operation{OperationID: "test-big", Method: http.MethodGet, Path: "/test/big"},
		func(context.Context, *struct{}) (*bigOutput, error) {
			out := &bigOutput{}
			out.Body.Text = strings.Repeat("personal data ", 500)
			return out, nil
		})
	return calls
}

func getWith(e *testEnv, path string, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return e.do(req)
}

func decoded(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	var r io.Reader = rec.Body
	switch rec.Header().Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(rec.Body)
		require.NoError(t, err)
		r = zr
	case "br":
		r = brotli.NewReader(rec.Body)
	case "":
	default:
		t.Fatalf("unexpected Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

// Answers of a kilobyte or more are compressed as Accept-Encoding allows
// (br preferred on a tie), small ones never; every JSON answer varies by
// Accept-Encoding.
func TestCompressionAboveThreshold(t *testing.T) {
	e := newEnv(t, nil)
	registerThings(e)
	plain := e.get("/api/v1/test/big")
	require.Equal(t, http.StatusOK, plain.Code)
	require.Empty(t, plain.Header().Get("Content-Encoding"))
	require.Greater(t, plain.Body.Len(), 1024)

	for accept, want := range map[string]string{
		"gzip": "gzip", "gzip, deflate, br": "br", "br;q=0.5, gzip": "gzip", "x-gzip": "gzip",
		"*": "br", "identity": "", "gzip;q=0, br;q=0": "", "deflate": "",
	} {
		rec := getWith(e, "/api/v1/test/big", map[string]string{"Accept-Encoding": accept})
		require.Equal(t, http.StatusOK, rec.Code, accept)
		require.Equal(t, want, rec.Header().Get("Content-Encoding"), accept)
		if want != "" {
			require.Contains(t, rec.Header().Values("Vary"), "Accept-Encoding", accept)
		}
		require.Empty(t, rec.Header().Get("Content-Length"), accept)
		require.Equal(t, plain.Body.String(), string(decoded(t, rec)), accept)
		if want != "" {
			require.Less(t, rec.Body.Len(), plain.Body.Len()/4, accept)
		}
	}

	// A small answer goes as it is.
	small := getWith(e, "/api/v1/health/live", map[string]string{"Accept-Encoding": "gzip, br"})
	require.Equal(t, http.StatusOK, small.Code)
	require.Empty(t, small.Header().Get("Content-Encoding"))
	require.Less(t, small.Body.Len(), 1024)
	require.True(t, json.Valid(small.Body.Bytes()))
	// A cacheable one says it varies even when sent as it is.
	doc := getWith(e, "/api/v1/openapi.json", nil)
	require.Empty(t, doc.Header().Get("Content-Encoding"))
	require.Contains(t, doc.Header().Values("Vary"), "Accept-Encoding")

	// Errors are JSON too: compressed only when big (a 404 is small).
	notFound := getWith(e, "/api/v1/nope", map[string]string{"Accept-Encoding": "gzip"})
	requireProblem(t, notFound, http.StatusNotFound, gatehouse.CodeNotFound)
}

// A no-store answer to a request with cookies from another site (or from
// a browser that does not say) is not compressed: BREACH could read its
// secrets from the sizes. The same browser on its own site gets it
// compressed.
func TestCompressionNotForCrossSiteCookies(t *testing.T) {
	e := newEnv(t, nil)
	registerThings(e)
	for site, want := range map[string]string{"": "", "cross-site": "", "same-site": "", "same-origin": "gzip", "none": "gzip"} {
		h := map[string]string{"Accept-Encoding": "gzip", "Cookie": "__Host-gh_session=abc"}
		if site != "" {
			h["Sec-Fetch-Site"] = site
		}
		rec := getWith(e, "/api/v1/test/big", h)
		require.Equal(t, want, rec.Header().Get("Content-Encoding"), "Sec-Fetch-Site %q", site)
		require.Contains(t, string(decoded(t, rec)), "personal data", site)
	}
	// A public document is compressed whoever asks.
	rec := getWith(e, "/api/v1/openapi.json", map[string]string{"Accept-Encoding": "gzip", "Cookie": "a=b"})
	require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
}

// The JWKS carries a strong ETag: If-None-Match with it answers 304
// without a body; a rotation changes it, and the old one gets the new set.
func TestJWKSETagAndRotation(t *testing.T) {
	var current atomic.Pointer[jose.JSONWebKeySet]
	newSet := func(kids ...string) *jose.JSONWebKeySet {
		set := &jose.JSONWebKeySet{}
		for _, kid := range kids {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			require.NoError(t, err)
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
		}
		return set
	}
	current.Store(newSet("k1"))
	e := newEnv(t, func(d *httpapi.Deps) {
		d.JWKS = func(context.Context) (jose.JSONWebKeySet, error) { return *current.Load(), nil }
	})

	first := e.get("/.well-known/jwks.json")
	require.Equal(t, http.StatusOK, first.Code)
	etag := first.Header().Get("ETag")
	require.Regexp(t, `^"[A-Za-z0-9_-]{20,}"$`, etag, "a strong ETag")
	require.Equal(t, "public, max-age=300", first.Header().Get("Cache-Control"))

	again := getWith(e, "/.well-known/jwks.json", map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusNotModified, again.Code)
	require.Empty(t, again.Body.Bytes())
	require.Equal(t, etag, again.Header().Get("ETag"))
	require.Equal(t, "public, max-age=300", again.Header().Get("Cache-Control"))
	require.Equal(t, http.StatusNotModified,
		getWith(e, "/.well-known/jwks.json", map[string]string{"If-None-Match": `"other", ` + etag}).Code)
	require.Equal(t, http.StatusOK,
		getWith(e, "/.well-known/jwks.json", map[string]string{"If-None-Match": `"other"`}).Code)

	// Same keys, same tag; a rotation publishes a new key: a new tag.
	require.Equal(t, etag, e.get("/.well-known/jwks.json").Header().Get("ETag"))
	rotated := *current.Load()
	rotated.Keys = append(rotated.Keys, newSet("k2").Keys...)
	current.Store(&rotated)
	after := getWith(e, "/.well-known/jwks.json", map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusOK, after.Code)
	require.NotEqual(t, etag, after.Header().Get("ETag"))
	require.Contains(t, after.Body.String(), `"k2"`)
}

// The OpenAPI document and the discovery document (served by the OpenID
// Provider, a plain handler) are public: cacheable, with an ETag that
// answers 304, compressed or not.
func TestPublicDocumentsRevalidate(t *testing.T) {
	e := newEnv(t, func(d *httpapi.Deps) { d.OIDC = discoveryStub{} })
	for _, path := range []string{"/api/v1/openapi.json", "/api/v1/openapi.yaml", "/.well-known/openid-configuration"} {
		for _, enc := range []string{"", "gzip", "br"} {
			rec := getWith(e, path, map[string]string{"Accept-Encoding": enc})
			require.Equal(t, http.StatusOK, rec.Code, path)
			require.Equal(t, "public, max-age=300", rec.Header().Get("Cache-Control"), path)
			require.Equal(t, enc, rec.Header().Get("Content-Encoding"), path)
			etag := rec.Header().Get("ETag")
			require.NotEmpty(t, etag, path)
			if enc != "" {
				require.True(t, strings.HasSuffix(etag, "-"+enc+`"`), "%s: a coding's own tag %s", path, etag)
			}
			nm := getWith(e, path, map[string]string{"Accept-Encoding": enc, "If-None-Match": etag})
			require.Equal(t, http.StatusNotModified, nm.Code, path)
			require.Empty(t, nm.Body.Bytes(), path)
		}
	}
	// The token-bearing answers stay no-store, with no validator.
	live := e.get("/api/v1/health/live")
	require.Equal(t, "no-store", live.Header().Get("Cache-Control"))
	require.Empty(t, live.Header().Get("ETag"))
}

type discoveryStub struct{}

func (discoveryStub) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"http://localhost:8080","scopes_supported":["` +
			strings.Repeat("openid profile email ", 80) + `"]}`))
	})
}

// ?fields= keeps the named fields, in that order, of a resource or of
// each item of a list (the list's cursor stays); an unknown field is 422
// naming query.fields, and the handler does not run.
func TestFieldSelection(t *testing.T) {
	e := newEnv(t, nil)
	calls := registerThings(e)

	rec := e.get("/api/v1/test/thing?fields=name,id")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, `{"name":"one","id":"1"}`, rec.Body.String())

	rec = e.get("/api/v1/test/things?fields=id&fields=name,id")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Equal(t, map[string]any{
		"items":       []any{map[string]any{"id": "1", "name": "one"}, map[string]any{"id": "2", "name": "two"}},
		"next_cursor": "abc",
	}, list)
	require.NotContains(t, rec.Body.String(), "s1")

	// Compressed after selection.
	rec = getWith(e, "/api/v1/test/big?fields=text", map[string]string{"Accept-Encoding": "gzip"})
	require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	require.True(t, json.Valid(decoded(t, rec)))

	before := calls.Load()
	for _, q := range []string{"fields=id,password", "fields=", "fields=,", "fields=items"} {
		p := requireProblem(t, e.get("/api/v1/test/things?"+q), http.StatusUnprocessableEntity, gatehouse.CodeValidationFailed)
		require.Len(t, p.Errors, 1, q)
		require.Equal(t, "query.fields", p.Errors[0].Location, q)
	}
	require.Equal(t, before, calls.Load(), "the handler never ran for a bad selection")

	// The OpenAPI document lists the parameter with the known fields.
	doc, err := e.srv.OpenAPIJSON()
	require.NoError(t, err)
	var spec struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In, Description string } `json:"parameters"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(doc, &spec))
	var found bool
	for _, p := range spec.Paths["/test/things"]["get"].Parameters {
		if p.Name == "fields" {
			found = true
			require.Equal(t, "query", p.In)
			require.Contains(t, p.Description, "id, name, secret")
		}
	}
	require.True(t, found, "fields documented")
}

// Through the whole server: /auth/me and the session list select fields.
func TestFieldSelectionOnAccountResources(t *testing.T) {
	env := apptest.New(t, "sqlite", nil)
	env.Register("fay@example.com", apptest.StrongPassword)
	tok := env.Login("fay@example.com", apptest.StrongPassword)

	me := env.Do("GET", "/auth/me?fields=email,id", nil, tok.Access)
	require.Equal(t, http.StatusOK, me.Status, string(me.Raw))
	require.Len(t, me.JSON, 2)
	require.Equal(t, "fay@example.com", me.JSON["email"])
	require.True(t, bytes.HasPrefix(me.Raw, []byte(`{"email":`)), string(me.Raw))

	sessions := env.Do("GET", "/sessions?fields=id,current", nil, tok.Access)
	require.Equal(t, http.StatusOK, sessions.Status, string(sessions.Raw))
	item := sessions.JSON["items"].([]any)[0].(map[string]any)
	require.Len(t, item, 2)
	require.Equal(t, true, item["current"])

	bad := env.Do("GET", "/auth/me?fields=email,password_hash", nil, tok.Access)
	apptest.Expect(t, bad, http.StatusUnprocessableEntity, "validation_failed")
	require.Contains(t, string(bad.Raw), "query.fields")
	require.Equal(t, "no-store", me.Header.Get("Cache-Control"))
}
