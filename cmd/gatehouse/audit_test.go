package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// TestAuditVerifyCommand: `audit verify` passes a chain the server wrote
// and, once a row is changed behind its back, fails naming the row.
func TestAuditVerifyCommand(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			env := engineEnv(t, e.Name)
			out, err := run(t, env, "audit", "verify")
			require.Error(t, err, "the schema is not there yet")

			_, err = run(t, env, "migrate", "up")
			require.NoError(t, err)
			out, err = run(t, env, "audit", "verify")
			require.NoError(t, err)
			require.Contains(t, out, "OK: the audit chain is empty")

			for _, email := range []string{"a@example.com", "b@example.com"} {
				_, err = run(t, env, "users", "create", "--email", email, "--role", "admin")
				require.NoError(t, err)
			}
			out, err = run(t, env, "audit", "verify", "--page-size", "1")
			require.NoError(t, err)
			require.Regexp(t, `OK: \d+ rows checked, seq 1 to \d+, from the start of the chain\nhead hash [0-9a-f]{64}\n`, out)

			cfg, err := config.FromMap(env)
			require.NoError(t, err)
			db, err := app.OpenStore(t.Context(), cfg)
			require.NoError(t, err)
			defer db.Close()
			drop := `DROP TRIGGER audit_logs_no_update`
			if e.Name == string(store.Postgres) {
				drop = `ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only`
			}
			for _, stmt := range []string{drop, `UPDATE audit_logs SET user_agent = 'forged' WHERE seq = 2`} {
				_, err = db.DB().ExecContext(t.Context(), stmt)
				require.NoError(t, err)
			}
			out, err = run(t, env, "audit", "verify")
			require.ErrorContains(t, err, "audit chain broken at seq 2")
			require.ErrorContains(t, err, "the row was changed")
			require.Contains(t, out, "1 rows checked before the break")
		})
	}
}
