package account

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// ProfileUpdate holds the fields to change; nil leaves a field as it is.
type ProfileUpdate struct {
	Name                    *string
	PhoneNumber             *string // E.164; "" clears it
	NotificationPreferences map[string][]string
}

// UpdateProfile changes the user's own profile fields.
func (s *Service) UpdateProfile(ctx context.Context, userID string, p ProfileUpdate) (gatehouse.User, error) {
	if p.Name != nil {
		n := strings.TrimSpace(*p.Name)
		if utf8.RuneCountInString(n) > 200 {
			return gatehouse.User{}, gatehouse.InvalidField("body.name", "name must be at most 200 characters")
		}
		p.Name = &n
	}
	if p.PhoneNumber != nil && *p.PhoneNumber != "" {
		n, err := ParsePhoneNumber("body.phone_number", *p.PhoneNumber)
		if err != nil {
			return gatehouse.User{}, err
		}
		p.PhoneNumber = &n
	}
	var u gatehouse.User
	err := s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		u, err = tx.GetUserForUpdate(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return gatehouse.Errorf(gatehouse.CodeNotFound, "no such user")
		}
		if err != nil {
			return err
		}
		if p.Name != nil {
			u.Name = *p.Name
		}
		if p.PhoneNumber != nil {
			u.PhoneNumber = *p.PhoneNumber
		}
		if p.NotificationPreferences != nil {
			u.NotificationPreferences = p.NotificationPreferences
		}
		u.UpdatedAt = s.now()
		return tx.UpdateUser(ctx, u)
	})
	return u, err
}

// DeleteAccount removes the account and everything it owns after checking
// the password. Its sessions are put on the deny list so every token it
// holds stops at once.
func (s *Service) DeleteAccount(ctx context.Context, userID, password string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.requirePassword(ctx, u, password, "confirm with the account's password"); err != nil {
		return err
	}
	var revoked []string
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if revoked, err = s.sessions.RevokeAllTx(ctx, tx, u.ID, "", "account_deleted"); err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, u.ID); err != nil {
			return err
		}
		_, err = s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserDeleted, UserID: u.ID, ActorID: u.ID,
			Data: map[string]any{"email": u.Email.String()}})
		return err
	})
	if err != nil {
		return err
	}
	s.sessions.Forget(ctx, revoked...)
	return nil
}
