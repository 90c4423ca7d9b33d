package account

import (
	"context"
	"strings"
	"unicode"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// CreateExternalUserTx makes an account without a password, inside tx, for
// a person who signed in with an external identity provider: the default
// roles and user.registered, as Register. The email is verified only when
// the provider vouched for it; otherwise the usual verification link is
// emailed. email_taken when the address already has an account.
func (s *Service) CreateExternalUserTx(ctx context.Context, tx store.Tx, email gatehouse.Email, name string, verified bool) (gatehouse.User, error) {
	// The provider's name is taken as given, less what cleanName refuses.
	name = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name))
	u, err := s.createTx(ctx, tx, email, name, "", verified, s.opts.DefaultRoles)
	if err != nil || verified {
		return u, err
	}
	return u, s.sendVerificationTx(ctx, tx, u)
}
