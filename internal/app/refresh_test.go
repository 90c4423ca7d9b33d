package app_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// refreshStatements is what one successful POST /auth/refresh costs the
// database, BEGIN and COMMIT included: consume the token (one UPDATE ...
// RETURNING), read the session with the client it was granted to (one
// SELECT), rescore (touch the session's device, returning it; read the
// login profile), touch the session with its new trust (one UPDATE), issue
// the next token; the user for the answer comes from the in-process cache.
// It was 13 before issue #15, then 10.
const refreshStatements = 8

// A refresh costs exactly refreshStatements statements. Background work
// (jobs, the audit linker) may add statements at any time, so the claim is
// on the cheapest of several refreshes: fewer than that is impossible
// unless the count changed, and any more in every one would be a
// regression.
func TestRefreshStatementCount(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			env := apptest.New(t, eng, nil)
			env.Register("count@example.com", apptest.StrongPassword)
			tok := env.Login("count@example.com", apptest.StrongPassword)
			refresh := tok.Refresh
			cheapest := ^uint64(0)
			for range 12 {
				before := env.App.DB.Statements()
				r := env.Do(http.MethodPost, "/auth/refresh", map[string]any{"refresh_token": refresh}, "")
				spent := env.App.DB.Statements() - before
				require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
				refresh = r.Str("refresh_token")
				cheapest = min(cheapest, spent)
			}
			require.Equal(t, uint64(refreshStatements), cheapest, "database statements per refresh")
		})
	}
}

// BenchmarkRefresh measures POST /auth/refresh end to end (HTTP on
// loopback, one chain of tokens) on each engine: SQLite always,
// PostgreSQL when GATEHOUSE_TEST_POSTGRES_URL is set. It also reports the
// database statements per refresh.
func BenchmarkRefresh(b *testing.B) {
	for _, eng := range apptest.Engines(b) {
		b.Run(eng, func(b *testing.B) {
			env := apptest.New(b, eng, map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "false"})
			env.Register("bench@example.com", apptest.StrongPassword)
			refresh := env.Login("bench@example.com", apptest.StrongPassword).Refresh
			before := env.App.DB.Statements()
			b.ResetTimer()
			for b.Loop() {
				r := env.Do(http.MethodPost, "/auth/refresh", map[string]any{"refresh_token": refresh}, "")
				if r.Status != http.StatusOK {
					b.Fatalf("refresh: %d %s", r.Status, r.Raw)
				}
				refresh = r.Str("refresh_token")
			}
			b.ReportMetric(float64(env.App.DB.Statements()-before)/float64(b.N), "stmts/op")
		})
	}
}
