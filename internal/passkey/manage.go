package passkey

import (
	"context"
	"errors"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// List returns the user's passkeys, oldest first.
func (s *Service) List(ctx context.Context, userID string) ([]gatehouse.WebAuthnCredential, error) {
	return s.store.ListWebAuthnCredentials(ctx, userID)
}

// Rename names one of the user's passkeys. Somebody else's is not_found.
func (s *Service) Rename(ctx context.Context, userID, id, name string) (gatehouse.WebAuthnCredential, error) {
	name, err := NormalizeName(name)
	if err != nil {
		return gatehouse.WebAuthnCredential{}, err
	}
	if err := s.store.RenameWebAuthnCredential(ctx, userID, id, name); err != nil {
		return gatehouse.WebAuthnCredential{}, notFound(err)
	}
	c, err := s.store.GetWebAuthnCredential(ctx, userID, id)
	return c, notFound(err)
}

// Delete removes one of the user's passkeys. Somebody else's is not_found;
// the last way to sign in (no password, no other passkey, no linked social
// account) is refused with last_login_method.
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	return notFound(s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		// Locking the user serialises concurrent deletes of its passkeys,
		// so two of them cannot both see "another one is left".
		u, err := tx.GetUserForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		c, err := tx.GetWebAuthnCredential(ctx, userID, id)
		if err != nil {
			return err
		}
		if !u.HasPassword() {
			n, err := tx.CountWebAuthnCredentials(ctx, userID)
			if err != nil {
				return err
			}
			linked, err := tx.ListOAuthAccounts(ctx, userID)
			if err != nil {
				return err
			}
			if n <= 1 && len(linked) == 0 {
				return errLastLogin
			}
		}
		if err := tx.DeleteWebAuthnCredential(ctx, userID, id); err != nil {
			return err
		}
		_, err = s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserPasskeyRemoved, UserID: userID, ActorID: userID,
			Data: map[string]any{"passkey_id": c.ID, "name": c.Name}})
		return err
	}))
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNoPasskey
	}
	return err
}
