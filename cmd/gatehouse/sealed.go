package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/webhook"
)

// sealedColumns is every place in the database holding values sealed under
// the master key, as the packages that seal them describe it. Master key
// rotation re-seals exactly these, and restore checks them. A test holds
// this list to the schema and to the code that calls Seal, so a new sealed
// column cannot be missed.
func sealedColumns() []secret.Column {
	return []secret.Column{keys.SealedColumn(), mfa.SealedColumn(), webhook.SealedColumn(), sms.SealedColumn()}
}

// masterBox is the keyring of the configured master keys: GATEHOUSE_SECRET_KEY
// (or the development key in the data dir, which is never generated here:
// a new key would open nothing) and GATEHOUSE_SECRET_KEY_OLD.
func masterBox(cfg *config.Config) (*secret.Box, error) {
	if cfg.MasterKey == nil {
		path := filepath.Join(cfg.DataDir, config.DevKeyFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no master key: GATEHOUSE_SECRET_KEY is not set and there is no development key %s", path)
		}
		if _, err := cfg.EnsureMasterKey(); err != nil {
			return nil, err
		}
	}
	return secret.NewKeyring(cfg.MasterKey, cfg.OldMasterKey)
}

// sealedCheck is what checkSealed found over every sealed column.
type sealedCheck struct {
	Values int // sealed values
	Stale  int // opened, but under an older key than the current one
	Failed []string
}

// checkSealed opens every sealed value with box and changes nothing.
func checkSealed(ctx context.Context, db *sqlstore.DB, box *secret.Box) (sealedCheck, error) {
	var c sealedCheck
	for _, col := range sealedColumns() {
		st, err := db.Reseal(ctx, col, box, sqlstore.ResealOptions{CheckOnly: true})
		if err != nil {
			return c, err
		}
		c.Values += st.Values
		c.Stale += st.Resealed
		for _, id := range st.Failed {
			c.Failed = append(c.Failed, col.Table+" "+id)
		}
	}
	return c, nil
}

// rowList names at most a few rows for a message.
func rowList(rows []string) string {
	const most = 5
	if len(rows) <= most {
		return strings.Join(rows, ", ")
	}
	return strings.Join(rows[:most], ", ") + fmt.Sprintf(" and %d more", len(rows)-most)
}
