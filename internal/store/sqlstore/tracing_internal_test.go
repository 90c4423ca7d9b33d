package sqlstore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSummarizeNamesOperationAndTable(t *testing.T) {
	for q, want := range map[string][2]string{
		"SELECT id, email FROM users WHERE id = $1": {"SELECT", "users"},
		"select 1": {"SELECT", ""},
		"INSERT INTO sessions (id, user_id) VALUES ($1, $2)":  {"INSERT", "sessions"},
		"INSERT INTO river_job(args) VALUES (?)":              {"INSERT", "river_job"},
		"UPDATE \"users\" SET failed_logins = 0 WHERE id = ?": {"UPDATE", "users"},
		"DELETE FROM refresh_tokens WHERE family_id = $1":     {"DELETE", "refresh_tokens"},
		"WITH x AS (SELECT 1) UPDATE users SET a = 1":         {"UPDATE", ""},
		"WITH x AS (SELECT 1) SELECT * FROM x":                {"SELECT", ""},
		"SELECT * FROM (SELECT 1) AS t":                       {"SELECT", ""},
		"BEGIN":                                               {"BEGIN", ""},
		"":                                                    {"SQL", ""},
		"-- comment\nSELECT 1":                                {"SQL", ""},
	} {
		op, table := summarize(q)
		require.Equal(t, want, [2]string{op, table}, q)
	}
	long := make([]byte, 5000)
	for i := range long {
		long[i] = 'x'
	}
	require.Len(t, truncateQuery(string(long)), maxQueryText+len("…"))
}
