package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

// oaDoc is the part of the OpenAPI document these tests read.
type oaDoc struct {
	Tags []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tags"`
	Paths      map[string]map[string]*oaOperation `json:"paths"`
	Components struct {
		Schemas         map[string]map[string]any `json:"schemas"`
		SecuritySchemes map[string]map[string]any `json:"securitySchemes"`
	} `json:"components"`
}

type oaOperation struct {
	OperationID string                `json:"operationId"`
	Summary     string                `json:"summary"`
	Tags        []string              `json:"tags"`
	Security    *[]map[string][]any   `json:"security"`
	Permission  string                `json:"x-permission"`
	Parameters  []oaParam             `json:"parameters"`
	RequestBody *oaBody               `json:"requestBody"`
	Responses   map[string]oaResponse `json:"responses"`
}

type oaParam struct {
	Name string `json:"name"`
	In   string `json:"in"`
}

type oaBody struct {
	Required bool                       `json:"required"`
	Content  map[string]json.RawMessage `json:"content"`
}

type oaResponse struct {
	Description string `json:"description"`
	Content     map[string]struct {
		Schema struct {
			Ref string `json:"$ref"`
		} `json:"schema"`
	} `json:"content"`
}

// bearer reports whether op takes a bearer token, and whether it needs one.
func (op *oaOperation) bearer() (takes, needs bool) {
	if op.Security == nil {
		return false, false
	}
	for _, req := range *op.Security {
		if _, ok := req["bearer"]; ok {
			takes = true
		}
	}
	return takes, takes && !slices.ContainsFunc(*op.Security, func(r map[string][]any) bool { return len(r) == 0 })
}

func (op *oaOperation) params(in string) []string {
	var out []string
	for _, p := range op.Parameters {
		if p.In == in {
			out = append(out, p.Name)
		}
	}
	return out
}

func loadDoc(t *testing.T) oaDoc {
	t.Helper()
	raw, err := httpapi.OpenAPIJSON()
	require.NoError(t, err)
	var doc oaDoc
	require.NoError(t, json.Unmarshal(raw, &doc))
	return doc
}

// documentedCode is a code named in a response description: `code`.
var documentedCode = regexp.MustCompile("`([a-z_]+)`")

// TestOpenAPIDescribesSecurityAndErrors walks the generated document: every
// operation says who may call it (security: [] when anyone may) and which
// problem+json errors it answers, derived from what its registration
// states (bearer, permission, body, path and query parameters, rate limit)
// plus what the operation adds; the problem schema admits RFC 9457
// extension members; every tag is declared and every declared one used;
// the WebSocket route is described with its 101.
func TestOpenAPIDescribesSecurityAndErrors(t *testing.T) {
	doc := loadDoc(t)

	problem := doc.Components.Schemas["ProblemDetails"]
	require.NotNil(t, problem)
	require.NotEqual(t, false, problem["additionalProperties"], "RFC 9457 allows extension members: the problem schema must not close them out")
	codeSchema, _ := problem["properties"].(map[string]any)["code"].(map[string]any)
	require.NotNil(t, codeSchema)
	var codes []string
	for _, c := range codeSchema["enum"].([]any) {
		codes = append(codes, c.(string))
	}
	require.Contains(t, codes, string(gatehouse.CodeRateLimited))

	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		require.NotEmpty(t, tag.Description, "tag %s has no description", tag.Name)
		require.False(t, declared[tag.Name], "tag %s is declared twice", tag.Name)
		declared[tag.Name] = true
	}
	used := map[string]bool{}

	ops := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			where := strings.ToUpper(method) + " " + path
			ops++
			require.NotEmpty(t, op.OperationID, where)
			require.NotEmpty(t, op.Summary, where)
			require.NotEmpty(t, op.Tags, where)
			for _, tag := range op.Tags {
				require.True(t, declared[tag], "%s uses the undeclared tag %s", where, tag)
				used[tag] = true
			}

			require.NotNil(t, op.Security, "%s declares no security: public operations say security: []", where)
			for _, req := range *op.Security {
				for name := range req {
					require.Contains(t, doc.Components.SecuritySchemes, name, where)
				}
			}
			needs := func(status int, code gatehouse.Code, why string) {
				t.Helper()
				r, ok := op.Responses[strconv.Itoa(status)]
				require.True(t, ok, "%s (%s) does not document %d", where, why, status)
				require.Contains(t, r.Description, "`"+string(code)+"`", "%s: the %d answer does not name %s", where, status, code)
			}
			if bearer, _ := op.bearer(); bearer {
				needs(http.StatusUnauthorized, gatehouse.CodeUnauthorized, "bearer")
			}
			if op.Permission != "" {
				needs(http.StatusForbidden, gatehouse.CodePermissionDenied, "permission")
				require.Contains(t, op.Responses["403"].Description, op.Permission, where)
			}
			if op.RequestBody != nil {
				require.Contains(t, op.RequestBody.Content, "application/json", where)
				needs(http.StatusBadRequest, httpapi.CodeMalformedJSON, "body")
				needs(http.StatusRequestEntityTooLarge, httpapi.CodePayloadTooLarge, "body")
				needs(http.StatusUnsupportedMediaType, httpapi.CodeUnsupportedMedia, "body")
				needs(http.StatusUnprocessableEntity, gatehouse.CodeValidationFailed, "body")
				if op.RequestBody.Required {
					needs(http.StatusBadRequest, gatehouse.CodeBadRequest, "required body")
				}
			}
			if len(op.params("path")) > 0 {
				needs(http.StatusNotFound, gatehouse.CodeNotFound, "path parameter")
			}
			if len(op.params("query")) > 0 && path != "/ws" { // the socket's ticket is checked, not validated
				needs(http.StatusUnprocessableEntity, gatehouse.CodeValidationFailed, "query parameter")
			}

			// Every error answer is a problem whose named codes have its status.
			for status, r := range op.Responses {
				n, err := strconv.Atoi(status)
				if status == "default" {
					require.Contains(t, r.Content, "application/problem+json", where)
					continue
				}
				require.NoError(t, err, where)
				if n < 400 || r.Content["application/problem+json"].Schema.Ref == "" && r.Content["application/json"].Schema.Ref == "#/components/schemas/HealthBody" {
					continue // success, or the health answer's own 503
				}
				require.Equal(t, "#/components/schemas/ProblemDetails", r.Content["application/problem+json"].Schema.Ref, "%s %s", where, status)
				named := documentedCode.FindAllStringSubmatch(r.Description, -1)
				require.NotEmpty(t, named, "%s: the %s answer names no code: %q", where, status, r.Description)
				for _, m := range named {
					if !slices.Contains(codes, m[1]) {
						continue // a backticked name that is not a code (a permission, a header)
					}
					require.Equal(t, n, httpapi.HTTPStatus(gatehouse.Code(m[1])), "%s: %s is not a %s answer", where, m[1], status)
				}
			}
			require.Contains(t, op.Responses, "default", where)
		}
	}
	require.Greater(t, ops, 60)
	for tag := range declared {
		require.True(t, used[tag], "tag %s is declared but no operation uses it", tag)
	}

	ws := doc.Paths["/ws"]["get"]
	require.NotNil(t, ws, "GET /ws is not documented")
	require.Contains(t, ws.Responses, "101")
	require.Equal(t, []string{"ticket"}, ws.params("query"))
	var schemes []string
	for _, req := range *ws.Security {
		for name := range req {
			schemes = append(schemes, name)
		}
	}
	require.ElementsMatch(t, []string{"bearer", "ws_ticket"}, schemes)
	for _, status := range []string{"400", "401", "403", "503"} {
		require.Contains(t, ws.Responses, status)
	}
	require.NotContains(t, ws.Responses, "429", "the socket is not rate limited; its document must not say it is")

	for _, path := range []string{"/openapi.json", "/docs"} {
		op := doc.Paths[path]["get"]
		require.NotNil(t, op, "GET %s is not documented", path)
		require.Empty(t, *op.Security, path)
	}
}

// TestOpenAPIErrorsAreAnswered checks the derived errors against the
// server: a bearer operation called without a token answers the
// documented 401, a public operation taking a body answers the documented
// 415 for a body that is not JSON, 400 malformed_json for a repeated key
// and, when the body is required, 400 for none. The server is built with
// no services, so nothing gets past those checks.
func TestOpenAPIErrorsAreAnswered(t *testing.T) {
	doc := loadDoc(t)
	h := httpapi.New(httpapi.Deps{}).Handler()
	pathParam := regexp.MustCompile(`\{[a-z_]+\}`)
	call := func(method, path, contentType, body string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(method, httpapi.BasePath+pathParam.ReplaceAllString(path, "0195f3a2-0000-7000-8000-000000000000"), strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var p struct{ Code string }
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		return rec.Code, p.Code
	}
	checked := 0
	for path, item := range doc.Paths {
		if strings.HasPrefix(path, "/.well-known") || path == "/ws" {
			continue
		}
		for method, op := range item {
			where := strings.ToUpper(method) + " " + path
			bearer, required := op.bearer()
			switch {
			case required:
				status, code := call(strings.ToUpper(method), path, "", "")
				require.Equal(t, http.StatusUnauthorized, status, where)
				require.Equal(t, string(gatehouse.CodeUnauthorized), code, where)
				checked++
			case op.RequestBody != nil && !bearer:
				status, code := call(strings.ToUpper(method), path, "text/plain", "x")
				require.Equal(t, http.StatusUnsupportedMediaType, status, where)
				require.Equal(t, string(httpapi.CodeUnsupportedMedia), code, where)
				status, code = call(strings.ToUpper(method), path, "application/json", `{"a":1,"a":2}`)
				require.Equal(t, http.StatusBadRequest, status, where)
				require.Equal(t, string(httpapi.CodeMalformedJSON), code, where)
				if op.RequestBody.Required {
					status, code = call(strings.ToUpper(method), path, "", "")
					require.Equal(t, http.StatusBadRequest, status, where)
					require.Equal(t, string(gatehouse.CodeBadRequest), code, where)
				}
				checked++
			}
		}
	}
	require.Greater(t, checked, 50)

	// The socket's documented refusals, in the order the server checks.
	status, code := call(http.MethodGet, "/ws", "", "")
	require.Equal(t, http.StatusServiceUnavailable, status, "no notifier wired")
	require.Equal(t, string(gatehouse.CodeUnavailable), code)
}
