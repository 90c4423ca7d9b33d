package mfa_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
)

// TestSMSFlow runs SMS through the fake Twilio: enrolment, a sign-in that
// texts at once, a resend of the same code, codes bound to their
// challenge, and disabling with a code texted to the session.
func TestSMSFlow(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolSMS(t, s)
		require.Equal(t, []string{"sms"}, strs(t, s.me(t, u.access)["mfa_methods"]))

		// SMS only: the sign-in texts a code at once; a resend texts it again.
		ch := u.challenge(t, s)
		require.Equal(t, []string{"sms", "backup_code"}, strs(t, ch.JSON["methods"]))
		first := u.nextText(t, s)
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"challenge_id": ch.Str("challenge_id"), "method": "sms"}, ""), http.StatusAccepted, "")
		second := u.nextText(t, s)
		require.Equal(t, first, second)
		r := s.verify(t, ch.Str("challenge_id"), "sms", second)
		apptest.Expect(t, r, http.StatusOK, "")
		require.Equal(t, []any{"pwd", "sms"}, claims(t, r.Str("access_token"))["amr"])
		require.Equal(t, true, s.sessionOf(t, r.Str("access_token"), r.Str("session_id"))["mfa"])

		// A code works only for the challenge it was sent for.
		a := u.challenge(t, s).Str("challenge_id")
		u.nextText(t, s)
		b := u.challenge(t, s).Str("challenge_id")
		codeB := u.nextText(t, s)
		apptest.Expect(t, s.verify(t, a, "sms", codeB), http.StatusUnauthorized, "mfa_invalid_code")
		apptest.Expect(t, s.verify(t, b, "", codeB), http.StatusOK, "")

		// Only sms is sent; an unknown challenge is refused.
		requireField(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"challenge_id": a, "method": "totp"}, ""), "body.method")
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"challenge_id": "nope", "method": "sms"}, ""), http.StatusUnauthorized, "mfa_invalid_code")

		// Disabling with a code texted to the signed-in session.
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"method": "sms"}, u.access), http.StatusAccepted, "")
		code := u.nextText(t, s)
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/disable", map[string]any{"method": "sms", "code": code}, u.access), http.StatusNoContent, "")
		require.Equal(t, false, s.me(t, u.access)["mfa_enabled"])
		require.Zero(t, s.remaining(t, u.access))
	})
}

// TestSMSResendTextsTheSameCode: texts may arrive in any order, so while
// a code lives every resend (of a sign-in challenge, of a setup, to a
// session) texts that same code, and whichever text arrives works. The
// per-challenge and per-account caps still count each text. A code for
// something else in between supersedes it, and so does expiry: the next
// resend then makes a new code.
func TestSMSResendTextsTheSameCode(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)

		// Setup: a second setup for the same number is a resend.
		setup := map[string]any{"method": "sms", "phone_number": u.phone}
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/setup", setup, u.access), http.StatusOK, "")
		first := u.nextText(t, s)
		s.Clock.Advance(time.Minute)
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/setup", setup, u.access), http.StatusOK, "")
		require.Equal(t, first, u.nextText(t, s), "a setup resend texts the same code")
		require.Contains(t, textsTo(s, u.phone)[1].Body, "expires in 4 minutes")
		u.activate(t, s, "sms", first)

		// A sign-in: the code texted at once, then two resends; the last
		// text received works.
		ch := u.challenge(t, s).Str("challenge_id")
		codes := []string{u.nextText(t, s)}
		for range 2 {
			apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"challenge_id": ch, "method": "sms"}, ""), http.StatusAccepted, "")
			codes = append(codes, u.nextText(t, s))
		}
		require.Equal(t, []string{codes[0], codes[0], codes[0]}, codes, "every resend texts the same code")
		apptest.Expect(t, s.verify(t, ch, "sms", codes[2]), http.StatusOK, "")

		// Still five texts per challenge, resends included.
		ch = u.challenge(t, s).Str("challenge_id")
		code := u.nextText(t, s)
		for range 4 {
			apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"challenge_id": ch, "method": "sms"}, ""), http.StatusAccepted, "")
			require.Equal(t, code, u.nextText(t, s))
		}
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"challenge_id": ch, "method": "sms"}, ""), http.StatusTooManyRequests, "rate_limited")

		// Another account (each may have 5 setup and session texts an
		// hour). A code texted for something else, the session, supersedes
		// the challenge's: its resend makes a new code, which works.
		v := newUser(t, s)
		v.enrolSMS(t, s)
		ch = v.challenge(t, s).Str("challenge_id")
		old := v.nextText(t, s)
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"method": "sms"}, v.access), http.StatusAccepted, "")
		v.nextText(t, s)
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"challenge_id": ch, "method": "sms"}, ""), http.StatusAccepted, "")
		fresh := v.nextText(t, s)
		require.NotEqual(t, old, fresh, "the superseded code is not texted again")
		apptest.Expect(t, s.verify(t, ch, "sms", old), http.StatusUnauthorized, "mfa_invalid_code")
		apptest.Expect(t, s.verify(t, ch, "sms", fresh), http.StatusOK, "")

		// To a session: the same code while it lives, a new one after.
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"method": "sms"}, v.access), http.StatusAccepted, "")
		a := v.nextText(t, s)
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"method": "sms"}, v.access), http.StatusAccepted, "")
		require.Equal(t, a, v.nextText(t, s))
		s.Clock.Advance(5*time.Minute + time.Second)
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"method": "sms"}, v.access), http.StatusAccepted, "")
		b := v.nextText(t, s)
		require.NotEqual(t, a, b, "after expiry a resend makes a new code")
	})
}

// TestSMSSetupCodeExpires: a setup code is good for five minutes.
func TestSMSSetupCodeExpires(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		setup := map[string]any{"method": "sms", "phone_number": u.phone}
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/setup", setup, u.access), http.StatusOK, "")
		code := u.nextText(t, s)
		s.Clock.Advance(5*time.Minute + time.Second)
		activate := map[string]any{"method": "sms", "code": code}
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/activate", activate, u.access), http.StatusUnauthorized, "mfa_invalid_code")

		// A new setup texts a new code, which works.
		u.enrolSMS(t, s)
	})
}

// TestSMSTwilioDown: when Twilio fails every call, the retries run out and
// the sign-in's SMS answers 503 (its other methods still work), and once
// the breaker is open setup and send answer 503 at once. Nothing hangs.
func TestSMSTwilioDown(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		u := newUser(t, s)
		u.enrolSMS(t, s)
		v := newUser(t, s)
		s.twilio.FailNext(1<<30, http.StatusServiceUnavailable)

		ch := u.challenge(t, s).Str("challenge_id")
		job := s.lastSMSJob(t)
		// Before the last attempt a wrong code is just wrong.
		apptest.Expect(t, s.verify(t, ch, "sms", "000000"), http.StatusUnauthorized, "mfa_invalid_code")

		s.retryUntilFinal(t, job)
		r := s.verify(t, ch, "sms", "123456")
		apptest.Expect(t, r, http.StatusServiceUnavailable, "service_unavailable")
		require.Contains(t, r.Header.Get("Content-Type"), "application/problem+json")

		// Five failed attempts opened the breaker: no waiting on a queue.
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/send", map[string]any{"challenge_id": ch, "method": "sms"}, ""), http.StatusServiceUnavailable, "service_unavailable")
		apptest.Expect(t, s.call(t, "POST", "/auth/mfa/setup", map[string]any{"method": "sms", "phone_number": v.phone}, v.access), http.StatusServiceUnavailable, "service_unavailable")
		require.Empty(t, textsTo(s, v.phone))

		// The challenge still takes a backup code.
		apptest.Expect(t, s.verify(t, ch, "backup_code", u.backup[0]), http.StatusOK, "")

		// While the breaker is open, signing in still opens a challenge
		// (no text goes out) that a backup code meets and SMS refuses.
		sent := len(textsTo(s, u.phone))
		r = u.challenge(t, s)
		require.Equal(t, []any{"sms", "backup_code"}, r.JSON["methods"])
		ch = r.Str("challenge_id")
		apptest.Expect(t, s.verify(t, ch, "sms", "123456"), http.StatusServiceUnavailable, "service_unavailable")
		apptest.Expect(t, s.verify(t, ch, "backup_code", u.backup[1]), http.StatusOK, "")
		require.Len(t, textsTo(s, u.phone), sent)
	})
}

// lastSMSJob answers the newest sms.send job.
func (s *suite) lastSMSJob(t *testing.T) int64 {
	res, err := s.App.Jobs.River().JobList(context.Background(), river.NewJobListParams().Kinds(sms.JobKind).First(1000))
	require.NoError(t, err)
	require.NotEmpty(t, res.Jobs)
	return slices.MaxFunc(res.Jobs, func(a, b *rivertype.JobRow) int { return int(a.ID - b.ID) }).ID
}

// retryUntilFinal runs the job's retries now instead of after their
// backoff, until River gives it up.
func (s *suite) retryUntilFinal(t *testing.T, id int64) {
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := s.App.Jobs.River().JobGet(ctx, id)
		require.NoError(t, err)
		switch j.State {
		case rivertype.JobStateDiscarded, rivertype.JobStateCancelled:
			require.Equal(t, sms.MaxAttempts, j.Attempt, "the job ended early: %v", j.Errors)
			return
		case rivertype.JobStateCompleted:
			require.FailNow(t, "the text was sent though Twilio fails")
		case rivertype.JobStateRetryable, rivertype.JobStateScheduled:
			_, err := s.App.Jobs.River().JobRetry(ctx, id)
			require.NoError(t, err)
		}
		require.True(t, time.Now().Before(deadline), "job %d still %s after %d attempts", id, j.State, j.Attempt)
		time.Sleep(10 * time.Millisecond)
	}
}
