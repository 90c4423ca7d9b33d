package httpapi_test

import (
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

var update = flag.Bool("update", false, "rewrite api/openapi.json from the code")

func TestDocsPage(t *testing.T) {
	e := newEnv(t, nil)
	rec := e.get("/api/v1/docs")
	require.Equal(t, http.StatusOK, rec.Code)
	require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html"))
	require.Contains(t, rec.Body.String(), "Gatehouse API")
	require.Contains(t, rec.Body.String(), "/api/v1/openapi")

	// Its own CSP: exactly the pinned renderer from unpkg, nothing else.
	csp := rec.Header().Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.Contains(t, csp, "script-src https://unpkg.com/@stoplight/elements@")
	require.Contains(t, csp, "connect-src 'self'")
	require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
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
