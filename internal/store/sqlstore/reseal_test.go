package sqlstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
)

func keyring(t *testing.T, keys ...byte) *secret.Box {
	t.Helper()
	var old [][]byte
	for _, k := range keys[1:] {
		old = append(old, bytes.Repeat([]byte{k}, 32))
	}
	b, err := secret.NewKeyring(bytes.Repeat([]byte{keys[0]}, 32), old...)
	require.NoError(t, err)
	return b
}

// Columns described the way their owners do, with associated data from
// the row (one needs a second column, one skips rows without a value).
var (
	hookColumn = secret.Column{Table: "webhooks", Name: "secret_enc", ID: "id",
		Rewrite: secret.Plain(func(row []string) []byte { return []byte("hook:" + row[0]) })}
	factorColumn = secret.Column{Table: "mfa_factors", Name: "secret", ID: "id", Context: []string{"user_id"}, Where: "secret IS NOT NULL",
		Rewrite: secret.Plain(func(row []string) []byte { return []byte("factor:" + row[0] + ":" + row[1]) })}
)

// Reseal moves every value to the current key in batches, skips what is
// current already, leaves what no key opens (naming the row) and can be
// run again; CheckOnly counts and changes nothing.
func TestReseal(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		oldBox, newBox, stranger := keyring(t, 1), keyring(t, 2), keyring(t, 3)
		ring := keyring(t, 2, 1)
		user := whUser(t, db, "reseal@example.com")

		// Seven webhooks under the old key, one under the new, one under a
		// key nobody has.
		var hooks []string
		var lost string
		for i := range 9 {
			w := whHook(t, db, user, false, "*")
			box := oldBox
			switch i {
			case 4:
				box = newBox
			case 6:
				box, lost = stranger, w.ID
			}
			_, err := db.DB().ExecContext(ctx, rebindForTest(db, "UPDATE webhooks SET secret_enc = ? WHERE id = ?"),
				box.Seal([]byte("secret of "+w.ID), []byte("hook:"+w.ID)), w.ID)
			require.NoError(t, err)
			hooks = append(hooks, w.ID)
		}
		totp := gatehouse.MFAFactor{ID: gatehouse.NewID(), UserID: user, Method: gatehouse.MFAMethodTOTP, CreatedAt: whT0}
		totp.Secret = oldBox.Seal([]byte("totp"), []byte("factor:"+totp.ID+":"+user))
		require.NoError(t, db.CreateMFAFactor(ctx, totp))
		sms := gatehouse.MFAFactor{ID: gatehouse.NewID(), UserID: user, Method: gatehouse.MFAMethodSMS, PhoneNumber: "+15555550100", CreatedAt: whT0}
		require.NoError(t, db.CreateMFAFactor(ctx, sms))

		before := readColumn(t, db, "webhooks", "secret_enc")
		st, err := db.Reseal(ctx, hookColumn, ring, sqlstore.ResealOptions{CheckOnly: true, Batch: 2})
		require.NoError(t, err)
		require.Equal(t, sqlstore.ResealStats{Rows: 9, Values: 9, Current: 1, Resealed: 7, Failed: []string{lost}}, st)
		require.Equal(t, before, readColumn(t, db, "webhooks", "secret_enc"), "CheckOnly changes nothing")

		var progress []int
		st, err = db.Reseal(ctx, hookColumn, ring, sqlstore.ResealOptions{Batch: 2, Progress: func(s sqlstore.ResealStats) { progress = append(progress, s.Rows) }})
		require.NoError(t, err)
		require.Equal(t, sqlstore.ResealStats{Rows: 9, Values: 9, Current: 1, Resealed: 7, Failed: []string{lost}}, st)
		require.Equal(t, []int{2, 4, 6, 8, 9}, progress)
		after := readColumn(t, db, "webhooks", "secret_enc")
		require.Equal(t, before[lost], after[lost], "a value no key opens is left as it is")
		require.Equal(t, before[hooks[4]], after[hooks[4]], "a current value is not rewritten")
		for _, id := range hooks {
			if id == lost {
				continue
			}
			pt, err := newBox.Open(after[id], []byte("hook:"+id))
			require.NoError(t, err, "the new key alone opens %s", id)
			require.Equal(t, "secret of "+id, string(pt))
		}

		// Run again (resumed, or repeated): nothing left to do.
		st, err = db.Reseal(ctx, hookColumn, ring, sqlstore.ResealOptions{Batch: 4})
		require.NoError(t, err)
		require.Equal(t, sqlstore.ResealStats{Rows: 9, Values: 9, Current: 8, Failed: []string{lost}}, st)
		require.Equal(t, after, readColumn(t, db, "webhooks", "secret_enc"))

		// A column whose associated data needs another column, and whose
		// rows without a value are not visited.
		st, err = db.Reseal(ctx, factorColumn, ring, sqlstore.ResealOptions{})
		require.NoError(t, err)
		require.Equal(t, sqlstore.ResealStats{Rows: 1, Values: 1, Resealed: 1}, st)
		factors, err := db.ListMFAFactors(ctx, user)
		require.NoError(t, err)
		require.Len(t, factors, 2)
		for _, f := range factors {
			if f.ID != totp.ID {
				require.Nil(t, f.Secret, "the SMS factor has no secret")
				continue
			}
			pt, err := newBox.Open(f.Secret, []byte("factor:"+f.ID+":"+user))
			require.NoError(t, err)
			require.Equal(t, "totp", string(pt))
		}

		_, err = db.Reseal(ctx, secret.Column{Table: "no_such_table", Name: "x", ID: "id", Rewrite: hookColumn.Rewrite}, ring, sqlstore.ResealOptions{})
		require.ErrorContains(t, err, "reseal no_such_table.x")
	})
}

// readColumn maps each row's id to a column's value.
func readColumn(t *testing.T, db *sqlstore.DB, table, column string) map[string][]byte {
	t.Helper()
	rows, err := db.DB().QueryContext(t.Context(), "SELECT id, "+column+" FROM "+table)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id string
		var v []byte
		require.NoError(t, rows.Scan(&id, &v))
		out[id] = v
	}
	require.NoError(t, rows.Err())
	return out
}
