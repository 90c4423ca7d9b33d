package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/session"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Login checks an email and password and starts a session.
//
// The answer for an unknown email and for a wrong password is the same
// invalid_credentials, and both cost one Argon2id verification. A locked
// account answers account_locked only to the right password, so a lock
// tells a guesser nothing. The hash is verified before any transaction
// opens: hashing is the slow part and must not hold a database connection.
func (s *Service) Login(ctx context.Context, email, password string, meta session.Meta) (Tokens, error) {
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		_ = s.hasher.VerifyDummy(ctx, password)
		return Tokens{}, errInvalidCredentials
	}
	u, err := s.store.GetUserByEmail(ctx, addr)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.HasPassword()) {
		_ = s.hasher.VerifyDummy(ctx, password)
		return Tokens{}, errInvalidCredentials
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	ok, rehash, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	if !ok {
		return Tokens{}, s.recordFailure(ctx, u.ID, meta, "wrong_password")
	}
	if u.Locked(s.now()) {
		if err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			return s.emitLoginFailed(ctx, tx, u.ID, meta, "account_locked")
		}); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, errAccountLocked
	}
	newHash := ""
	if rehash {
		if newHash, err = s.hasher.Hash(ctx, password); err != nil {
			return Tokens{}, fmt.Errorf("login: rehash: %w", err)
		}
	}
	return s.signIn(ctx, u.ID, meta, []string{"pwd"}, "password", func(u *gatehouse.User) {
		if newHash != "" {
			u.PasswordHash = newHash
		}
	})
}

// signIn records a successful sign-in and starts a session in one
// transaction, then signs the access token.
func (s *Service) signIn(ctx context.Context, userID string, meta session.Meta, amr []string, method string, update func(*gatehouse.User)) (Tokens, error) {
	var out Tokens
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.GetUserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		now := s.now()
		if u.Locked(now) {
			// Locked between the check and now (an admin, or a racing
			// failure burst): refuse.
			return errAccountLocked
		}
		u.RecordLogin(now)
		if update != nil {
			update(&u)
		}
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		sess, refresh, err := s.sessions.Start(ctx, tx, u.ID, meta, amr, false)
		if err != nil {
			return err
		}
		if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLogin, UserID: u.ID, ActorID: u.ID,
			Data: map[string]any{"session_id": sess.ID, "method": method, "ip_address": meta.IP, "user_agent": meta.UserAgent}}); err != nil {
			return err
		}
		out = Tokens{User: u, Session: sess, RefreshToken: refresh}
		return nil
	})
	if err != nil {
		return Tokens{}, err
	}
	return s.withAccess(ctx, out)
}

func (s *Service) withAccess(ctx context.Context, t Tokens) (Tokens, error) {
	access, claims, err := s.sessions.AccessToken(ctx, t.Session)
	if err != nil {
		return Tokens{}, err
	}
	t.AccessToken = access
	t.ExpiresIn = int(claims.ExpiresAt.Sub(claims.IssuedAt).Seconds())
	return t, nil
}

// Issue signs a fresh access token for a session, e.g. after a refresh.
func (s *Service) Issue(ctx context.Context, sess gatehouse.Session, refresh string) (Tokens, error) {
	u, err := s.GetUser(ctx, sess.UserID)
	if err != nil {
		return Tokens{}, err
	}
	return s.withAccess(ctx, Tokens{User: u, Session: sess, RefreshToken: refresh})
}

// recordFailure counts a wrong password under a row lock and locks the
// account when the threshold is reached.
func (s *Service) recordFailure(ctx context.Context, userID string, meta session.Meta, reason string) error {
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

func (s *Service) emitLoginFailed(ctx context.Context, tx store.Tx, userID string, meta session.Meta, reason string) error {
	_, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLoginFailed, UserID: userID,
		Data: map[string]any{"reason": reason, "ip_address": meta.IP, "user_agent": meta.UserAgent}})
	return err
}

// Logout ends the session the access token belongs to.
func (s *Service) Logout(ctx context.Context, userID, sessionID string) error {
	return s.sessions.Revoke(ctx, userID, sessionID, "logout")
}
