package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/config"
)

// BootstrapAdmin makes the first administrator from
// GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL and GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE
// when they are set and no account holds the admin role; `serve` calls it
// before listening, on every start (after the first it does nothing). A
// password the policy refuses stops start-up with one line naming the
// file and the reasons, never the password. An address that belongs to an
// account which is not an administrator is left alone, with a warning.
func (a *App) BootstrapAdmin(ctx context.Context) error {
	cfg := a.Config
	if cfg.BootstrapAdminEmail == "" {
		return nil
	}
	u, created, err := a.Accounts.BootstrapAdmin(ctx, cfg.BootstrapAdminEmail, cfg.BootstrapAdminPassword)
	var ge *gatehouse.Error
	switch {
	case err == nil && created:
		a.Log.Info("made the first administrator from GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL", "user_id", u.ID)
		return nil
	case err == nil:
		a.Log.Debug("an administrator exists: GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL has nothing to do")
		return nil
	case errors.As(err, &ge) && ge.Code == gatehouse.CodeEmailTaken:
		a.Log.Warn("GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL: no account holds the admin role, and the address belongs to an existing account, " +
			"which is not made an administrator (whoever registered it may not own the address); make one with `gatehouse users create --role admin`, or delete that account and restart")
		return nil
	case errors.As(err, &ge) && ge.Code == gatehouse.CodeWeakPassword:
		return &config.Error{Var: config.Prefix + "BOOTSTRAP_ADMIN_PASSWORD_FILE", Problem: ge.Message}
	default:
		return fmt.Errorf("bootstrap admin: %w", err)
	}
}
