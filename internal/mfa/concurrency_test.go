package mfa_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// challenges opens n sign-in challenges for u.
func (u *user) challenges(t *testing.T, s *suite, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = u.challenge(t, s).Str("challenge_id")
	}
	return out
}

// TestConcurrentBackupCode: one backup code sent by 20 requests at once,
// on one challenge or on 20 challenges of the user, starts one session.
func TestConcurrentBackupCode(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		for _, shared := range []bool{true, false} {
			u := newUser(t, s)
			u.enrolTOTP(t, s)
			sessions := s.liveSessions(t, u.id)
			chs := u.challenges(t, s, apptest.Racers)
			answers := apptest.Race(t, func(i int) (*apptest.Response, error) {
				ch := chs[i]
				if shared {
					ch = chs[0]
				}
				return s.send("POST", "/auth/mfa/verify", map[string]any{"challenge_id": ch, "code": u.backup[0], "method": "backup_code"}, "")
			})
			oneSession(t, answers)
			require.Equal(t, sessions+1, s.liveSessions(t, u.id), "shared challenge: %v", shared)
			require.Equal(t, 9, s.remaining(t, u.access))
		}
	})
}

// TestConcurrentTOTPCode: one TOTP code sent by 20 requests at once, on
// 20 challenges of the user, starts one session.
func TestConcurrentTOTPCode(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolTOTP(t, s)
		sessions := s.liveSessions(t, u.id)
		chs := u.challenges(t, s, apptest.Racers)
		code := u.totp(t, s)
		answers := apptest.Race(t, func(i int) (*apptest.Response, error) {
			return s.send("POST", "/auth/mfa/verify", map[string]any{"challenge_id": chs[i], "code": code}, "")
		})
		oneSession(t, answers)
		require.Equal(t, sessions+1, s.liveSessions(t, u.id))
		apptest.Expect(t, s.verify(t, u.challenge(t, s).Str("challenge_id"), "totp", code), http.StatusUnauthorized, "mfa_invalid_code")
	})
}

// TestConcurrentGuessesAndRightCode: 19 wrong codes and the right backup
// code at once on one challenge. Whether the right one comes before the
// challenge dies or not, a backup code is never spent without a session.
func TestConcurrentGuessesAndRightCode(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		for round := range 3 {
			u := newUser(t, s)
			u.enrolTOTP(t, s)
			sessions := s.liveSessions(t, u.id)
			ch := u.challenge(t, s).Str("challenge_id")
			right := apptest.Racers - 1
			answers := apptest.Race(t, func(i int) (*apptest.Response, error) {
				code := fmt.Sprintf("WRNG-CODE-%04d", i)
				if i == right {
					code = u.backup[0]
				}
				return s.send("POST", "/auth/mfa/verify", map[string]any{"challenge_id": ch, "code": code, "method": "backup_code"}, "")
			})
			won := answers[right].Status == http.StatusOK
			for i, r := range answers {
				if i != right || !won {
					apptest.Expect(t, r, http.StatusUnauthorized, "mfa_invalid_code", "racer ", i)
				}
			}
			started := s.liveSessions(t, u.id) - sessions
			left := s.remaining(t, u.access)
			t.Logf("round %d: right code won: %v, sessions: %d, backup codes left: %d", round, won, started, left)
			if won {
				require.Equal(t, 1, started)
				require.Equal(t, 9, left)
			} else {
				require.Zero(t, started)
				require.Equal(t, 10, left, "the backup code was spent but no session started")
			}
		}
	})
}

// TestConcurrentActivateAndDisable: enabling one factor while another is
// disabled, or disabling two at once, leaves the account consistent:
// users.mfa_enabled is on exactly when a factor is active (so a sign-in
// asks for a second factor exactly then), and backup codes exist only
// while one is. Each race is apptest.Racers/2 users at once, each with one
// call of either kind. It runs on the service: the HTTP answers of
// activate and disable are checked by the flow tests.
func TestConcurrentActivateAndDisable(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *svcSuite) {
		ctx := t.Context()
		const pairs = apptest.Racers / 2
		for round := range 2 {
			for _, both := range []bool{false, true} { // both: disable sms and totp at once
				users := make([]*svcUser, pairs)
				smsCodes, totps := make([]string, pairs), make([]string, pairs)
				for k := range users {
					u := s.newUser(t)
					s.enrolTOTP(t, u)
					smsCodes[k] = s.setupSMS(t, u)
					users[k] = u
				}
				for k, u := range users {
					if both {
						var err error
						u.backup, err = s.svc.Activate(ctx, u.ID, "sms", smsCodes[k])
						require.NoError(t, err)
					}
				}
				for k, u := range users {
					totps[k] = s.totp(t, u)
				}
				signedIn := s.clock.Now()
				// Any error fails the test: every call must succeed.
				apptest.Race(t, func(i int) (*apptest.Response, error) {
					k, u := i/2, users[i/2]
					switch {
					case i%2 == 1:
						return nil, s.svc.Disable(ctx, u.ID, "", signedIn, "totp", totps[k], "")
					case both:
						return nil, s.svc.Disable(ctx, u.ID, "", signedIn, "sms", u.backup[0], "")
					default:
						_, err := s.svc.Activate(ctx, u.ID, "sms", smsCodes[k])
						return nil, err
					}
				})
				for k, u := range users {
					msg := fmt.Sprintf("round %d, both %v, user %d", round, both, k)
					factors, err := s.db.ListMFAFactors(ctx, u.ID)
					require.NoError(t, err)
					var active []string
					for _, f := range factors {
						if f.Active() {
							active = append(active, f.Method)
						}
					}
					if both {
						require.Empty(t, active, msg)
					} else {
						require.Equal(t, []string{"sms"}, active, msg)
					}
					on := len(active) > 0
					stored, err := s.db.GetUser(ctx, u.ID)
					require.NoError(t, err)
					require.Equal(t, on, stored.MFAEnabled, "%s: users.mfa_enabled", msg)
					require.Equal(t, on, s.challenged(t, u), "%s: sign-in asks for MFA", msg)
					codes, err := s.db.CountBackupCodes(ctx, u.ID)
					require.NoError(t, err)
					if on {
						require.Equal(t, 10, codes, "%s: backup codes", msg)
					} else {
						require.Zero(t, codes, "%s: backup codes outlive the last factor", msg)
					}
				}
			}
		}
	})
}
