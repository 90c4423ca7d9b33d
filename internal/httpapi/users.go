package httpapi

import (
	"slices"
	"time"

	"github.com/gatehouse-auth/gatehouse"
)

// User is the API's view of an account.
type User struct {
	ID                      string              `json:"id" doc:"Opaque user id (UUIDv7)."`
	Email                   string              `json:"email" format:"idn-email" doc:"Normalised: the part before the @ in lower case and Unicode NFC, the domain in IDNA A-labels (xn--...)."`
	EmailVerified           bool                `json:"email_verified"`
	Name                    string              `json:"name"`
	PhoneNumber             *string             `json:"phone_number" doc:"E.164, or null."`
	MFAEnabled              bool                `json:"mfa_enabled"`
	MFAMethods              []string            `json:"mfa_methods"`
	Roles                   []string            `json:"roles"`
	Locked                  bool                `json:"locked"`
	NotificationPreferences map[string][]string `json:"notification_preferences,omitempty" doc:"Per alert type, the channels it uses (email, websocket)."`
	CreatedAt               time.Time           `json:"created_at"`
	UpdatedAt               time.Time           `json:"updated_at"`
	LastLoginAt             *time.Time          `json:"last_login_at"`
}

func userBody(u gatehouse.User, now time.Time) User {
	out := User{
		ID: u.ID, Email: u.Email.String(), EmailVerified: u.EmailVerified, Name: u.Name,
		MFAEnabled: u.MFAEnabled, MFAMethods: u.MFAMethods, Roles: u.Roles, Locked: u.Locked(now),
		NotificationPreferences: u.NotificationPreferences,
		CreatedAt:               u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(), LastLoginAt: u.LastLoginAt,
	}
	if u.PhoneNumber != "" {
		p := u.PhoneNumber
		out.PhoneNumber = &p
	}
	if out.MFAMethods == nil {
		out.MFAMethods = []string{}
	}
	if out.Roles == nil {
		out.Roles = []string{}
	} else {
		out.Roles = slices.Clone(out.Roles)
	}
	if out.LastLoginAt != nil {
		t := out.LastLoginAt.UTC()
		out.LastLoginAt = &t
	}
	return out
}

// TokenResponse is what a successful sign-in or refresh answers.
type TokenResponse struct {
	AccessToken  string `json:"access_token" doc:"RS256 JWT (typ at+jwt)."`
	TokenType    string `json:"token_type" enum:"Bearer"`
	ExpiresIn    int    `json:"expires_in" doc:"Seconds until the access token expires."`
	RefreshToken string `json:"refresh_token" doc:"Opaque, single use: each refresh returns a new one."`
	SessionID    string `json:"session_id"`
	User         User   `json:"user"`
}

func tokenBody(t gatehouse.SignInResult, now time.Time) TokenResponse {
	return TokenResponse{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn,
		RefreshToken: t.RefreshToken, SessionID: t.Session.ID, User: userBody(t.User, now)}
}
