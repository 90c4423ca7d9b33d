package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// CheckPassword proves the first factor of a password sign-in: the email
// names an account with a password, the password is right, and the
// account is not locked. It answers the account's id and, when the hash
// was made with other parameters than today's, a fresh one to store (""
// otherwise); the caller starts the session. Signing in is internal/signin's
// work.
//
// The answer for an unknown email and for a wrong password is the same
// invalid_credentials, and both cost one Argon2id verification. A wrong
// password counts toward the lockout; a locked account answers
// account_locked only to the right password, so a lock tells a guesser
// nothing. Failures also answer the account's id when one was named ("" for
// none), for the risk engine's counters. The hash is verified before any
// transaction opens: hashing is the slow part and must not hold a database
// connection.
func (s *Service) CheckPassword(ctx context.Context, email, password string, client gatehouse.ClientInfo) (userID, rehash string, err error) {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		_ = s.hasher.VerifyDummy(ctx, password)
		return "", "", errInvalidCredentials
	}
	u, err := s.store.GetUserByEmail(ctx, addr)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.HasPassword()) {
		_ = s.hasher.VerifyDummy(ctx, password)
		s.failed(ctx, client.IP, "")
		return "", "", errInvalidCredentials
	}
	if err != nil {
		return "", "", fmt.Errorf("login: %w", err)
	}
	ok, needsRehash, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return u.ID, "", fmt.Errorf("login: %w", err)
	}
	if !ok {
		return u.ID, "", s.recordFailure(ctx, u.ID, client, "wrong_password")
	}
	if u.Locked(s.now()) {
		s.failed(ctx, client.IP, u.ID)
		if err := s.RecordRefusal(ctx, u.ID, client, "account_locked"); err != nil {
			return u.ID, "", err
		}
		return u.ID, "", errAccountLocked
	}
	if needsRehash {
		if rehash, err = s.hasher.Hash(ctx, password); err != nil {
			return u.ID, "", fmt.Errorf("login: rehash: %w", err)
		}
	}
	return u.ID, rehash, nil
}

// UserIDByEmail answers the id of the account with this email, or "" when
// none has it (or the email is not one).
func (s *Service) UserIDByEmail(ctx context.Context, email string) (string, error) {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		return "", nil
	}
	u, err := s.store.GetUserByEmail(ctx, addr)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return u.ID, err
}

// RecordRefusal writes the user.login_failed event of a sign-in of userID
// refused for reason ("account_locked", "ip_blocklisted", ...), with the
// client's address and agent. An empty userID records nothing.
func (s *Service) RecordRefusal(ctx context.Context, userID string, client gatehouse.ClientInfo, reason string) error {
	if userID == "" {
		return nil
	}
	return s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return s.emitLoginFailed(ctx, tx, userID, client, reason)
	})
}

// failed tells OnFailure of a wrong password.
func (s *Service) failed(ctx context.Context, ip, userID string) {
	if s.opts.OnFailure != nil {
		s.opts.OnFailure(ctx, ip, userID)
	}
}

// recordFailure counts a wrong password under a row lock and locks the
// account when the threshold is reached.
func (s *Service) recordFailure(ctx context.Context, userID string, meta gatehouse.ClientInfo, reason string) error {
	s.failed(ctx, meta.IP, userID)
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.GetUserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		now := s.now()
		lockedNow := u.RecordFailedLogin(now, s.opts.LockoutThreshold, s.opts.LockoutDuration)
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := s.emitLoginFailed(ctx, tx, u.ID, meta, reason); err != nil {
			return err
		}
		if !lockedNow {
			return nil
		}
		if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLocked, UserID: u.ID,
			Data: map[string]any{"reason": "too_many_failed_logins", "locked_until": u.LockedUntil, "ip_address": meta.IP}}); err != nil {
			return err
		}
		return s.alertTx(ctx, tx, u, "Your account was locked", meta.IP, "Too many failed sign-in attempts.",
			"It unlocks by itself at "+u.LockedUntil.Format("15:04 MST, 2 Jan 2006")+".")
	})
	if err != nil {
		return fmt.Errorf("record failed login: %w", err)
	}
	return errInvalidCredentials
}

func (s *Service) emitLoginFailed(ctx context.Context, tx store.Tx, userID string, meta gatehouse.ClientInfo, reason string) error {
	_, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLoginFailed, UserID: userID,
		Data: map[string]any{"reason": reason, "ip_address": meta.IP, "user_agent": meta.UserAgent}})
	return err
}

// Logout ends the session the access token belongs to.
func (s *Service) Logout(ctx context.Context, userID, sessionID string) error {
	return s.sessions.Revoke(ctx, userID, sessionID, "logout")
}
