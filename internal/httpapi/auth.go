package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/account"
	"github.com/gatehouse-auth/gatehouse/internal/session"
)

// TagAuth groups the sign-in operations.
const TagAuth = "Authentication"

// Accounts is the account lifecycle (an *account.Service).
type Accounts interface {
	Register(ctx context.Context, email, password, name string) (gatehouse.User, error)
	VerifyEmail(ctx context.Context, token string) (gatehouse.User, error)
	ResendVerification(ctx context.Context, email string) error
	Logout(ctx context.Context, userID, sessionID string) error
	ForgotPassword(ctx context.Context, email string) error
	ResetPassword(ctx context.Context, token, password string) error
	ChangePassword(ctx context.Context, userID, sessionID, current, next string) error
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
	// Profile is GetUser for answers that only show the user; it may come
	// from the in-process cache.
	Profile(ctx context.Context, id string) (gatehouse.User, error)
	UpdateProfile(ctx context.Context, userID string, p account.ProfileUpdate) (gatehouse.User, error)
	DeleteAccount(ctx context.Context, userID, password string, authTime time.Time) error
	// RequireRecentAuth is the step-up check of sensitive actions
	// (403 recent_auth_required).
	RequireRecentAuth(ctx context.Context, userID string, authTime time.Time, password string) error
}

// Sessions authenticates requests and manages sessions (a *session.Service).
type Sessions interface {
	Authenticate(ctx context.Context, raw string) (gatehouse.Principal, error)
	Refresh(ctx context.Context, refresh string, meta gatehouse.ClientInfo) (session.Refreshed, error)
	List(ctx context.Context, userID string) ([]gatehouse.Session, error)
	Revoke(ctx context.Context, userID, sessionID, reason string) error
	RevokeOthers(ctx context.Context, userID, current string) (int, error)
}

type userEnvelope struct {
	Body struct {
		User User `json:"user"`
	}
}

type userEnvelopeCreated struct {
	Status int
	Body   struct {
		User User `json:"user"`
	}
}

type tokenOutput struct {
	Body TokenResponse
}

type emailInput struct {
	Body struct {
		Email string `json:"email" maxLength:"320" doc:"The account's email address; one that could not be an account's answers 422 invalid_email."`
	}
}

func (s *Server) now() time.Time { return s.clock().UTC() }

func (s *Server) registerAuth() {
	huma.Register(s.api, huma.Operation{
		OperationID: "register", Method: http.MethodPost, Path: "/auth/register", Tags: []string{TagAuth},
		Summary: "Register an account",
		Description: "Creates an account and emails a verification link (valid 24 hours). Errors: 409 email_taken (also for another spelling of the same address: case, accents composed or not, a fullwidth domain), " +
			"422 invalid_email (malformed, or a look-alike: invisible characters, mixed scripts, letters imitating ASCII, fullwidth characters before the @), " +
			"422 weak_password (with the reasons), 422 validation_failed.",
		DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *struct {
		Body struct {
			Email    string `json:"email" maxLength:"320" doc:"Email address; case does not matter. The domain may be internationalised (stored as IDNA A-labels)."`
			Password string `json:"password" maxLength:"1024" doc:"12 to 128 characters; not a common password, not containing the email or name."`
			Name     string `json:"name,omitempty" maxLength:"200"`
		}
	}) (*userEnvelopeCreated, error) {
		u, err := s.accounts.Register(ctx, in.Body.Email, in.Body.Password, in.Body.Name)
		if err != nil {
			return nil, Problem(err)
		}
		out := &userEnvelopeCreated{Status: http.StatusCreated}
		out.Body.User = userBody(u, s.now())
		return out, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "verify-email", Method: http.MethodPost, Path: "/auth/verify-email", Tags: []string{TagAuth},
		Summary:     "Verify an email address",
		Description: "Consumes the single-use token from the verification email. Errors: 400 invalid_token (unknown, used, expired or superseded).",
	}, func(ctx context.Context, in *struct {
		Body struct {
			Token string `json:"token" minLength:"1" maxLength:"256"`
		}
	}) (*userEnvelope, error) {
		u, err := s.accounts.VerifyEmail(ctx, in.Body.Token)
		if err != nil {
			return nil, Problem(err)
		}
		out := &userEnvelope{}
		out.Body.User = userBody(u, s.now())
		return out, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "resend-verification", Method: http.MethodPost, Path: "/auth/verify-email/resend", Tags: []string{TagAuth},
		Summary:       "Resend the verification email",
		Description:   "Always 202, whether or not the account exists. A new link supersedes every earlier one.",
		DefaultStatus: http.StatusAccepted,
	}, func(ctx context.Context, in *emailInput) (*acceptedOutput, error) {
		if err := s.limitEmail(ctx, in.Body.Email); err != nil {
			return nil, Problem(err)
		}
		if err := s.accounts.ResendVerification(ctx, in.Body.Email); err != nil {
			return nil, Problem(err)
		}
		return accepted(), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/auth/login", Tags: []string{TagAuth},
		Summary: "Sign in with email and password",
		Description: "Answers tokens for a new session, or an MFAChallenge (mfa_required: true) when the account has a second factor: " +
			"meet it at /auth/mfa/verify. Errors: 401 invalid_credentials (same for an unknown email and a wrong password), " +
			"423 account_locked (only for the right password of a locked account).",
	}, func(ctx context.Context, in *struct {
		UserAgent string `header:"User-Agent"`
		Body      struct {
			Email    string `json:"email" maxLength:"320"`
			Password string `json:"password" maxLength:"1024"`
			DeviceID string `json:"device_id,omitempty" maxLength:"128" doc:"A stable id the client keeps for this device."`
		}
	}) (*signInOutput, error) {
		t, err := s.signIn.Password(ctx, in.Body.Email, in.Body.Password, clientMeta(ctx, in.UserAgent, in.Body.DeviceID))
		if err != nil {
			return nil, Problem(err)
		}
		return signInBody(t, s.now()), nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/auth/logout", Tags: []string{TagAuth},
		Summary:       "Sign out",
		Description:   "Ends the session: its refresh tokens and the presented access token stop working at once.",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, _ *struct{}) (*noContent, error) {
		p := mustPrincipal(ctx)
		if err := s.accounts.Logout(ctx, p.UserID, p.SessionID); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/auth/refresh", Tags: []string{TagAuth},
		Summary: "Exchange a refresh token",
		Description: "Rotates the refresh token: the answer carries a new one and the presented one is spent. " +
			"Errors: 401 invalid_refresh_token; 401 refresh_token_reused when a spent token comes back, which also ends the session.",
	}, func(ctx context.Context, in *struct {
		UserAgent string `header:"User-Agent"`
		Body      struct {
			RefreshToken string `json:"refresh_token" minLength:"1" maxLength:"256"`
		}
	}) (*tokenOutput, error) {
		r, err := s.sessions.Refresh(ctx, in.Body.RefreshToken, clientMeta(ctx, in.UserAgent, ""))
		if err != nil {
			return nil, Problem(err)
		}
		t, err := s.signIn.Issue(ctx, r.Session, r.RefreshToken)
		if err != nil {
			return nil, Problem(err)
		}
		return &tokenOutput{Body: tokenBody(t, s.now())}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "forgot-password", Method: http.MethodPost, Path: "/auth/password/forgot", Tags: []string{TagAuth},
		Summary:       "Request a password reset email",
		Description:   "Always 202; emails a single-use reset link (valid 1 hour) when the account exists.",
		DefaultStatus: http.StatusAccepted,
	}, func(ctx context.Context, in *emailInput) (*acceptedOutput, error) {
		if err := s.limitEmail(ctx, in.Body.Email); err != nil {
			return nil, Problem(err)
		}
		if err := s.accounts.ForgotPassword(ctx, in.Body.Email); err != nil {
			return nil, Problem(err)
		}
		return accepted(), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "reset-password", Method: http.MethodPost, Path: "/auth/password/reset", Tags: []string{TagAuth},
		Summary:       "Set a new password with a reset token",
		Description:   "Every session of the account ends. Errors: 400 invalid_token, 422 weak_password (the token stays usable).",
		DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *struct {
		Body struct {
			Token    string `json:"token" minLength:"1" maxLength:"256"`
			Password string `json:"password" maxLength:"1024"`
		}
	}) (*noContent, error) {
		if err := s.accounts.ResetPassword(ctx, in.Body.Token, in.Body.Password); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: "/auth/me", Tags: []string{TagAuth},
		Summary: "Who am I",
	}), s.getProfile)
}
