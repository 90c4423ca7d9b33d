package web

import (
	"context"
	"encoding/json"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/account"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// SignIn runs sign-ins (a *signin.Flow): the pages sign in only through it.
type SignIn interface {
	Password(ctx context.Context, email, password string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error)
	MagicLink(ctx context.Context, token string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error)
	MFA(ctx context.Context, challengeID, method, code string) (gatehouse.SignInResult, error)
	ConfirmLink(ctx context.Context, token string) error
	Confirmed(ctx context.Context, challengeID string) (gatehouse.SignInResult, error)
	Passkey(ctx context.Context, challengeID string, credential json.RawMessage, client gatehouse.ClientInfo) (gatehouse.SignInResult, error)
	OAuthExchange(ctx context.Context, code string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error)
}

// Accounts is the account service (an *account.Service).
type Accounts interface {
	Register(ctx context.Context, email, password, name string) (gatehouse.User, error)
	VerifyEmail(ctx context.Context, token string) (gatehouse.User, error)
	ResendVerification(ctx context.Context, email string) error
	Logout(ctx context.Context, userID, sessionID string) error
	ForgotPassword(ctx context.Context, email string) error
	ResetPassword(ctx context.Context, token, password string) error
	ChangePassword(ctx context.Context, userID, sessionID, current, next string) error
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
	UpdateProfile(ctx context.Context, userID string, p account.ProfileUpdate) (gatehouse.User, error)
	DeleteAccount(ctx context.Context, userID, password string, authTime time.Time) error
	RequestEmailChange(ctx context.Context, userID, newEmail, password string, authTime time.Time) error
	ConfirmEmailChange(ctx context.Context, token string) (gatehouse.User, error)
}

// MagicLinks emails sign-in links (an *account.MagicLinks).
type MagicLinks interface {
	Request(ctx context.Context, email string) error
}

// MFA runs second factors (an *mfa.Service).
type MFA interface {
	Send(ctx context.Context, challengeID, method string) error
	Setup(ctx context.Context, userID, method, phone string) (mfa.SetupResult, error)
	Activate(ctx context.Context, userID, method, code string) ([]string, error)
	Disable(ctx context.Context, userID, sessionID string, authTime time.Time, method, code, password string) error
	RemainingBackupCodes(ctx context.Context, userID string) (int, error)
	RegenerateBackupCodes(ctx context.Context, userID, sessionID string, authTime time.Time, code, password string) ([]string, error)
}

// Passkeys runs WebAuthn ceremonies and manages passkeys (a
// *passkey.Service).
type Passkeys interface {
	BeginLogin(ctx context.Context, email string) (string, *protocol.CredentialAssertion, error)
	BeginRegistration(ctx context.Context, userID string) (*protocol.CredentialCreation, error)
	FinishRegistration(ctx context.Context, userID string, credential json.RawMessage, name string) (gatehouse.WebAuthnCredential, error)
	List(ctx context.Context, userID string) ([]gatehouse.WebAuthnCredential, error)
	Rename(ctx context.Context, userID, id, name string) (gatehouse.WebAuthnCredential, error)
	Delete(ctx context.Context, userID, id string) error
}

// OAuth is social login (an *oauth.Service).
type OAuth interface {
	Providers() []string
	LinkURL(ctx context.Context, provider, redirectURI, userID string) (string, error)
	List(ctx context.Context, userID string) ([]gatehouse.OAuthAccount, error)
	Unlink(ctx context.Context, userID, id string) error
}

// UserSessions lists and revokes a user's sessions (a *session.Service).
type UserSessions interface {
	List(ctx context.Context, userID string) ([]gatehouse.Session, error)
	Revoke(ctx context.Context, userID, sessionID, reason string) error
}

// Devices are the devices a user signs in from (a *device.Service).
type Devices interface {
	List(ctx context.Context, userID string) ([]gatehouse.Device, error)
	SetTrusted(ctx context.Context, userID, id string, trusted bool) (gatehouse.Device, error)
	Remove(ctx context.Context, userID, id string) error
}

// Admin is what the admin console needs; each action is checked with the
// same permission as its API operation.
type Admin struct {
	// Authz answers whether a user holds a permission (an *authz.Checker).
	Authz interface {
		Can(ctx context.Context, userID, perm string) (bool, error)
	}
	// Roles manages roles and users' roles (an *authz.Service).
	Roles interface {
		ListRoles(ctx context.Context) ([]gatehouse.Role, error)
		CreateRole(ctx context.Context, actorID, name, description string, perms []string) (gatehouse.Role, error)
		UpdateRole(ctx context.Context, actorID, id string, description *string, permissions *[]string) (gatehouse.Role, error)
		DeleteRole(ctx context.Context, actorID, id string) error
		SetUserRoles(ctx context.Context, actorID, userID string, names []string) (gatehouse.User, error)
		ListUsers(ctx context.Context, q store.UserQuery) ([]gatehouse.User, error)
	}
	// Accounts locks and unlocks (an *account.Service).
	Accounts interface {
		Lock(ctx context.Context, actorID, userID, reason string) (gatehouse.User, error)
		Unlock(ctx context.Context, actorID, userID string) (gatehouse.User, error)
		GetUser(ctx context.Context, id string) (gatehouse.User, error)
	}
	// Audit reads the audit log (an *audit.Recorder).
	Audit interface {
		ListAuditLogs(ctx context.Context, q store.AuditQuery) ([]gatehouse.AuditLog, error)
	}
	// Sessions lists and revokes any user's sessions.
	Sessions UserSessions
	// Webhooks are the console user's own webhooks (nil hides them).
	Webhooks AdminWebhooks
	// AuditChain walks the audit log's hash chain (audit.Verify).
	AuditChain func(ctx context.Context) (ChainStatus, error)
	// Keys lists the token signing keys (a *keys.Ring).
	Keys interface {
		List(ctx context.Context) ([]gatehouse.SigningKey, error)
	}
}
