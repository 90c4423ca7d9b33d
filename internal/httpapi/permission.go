package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/authz"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// Authorizer answers permission checks (an *authz.Checker).
type Authorizer interface {
	Can(ctx context.Context, userID, perm string) (bool, error)
}

// RoleAdmin manages roles and assignments (an *authz.Service).
type RoleAdmin interface {
	ListRoles(ctx context.Context) ([]gatehouse.Role, error)
	CreateRole(ctx context.Context, actorID, name, description string, perms []string) (gatehouse.Role, error)
	UpdateRole(ctx context.Context, actorID, id string, description *string, permissions *[]string) (gatehouse.Role, error)
	DeleteRole(ctx context.Context, actorID, id string) error
	SetUserRoles(ctx context.Context, actorID, userID string, names []string) (gatehouse.User, error)
	ListUsers(ctx context.Context, q store.UserQuery) ([]gatehouse.User, error)
}

// PermissionExtension is the OpenAPI extension naming the permission an
// operation requires.
const PermissionExtension = "x-permission"

// permission marks op as needing a signed-in user holding perm: declared
// once here, shown in the OpenAPI document, enforced before the handler.
func (s *Server) permission(op huma.Operation, perm string) huma.Operation {
	op = s.bearer(op)
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	op.Extensions[PermissionExtension] = perm
	op.Description = fmt.Sprintf("%s\n\nRequires the `%s` permission (403 permission_denied otherwise).", op.Description, perm)
	op.Middlewares = append(op.Middlewares, s.requirePermission(perm))
	return op
}

func (s *Server) requirePermission(perm string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		r, w := humago.Unwrap(ctx)
		p := mustPrincipal(ctx.Context())
		ok, err := s.can(ctx.Context(), p.UserID, perm)
		if err != nil {
			WriteProblem(w, r, err)
			return
		}
		if !ok {
			s.recordDenied(ctx.Context(), p.UserID, perm)
			WriteProblem(w, r, gatehouse.Errorf(gatehouse.CodePermissionDenied, "this needs the %s permission", perm))
			return
		}
		next(ctx)
	}
}

// DenialRecorder records authorization failures in the audit trail. The
// Audit dependency implements it when the trail is wired.
type DenialRecorder interface {
	// RecordDenied records that userID lacked permission for route, in a
	// transaction of its own.
	RecordDenied(ctx context.Context, userID, permission, route string) error
}

// recordDenied audits a refusal. The refusal stands whether or not the
// row could be written; a failure is logged.
func (s *Server) recordDenied(ctx context.Context, userID, perm string) {
	rec, ok := s.audit.(DenialRecorder)
	if !ok {
		return
	}
	if err := rec.RecordDenied(ctx, userID, perm, routeOf(ctx)); err != nil {
		telemetry.Logger(ctx).ErrorContext(ctx, "audit authorization failure", "permission", perm, "err", err)
	}
}

// adminProblem answers an error of an administration operation; a
// refusal to grant what the actor does not hold, or to act on a user who
// holds more than the actor, is audited like a refused route, naming the
// permissions the actor lacked.
func (s *Server) adminProblem(ctx context.Context, err error) error {
	if d, ok := errors.AsType[*authz.DeniedError](err); ok {
		s.recordDenied(ctx, mustPrincipal(ctx).UserID, strings.Join(d.Missing, " "))
	}
	return Problem(err)
}

// can checks a permission; a failing check denies, never allows.
func (s *Server) can(ctx context.Context, userID, perm string) (bool, error) {
	if s.authz == nil {
		return false, nil
	}
	ok, err := s.authz.Can(ctx, userID, perm)
	if err != nil {
		return false, gatehouse.WrapError(gatehouse.CodeUnavailable, err, "permissions could not be checked; try again")
	}
	return ok, nil
}

// TagAuthz groups authorization checks.
const TagAuthz = "Authorization"

type allowedOutput struct {
	Body struct {
		Allowed bool `json:"allowed"`
	}
}

func (s *Server) registerAuthzCheck() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "authz-check", Method: http.MethodPost, Path: "/authz/check", Tags: []string{TagAuthz},
		Summary: "Check a permission",
		Description: "For resource servers that cannot embed the logic: does the bearer's user (or, for callers " +
			"holding `authz:check`, the given user_id) hold the permission? Wildcards `*` and `resource:*` apply.",
	}), func(ctx context.Context, in *struct {
		Body struct {
			Permission string `json:"permission" minLength:"1" maxLength:"200" doc:"resource:action"`
			UserID     string `json:"user_id,omitempty" maxLength:"64" doc:"Whose permission to check; needs authz:check. Default: the caller."`
		}
	}) (*allowedOutput, error) {
		p := mustPrincipal(ctx)
		if !gatehouse.ValidPermission(in.Body.Permission) {
			return nil, Problem(gatehouse.InvalidField("body.permission", "use \"resource:action\""))
		}
		subject := p.UserID
		if in.Body.UserID != "" && in.Body.UserID != p.UserID {
			ok, err := s.can(ctx, p.UserID, "authz:check")
			if err != nil {
				return nil, Problem(err)
			}
			if !ok {
				s.recordDenied(ctx, p.UserID, "authz:check")
				return nil, Problem(gatehouse.Errorf(gatehouse.CodePermissionDenied, "checking another user's permissions needs authz:check"))
			}
			subject = in.Body.UserID
		}
		allowed, err := s.can(ctx, subject, in.Body.Permission)
		if err != nil {
			return nil, Problem(err)
		}
		out := &allowedOutput{}
		out.Body.Allowed = allowed
		return out, nil
	})
}
