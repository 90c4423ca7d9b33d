package account

import (
	"context"
	"errors"
	"strings"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Lock locks an account until an administrator unlocks it, and ends its
// sessions at once. Nobody locks their own account (409 conflict): the
// last administrator would lock everybody out of administration; nor an
// account holding a permission they do not hold (403 permission_denied,
// see Authority). An empty actorID is the operator at the command line.
func (s *Service) Lock(ctx context.Context, actorID, userID, reason string) (gatehouse.User, error) {
	if actorID == userID {
		return gatehouse.User{}, gatehouse.Errorf(gatehouse.CodeConflict, "you cannot lock your own account; another administrator can")
	}
	reason = strings.TrimSpace(reason)
	var u gatehouse.User
	var revoked []string
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if u, err = s.lockable(ctx, tx, actorID, userID); err != nil {
			return err
		}
		u.LockByAdmin(reason, s.now())
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if revoked, err = s.sessions.RevokeAllTx(ctx, tx, u.ID, "", "account_locked"); err != nil {
			return err
		}
		_, err = s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLocked, UserID: u.ID, ActorID: actorID,
			Data: map[string]any{"reason": "locked_by_admin", "note": reason}})
		return err
	})
	if err != nil {
		return u, err
	}
	s.sessions.Forget(ctx, revoked...)
	return u, nil
}

// Unlock lifts every lock on the account and forgets its failed logins.
// The actor is held to the same rule as Lock's; an empty actorID is the
// operator at the command line (`gatehouse users unlock`), who may unlock
// anyone, administrators included.
func (s *Service) Unlock(ctx context.Context, actorID, userID string) (gatehouse.User, error) {
	var u gatehouse.User
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if u, err = s.lockable(ctx, tx, actorID, userID); err != nil {
			return err
		}
		u.Unlock(s.now())
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		_, err = s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserUnlocked, UserID: u.ID, ActorID: actorID})
		return err
	})
	return u, err
}

// lockable reads the user for an administrator's change, refusing an
// actor who holds less than the user (see Authority).
func (s *Service) lockable(ctx context.Context, tx store.Tx, actorID, userID string) (gatehouse.User, error) {
	u, err := tx.GetUserForUpdate(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return u, gatehouse.Errorf(gatehouse.CodeNotFound, "no such user")
	}
	if err != nil {
		return u, err
	}
	if actorID == "" {
		return u, nil
	}
	if s.opts.Authority == nil {
		return u, errors.New("account: no authority wired to check the actor against the user")
	}
	return u, s.opts.Authority.MayActOn(ctx, tx, actorID, userID)
}
