package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/risk"
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
	if s.guard != nil && s.guard.Denies(meta.IP) {
		// Before the password is checked, and the same answer for every
		// account and password: a blocked address learns nothing, not
		// even whether it guessed right.
		if err == nil {
			if err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				return s.emitLoginFailed(ctx, tx, u.ID, meta, reasonBlocklisted)
			}); err != nil {
				return Tokens{}, err
			}
		}
		return Tokens{}, errAddressDenied
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.HasPassword()) {
		_ = s.hasher.VerifyDummy(ctx, password)
		s.countFailure(ctx, meta.IP, "")
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
		s.countFailure(ctx, meta.IP, u.ID)
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
	return s.signIn(ctx, u.ID, meta, []string{"pwd"}, "password", proofNone, func(u *gatehouse.User) {
		if newHash != "" {
			u.PasswordHash = newHash
		}
	})
}

// SignInWith starts a session for a user whose first factor was proven by
// other means than a password (a magic link: amr ["email"]; a social
// login: ["fed"]). An account with MFA gets a challenge, as with Login.
func (s *Service) SignInWith(ctx context.Context, userID string, meta session.Meta, amr []string, method string) (Tokens, error) {
	return s.signIn(ctx, userID, meta, amr, method, proofNone, nil)
}

// SignInVerified starts a session for a user who has just met an MFA
// challenge: amr lists every factor proved, and the session is marked MFA.
func (s *Service) SignInVerified(ctx context.Context, userID string, meta session.Meta, amr []string, method string) (Tokens, error) {
	return s.signIn(ctx, userID, meta, amr, method, proofMFA, nil)
}

// ConfirmSignIn is the click on an emailed confirmation link (the
// step-up of a high-risk sign-in without MFA): the link's token is
// single-use and lives 15 minutes. It only marks the held sign-in
// confirmed; whoever clicked gets no tokens. The client that signed in
// gets them from FinishConfirmedSignIn.
func (s *Service) ConfirmSignIn(ctx context.Context, secret string) error {
	if s.guard == nil {
		return errInvalidToken
	}
	return s.guard.Confirm(ctx, secret)
}

// FinishConfirmedSignIn is the waiting client's poll of a sign-in held
// for an emailed confirmation (POST /auth/mfa/verify with method
// email_confirmation). Before the click it answers Tokens whose Challenge
// is the open challenge; after it, the session, once: the held sign-in is
// taken atomically, so concurrent polls start one session. The session is
// the client's that signed in (its address, agent and device).
func (s *Service) FinishConfirmedSignIn(ctx context.Context, challengeID string) (Tokens, error) {
	if s.guard == nil {
		return Tokens{}, gatehouse.Errorf(gatehouse.CodeMFAInvalidCode, "the sign-in challenge is unknown or expired; sign in again")
	}
	h, err := s.guard.TakeConfirmed(ctx, challengeID)
	if err != nil {
		return Tokens{}, err
	}
	if h.Challenge != nil {
		return Tokens{Challenge: h.Challenge}, nil
	}
	return s.signIn(ctx, h.UserID, h.Meta, h.AMR, h.Method, proofConfirmed, nil)
}

// Guard scores sign-ins, registers their devices and raises alerts (a
// *risk.Guard). See SetGuard.
type Guard interface {
	Begin(ctx context.Context, tx store.Tx, u gatehouse.User, meta session.Meta) (session.Meta, risk.Assessment, error)
	Admit(ctx context.Context, tx store.Tx, u gatehouse.User, meta session.Meta, a risk.Assessment, mfa bool) (session.Meta, error)
	Alerting(a risk.Assessment) bool
	AlertTx(ctx context.Context, tx store.Tx, u gatehouse.User, meta session.Meta, a risk.Assessment, what, stepUp string) error
	ConfirmTx(ctx context.Context, tx store.Tx, u gatehouse.User, meta session.Meta, a risk.Assessment, amr []string, method string) (*gatehouse.MFAChallenge, error)
	Confirm(ctx context.Context, secret string) error
	TakeConfirmed(ctx context.Context, challengeID string) (risk.Held, error)
	RecordFailure(ctx context.Context, ip, userID string)
	// StepUp reports whether an assessed sign-in must step up first.
	StepUp(a risk.Assessment) bool
	// Denies reports whether every sign-in from ip is refused.
	Denies(ip string) bool
}

// reasonBlocklisted is the user.login_failed reason of a sign-in refused
// because its address is on the blocklist (GATEHOUSE_IP_BLOCKLIST_ACTION=deny).
const reasonBlocklisted = "ip_blocklisted"

// SetGuard makes sign-ins risk-scored and device-aware: each is scored,
// one at or above the high threshold must step up (an MFA challenge, else
// an emailed confirmation) and raises a security.alert, and a completed
// one registers its device and gets a trust score. Call it before serving.
func (s *Service) SetGuard(g Guard) { s.guard = g }

// proof is what a sign-in has proved beyond its first factor.
type proof int

const (
	proofNone      proof = iota
	proofMFA             // met an MFA challenge (or a factor as strong)
	proofConfirmed       // confirmed by the emailed link
)

// countFailure feeds the risk engine's failure counters.
func (s *Service) countFailure(ctx context.Context, ip, userID string) {
	if s.guard != nil {
		s.guard.RecordFailure(ctx, ip, userID)
	}
}

// signIn records a successful sign-in and starts a session in one
// transaction, then signs the access token. Unless the second factor is
// already proven (proofMFA), an account with MFA gets a challenge instead,
// and only update (a rehash) is written.
//
// With a guard, the sign-in is scored first (in the transaction: one
// device and one profile read). An address the guard denies is refused
// (access_denied, with a user.login_failed row). Unless a step-up was
// already met, a score at or above the high threshold, or an address on
// the blocklist, answers a challenge instead (MFA when
// the account has it, else an emailed confirmation) and raises a
// security.alert; so do the alerting factors (risk.Guard.Alerting) without
// stopping the sign-in. A completed sign-in registers its device, and its
// session carries the device, location and trust score; the user.login
// event carries risk_score and risk_factors into the audit row.
func (s *Service) signIn(ctx context.Context, userID string, meta session.Meta, amr []string, method string, pr proof, update func(*gatehouse.User)) (Tokens, error) {
	mfaDone := pr == proofMFA
	var out Tokens
	denied := false
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
		if update != nil {
			update(&u)
		}
		// hold answers a challenge instead of a session; only update (a
		// rehash) is written.
		hold := func(ch *gatehouse.MFAChallenge) error {
			out = Tokens{User: u, Challenge: ch}
			if update == nil {
				return nil
			}
			u.UpdatedAt = now
			return tx.UpdateUser(ctx, u)
		}
		var assessed risk.Assessment
		if s.guard != nil {
			if meta, assessed, err = s.guard.Begin(ctx, tx, u, meta); err != nil {
				return err
			}
			if s.guard.Denies(meta.IP) {
				// Every way in, not only passwords: the refusal and its
				// audit row commit, nothing else does.
				denied = true
				return s.emitLoginFailed(ctx, tx, u.ID, meta, reasonBlocklisted)
			}
			if pr == proofNone && s.guard.StepUp(assessed) {
				ch, how, err := s.stepUp(ctx, tx, u, meta, assessed, amr, method)
				if err != nil {
					return err
				}
				if err := s.guard.AlertTx(ctx, tx, u, meta, assessed, "sign_in", how); err != nil {
					return err
				}
				return hold(ch)
			}
			if pr == proofNone && s.guard.Alerting(assessed) {
				if err := s.guard.AlertTx(ctx, tx, u, meta, assessed, "sign_in", ""); err != nil {
					return err
				}
			}
		}
		if !mfaDone && u.MFAEnabled && s.mfa != nil {
			ch, err := s.mfa.Challenge(ctx, tx, u, meta, amr)
			if err != nil {
				return err
			}
			if ch != nil {
				return hold(ch)
			}
		}
		data := map[string]any{"method": method, "mfa": mfaDone, "ip_address": meta.IP, "user_agent": meta.UserAgent}
		if s.guard != nil {
			// Before RecordLogin: an account's first sign-in is told apart
			// by its empty LastLoginAt.
			if meta, err = s.guard.Admit(ctx, tx, u, meta, assessed, mfaDone); err != nil {
				return err
			}
			data["risk_score"], data["risk_level"], data["risk_factors"] = assessed.Score, assessed.Level, assessed.Data()
			data["device_id"], data["trust_score"] = meta.DeviceRef, meta.TrustScore
			if meta.Location != "" {
				data["location"] = meta.Location
			}
		}
		u.RecordLogin(now)
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		sess, refresh, err := s.sessions.Start(ctx, tx, u.ID, meta, amr, mfaDone)
		if err != nil {
			return err
		}
		data["session_id"] = sess.ID
		if _, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLogin, UserID: u.ID, ActorID: u.ID, Data: data}); err != nil {
			return err
		}
		out = Tokens{User: u, Session: sess, RefreshToken: refresh}
		return nil
	})
	if err != nil {
		return Tokens{}, err
	}
	if denied {
		return Tokens{}, errAddressDenied
	}
	if out.Challenge != nil {
		return out, nil
	}
	return s.withAccess(ctx, out)
}

// stepUp holds a high-risk sign-in: an MFA challenge when the account
// has an active factor, else an emailed confirmation. It names which.
func (s *Service) stepUp(ctx context.Context, tx store.Tx, u gatehouse.User, meta session.Meta, a risk.Assessment, amr []string, method string) (*gatehouse.MFAChallenge, string, error) {
	if u.MFAEnabled && s.mfa != nil {
		ch, err := s.mfa.Challenge(ctx, tx, u, meta, amr)
		if err != nil || ch != nil {
			return ch, "mfa", err
		}
	}
	ch, err := s.guard.ConfirmTx(ctx, tx, u, meta, a, amr, method)
	return ch, "email", err
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
	s.countFailure(ctx, meta.IP, userID)
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
