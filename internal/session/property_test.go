package session_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Property 24: a valid refresh token is exchanged for a working access
// token of the same session and a different refresh token.
func TestProperty24_ValidRefreshIssuesAccessToken(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			ttl := e.App.Config.AccessTokenTTL
			// One account; each iteration is a new session (a new family).
			userID, email := register(e, "ptf")
			e.Check(t, func(rt *rapid.T) {
				tks := []apptest.Tokens{e.Login(email, apptest.StrongPassword)}
				cur := tks[0]
				// Earlier rotations and the time the client waited (past the
				// access token's life too) must not matter.
				for range rapid.IntRange(0, 2).Draw(rt, "earlier_rotations") {
					cur = requireTokenResponse(rt, refresh(e, cur.Refresh), ttl)
				}
				e.Clock.Advance(time.Duration(rapid.Int64Range(0, int64(3*ttl/time.Second)).Draw(rt, "wait_s")) * time.Second)

				next := requireTokenResponse(rt, refresh(e, cur.Refresh), ttl)
				require.Equal(rt, tks[0].SessionID, next.SessionID)
				require.NotEqual(rt, cur.Refresh, next.Refresh)
				require.NotEqual(rt, cur.Access, next.Access)
				r := me(e, next.Access)
				require.Equal(rt, http.StatusOK, r.Status, "body: %s", r.Raw)
				require.Equal(rt, userID, r.Str("id"))
				_, claims := decodeJWT(rt, next.Access)
				require.Equal(rt, next.SessionID, claims["sid"])
				require.Equal(rt, userID, claims["sub"])
			})
		})
	}
}

// Property 25: anything but a live, unspent refresh token is refused with
// invalid_refresh_token, and trying does not disturb the real session.
func TestProperty25_InvalidRefreshRejected(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			_, email := register(e, "ptg")
			e.Check(t, func(rt *rapid.T) {
				tks := []apptest.Tokens{e.Login(email, apptest.StrongPassword)}
				valid := tks[0].Refresh
				var bad string
				revoked := false
				switch kind := rapid.SampledFrom([]string{"random", "random_b64", "truncated", "modified", "extended", "logged_out", "logged_out_spent"}).Draw(rt, "kind"); kind {
				case "random":
					bad = rapid.StringN(1, 256, -1).Draw(rt, "s")
				case "random_b64":
					// The real tokens' shape: 43 base64url characters.
					bad = rapid.StringOfN(rapid.RuneFrom([]rune(b64url)), 43, 43, -1).Draw(rt, "s")
				case "truncated":
					bad = valid[:rapid.IntRange(1, len(valid)-1).Draw(rt, "keep")]
				case "modified":
					i := rapid.IntRange(0, len(valid)-1).Draw(rt, "at")
					c := rapid.SampledFrom([]byte(b64url)).Filter(func(c byte) bool { return c != valid[i] }).Draw(rt, "to")
					bad = valid[:i] + string(c) + valid[i+1:]
				case "extended":
					bad = valid + rapid.StringOfN(rapid.RuneFrom([]rune(b64url)), 1, 8, -1).Draw(rt, "suffix")
				case "logged_out":
					require.Equal(rt, http.StatusNoContent, e.Do("POST", "/auth/logout", nil, tks[0].Access).Status)
					bad, revoked = valid, true
				case "logged_out_spent":
					next := requireTokenResponse(rt, refresh(e, valid), e.App.Config.AccessTokenTTL)
					require.Equal(rt, http.StatusNoContent, e.Do("POST", "/auth/logout", nil, next.Access).Status)
					bad, revoked = valid, true
				default:
					rt.Fatalf("unknown kind %s", kind)
				}
				apptest.Expect(rt, refresh(e, bad), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
				if revoked {
					apptest.Expect(rt, refresh(e, valid), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
					return
				}
				// A wrong token is not a reuse: the session lives on.
				next := requireTokenResponse(rt, refresh(e, valid), e.App.Config.AccessTokenTTL)
				require.Equal(rt, tks[0].SessionID, next.SessionID)
			})
		})
	}
}

// Property 26: an access token works until its TTL (plus the verifier's
// leeway) and not after, and carries the header and claims of the API.
func TestProperty26_AccessTokenExpiry(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			// Not the default, so the configured TTL is what is checked.
			e := apptest.New(t, eng, map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "10m"})
			quietJobs(t, e)
			ttl := 10 * time.Minute
			userID, email := register(e, "pth")
			e.Check(t, func(rt *rapid.T) {
				tks := []apptest.Tokens{e.Login(email, apptest.StrongPassword)}
				access := tks[0].Access
				if rapid.Bool().Draw(rt, "from_refresh") {
					access = requireTokenResponse(rt, refresh(e, tks[0].Refresh), ttl).Access
				}
				issued := e.Clock.Now()

				header, claims := decodeJWT(rt, access)
				require.Equal(rt, "at+jwt", header["typ"])
				require.Equal(rt, "RS256", header["alg"])
				require.NotEmpty(rt, header["kid"])
				for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "sid", "amr"} {
					require.Contains(rt, claims, c)
				}
				require.Equal(rt, userID, claims["sub"])
				require.Equal(rt, tks[0].SessionID, claims["sid"])
				require.Equal(rt, e.App.Config.PublicURL, claims["iss"])
				require.EqualValues(rt, ttl/time.Second, claims["exp"].(float64)-claims["iat"].(float64))
				require.EqualValues(rt, issued.Unix(), claims["iat"])

				before := time.Duration(rapid.Int64Range(0, int64((ttl-leeway)/time.Second)-1).Draw(rt, "before_s")) * time.Second
				e.Clock.Advance(before)
				r := me(e, access)
				require.Equal(rt, http.StatusOK, r.Status, "at +%s: %s", before, r.Raw)

				after := time.Duration(rapid.Int64Range(1, int64(time.Hour/time.Second)).Draw(rt, "after_s")) * time.Second
				e.Clock.Advance(ttl + leeway + after - before)
				apptest.Expect(rt, me(e, access), http.StatusUnauthorized, gatehouse.CodeUnauthorized)
			})
		})
	}
}

// Property 27: a refresh-token family lives GATEHOUSE_REFRESH_TOKEN_TTL
// from login, however often it rotates in between.
func TestProperty27_RefreshTokenExpiry(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			// The idle timeout is off, so only the absolute lifetime ends a
			// session here (TestIdleTimeout covers the other).
			e := apptest.New(t, eng, map[string]string{
				"GATEHOUSE_REFRESH_TOKEN_TTL":    "2h",
				"GATEHOUSE_SESSION_IDLE_TIMEOUT": "0",
			})
			quietJobs(t, e)
			const life = 2 * time.Hour
			_, email := register(e, "pti")
			e.Check(t, func(rt *rapid.T) {
				tks := []apptest.Tokens{e.Login(email, apptest.StrongPassword)}
				login := e.Clock.Now()
				cur := tks[0]

				// Rotate at drawn moments before the end: each works.
				offsets := rapid.SliceOfN(rapid.Int64Range(0, int64(life/time.Second)-1), 0, 4).Draw(rt, "rotate_at_s")
				slices.Sort(offsets)
				for _, off := range offsets {
					e.Clock.Advance(login.Add(time.Duration(off) * time.Second).Sub(e.Clock.Now()))
					cur = requireTokenResponse(rt, refresh(e, cur.Refresh), e.App.Config.AccessTokenTTL)
					require.Equal(rt, tks[0].SessionID, cur.SessionID)
				}
				sess, err := e.App.DB.GetSession(context.Background(), cur.SessionID)
				require.NoError(rt, err)
				require.True(rt, sess.ExpiresAt.Equal(login.Add(life)), "expires_at %s, login %s", sess.ExpiresAt, login)

				// At the end, and any time after it, the newest token is dead.
				late := time.Duration(rapid.Int64Range(0, int64(2*life/time.Second)).Draw(rt, "late_s")) * time.Second
				e.Clock.Advance(login.Add(life + late).Sub(e.Clock.Now()))
				apptest.Expect(rt, refresh(e, cur.Refresh), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
			})
		})
	}
}

// Property 28: every refresh returns a new refresh token and spends the
// one presented.
func TestProperty28_RotationOnRefresh(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			ctx := context.Background()
			_, email := register(e, "ptj")
			e.Check(t, func(rt *rapid.T) {
				tks := []apptest.Tokens{e.Login(email, apptest.StrongPassword)}
				chain := []string{tks[0].Refresh}
				n := rapid.IntRange(1, 5).Draw(rt, "n")
				for range n {
					next := requireTokenResponse(rt, refresh(e, chain[len(chain)-1]), e.App.Config.AccessTokenTTL)
					require.Equal(rt, tks[0].SessionID, next.SessionID)
					require.NotContains(rt, chain, next.Refresh)
					chain = append(chain, next.Refresh)
				}
				for i, secret := range chain {
					rtok, err := e.App.DB.GetRefreshTokenByHash(ctx, token.Hash(secret))
					require.NoError(rt, err)
					require.Equal(rt, tks[0].SessionID, rtok.SessionID)
					if i < len(chain)-1 {
						require.NotNil(rt, rtok.UsedAt, "token %d of %d should be spent", i, len(chain))
					} else {
						require.Nil(rt, rtok.UsedAt, "the newest token should be unspent")
					}
				}
				// And the API agrees about a drawn earlier one.
				old := chain[rapid.IntRange(0, n-1).Draw(rt, "old")]
				apptest.Expect(rt, refresh(e, old), http.StatusUnauthorized, gatehouse.CodeRefreshTokenReused)
			})
		})
	}
}

// Property 29: presenting a spent refresh token ends the whole family:
// the newest refresh token and the session's access token stop working.
func TestProperty29_ReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			ttl := e.App.Config.AccessTokenTTL
			// The bystander is another session (family) of the same account,
			// signed in all along: no iteration's reuse may touch it.
			userID, email := register(e, "ptk")
			bystander := e.Login(email, apptest.StrongPassword)
			e.Check(t, func(rt *rapid.T) {
				cur := e.Login(email, apptest.StrongPassword)
				chain := []string{cur.Refresh}
				for range rapid.IntRange(1, 4).Draw(rt, "rotations") {
					cur = requireTokenResponse(rt, refresh(e, cur.Refresh), ttl)
					chain = append(chain, cur.Refresh)
				}
				// The access token is vouched for in the cache before the
				// reuse; the revocation must still stop it at once.
				require.Equal(rt, http.StatusOK, me(e, cur.Access).Status)

				old := chain[rapid.IntRange(0, len(chain)-2).Draw(rt, "reused")]
				apptest.Expect(rt, refresh(e, old), http.StatusUnauthorized, gatehouse.CodeRefreshTokenReused)
				apptest.Expect(rt, refresh(e, cur.Refresh), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
				apptest.Expect(rt, me(e, cur.Access), http.StatusUnauthorized, gatehouse.CodeUnauthorized)
				requireRevoked(rt, e, cur.SessionID)
				require.Equal(rt, []string{"refresh_token_reused"}, revocationReasons(rt, e, userID, cur.SessionID))

				// Another session of the same user is another family.
				bystander = requireTokenResponse(rt, refresh(e, bystander.Refresh), ttl)
				require.Equal(rt, http.StatusOK, me(e, bystander.Access).Status)
			})
		})
	}
}

// Property 30: GET /sessions lists exactly the caller's live sessions,
// with exactly one marked current.
func TestProperty30_SessionListReturnsActiveSessions(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			// Another user, signed in all along.
			_, others := signUp(e, "ptm", 1)
			e.Check(t, func(rt *rapid.T) {
				k := rapid.IntRange(1, 5).Draw(rt, "k")
				_, tks := signUp(e, "ptl", k)
				cur := rapid.IntRange(0, k-1).Draw(rt, "current")

				live := map[string]bool{}
				for i, tk := range tks {
					live[tk.SessionID] = true
					if i != cur && rapid.Bool().Draw(rt, "revoke") {
						require.Equal(rt, http.StatusNoContent, e.Do("DELETE", "/sessions/"+tk.SessionID, nil, tks[cur].Access).Status)
						delete(live, tk.SessionID)
					}
				}
				got := listSessions(rt, e, tks[cur].Access)
				require.Len(rt, got, len(live))
				currents := 0
				for id, s := range got {
					require.True(rt, live[id], "session %s listed but not live", id)
					require.NotEqual(rt, others[0].SessionID, id)
					if s["current"] == true {
						currents++
						require.Equal(rt, tks[cur].SessionID, id)
					}
					require.NotEmpty(rt, s["created_at"])
					require.NotEmpty(rt, s["expires_at"])
				}
				require.Equal(rt, 1, currents)
			})
			// Nor did anybody's sessions leak into the other user's list.
			theirs := listSessions(t, e, others[0].Access)
			require.Len(t, theirs, 1)
			require.Contains(t, theirs, others[0].SessionID)
		})
	}
}

// Property 31: revoking a session stops its tokens at once and touches
// nothing else; somebody else's session is not_found.
func TestProperty31_RevocationTerminates(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			// Another user, signed in all along.
			_, others := signUp(e, "pto", 1)
			e.Check(t, func(rt *rapid.T) {
				k := rapid.IntRange(2, 5).Draw(rt, "k")
				_, tks := signUp(e, "ptn", k)
				cur := rapid.IntRange(0, k-1).Draw(rt, "current")
				victim := rapid.IntRange(0, k-1).Filter(func(i int) bool { return i != cur }).Draw(rt, "victim")
				// The victim's token is in the cache's "alive" marks.
				require.Equal(rt, http.StatusOK, me(e, tks[victim].Access).Status)

				// Somebody else cannot end (or probe) the session (the 204
				// below shows it was left alone).
				apptest.Expect(rt, e.Do("DELETE", "/sessions/"+tks[victim].SessionID, nil, others[0].Access), http.StatusNotFound, gatehouse.CodeNotFound)

				require.Equal(rt, http.StatusNoContent, e.Do("DELETE", "/sessions/"+tks[victim].SessionID, nil, tks[cur].Access).Status)
				apptest.Expect(rt, me(e, tks[victim].Access), http.StatusUnauthorized, gatehouse.CodeUnauthorized)
				apptest.Expect(rt, refresh(e, tks[victim].Refresh), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
				apptest.Expect(rt, e.Do("DELETE", "/sessions/"+tks[victim].SessionID, nil, tks[cur].Access), http.StatusNotFound, gatehouse.CodeNotFound)
				apptest.Expect(rt, e.Do("DELETE", "/sessions/"+others[0].SessionID, nil, tks[cur].Access), http.StatusNotFound, gatehouse.CodeNotFound)
				for i, tk := range tks {
					if i != victim {
						require.Equal(rt, http.StatusOK, me(e, tk.Access).Status, "session %d of %d", i, k)
					}
				}

				// End every other session.
				r := e.Do("DELETE", "/sessions", nil, tks[cur].Access)
				require.Equal(rt, http.StatusOK, r.Status, "body: %s", r.Raw)
				require.EqualValues(rt, k-2, r.JSON["revoked"])
				got := listSessions(rt, e, tks[cur].Access)
				require.Len(rt, got, 1)
				require.Contains(rt, got, tks[cur].SessionID)
				for i, tk := range tks {
					if i != cur {
						apptest.Expect(rt, me(e, tk.Access), http.StatusUnauthorized, gatehouse.CodeUnauthorized)
					}
				}
				requireTokenResponse(rt, refresh(e, tks[cur].Refresh), e.App.Config.AccessTokenTTL)
			})
			// No iteration touched the other user.
			require.Equal(t, http.StatusOK, me(e, others[0].Access).Status)
		})
	}
}

// Property 32: logout ends the session: its access token at once, its
// refresh tokens, and a second logout is unauthorized.
func TestProperty32_LogoutTerminates(t *testing.T) {
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			e := apptest.New(t, eng, nil)
			quietJobs(t, e)
			// Another session of the same account, signed in all along.
			userID, email := register(e, "ptp")
			other := e.Login(email, apptest.StrongPassword)
			e.Check(t, func(rt *rapid.T) {
				cur := e.Login(email, apptest.StrongPassword)
				chain := []string{cur.Refresh}
				for range rapid.IntRange(0, 2).Draw(rt, "rotations") {
					cur = requireTokenResponse(rt, refresh(e, cur.Refresh), e.App.Config.AccessTokenTTL)
					chain = append(chain, cur.Refresh)
				}
				if rapid.Bool().Draw(rt, "cached") {
					require.Equal(rt, http.StatusOK, me(e, cur.Access).Status)
				}
				require.Equal(rt, http.StatusNoContent, e.Do("POST", "/auth/logout", nil, cur.Access).Status)
				apptest.Expect(rt, me(e, cur.Access), http.StatusUnauthorized, gatehouse.CodeUnauthorized)
				apptest.Expect(rt, refresh(e, chain[len(chain)-1]), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
				if len(chain) > 1 {
					apptest.Expect(rt, refresh(e, chain[0]), http.StatusUnauthorized, gatehouse.CodeInvalidRefreshToken)
				}
				apptest.Expect(rt, e.Do("POST", "/auth/logout", nil, cur.Access), http.StatusUnauthorized, gatehouse.CodeUnauthorized)
				requireRevoked(rt, e, cur.SessionID)
				require.Equal(rt, []string{"logout"}, revocationReasons(rt, e, userID, cur.SessionID))

				other = requireTokenResponse(rt, refresh(e, other.Refresh), e.App.Config.AccessTokenTTL)
				require.Equal(rt, http.StatusOK, me(e, other.Access).Status)
			})
		})
	}
}
