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
