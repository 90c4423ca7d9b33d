package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/account"
)

// TagProfile groups the signed-in user's own account operations.
const TagProfile = "Profile"

type userOutput struct {
	Body User
}

func (s *Server) getProfile(ctx context.Context, _ *struct{}) (*userOutput, error) {
	u, err := s.accounts.Profile(ctx, mustPrincipal(ctx).UserID)
	if err != nil {
		return nil, Problem(err)
	}
	return &userOutput{Body: userBody(u, s.now())}, nil
}

func (s *Server) registerProfile() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "get-profile", Method: http.MethodGet, Path: "/users/profile", Tags: []string{TagProfile},
		Summary: "Get my profile",
	}), s.getProfile)

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "update-profile", Method: http.MethodPut, Path: "/users/profile", Tags: []string{TagProfile},
		Summary:     "Update my profile",
		Description: "Fields left out are unchanged; an empty phone_number clears it.",
	}), func(ctx context.Context, in *struct {
		Body struct {
			Name                    *string             `json:"name,omitempty" maxLength:"200"`
			PhoneNumber             *string             `json:"phone_number,omitempty" maxLength:"16" doc:"E.164, e.g. +14155550100; empty clears it."`
			NotificationPreferences map[string][]string `json:"notification_preferences,omitempty" doc:"Per alert type (security.new_device_login, security.password_changed, security.mfa_changed, security.session_revoked, security.alert), the channels it uses: email and/or websocket. A type left out uses both; an empty list turns it off."`
		}
	}) (*userOutput, error) {
		p := account.ProfileUpdate{Name: in.Body.Name, PhoneNumber: in.Body.PhoneNumber, NotificationPreferences: in.Body.NotificationPreferences}
		if err := gatehouse.ValidateNotificationPreferences(p.NotificationPreferences); err != nil {
			return nil, Problem(err)
		}
		u, err := s.accounts.UpdateProfile(ctx, mustPrincipal(ctx).UserID, p)
		if err != nil {
			return nil, Problem(err)
		}
		return &userOutput{Body: userBody(u, s.now())}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "change-password", Method: http.MethodPost, Path: "/users/password/change", Tags: []string{TagProfile},
		Summary:       "Change my password",
		Description:   "Needs the current password. Every other session ends. Errors: 401 invalid_credentials, 422 weak_password.",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *struct {
		Body struct {
			CurrentPassword string `json:"current_password" maxLength:"1024"`
			NewPassword     string `json:"new_password" maxLength:"1024"`
		}
	}) (*noContent, error) {
		p := mustPrincipal(ctx)
		if err := s.accounts.ChangePassword(ctx, p.UserID, p.SessionID, in.Body.CurrentPassword, in.Body.NewPassword); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "delete-account", Method: http.MethodDelete, Path: "/users/account", Tags: []string{TagProfile},
		Summary:       "Delete my account",
		Description:   "Needs the password; an account without one (social login, passkeys, magic links) needs a sign-in within the last 5 minutes instead. The account and everything it owns is deleted; its tokens stop working. Errors: 403 recent_auth_required for a wrong password or an older sign-in.",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *struct {
		Body struct {
			Password string `json:"password,omitempty" maxLength:"1024" doc:"Required when the account has a password."`
		}
	}) (*noContent, error) {
		p := mustPrincipal(ctx)
		if err := s.accounts.DeleteAccount(ctx, p.UserID, in.Body.Password, p.AuthTime); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})
}
