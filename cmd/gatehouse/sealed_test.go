package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// notSealed are the binary columns of Gatehouse's schema that hold no
// sealed value, and why. River's tables are River's (its SQLite schema
// keeps JSON in blobs); what is sealed inside job arguments is found
// through the code that seals it, below.
var notSealed = map[string]string{
	"one_time_tokens.hash":               "SHA-256 of a one-time token",
	"refresh_tokens.hash":                "SHA-256 of a refresh token",
	"mfa_backup_codes.hash":              "SHA-256 of a backup code",
	"oidc_clients.secret_hash":           "SHA-256 of a client secret",
	"oidc_auth_requests.code_hash":       "SHA-256 of an authorization code",
	"webauthn_credentials.credential_id": "public: the authenticator's credential id",
	"webauthn_credentials.public_key":    "public key",
	"webauthn_credentials.aaguid":        "public: the authenticator model",
}

// sealers maps each package that calls Seal to the table its sealed values
// live in ("" when they are not stored in the database).
var sealers = map[string]string{
	"internal/keys":         "signing_keys",
	"internal/mfa":          "mfa_factors", // and the live SMS code in the cache, which expires within minutes
	"internal/webhook":      "webhooks",
	"internal/outbound/sms": "river_job",
	"cmd/gatehouse":         "", // the backup manifest's master key check
}

// Master key rotation and restore's check must know every sealed column:
// a new binary column in the schema, or a new package sealing values,
// fails here until it is either added to sealedColumns (with its owner's
// SealedColumn) or listed above as holding nothing sealed.
func TestSealedColumnsCoverSchemaAndCode(t *testing.T) {
	t.Parallel()
	inventory := map[string]bool{}
	tables := map[string]bool{}
	for _, c := range sealedColumns() {
		inventory[c.String()] = true
		tables[c.Table] = true
	}

	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			db := e.Open(t)
			q := `SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
				WHERE m.type = 'table' AND upper(p.type) = 'BLOB' AND m.name NOT LIKE 'river_%'`
			if e.Name == string(store.Postgres) {
				q = `SELECT table_name || '.' || column_name FROM information_schema.columns
					WHERE table_schema = current_schema() AND data_type = 'bytea' AND table_name NOT LIKE 'river_%'`
			}
			rows, err := db.DB().QueryContext(t.Context(), q)
			require.NoError(t, err)
			defer rows.Close()
			var binary []string
			for rows.Next() {
				var col string
				require.NoError(t, rows.Scan(&col))
				binary = append(binary, col)
				_, known := notSealed[col]
				require.True(t, inventory[col] || known,
					"%s is a binary column that neither sealedColumns() (cmd/gatehouse/sealed.go) nor notSealed knows: if it holds values sealed under the master key, "+
						"give its package a SealedColumn and list it in sealedColumns(), so master key rotation re-seals it", col)
			}
			require.NoError(t, rows.Err())
			for col := range inventory {
				if !strings.HasPrefix(col, "river_") {
					require.Contains(t, binary, col, "a sealed column of the inventory is in the schema")
				}
			}
		})
	}

	// Every package that seals values is in the inventory.
	root := filepath.Join("..", "..")
	seal := regexp.MustCompile(`\.Seal\(`)
	found := map[string]bool{}
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "deploy" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		if rel == "internal/secret" || strings.HasPrefix(rel, "internal/store") {
			return nil // the box itself, and the rotation that re-seals
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if seal.Match(src) {
			found[filepath.ToSlash(rel)] = true
		}
		return nil
	}))
	for pkg := range found {
		table, ok := sealers[pkg]
		require.True(t, ok, "%s seals values under the master key but is not known here: give it a SealedColumn, list it in sealedColumns() "+
			"(cmd/gatehouse/sealed.go) and in sealers", pkg)
		if table != "" {
			require.True(t, tables[table], "%s seals into %s, which sealedColumns() does not cover", pkg, table)
		}
	}
	for pkg := range sealers {
		require.True(t, found[pkg], "%s no longer seals values: update sealers (and sealedColumns)", pkg)
	}
}
