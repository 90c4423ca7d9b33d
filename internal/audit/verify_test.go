package audit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

func TestVerifyWholeChain(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			db := e.Open(t)
			rep := verify(t, db, 0)
			require.True(t, rep.OK())
			require.Zero(t, rep.Checked, "an empty chain is whole")

			record(t, db, 10)
			for _, pageSize := range []int{1, 3, 10, 11, 0} {
				rep = verify(t, db, pageSize)
				require.True(t, rep.OK(), "page size %d: %v", pageSize, rep.Break)
				require.Equal(t, int64(10), rep.Checked)
				require.Equal(t, int64(1), rep.FirstSeq)
				require.Equal(t, int64(10), rep.LastSeq)
				require.Empty(t, rep.Anchor, "the chain starts at its beginning")
				require.Len(t, rep.Head, 64)
			}
		})
	}
}

// TestVerifyFindsTampering changes rows behind the application's back
// (triggers out of the way) and checks Verify names the first broken
// link, whatever page it falls on.
func TestVerifyFindsTampering(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			for _, tc := range []struct {
				name, stmt string
				seq        int64
				problem    string
			}{
				{"changed action", `UPDATE audit_logs SET action = 'user.logout' WHERE seq = 5`, 5, "the row was changed"},
				{"changed risk", `UPDATE audit_logs SET risk_score = 0 WHERE seq = 7`, 7, "the row was changed"},
				{"changed metadata", `UPDATE audit_logs SET metadata = '{"i":1,"method":"passkey"}' WHERE seq = 2`, 2, "the row was changed"},
				{"deleted row", `DELETE FROM audit_logs WHERE seq = 6`, 7, "rows are missing"},
				{"relinked row", `UPDATE audit_logs SET prev_hash = hash WHERE seq = 9`, 9, "is not the hash"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					db := e.Open(t)
					record(t, db, 10)
					bypass(t, db, tc.stmt)
					rep := verify(t, db, 3)
					require.False(t, rep.OK())
					require.Equal(t, tc.seq, rep.Break.Seq)
					require.NotEmpty(t, rep.Break.ID)
					require.Contains(t, rep.Break.Problem, tc.problem)
					require.ErrorContains(t, rep.Break, "seq")
				})
			}
		})
	}
}

// TestVerifyCountsRowsFromBeforeTheChain: rows the migration numbered but
// could not hash are counted, not checked, and the chain starts after
// them.
func TestVerifyCountsRowsFromBeforeTheChain(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			db := e.Open(t)
			ts := "'2025-01-01T00:00:00.000000Z'"
			if e.Name == "postgres" {
				ts = "'2025-01-01T00:00:00Z'::timestamptz"
			}
			_, err := db.DB().ExecContext(t.Context(),
				`INSERT INTO audit_logs (id, action, created_at, seq) VALUES ('a', 'user.login', `+ts+`, 1), ('b', 'user.login', `+ts+`, 2)`)
			require.NoError(t, err)
			record(t, db, 3)
			rep := verify(t, db, 2)
			require.True(t, rep.OK(), "%v", rep.Break)
			require.Equal(t, int64(2), rep.Unchained)
			require.Equal(t, int64(3), rep.Checked)
			require.Equal(t, int64(3), rep.FirstSeq)
		})
	}
}
