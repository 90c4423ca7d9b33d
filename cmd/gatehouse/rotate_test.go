package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// The master key rotation, as the operations guide tells it: restart with
// the new key and the old one beside it (everything keeps working), rotate
// while the server runs, restart with only the new key: everything still
// works, every sealed column holds values that the new key alone opens,
// and the old key alone no longer starts the server.
func TestRotateMasterRoundTrip(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			oldKey, newKey := strings.Repeat("o", 40), strings.Repeat("n", 40)
			env := roundTripEnv(t, e.Name, oldKey)
			s := roundTripServer(t, env)
			f := populate(t, s, newSignedHooks(t))
			s.stop(t)

			// Forgetting the old key: nothing opens, nothing is changed.
			env["GATEHOUSE_SECRET_KEY"] = newKey
			out, err := run(t, env, "keys", "rotate-master")
			require.ErrorContains(t, err, "sealed values open under neither GATEHOUSE_SECRET_KEY nor GATEHOUSE_SECRET_KEY_OLD and were left as they are")
			require.Contains(t, out, "GATEHOUSE_SECRET_KEY_OLD is not set")

			env["GATEHOUSE_SECRET_KEY_OLD"] = oldKey
			s = roundTripServer(t, env)
			require.Contains(t, s.logs.String(), "GATEHOUSE_SECRET_KEY_OLD is set")
			f.check(t, s) // reads the values still sealed under the old key

			out, err = run(t, env, "keys", "rotate-master", "--batch-size", "1")
			require.NoError(t, err, out)
			for _, col := range sealedColumns() {
				require.Regexp(t, regexp.QuoteMeta(col.String())+`: done: (\d+) sealed values, \d+ re-sealed, \d+ already under the new key, 0 open with neither key\n`, out)
			}
			require.Regexp(t, `signing_keys.private_key_enc: 1 rows visited, 1 re-sealed\n`, out, "progress after each batch")
			require.Regexp(t, `\ndone: all \d+ sealed values open under the new master key [0-9a-f]{8} alone`, out)

			// Run again (as after an interruption): nothing is left to do.
			out, err = run(t, env, "keys", "rotate-master")
			require.NoError(t, err, out)
			require.NotRegexp(t, `done: \d+ sealed values, [1-9]\d* re-sealed`, out)
			s.stop(t)

			delete(env, "GATEHOUSE_SECRET_KEY_OLD")
			s = roundTripServer(t, env)
			require.NotContains(t, s.logs.String(), "GATEHOUSE_SECRET_KEY_OLD is set")
			f.check(t, s)
			s.stop(t)

			// Every sealed column held values, and the new key alone opens
			// each one.
			cfg, err := config.FromMap(env)
			require.NoError(t, err)
			db, err := app.OpenStore(t.Context(), cfg)
			require.NoError(t, err)
			defer db.Close()
			newOnly, err := secret.NewBox(config.DeriveMasterKey(newKey))
			require.NoError(t, err)
			for _, col := range sealedColumns() {
				st, err := db.Reseal(t.Context(), col, newOnly, sqlstore.ResealOptions{CheckOnly: true})
				require.NoError(t, err)
				require.Positive(t, st.Values, "%s holds sealed values in this test", col)
				require.Equal(t, st.Values, st.Current, "%s: all sealed under the new key", col)
				require.Empty(t, st.Failed)
			}

			env["GATEHOUSE_SECRET_KEY"] = oldKey
			last, _ := startFails(t, baseEnv(env["GATEHOUSE_DATA_DIR"], "GATEHOUSE_DATABASE_URL="+env["GATEHOUSE_DATABASE_URL"],
				"GATEHOUSE_SECRET_KEY="+oldKey))
			require.Contains(t, last, "cannot decrypt the private key", "the old key opens nothing any more")
		})
	}
}
