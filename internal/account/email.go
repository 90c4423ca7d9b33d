package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// An email change moves an account to a new address in two steps: the
// signed-in owner asks for it (RequestEmailChange), and the address
// becomes the account's only when the link sent to it is opened
// (ConfirmEmailChange), which proves the new mailbox. The old address is
// told at both steps whatever the notification preferences, since it is
// the one way its owner learns that somebody is moving the account away.

// RequestEmailChange emails a single-use link (Options.ChangeEmailTTL) to
// newEmail that makes it the account's address, superseding any earlier
// one, and tells the current address. Like other sensitive actions it
// needs a sign-in within RecentAuthWindow (authTime) or the password. The
// account's email does not change yet. An address another account uses
// answers 409 email_taken.
func (s *Service) RequestEmailChange(ctx context.Context, userID, newEmail, password string, authTime time.Time) error {
	addr, err := gatehouse.ParseEmail(newEmail)
	if err != nil {
		return err
	}
	if err := s.RequireRecentAuth(ctx, userID, authTime, password); err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.GetUserForUpdate(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return gatehouse.Errorf(gatehouse.CodeNotFound, "no such user")
		}
		if err != nil {
			return err
		}
		if u.Email == addr {
			return gatehouse.InvalidField("email", "this is already the account's email address")
		}
		if err := emailFree(ctx, tx, addr, u.ID); err != nil {
			return err
		}
		secret, err := s.newOneTimeDataTx(ctx, tx, u.ID, gatehouse.PurposeChangeEmail, s.opts.ChangeEmailTTL, string(addr))
		if err != nil {
			return err
		}
		if err := s.mail.SendTx(ctx, tx, addr.String(), gatehouse.MailTemplateChangeEmail, map[string]any{
			"Name": u.Name, "Link": link(s.opts.ChangeEmailURL, secret), "ExpiresIn": humanTTL(s.opts.ChangeEmailTTL),
			"ServiceName": s.opts.ServiceName,
		}); err != nil {
			return err
		}
		return s.tellOldAddressTx(ctx, tx, u, "A change of your email address was requested",
			"Someone signed in to your account asked to change its email address to "+addr.String()+".",
			"It changes only when the link sent to that address is opened.")
	})
}

// ConfirmEmailChange spends the link's token and makes its address the
// account's email, verified. It emits user.email_changed, tells the old
// address, and supersedes the links sent to the old address (verification,
// reset, magic link), so its mailbox no longer signs in. A used, expired or
// superseded token answers invalid_token; an address taken by another
// account meanwhile answers email_taken (and the token stays unspent). The
// cached profile is invalidated by the store's user-change hook.
func (s *Service) ConfirmEmailChange(ctx context.Context, secret string) (gatehouse.User, error) {
	var u gatehouse.User
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		now := s.now()
		ott, err := tx.ConsumeOneTimeToken(ctx, gatehouse.PurposeChangeEmail, token.Hash(secret), now)
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidToken
		}
		if err != nil {
			return err
		}
		addr, err := gatehouse.ParseEmail(ott.Data)
		if err != nil {
			return errInvalidToken
		}
		if u, err = tx.GetUserForUpdate(ctx, ott.UserID); err != nil {
			return err
		}
		old := u
		if err := emailFree(ctx, tx, addr, u.ID); err != nil {
			return err
		}
		u.Email = addr
		u.VerifyEmail(now)
		u.UpdatedAt = now
		if err := tx.UpdateUser(ctx, u); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errEmailTaken
			}
			return err
		}
		for _, p := range []gatehouse.OneTimePurpose{gatehouse.PurposeVerifyEmail, gatehouse.PurposeResetPassword, gatehouse.PurposeMagicLink} {
			if err := tx.SupersedeOneTimeTokens(ctx, u.ID, p, now); err != nil {
				return err
			}
		}
		if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserEmailChanged, UserID: u.ID, ActorID: u.ID,
			Data: map[string]any{"old_email": old.Email.String(), "new_email": addr.String()}}); err != nil {
			return err
		}
		return s.tellOldAddressTx(ctx, tx, old, "Your email address was changed",
			"Your account's email address is now "+addr.String()+".",
			"This address no longer signs in to the account.")
	})
	return u, err
}

var errEmailTaken = gatehouse.Errorf(gatehouse.CodeEmailTaken, "an account with this email already exists")

// emailFree answers email_taken when another account than userID uses addr.
func emailFree(ctx context.Context, tx store.Tx, addr gatehouse.Email, userID string) error {
	other, err := tx.GetUserByEmail(ctx, addr)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case other.ID != userID:
		return errEmailTaken
	}
	return nil
}

// tellOldAddressTx emails a security notice to u's (current) address,
// whatever its notification preferences.
func (s *Service) tellOldAddressTx(ctx context.Context, tx store.Tx, u gatehouse.User, title string, details ...string) error {
	return s.mail.SendTx(ctx, tx, u.Email.String(), gatehouse.MailTemplateSecurityAlert, map[string]any{
		"Name": u.Name, "ServiceName": s.opts.ServiceName, "Title": title, "Details": details, "Time": s.now(),
	})
}

// humanTTL says a link's lifetime in words ("24 hours", "30 minutes").
func humanTTL(d time.Duration) string {
	n, unit := int(d.Round(time.Minute)/time.Minute), "minute"
	if d >= time.Hour && d%time.Hour == 0 {
		n, unit = int(d/time.Hour), "hour"
	}
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
