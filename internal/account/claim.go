package account

import (
	"context"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// claimTx hands an account whose email nobody had proven to whoever just
// proved it from the mailbox (a magic link or a reset link), inside tx and
// with u locked. Anyone can register an address they do not own and set up
// a password, passkeys, linked sign-ins or MFA on it, waiting for the owner
// to start using the account ("pre-hijacking"); so everything set up before
// the proof goes: those credentials, and (the caller's part) every session.
// A reset passes keepPassword, as it has just set the owner's new password.
// It returns what it removed, for the audit trail. The caller saves u.
func (s *Service) claimTx(ctx context.Context, tx store.Tx, u *gatehouse.User, keepPassword bool) (removed []string, err error) {
	if !keepPassword && u.HasPassword() {
		u.PasswordHash = ""
		removed = append(removed, "password")
	}
	factors, err := tx.ListMFAFactors(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, f := range factors {
		if err := tx.DeleteMFAFactor(ctx, u.ID, f.ID); err != nil {
			return nil, err
		}
	}
	if len(factors) > 0 || u.MFAEnabled {
		if err := tx.ReplaceBackupCodes(ctx, u.ID, nil, s.now()); err != nil {
			return nil, err
		}
		u.MFAEnabled = false
		removed = append(removed, "mfa")
	}
	creds, err := tx.ListWebAuthnCredentials(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		if err := tx.DeleteWebAuthnCredential(ctx, u.ID, c.ID); err != nil {
			return nil, err
		}
	}
	if len(creds) > 0 {
		removed = append(removed, "passkeys")
	}
	links, err := tx.ListOAuthAccounts(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if err := tx.DeleteOAuthAccount(ctx, u.ID, l.ID); err != nil {
			return nil, err
		}
	}
	if len(links) > 0 {
		removed = append(removed, "linked_accounts")
	}
	return removed, nil
}
