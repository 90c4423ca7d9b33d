package session_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// The same refresh token presented by many clients at once is exchanged
// exactly once. The losers are reuses of a spent token, so (by design,
// after the OAuth 2.0 Security BCP) they end the family, and the winner's
// new refresh token dies with it.
func TestConcurrentRefreshExactlyOneWins(t *testing.T) {
	t.Parallel()
	const clients, rounds = 20, 3
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			if eng == "sqlite" {
				// PostgreSQL keeps its job workers running beside the race;
				// on SQLite their polling would only slow everything down.
				quietJobs(t, e)
			}
			rc := newRawClient(e)
			for round := range rounds {
				userID, tks := signUp(e, "pcc", 1)
				type answer struct {
					status int
					body   map[string]any
					err    error
				}
				answers := make([]answer, clients)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range clients {
					wg.Go(func() {
						<-start
						status, body, err := rc.do("POST", "/auth/refresh", map[string]any{"refresh_token": tks[0].Refresh}, "")
						answers[i] = answer{status, body, err}
					})
				}
				close(start)
				wg.Wait()

				wins, reused := 0, 0
				var winner string
				for i, a := range answers {
					require.NoError(t, a.err, "client %d", i)
					switch a.status {
					case http.StatusOK:
						wins++
						winner, _ = a.body["refresh_token"].(string)
						require.Equal(t, tks[0].SessionID, a.body["session_id"])
					case http.StatusUnauthorized:
						code, _ := a.body["code"].(string)
						require.Contains(t, []string{string(gatehouse.CodeRefreshTokenReused), string(gatehouse.CodeInvalidRefreshToken)}, code, "client %d", i)
						if code == string(gatehouse.CodeRefreshTokenReused) {
							reused++
						}
					default:
						t.Fatalf("round %d client %d: status %d, body %v", round, i, a.status, a.body)
					}
				}
				require.Equal(t, 1, wins, "round %d: exactly one refresh may win", round)
				require.GreaterOrEqual(t, reused, 1, "round %d: a loser presented a spent token", round)

				// The reuse ended the family: the winner's token is dead too,
				// and the session was revoked once, for that reason.
				apptest.Expect(t, refresh(e, winner), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
				apptest.Expect(t, me(e, tks[0].Access), http.StatusUnauthorized, gatehouse.CodeUnauthorized)
				requireRevoked(t, e, tks[0].SessionID)
				require.Equal(t, []string{"refresh_token_reused"}, revocationReasons(t, e, userID, tks[0].SessionID))
			}
		})
	}
}
