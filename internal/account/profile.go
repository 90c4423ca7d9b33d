package account

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
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
		n, err := cleanName(*p.Name)
		if err != nil {
			return gatehouse.User{}, err
		}
		p.Name = &n
	}
	if p.PhoneNumber != nil && *p.PhoneNumber != "" {
		n, err := gatehouse.ParsePhoneNumber("phone_number", *p.PhoneNumber)
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

// cleanName trims a display name and refuses one that is too long or holds
// control characters: names go into emails and admin screens, where a line
// break or an escape sequence could pass for something else.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 200 {
		return "", gatehouse.InvalidField("name", "name must be at most 200 characters")
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return "", gatehouse.InvalidField("name", "name must not contain control characters such as line breaks")
	}
	return name, nil
}

// DeleteAccount removes the account and everything it owns after checking
// the password; an account without one (social login, passkeys, magic
// links) instead needs a sign-in within RecentAuthWindow (authTime, the
// access token's auth_time). Its sessions are put on the deny list so
// every token it holds stops at once.
func (s *Service) DeleteAccount(ctx context.Context, userID, password string, authTime time.Time) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if u.HasPassword() {
		err = s.requirePassword(ctx, u, password, "confirm with the account's password")
	} else {
		err = s.RequireRecentAuth(ctx, u.ID, authTime, "")
	}
	if err != nil {
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
