package httpapi

import (
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// The OpenAPI document says, for every operation, who may call it and
// which problem+json errors it answers. Most of that follows from what the
// registration already states, so describeOperation derives it in one
// place: a bearer operation can answer 401, one with a permission 403, one
// taking a body 400/413/415/422, one with path parameters 404, a rate
// limited one 429, one that reads the database or the cache 503. What only
// the operation knows (409 email_taken, 423 account_locked ...) is in
// operationProblems, by operation id. Each status is described by the
// codes it carries and when; the status itself always comes from
// statusByCode, the table the answers use, so the two cannot disagree.

// problemDoc is one documented error answer: its code, and when it is
// answered (a clause, no final period).
type problemDoc struct {
	code gatehouse.Code
	when string
}

// SecurityWSTicket names the security scheme of the notification socket's
// single-use ticket (query parameter ticket).
const SecurityWSTicket = "ws_ticket"

// TagDocs groups this document and the docs page.
const TagDocs = "Documentation"

// tagDescriptions describe the tags declared here, in the order the docs
// list them; docs.go declares the operators' tags.
var tagDescriptions = []*huma.Tag{
	{Name: TagAuth, Description: "Registration, sign-in with email and password, tokens, email verification and password reset."},
	{Name: TagMFA, Description: "Second factors (TOTP, SMS, backup codes): enrolment, sign-in challenges, removal."},
	{Name: TagPasswordless, Description: "Sign-in with an emailed single-use link."},
	{Name: TagPasskeys, Description: "WebAuthn passkeys: registering them and signing in with them."},
	{Name: TagOAuth, Description: "Social login with external providers, and the accounts linked to the caller."},
	{Name: TagProfile, Description: "The signed-in user's own account: profile, password, deletion."},
	{Name: TagSessions, Description: "The signed-in user's sessions, and ending them."},
	{Name: TagDevices, Description: "The devices the signed-in user signed in from, and trusting or removing them."},
	{Name: TagNotifications, Description: "Live security notifications over a WebSocket."},
	{Name: TagWebhooks, Description: "Webhooks: event subscriptions delivered by signed HTTP POST (Standard Webhooks), and their deliveries."},
	{Name: TagAdmin, Description: "Administration of users, roles and the audit log; each operation needs a permission."},
	{Name: TagAuthz, Description: "Permission checks for resource servers."},
	{Name: TagDocs, Description: "This OpenAPI document and the interactive docs page."},
}

// noDependencies are the operations that read neither the database nor
// the cache, so never answer 503. (The health checks answer their own 503,
// with the health body, which describeOperation leaves as it is.)
var noDependencies = map[string]bool{"get-health-live": true, "get-metrics": true}

// Problems several operations share.
var (
	docAddressDenied = problemDoc{gatehouse.CodeAccessDenied, "sign-in from the client's network address is refused (GATEHOUSE_IP_BLOCKLIST)"}
	docLocked        = problemDoc{gatehouse.CodeAccountLocked, "the account is locked (after failed sign-ins, or by an administrator)"}
	docInvalidEmail  = problemDoc{gatehouse.CodeInvalidEmail, "the email could not be an account's (malformed, or a look-alike of another address)"}
	docWeakPassword  = problemDoc{gatehouse.CodeWeakPassword, "the password fails the password policy; `errors` gives the reasons"}
	docEmailLimit    = problemDoc{gatehouse.CodeRateLimited, "the EMAIL limit of the address in the body is spent, whichever client asked"}
	docRecentSignIn  = problemDoc{gatehouse.CodeRecentAuthRequired, "the session's sign-in is more than 5 minutes old"}
	docRecentOrPass  = problemDoc{gatehouse.CodeRecentAuthRequired, "the session's sign-in is more than 5 minutes old and no right password was sent"}
	docMFACode       = problemDoc{gatehouse.CodeMFAInvalidCode, "the code is wrong, expired or already used"}
	docMFAWrongCodes = problemDoc{gatehouse.CodeRateLimited, "5 wrong codes within 15 minutes, counted per account across activate, disable and backup-code regeneration (with Retry-After)"}
	docSMSFailed     = problemDoc{gatehouse.CodeUnavailable, "the text message could not be sent"}
	docPasskeysOff   = problemDoc{gatehouse.CodeNotFound, "passkeys are off on this server (its public URL is an IP address and no relying party id is set)"}
	docProviderError = problemDoc{gatehouse.CodeOAuthProviderError, "the provider failed, answered too slowly, or refused Gatehouse's client credentials"}
	docNoProvider    = problemDoc{gatehouse.CodeNotFound, "no provider of that name is configured"}
	docLastMethod    = problemDoc{gatehouse.CodeLastLoginMethod, "it is the account's only way left to sign in (no password, passkey or other linked account)"}
	docActOnUser     = problemDoc{gatehouse.CodePermissionDenied, "the user holds a permission the caller lacks"}
)

// signInProblems are the refusals of every path that starts a session.
var signInProblems = []problemDoc{docAddressDenied, docLocked}

// operationProblems are the errors particular to each operation, beyond
// the derived ones (TestOpenAPIOperationProblemsNameOperations keeps the
// keys real).
var operationProblems = map[string][]problemDoc{
	"register": {
		{gatehouse.CodeEmailTaken, "an account has this address, in any spelling (case, composed accents or not, a fullwidth domain)"},
		docInvalidEmail, docWeakPassword,
	},
	"verify-email":        {{gatehouse.CodeInvalidToken, "the token is unknown, used, expired or superseded"}},
	"resend-verification": {docInvalidEmail, docEmailLimit},
	"login": {
		{gatehouse.CodeInvalidCredentials, "the email or password is wrong; the same answer for an unknown email"},
		{gatehouse.CodeAccountLocked, "the right password of a locked account (a wrong one is still invalid_credentials)"},
		docAddressDenied,
	},
	"refresh": {
		{gatehouse.CodeInvalidRefreshToken, "the refresh token is unknown, expired or revoked"},
		{gatehouse.CodeRefreshTokenReused, "an already rotated refresh token came back; its session is now revoked"},
	},
	"forgot-password": {docInvalidEmail, docEmailLimit},
	"reset-password": {
		{gatehouse.CodeInvalidToken, "the token is unknown, used, expired or superseded"},
		{gatehouse.CodeWeakPassword, "the password fails the password policy (the token stays usable); `errors` gives the reasons"},
	},
	"confirm-sign-in": {{gatehouse.CodeInvalidToken, "the token is unknown, used or expired, or its sign-in challenge expired"}},
	"change-password": {{gatehouse.CodeInvalidCredentials, "current_password is wrong"}, docWeakPassword},
	"delete-account": {{gatehouse.CodeRecentAuthRequired,
		"the password is missing or wrong; for an account without one, its sign-in is more than 5 minutes old"}},

	"mfa-setup": {
		{gatehouse.CodeConflict, "the method is already enabled"},
		{gatehouse.CodeRateLimited, "5 codes were texted to the account within an hour (with Retry-After)"},
		docSMSFailed,
	},
	"mfa-activate": {docMFACode, {gatehouse.CodeValidationFailed, "no setup of the method is pending"}, docMFAWrongCodes},
	"mfa-send": {
		{gatehouse.CodeMFAInvalidCode, "the challenge is unknown or expired"},
		{gatehouse.CodeRateLimited, "5 codes were sent for the challenge, or the account's 5 texts an hour are used up"},
		docSMSFailed,
	},
	"mfa-verify": append([]problemDoc{
		{gatehouse.CodeMFAInvalidCode, "the code is wrong, expired or used (the challenge dies after 5), or the challenge is unknown, expired or finished"},
		{gatehouse.CodeValidationFailed, "no code for a method that needs one"},
	}, signInProblems...),
	"mfa-disable":                 {docRecentOrPass, docMFACode, {gatehouse.CodeNotFound, "the method is not enabled"}, docMFAWrongCodes},
	"mfa-backup-codes-regenerate": {docRecentOrPass, docMFACode, {gatehouse.CodeConflict, "MFA is off"}, docMFAWrongCodes},

	"admin-set-user-roles": {
		{gatehouse.CodePermissionDenied, "a role added or removed grants a permission the caller lacks, or the user holds one"},
		{gatehouse.CodeConflict, "the caller would remove their own role that grants every permission"},
		{gatehouse.CodeValidationFailed, "a name is not a role's"},
	},
	"admin-lock-user":   {docActOnUser, {gatehouse.CodeConflict, "the caller's own account"}},
	"admin-unlock-user": {docActOnUser},
	"admin-create-role": {
		{gatehouse.CodePermissionDenied, "it grants a permission the caller lacks"},
		{gatehouse.CodeConflict, "a role has this name"},
	},
	"admin-update-role": {
		{gatehouse.CodePermissionDenied, "the role has or would get a permission the caller lacks"},
		{gatehouse.CodeSystemRole, "admin's permissions cannot change"},
	},
	"admin-delete-role": {
		{gatehouse.CodePermissionDenied, "the role grants a permission the caller lacks"},
		{gatehouse.CodeSystemRole, "a system role (admin, moderator, user)"},
	},
	"authz-check": {{gatehouse.CodePermissionDenied, "user_id names another user and the caller lacks `authz:check`"}},

	"create-ws-ticket": {{gatehouse.CodeUnavailable, "live notifications are off on this server"}},
	"create-webhook": {
		{gatehouse.CodeConflict, fmt.Sprintf("the caller owns %d webhooks already", webhook.MaxWebhooksPerUser)},
		{gatehouse.CodePermissionDenied, "all_users without the `webhooks:all` permission"},
	},
	"update-webhook":         {{gatehouse.CodePermissionDenied, "all_users without the `webhooks:all` permission"}},
	"retry-webhook-delivery": {{gatehouse.CodeConflict, "the delivery is still pending, or the webhook is inactive"}},

	"webauthn-register-begin": {docRecentSignIn, docPasskeysOff},
	"webauthn-register-finish": {
		{gatehouse.CodeInvalidToken, "the registration was not begun, expired or was finished already"},
		{gatehouse.CodeBadRequest, "the browser's answer does not verify"},
		{gatehouse.CodeConflict, "the passkey is registered already"},
		{gatehouse.CodeValidationFailed, "credential is not a WebAuthn response"},
		docPasskeysOff,
	},
	"webauthn-authenticate-begin": {docPasskeysOff},
	"webauthn-authenticate-finish": append([]problemDoc{
		{gatehouse.CodeInvalidToken, "challenge_id is unknown, used or expired"},
		{gatehouse.CodeInvalidCredentials, "the assertion does not verify, or its sign counter went backwards"},
		{gatehouse.CodeValidationFailed, "credential is not a WebAuthn response"},
		docPasskeysOff,
	}, signInProblems...),
	"webauthn-delete-credential": {docLastMethod},

	"magic-link-request": {docInvalidEmail, docEmailLimit},
	"magic-link-verify": append([]problemDoc{
		{gatehouse.CodeInvalidToken, "the token is unknown, used, expired or superseded"},
	}, signInProblems...),

	"oauth-authorize": {
		docNoProvider,
		{gatehouse.CodeValidationFailed, "redirect_uri is not allow-listed, or link_ticket comes with a token or a redirect_uri"},
		{gatehouse.CodeInvalidToken, "link_ticket is unknown, used or expired"},
		{gatehouse.CodeRecentAuthRequired, "linking with a token whose sign-in is more than 5 minutes old"},
		docProviderError,
	},
	"oauth-link": {docNoProvider, docRecentSignIn, {gatehouse.CodeValidationFailed, "redirect_uri is not allow-listed"}},
	"oauth-callback": append([]problemDoc{
		{gatehouse.CodeInvalidToken, "the state is unknown, used, expired or another provider's, or the browser lacks the cookie /authorize set"},
		{gatehouse.CodeOAuthDenied, "the person or the provider refused"},
		{gatehouse.CodeOAuthEmailUnverified, "the email matches an account but is not verified on both sides, or the provider did not verify the email of a new account"},
		{gatehouse.CodeConflict, "the external account is linked to another user"},
		docProviderError,
	}, signInProblems...),
	"oauth-exchange": append([]problemDoc{
		{gatehouse.CodeInvalidToken, "the code is unknown, used or expired"},
	}, signInProblems...),
	"unlink-oauth-account": {docLastMethod},

	"get-jwks": {{gatehouse.CodeUnavailable, "the signing keys could not be read"}},
}

// limitDocs say which rate limit a 429 comes from, by limit name.
var limitDocs = map[string]string{
	limitLogin:    "the LOGIN limit of the client's IP address is spent",
	limitRegister: "the REGISTER limit of the client's IP address is spent",
	limitMFA:      "the MFA limit of the client's IP address is spent",
}

// describeOperation is the OnAddOperation hook that documents security and
// errors; it runs after the hooks that add middleware, since it describes
// what they do.
func (s *Server) describeOperation(oapi *huma.OpenAPI, op *huma.Operation) {
	s.describe(oapi, op, append(derivedProblems(op), operationProblems[op.OperationID]...))
}

// derivedProblems are the errors that follow from what op's registration
// states and the middleware it runs.
func derivedProblems(op *huma.Operation) []problemDoc {
	var out []problemDoc
	takes, needs := bearerOf(op)
	switch {
	case needs:
		out = append(out, problemDoc{gatehouse.CodeUnauthorized, "no valid access token: missing, malformed, expired or revoked, or its session ended"})
	case takes:
		out = append(out, problemDoc{gatehouse.CodeUnauthorized, "the access token sent, or needed for what was asked, is missing, malformed, expired or revoked"})
	}
	if perm, ok := op.Extensions[PermissionExtension].(string); ok {
		out = append(out, problemDoc{gatehouse.CodePermissionDenied, "the caller lacks the `" + perm + "` permission"})
	}
	var validated []string
	if op.RequestBody != nil {
		validated = append(validated, "the body")
		out = append(out,
			problemDoc{CodeMalformedJSON, "the body is not JSON, repeats a key within one object, or could not be read"},
			problemDoc{CodePayloadTooLarge, "the body is larger than GATEHOUSE_MAX_BODY_BYTES (1 MiB by default)"},
			problemDoc{CodeUnsupportedMedia, "a body without Content-Type: application/json"})
		if op.RequestBody.Required {
			out = append(out, problemDoc{gatehouse.CodeBadRequest, "the body is missing"})
		}
	}
	var inPath []string
	query := false
	for _, p := range op.Parameters {
		switch p.In {
		case "path":
			inPath = append(inPath, "`{"+p.Name+"}`")
		case "query":
			query = true
		}
	}
	if len(inPath) > 0 {
		out = append(out, problemDoc{gatehouse.CodeNotFound, "the path's " + strings.Join(inPath, " or ") + " names nothing the caller may see"})
		validated = append(validated, "a path parameter")
	}
	if query {
		validated = append(validated, "a query parameter")
	}
	if n := len(validated); n > 0 {
		what := validated[n-1]
		if n > 1 {
			what = strings.Join(validated[:n-1], ", ") + " or " + what
		}
		out = append(out, problemDoc{gatehouse.CodeValidationFailed, what + " fails its schema (`errors` names each field)"})
	}
	out = append(out, sideEffectProblems(op)...)
	if name := operationLimit(op); name != "" {
		when := limitDocs[name]
		switch {
		case when != "":
		case needs:
			when = "the API limit of the signed-in user is spent (twice as high for a session with a high trust score); " +
				"or, for a refused token, the API limit of the client's IP address"
		default:
			when = "the API limit of the client's IP address is spent"
		}
		out = append(out, problemDoc{gatehouse.CodeRateLimited, when})
	}
	if !noDependencies[op.OperationID] {
		out = append(out, problemDoc{gatehouse.CodeUnavailable, "the database or the cache failed or answered too slowly"})
	}
	return out
}

// sideEffectProblems documents the 405 a GET that changes state answers
// to HEAD (see sideEffectGETs).
func sideEffectProblems(op *huma.Operation) []problemDoc {
	if what := sideEffectGETs[op.Method+" "+BasePath+op.Path]; what != "" {
		return []problemDoc{{CodeMethodNotAllowed, "a HEAD request: this GET " + what + ", so only GET is served"}}
	}
	return nil
}

// bearerOf reports whether op takes a bearer token, and whether it needs
// one (no security requirement is empty).
func bearerOf(op *huma.Operation) (takes, needs bool) {
	anonymous := false
	for _, req := range op.Security {
		if _, ok := req[SecurityBearer]; ok {
			takes = true
		}
		anonymous = anonymous || len(req) == 0
	}
	return takes, takes && !anonymous
}

// describe sets op's security ([] when nobody needs to sign in) and one
// problem+json response per status of docs, listing its codes and when;
// a response the operation documents with a body of its own (the health
// answer's 503) is left as it is. Every operation also gets a default
// response for anything unlisted.
func (s *Server) describe(oapi *huma.OpenAPI, op *huma.Operation, docs []problemDoc) {
	if op.Security == nil {
		op.Security = []map[string][]string{}
	}
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	schema := oapi.Components.Schemas.Schema(reflect.TypeFor[ProblemDetails](), true, "")
	problem := func() map[string]*huma.MediaType { // one map per response: none shares another's
		return map[string]*huma.MediaType{problemContentType: {Schema: schema}}
	}

	var statuses []int
	byStatus := map[int][]problemDoc{}
	for _, d := range docs {
		status := HTTPStatus(d.code)
		if status == http.StatusInternalServerError {
			panic(fmt.Sprintf("httpapi: %s documents %s, which has no status in statusByCode", op.OperationID, d.code))
		}
		if _, seen := byStatus[status]; !seen {
			statuses = append(statuses, status)
		}
		byStatus[status] = mergeProblem(byStatus[status], d)
	}
	for _, status := range statuses {
		key := strconv.Itoa(status)
		r := op.Responses[key]
		if r != nil && len(r.Content) > 0 && r.Content[problemContentType] == nil {
			continue
		}
		if r == nil {
			r = &huma.Response{}
			op.Responses[key] = r
		}
		r.Description = describeStatus(status, byStatus[status])
		r.Content = problem()
		if status == http.StatusServiceUnavailable {
			if r.Headers == nil {
				r.Headers = map[string]*huma.Param{}
			}
			r.Headers["Retry-After"] = &huma.Param{Description: "Seconds to wait before retrying.", Schema: &huma.Schema{Type: huma.TypeInteger}}
		}
	}
	internal := "Any other error, such as 500 `internal_error`: its detail names the request id (also in X-Request-ID) to quote."
	op.Responses["default"] = &huma.Response{Description: internal, Content: problem()}
	if r := op.Responses["500"]; r != nil {
		r.Description, r.Content = internal, problem()
	}
}

// mergeProblem adds d to the problems of one status: a code already there
// gains d's case.
func mergeProblem(list []problemDoc, d problemDoc) []problemDoc {
	for i := range list {
		if list[i].code == d.code {
			list[i].when += "; or " + d.when
			return list
		}
	}
	return append(list, d)
}

// describeStatus is the description of one error status: its codes and
// when each is answered.
func describeStatus(status int, docs []problemDoc) string {
	var b strings.Builder
	b.WriteString(http.StatusText(status) + ":")
	for _, d := range docs {
		fmt.Fprintf(&b, "\n- `%s`: %s", d.code, d.when)
	}
	switch status {
	case http.StatusTooManyRequests:
		b.WriteString("\n\nRetry after the seconds in Retry-After.")
	case http.StatusServiceUnavailable:
		b.WriteString("\n\nNothing is wrong with the request: retry after the seconds in Retry-After.")
	}
	return b.String()
}

// documentRoute adds a GET route served outside Huma (a plain ServeMux
// handler) to the OpenAPI document, with the errors it answers: nothing
// is derived from its parameters, since Huma does not check them.
func (s *Server) documentRoute(op *huma.Operation, docs ...problemDoc) {
	if op.Method != http.MethodGet {
		panic("httpapi: documentRoute documents GET routes only")
	}
	oapi := s.api.OpenAPI()
	s.applySideEffects(oapi, op)
	s.describe(oapi, op, append(sideEffectProblems(op), docs...))
	if oapi.Paths == nil {
		oapi.Paths = map[string]*huma.PathItem{}
	}
	item := oapi.Paths[op.Path]
	if item == nil {
		item = &huma.PathItem{}
		oapi.Paths[op.Path] = item
	}
	item.Get = op
}

// describeAPI completes the document once every operation is registered:
// the tags, the license, and the routes Huma serves itself.
func (s *Server) describeAPI() {
	oapi := s.api.OpenAPI()
	oapi.Info.License = &huma.License{Name: "Apache License 2.0", Identifier: "Apache-2.0"}
	declared := map[string]bool{}
	for _, t := range oapi.Tags {
		declared[t.Name] = true
	}
	var tags []*huma.Tag
	for _, t := range tagDescriptions {
		if !declared[t.Name] {
			tags = append(tags, t)
		}
	}
	oapi.Tags = append(tags, oapi.Tags...)

	s.documentRoute(&huma.Operation{
		OperationID: "get-openapi", Method: http.MethodGet, Path: "/openapi.json", Tags: []string{TagDocs},
		Summary: "Get this OpenAPI document",
		Description: "The OpenAPI 3.1 document of this API; the same as YAML at /openapi.yaml, and in OpenAPI 3.0 form at " +
			"/openapi-3.0.json and /openapi-3.0.yaml.",
		Responses: map[string]*huma.Response{"200": {Description: "The document.", Content: map[string]*huma.MediaType{
			"application/openapi+json": {Schema: &huma.Schema{Type: huma.TypeObject}}}}},
	})
	s.documentRoute(&huma.Operation{
		OperationID: "get-docs", Method: http.MethodGet, Path: "/docs", Tags: []string{TagDocs},
		Summary:     "Open the interactive API docs",
		Description: "An HTML page that renders this document and lets a browser try the operations.",
		Responses: map[string]*huma.Response{"200": {Description: "The page.", Content: map[string]*huma.MediaType{
			"text/html": {Schema: &huma.Schema{Type: huma.TypeString}}}}},
	})
	documentValidators(oapi)
}
