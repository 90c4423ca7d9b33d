package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/audit"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

type principalKey struct{}

// bearerCall is what requireBearer puts in the context: the caller, and
// the method and path that audit rows of refusals name.
type bearerCall struct {
	principal    gatehouse.Principal
	method, path string
}

// PrincipalFrom returns the authenticated caller of a bearer operation.
func PrincipalFrom(ctx context.Context) (gatehouse.Principal, bool) {
	c, ok := ctx.Value(principalKey{}).(*bearerCall)
	if !ok {
		return gatehouse.Principal{}, false
	}
	return c.principal, true
}

func mustPrincipal(ctx context.Context) gatehouse.Principal {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		panic("httpapi: bearer operation without the auth middleware")
	}
	return p
}

// bearer marks op as needing a signed-in user: documented in OpenAPI and
// enforced by requireBearer before the handler runs.
func (s *Server) bearer(op huma.Operation) huma.Operation {
	op.Security = []map[string][]string{{SecurityBearer: {}}}
	op.Middlewares = append(op.Middlewares, s.requireBearer)
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	return op
}

var errNoToken = gatehouse.Errorf(gatehouse.CodeUnauthorized, "send an access token as Authorization: Bearer <token>")

// requireBearer authenticates the Authorization header: the token must
// verify and its session must be alive. A request it refuses counts
// against its client address's API rate limit (the limiter itself only
// sees requests that got this far), and once that is spent the answer is
// 429 instead of 401: guessing tokens is throttled like anything else.
func (s *Server) requireBearer(ctx huma.Context, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	raw, ok := bearerToken(ctx.Header("Authorization"))
	if !ok || s.sessions == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		WriteProblem(w, r, s.refusedBearer(ctx.Context(), w.Header(), errNoToken))
		return
	}
	p, err := s.sessions.Authenticate(ctx.Context(), raw)
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.CodeUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", error="invalid_token"`)
			err = s.refusedBearer(ctx.Context(), w.Header(), err)
		}
		WriteProblem(w, r, err)
		return
	}
	telemetry.SetUserID(ctx.Context(), p.UserID)
	c := context.WithValue(audit.WithActor(ctx.Context(), p.UserID), principalKey{},
		&bearerCall{principal: p, method: r.Method, path: r.URL.Path})
	next(huma.WithContext(ctx, c))
}

// routeOf is the method and path of a bearer operation's request, as
// audit rows of refusals name it.
func routeOf(ctx context.Context) string {
	c, ok := ctx.Value(principalKey{}).(*bearerCall)
	if !ok {
		return ""
	}
	return c.method + " " + c.path
}

// authenticate checks an optional Authorization header the way
// requireBearer does, for operations that take either a bearer token or
// something else.
func (s *Server) authenticate(ctx context.Context, header string) (gatehouse.Principal, error) {
	raw, ok := bearerToken(header)
	if !ok || s.sessions == nil {
		return gatehouse.Principal{}, errNoToken
	}
	return s.sessions.Authenticate(ctx, raw)
}

func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && len(tok) < 8192
}

// clientMeta describes the calling client for sessions and events.
func clientMeta(ctx context.Context, userAgent, deviceID string) gatehouse.ClientInfo {
	ip := ""
	if a := ClientIPFrom(ctx); a.IsValid() {
		ip = a.String()
	}
	return gatehouse.ClientInfo{IP: ip, UserAgent: userAgent, DeviceID: deviceID}
}

// noContent is the output of 204 operations.
type noContent struct{}

// accepted is the output of 202 operations.
type acceptedOutput struct {
	Status int
}

func accepted() *acceptedOutput { return &acceptedOutput{Status: http.StatusAccepted} }
