package httpapi

import (
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

// apiConfig is the Huma configuration: OpenAPI 3.1 at BasePath/openapi.json
// (and .yaml), the docs page at BasePath/docs, our problem+json errors.
//
// The docs page is Huma's Stoplight Elements page. It loads its script and
// styles from unpkg.com, pinned by integrity hashes, and sets its own
// Content-Security-Policy allowing exactly that (the API's policy is
// default-src 'none'); the security headers middleware sets ours first and
// the docs handler replaces it.
//
// Huma's default create hook (a transformer adding "$schema" to every
// response body and Link headers) and the /schemas route are left out: the
// answers are exactly the documented objects.
func apiConfig(version string) huma.Config {
	cfg := huma.DefaultConfig("Gatehouse API", version)
	cfg.CreateHooks = nil
	cfg.SchemasPath = ""
	cfg.OpenAPIPath = "/openapi"
	cfg.DocsPath = "/docs"
	cfg.DocsRenderer = huma.DocsRendererStoplightElements
	cfg.Transformers = []huma.Transformer{transformProblems}
	cfg.Info.Description = "Gatehouse is a self-hosted authentication and authorization server. " +
		"Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`. " +
		"Authenticated calls send `Authorization: Bearer <access_token>`. " +
		"Request bodies are JSON sent with `Content-Type: application/json` (a non-empty body without it is 415 " +
		"unsupported_media_type); keys are exact-case and appear once per object (a repeated key is 400 malformed_json, " +
		"a key in another case or unknown is 422 validation_failed). " +
		"Every answer carries `X-Request-ID`."
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
