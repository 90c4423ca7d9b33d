package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
)

// Role is the API's view of a role.
type Role struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Permissions []string  `json:"permissions"`
	System      bool      `json:"system" doc:"System roles (admin, moderator, user) cannot be deleted or renamed."`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func roleBody(r gatehouse.Role) Role {
	perms := r.Permissions
	if perms == nil {
		perms = []string{}
	}
	return Role{ID: r.ID, Name: r.Name, Description: r.Description, Permissions: perms, System: r.System,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type roleOutput struct {
	Status int
	Body   Role
}

type roleList struct {
	Body struct {
		Items      []Role  `json:"items"`
		NextCursor *string `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

func (s *Server) registerAdminRoles() {
	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-list-roles", Method: http.MethodGet, Path: "/admin/roles", Tags: []string{TagAdmin},
		Summary:     "List roles",
		Description: "By name, a page at a time. A cursor whose role has been deleted since is 422 validation_failed: start again without it.",
	}, "roles:read"), func(ctx context.Context, in *pageInput) (*roleList, error) {
		roles, err := s.roles.ListRoles(ctx)
		if err != nil {
			return nil, Problem(err)
		}
		out := &roleList{}
		out.Body.Items, out.Body.NextCursor, err = pageList(roles, in, roleBody, func(r gatehouse.Role) string { return r.ID })
		if err != nil {
			return nil, Problem(err)
		}
		return out, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-create-role", Method: http.MethodPost, Path: "/admin/roles", Tags: []string{TagAdmin},
		Summary:       "Create a role",
		Description:   "Permissions are \"resource:action\", \"resource:*\" or \"*\"; nobody grants what they do not hold. 409 conflict when the name exists.",
		DefaultStatus: http.StatusCreated,
	}, "roles:write"), func(ctx context.Context, in *struct {
		Body struct {
			Name        string   `json:"name" minLength:"1" maxLength:"64"`
			Description string   `json:"description,omitempty" maxLength:"500"`
			Permissions []string `json:"permissions" maxItems:"200"`
		}
	}) (*roleOutput, error) {
		if in.Body.Permissions == nil {
			return nil, Problem(gatehouse.InvalidField("body.permissions", "permissions is required: a list, [] for none"))
		}
		r, err := s.roles.CreateRole(ctx, mustPrincipal(ctx).UserID, in.Body.Name, in.Body.Description, in.Body.Permissions)
		if err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		return &roleOutput{Status: http.StatusCreated, Body: roleBody(r)}, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-update-role", Method: http.MethodPut, Path: "/admin/roles/{id}", Tags: []string{TagAdmin},
		Summary:     "Update a role",
		Description: "Changes take effect at once on every instance. admin's permissions cannot change (409 system_role).",
	}, "roles:write"), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body struct {
			Description *string   `json:"description,omitempty" maxLength:"500"`
			Permissions *[]string `json:"permissions,omitempty" maxItems:"200"`
		}
	}) (*roleOutput, error) {
		r, err := s.roles.UpdateRole(ctx, mustPrincipal(ctx).UserID, in.ID, in.Body.Description, in.Body.Permissions)
		if err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		return &roleOutput{Status: http.StatusOK, Body: roleBody(r)}, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-delete-role", Method: http.MethodDelete, Path: "/admin/roles/{id}", Tags: []string{TagAdmin},
		Summary:       "Delete a role",
		Description:   "Its holders lose it at once. 409 system_role for a system role.",
		DefaultStatus: http.StatusNoContent,
	}, "roles:write"), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"64"`
	}) (*noContent, error) {
		if err := s.roles.DeleteRole(ctx, mustPrincipal(ctx).UserID, in.ID); err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		return &noContent{}, nil
	})
}
