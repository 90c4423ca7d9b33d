package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// TagPasswordless groups the sign-ins without a password.
const TagPasswordless = "Passwordless"

// MagicLinks signs in with emailed links (an *account.MagicLinks).
type MagicLinks interface {
	Request(ctx context.Context, email string) error
}

func (s *Server) registerPasswordless() {
	huma.Register(s.api, huma.Operation{
		OperationID: "magic-link-request", Method: http.MethodPost, Path: "/auth/magic-link", Tags: []string{TagPasswordless},
		Summary: "Email a sign-in link",
		Description: "Always 202, whether or not the account exists. For an existing account, emails a single-use link " +
			"(valid 15 minutes) to GATEHOUSE_MAGIC_LINK_URL with ?token=; a new link supersedes every earlier one.",
		DefaultStatus: http.StatusAccepted,
	}, func(ctx context.Context, in *emailInput) (*acceptedOutput, error) {
		if err := s.limitEmail(ctx, in.Body.Email); err != nil {
			return nil, Problem(err)
		}
		if err := s.magicLinks.Request(ctx, in.Body.Email); err != nil {
			return nil, Problem(err)
		}
		return accepted(), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "magic-link-verify", Method: http.MethodGet, Path: "/auth/magic-link/verify", Tags: []string{TagPasswordless},
		Summary: "Sign in with an emailed link",
		Description: "Spends the link's token, marks the email verified and answers tokens whose amr is [\"email\"], " +
			"or an MFAChallenge when the account has a second factor. Errors: 400 invalid_token (unknown, used, expired or superseded), " +
			"423 account_locked.",
	}, func(ctx context.Context, in *struct {
		Token     string `query:"token" required:"true" minLength:"1" maxLength:"256"`
		UserAgent string `header:"User-Agent"`
	}) (*signInOutput, error) {
		t, err := s.signIn.MagicLink(ctx, in.Token, clientMeta(ctx, in.UserAgent, ""))
		if err != nil {
			return nil, Problem(err)
		}
		return signInBody(t, s.now()), nil
	})
}
