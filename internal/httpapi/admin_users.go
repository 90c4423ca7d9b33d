package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// TagAdmin groups administration operations.
const TagAdmin = "Administration"

// AccountAdmin locks and unlocks accounts (an *account.Service).
type AccountAdmin interface {
	Lock(ctx context.Context, actorID, userID, reason string) (gatehouse.User, error)
	Unlock(ctx context.Context, actorID, userID string) (gatehouse.User, error)
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
}

type userList struct {
	Body struct {
		Items      []User  `json:"items"`
		NextCursor *string `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

type userIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

// cursors are opaque to clients: base64url of the last id of the page.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !idShaped(string(b)) {
		return "", gatehouse.InvalidField("query.cursor", "cursor is not one this API returned")
	}
	return string(b), nil
}

// idShaped reports whether id looks like the ids we issue (a lower-case
// hex UUID), so a forged cursor never reaches a query.
func idShaped(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, r := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f'):
			return false
		}
	}
	return true
}

func (s *Server) registerAdminUsers() {
	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-list-users", Method: http.MethodGet, Path: "/admin/users", Tags: []string{TagAdmin},
		Summary:     "List users",
		Description: "In creation order, a page at a time; q searches email and name (case-insensitive substring).",
	}, "users:read"), func(ctx context.Context, in *struct {
		Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
		Cursor string `query:"cursor" maxLength:"200"`
		Q      string `query:"q" maxLength:"200"`
	}) (*userList, error) {
		after, err := decodeCursor(in.Cursor)
		if err != nil {
			return nil, Problem(err)
		}
		users, err := s.roles.ListUsers(ctx, store.UserQuery{After: after, Limit: in.Limit + 1, Search: in.Q})
		if err != nil {
			return nil, Problem(err)
		}
		out := &userList{}
		if len(users) > in.Limit {
			users = users[:in.Limit]
			next := encodeCursor(users[len(users)-1].ID)
			out.Body.NextCursor = &next
		}
		out.Body.Items = make([]User, 0, len(users))
		for _, u := range users {
			out.Body.Items = append(out.Body.Items, userBody(u, s.now()))
		}
		return out, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-get-user", Method: http.MethodGet, Path: "/admin/users/{id}", Tags: []string{TagAdmin},
		Summary: "Get a user",
	}, "users:read"), func(ctx context.Context, in *userIDInput) (*userOutput, error) {
		u, err := s.admin.GetUser(ctx, in.ID)
		if err != nil {
			return nil, Problem(err)
		}
		return &userOutput{Body: userBody(u, s.now())}, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-set-user-roles", Method: http.MethodPut, Path: "/admin/users/{id}/roles", Tags: []string{TagAdmin},
		Summary:     "Replace a user's roles",
		Description: "Nobody assigns or removes a role granting permissions they do not hold themselves, nor changes the roles of a user holding a permission they do not hold (403 permission_denied). Takes effect at once on every instance.",
	}, "roles:assign"), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body struct {
			Roles []string `json:"roles" maxItems:"100" doc:"Role names; replaces the set."`
		}
	}) (*userOutput, error) {
		if in.Body.Roles == nil {
			return nil, Problem(gatehouse.InvalidField("body.roles", "roles is required: a list, [] for none"))
		}
		u, err := s.roles.SetUserRoles(ctx, mustPrincipal(ctx).UserID, in.ID, in.Body.Roles)
		if err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		return &userOutput{Body: userBody(u, s.now())}, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-lock-user", Method: http.MethodPut, Path: "/admin/users/{id}/lock", Tags: []string{TagAdmin},
		Summary:     "Lock a user",
		Description: "Locked until unlocked; every session of the user ends at once. Nobody locks a user holding a permission they do not hold themselves (403 permission_denied), nor their own account (409 conflict).",
	}, "users:lock"), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body *struct {
			Reason string `json:"reason,omitempty" maxLength:"500"`
		}
	}) (*userOutput, error) {
		reason := ""
		if in.Body != nil {
			reason = in.Body.Reason
		}
		u, err := s.admin.Lock(ctx, mustPrincipal(ctx).UserID, in.ID, reason)
		if err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		return &userOutput{Body: userBody(u, s.now())}, nil
	})

	huma.Register(s.api, s.permission(huma.Operation{
		OperationID: "admin-unlock-user", Method: http.MethodPut, Path: "/admin/users/{id}/unlock", Tags: []string{TagAdmin},
		Summary:     "Unlock a user",
		Description: "Lifts an administrator's lock and a temporary lockout, and forgets failed logins. Nobody unlocks a user holding a permission they do not hold themselves (403 permission_denied); `gatehouse users unlock` can unlock anyone.",
	}, "users:lock"), func(ctx context.Context, in *userIDInput) (*userOutput, error) {
		u, err := s.admin.Unlock(ctx, mustPrincipal(ctx).UserID, in.ID)
		if err != nil {
			return nil, s.adminProblem(ctx, err)
		}
		return &userOutput{Body: userBody(u, s.now())}, nil
	})
}
