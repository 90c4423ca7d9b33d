package account

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/session"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// MagicLinkTTL is how long an emailed sign-in link works.
const MagicLinkTTL = 15 * time.Minute

// MagicLinks signs people in with single-use links sent to their email:
// 256-bit secrets stored only as hashes, a new link superseding the
// earlier ones.
type MagicLinks struct {
	acc *Service
	url string
}

// NewMagicLinks makes the magic-link sign-in of acc's accounts. url is the
// page the emailed link opens; the token is appended as ?token=.
func NewMagicLinks(acc *Service, url string) *MagicLinks {
	return &MagicLinks{acc: acc, url: url}
}

// Request emails a sign-in link to the account with this email. An unknown
// email gets nothing, and the caller answers 202 either way so accounts
// cannot be discovered.
func (m *MagicLinks) Request(ctx context.Context, email string) error {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		return err
	}
	s := m.acc
	return s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.GetUserByEmail(ctx, addr)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		secret, err := s.newOneTimeTx(ctx, tx, u.ID, gatehouse.PurposeMagicLink, MagicLinkTTL)
		if err != nil {
			return err
		}
		return s.mail.SendTx(ctx, tx, u.Email.String(), "magic_link", map[string]any{
			"Name": u.Name, "Link": link(m.url, secret), "ExpiresIn": "15 minutes", "ServiceName": s.opts.ServiceName,
		})
	})
}

// SignIn spends a link's token, marks the email verified (the link proved
// the mailbox) and signs in with amr ["email"]; an account with MFA gets a
// challenge instead of tokens. A used, expired or superseded token answers
// invalid_token.
func (m *MagicLinks) SignIn(ctx context.Context, secret string, meta session.Meta) (Tokens, error) {
	s := m.acc
	var userID string
	var revoked []string
	denied := false
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		ott, err := tx.ConsumeOneTimeToken(ctx, gatehouse.PurposeMagicLink, token.Hash(secret), s.now())
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidToken
		}
		if err != nil {
			return err
		}
		userID = ott.UserID
		if s.guard != nil && s.guard.Denies(meta.IP) {
			// Refused before the link proves the mailbox: a blocked
			// address claims no account (the link is spent).
			denied = true
			return s.emitLoginFailed(ctx, tx, userID, meta, reasonBlocklisted)
		}
		revoked, err = s.markVerifiedTx(ctx, tx, userID)
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	if denied {
		return Tokens{}, errAddressDenied
	}
	s.sessions.Forget(ctx, revoked...)
	return s.SignInWith(ctx, userID, meta, []string{"email"}, "magic_link")
}

// markVerifiedTx marks the user's email verified, once, with its event.
// The first proof of the address claims the account (see claimTx): what
// was set up before it, the password included, is removed and every
// session ends; it returns the revoked session ids.
func (s *Service) markVerifiedTx(ctx context.Context, tx store.Tx, userID string) ([]string, error) {
	u, err := tx.GetUserForUpdate(ctx, userID)
	if err != nil || u.EmailVerified {
		return nil, err
	}
	removed, err := s.claimTx(ctx, tx, &u, false)
	if err != nil {
		return nil, err
	}
	u.VerifyEmail(s.now())
	if err := tx.UpdateUser(ctx, u); err != nil {
		return nil, err
	}
	revoked, err := s.sessions.RevokeAllTx(ctx, tx, u.ID, "", "email_claimed")
	if err != nil {
		return nil, err
	}
	data := map[string]any{"email": u.Email.String(), "method": "magic_link"}
	if len(removed) > 0 {
		data["removed"] = removed
	}
	_, err = s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserEmailVerified, UserID: u.ID, ActorID: u.ID, Data: data})
	return revoked, err
}
