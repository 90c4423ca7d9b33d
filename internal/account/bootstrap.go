package account

import (
	"context"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// BootstrapAdmin makes the first administrator when no account holds the
// admin role: a verified account with the default roles plus admin, the
// password checked against the policy. It answers created false, and
// does nothing, when an administrator exists, so running it at every
// start is harmless. The holders are counted again under the role's lock
// in the transaction that creates the account
// (CountUsersWithRoleForUpdate), so instances starting at once make one
// administrator between them, whatever addresses they were given.
//
// Errors: 422 weak_password (the policy's reasons), 409 email_taken when
// an account with the address exists but no administrator does: it is
// never promoted, since whoever registered the address may not own it.
func (s *Service) BootstrapAdmin(ctx context.Context, email, password string) (u gatehouse.User, created bool, err error) {
	// A cheap look first: on every start but the first there is an
	// administrator, and no password needs checking or hashing.
	if n, err := s.store.CountUsersWithRoleForUpdate(ctx, gatehouse.RoleAdmin); err != nil || n > 0 {
		return gatehouse.User{}, false, err
	}
	addr, err := gatehouse.ParseEmail(email)
	if err != nil {
		return gatehouse.User{}, false, err
	}
	if err := s.checkPassword("password", password, addr.String()); err != nil {
		return gatehouse.User{}, false, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return gatehouse.User{}, false, err
	}
	roles := append(append([]string{}, s.opts.DefaultRoles...), gatehouse.RoleAdmin)
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		created = false // InTx may run this more than once
		n, err := tx.CountUsersWithRoleForUpdate(ctx, gatehouse.RoleAdmin)
		if err != nil || n > 0 {
			return err
		}
		if u, err = s.createTx(ctx, tx, addr, "", hash, true, roles); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return gatehouse.User{}, false, err
	}
	return u, created, nil
}
