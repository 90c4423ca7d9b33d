package httpapi

import (
	"context"
	"encoding/json"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/oauth"
)

// SignIn runs sign-ins (a *signin.Flow): each way in, and the second steps
// that finish a held one.
type SignIn interface {
	Password(ctx context.Context, email, password string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error)
	MagicLink(ctx context.Context, token string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error)
	MFA(ctx context.Context, challengeID, method, code string) (gatehouse.SignInResult, error)
	// ConfirmLink is the click on an emailed confirmation: it marks the
	// held sign-in confirmed and answers no tokens.
	ConfirmLink(ctx context.Context, token string) error
	// Confirmed answers the session once a held sign-in was confirmed,
	// and only its Challenge while it waits.
	Confirmed(ctx context.Context, challengeID string) (gatehouse.SignInResult, error)
	Passkey(ctx context.Context, challengeID string, credential json.RawMessage, client gatehouse.ClientInfo) (gatehouse.SignInResult, error)
	OAuthCallback(ctx context.Context, provider string, in oauth.CallbackInput, client gatehouse.ClientInfo) (gatehouse.SignInResult, string, error)
	OAuthExchange(ctx context.Context, code string, client gatehouse.ClientInfo) (gatehouse.SignInResult, error)
	// Issue signs a fresh access token for a session after a refresh.
	Issue(ctx context.Context, sess gatehouse.Session, refresh string) (gatehouse.SignInResult, error)
}
