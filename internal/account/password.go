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

// ForgotPassword emails a single-use reset link (1 h) when the account
// exists; it answers the same either way.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.GetUserByEmail(ctx, addr)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		secret, err := s.newOneTimeTx(ctx, tx, u.ID, gatehouse.PurposeResetPassword, s.opts.ResetTTL)
		if err != nil {
			return fmt.Errorf("reset token: %w", err)
		}
		return s.mail.SendTx(ctx, tx, u.Email.String(), "reset_password", map[string]any{
			"Name": u.Name, "Link": link(s.opts.ResetURL, secret), "ExpiresIn": "1 hour", "ServiceName": s.opts.ServiceName,
		})
	})
}

// ResetPassword sets a new password with a reset token and ends every
// session of the account: whoever knew the old password is signed out.
// Proving control of the mailbox also verifies the email and lifts a
// temporary lock; on an account whose email was not verified yet it
// claims the account (claimTx). A password refused by the policy rolls the transaction
// back, so the token stays usable for a better one. (Hashing happens inside
// the transaction here; resets are rare enough for that to be harmless.)
func (s *Service) ResetPassword(ctx context.Context, secret, password string) error {
	var revoked []string
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		ott, err := tx.ConsumeOneTimeToken(ctx, gatehouse.PurposeResetPassword, token.Hash(secret), s.now())
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidToken
		}
		if err != nil {
			return err
		}
		u, err := tx.GetUserForUpdate(ctx, ott.UserID)
		if err != nil {
			return err
		}
		if err := s.checkPassword("password", password, u.Email.String(), u.Name); err != nil {
			return err
		}
		if u.PasswordHash, err = s.hasher.Hash(ctx, password); err != nil {
			return err
		}
		var removed []string
		if !u.EmailVerified {
			if removed, err = s.claimTx(ctx, tx, &u, true); err != nil {
				return err
			}
		}
		now := s.now()
		u.EmailVerified = true
		if !u.LockedByAdmin {
			u.Unlock(now)
		}
		u.UpdatedAt = now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if revoked, err = s.sessions.RevokeAllTx(ctx, tx, u.ID, "", "password_reset"); err != nil {
			return err
		}
		data := map[string]any{"sessions_revoked": len(revoked)}
		if len(removed) > 0 {
			data["removed"] = removed
		}
		if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserPasswordReset, UserID: u.ID, ActorID: u.ID,
			Data: data}); err != nil {
			return err
		}
		return s.notifyTx(ctx, tx, u, gatehouse.NotifyPasswordChanged, "Your password was reset", "", "Your password was reset with a link sent to this address.", "Every session was signed out.")
	})
	if err != nil {
		return err
	}
	s.sessions.Forget(ctx, revoked...)
	return nil
}

// confirmPassword checks the password a signed-in user gives to confirm a
// sensitive action. A wrong one counts toward the lockout exactly like a
// failed login, so a stolen access token is no way to guess the password;
// while the account is locked no confirmation succeeds.
func (s *Service) confirmPassword(ctx context.Context, u gatehouse.User, password string) (bool, error) {
	if !u.HasPassword() {
		_ = s.hasher.VerifyDummy(ctx, password)
		return false, nil
	}
	ok, _, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return false, err
	}
	if !ok {
		if err := s.recordFailure(ctx, u.ID, gatehouse.ClientInfo{}, "wrong_password_confirmation"); !errors.Is(err, errInvalidCredentials) {
			return false, err
		}
		return false, nil
	}
	if u.Locked(s.now()) {
		return false, errAccountLocked
	}
	return true, nil
}

// RecentAuthWindow is how long after proving who it is a session may take
// sensitive actions without confirming the password again.
const RecentAuthWindow = 5 * time.Minute

// RequireRecentAuth is the step-up check of sensitive actions: the session
// proved who it is (authTime, the access token's auth_time) within
// RecentAuthWindow, or password is the account's password (a wrong one
// counts toward the lockout). Otherwise 403 recent_auth_required.
func (s *Service) RequireRecentAuth(ctx context.Context, userID string, authTime time.Time, password string) error {
	if password == "" {
		if !authTime.IsZero() && s.now().Sub(authTime) <= RecentAuthWindow {
			return nil
		}
		return &gatehouse.Error{Code: gatehouse.CodeRecentAuthRequired,
			Message: "this action needs a sign-in within the last 5 minutes, or the account's password in the body",
			Fields:  []gatehouse.FieldError{{Location: "password", Message: "required unless you signed in within the last 5 minutes"}}}
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	return s.requirePassword(ctx, u, password, "the password is wrong")
}

// requirePassword is confirmPassword answering 403 recent_auth_required
// (with message, naming body.password) when the password is wrong.
func (s *Service) requirePassword(ctx context.Context, u gatehouse.User, password, message string) error {
	ok, err := s.confirmPassword(ctx, u, password)
	if err != nil {
		return err
	}
	if !ok {
		return &gatehouse.Error{Code: gatehouse.CodeRecentAuthRequired, Message: message,
			Fields: []gatehouse.FieldError{{Location: "password", Message: "the password is wrong"}}}
	}
	return nil
}

// ChangePassword replaces the password after checking the current one,
// and ends every other session of the account.
func (s *Service) ChangePassword(ctx context.Context, userID, currentSession, current, next string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	ok, err := s.confirmPassword(ctx, u, current)
	if err != nil {
		return err
	}
	if !ok {
		return &gatehouse.Error{Code: gatehouse.CodeInvalidCredentials, Message: "the current password is wrong",
			Fields: []gatehouse.FieldError{{Location: "current_password", Message: "the current password is wrong"}}}
	}
	if next == current {
		return gatehouse.InvalidField("new_password", "the new password must differ from the current one")
	}
	if err := s.checkPassword("new_password", next, u.Email.String(), u.Name); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	var revoked []string
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.GetUserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		u.PasswordHash = hash
		u.UpdatedAt = s.now()
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if revoked, err = s.sessions.RevokeAllTx(ctx, tx, u.ID, currentSession, "password_changed"); err != nil {
			return err
		}
		if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserPasswordChanged, UserID: u.ID, ActorID: u.ID,
			Data: map[string]any{"sessions_revoked": len(revoked)}}); err != nil {
			return err
		}
		return s.notifyTx(ctx, tx, u, gatehouse.NotifyPasswordChanged, "Your password was changed", "", "Your password was changed.", "Every other session was signed out.")
	})
	if err != nil {
		return err
	}
	s.sessions.Forget(ctx, revoked...)
	return nil
}

// alertTx emails a security alert of the general kind (security.alert).
func (s *Service) alertTx(ctx context.Context, tx store.Tx, u gatehouse.User, title, ip string, details ...string) error {
	return s.notifyTx(ctx, tx, u, gatehouse.NotifySecurityAlert, title, ip, details...)
}

// notifyTx emails a security notice of alertType unless the user's
// notification preferences turned email off for it.
func (s *Service) notifyTx(ctx context.Context, tx store.Tx, u gatehouse.User, alertType, title, ip string, details ...string) error {
	if !gatehouse.WantsNotification(u.NotificationPreferences, alertType, gatehouse.ChannelEmail) {
		return nil
	}
	return s.mail.SendTx(ctx, tx, u.Email.String(), "security_alert", map[string]any{
		"Name": u.Name, "ServiceName": s.opts.ServiceName, "Title": title, "Details": details,
		"Time": s.now(), "IP": ip,
	})
}
