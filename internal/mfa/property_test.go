package mfa_test

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
)

// drawEnrolled makes a user with a drawn set of factors turned on, in the
// order answered.
func drawEnrolled(t *rapid.T, s *suite) (*user, []string) {
	u := newUser(t, s)
	factors := rapid.SampledFrom([][]string{{"totp"}, {"sms"}, {"totp", "sms"}, {"sms", "totp"}}).Draw(t, "factors")
	for _, f := range factors {
		if f == "totp" {
			u.enrolTOTP(t, s)
		} else {
			u.enrolSMS(t, s)
		}
	}
	return u, factors
}

// drawCase draws s in its own, upper or lower case.
func drawCase(t *rapid.T, label, s string) string {
	return rapid.SampledFrom([]string{s, strings.ToUpper(s), strings.ToLower(s)}).Draw(t, label)
}

// drawWrongDigits draws six digits that are none of the codes in valid.
func drawWrongDigits(t *rapid.T, label string, valid ...string) string {
	code := rapid.StringMatching(`[0-9]{6}`).Draw(t, label)
	for slices.Contains(valid, code) {
		code = fmt.Sprintf("%06d", (atoi(code)+1)%1_000_000)
	}
	return code
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

// validNow lists the TOTP codes the server accepts now (ignoring replay).
func (u *user) validNow(t require.TestingT, s *suite) []string {
	return validCodes(t, u.secret, s.Clock.Now())
}

// validCodes lists the TOTP codes of secret accepted at now: the step of
// now and one on either side (ignoring replay).
func validCodes(t require.TestingT, secret string, now time.Time) []string {
	var out []string
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, err := mfa.TOTPCode(secret, now.Add(d))
		require.NoError(t, err)
		out = append(out, c)
	}
	return out
}

// Property 11: the right password for an account with MFA answers a
// challenge (the methods it has, five minutes), no tokens and no session;
// an SMS-only account is texted a code at once.
func TestProperty11_MFAEnabledLoginReturnsChallenge(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		s.Check(t, func(rt *rapid.T) {
			u, factors := drawEnrolled(rt, s)
			sessions := s.liveSessions(rt, u.id)
			texts, jobs := len(textsTo(s, u.phone)), s.smsJobs(rt)

			r := s.login(rt, drawCase(rt, "email_case", u.email), apptest.StrongPassword)
			apptest.Expect(rt, r, http.StatusOK, "")
			require.Equal(rt, true, r.JSON["mfa_required"])
			require.Regexp(rt, `^[A-Za-z0-9_-]{32,}$`, r.Str("challenge_id"))
			require.Equal(rt, append(slices.Clone(factors), "backup_code"), strs(rt, r.JSON["methods"]))
			require.EqualValues(rt, 300, r.JSON["expires_in"])
			for _, k := range []string{"access_token", "refresh_token", "session_id", "user"} {
				require.NotContains(rt, r.JSON, k)
			}
			require.Equal(rt, sessions, s.liveSessions(rt, u.id), "a challenge started a session")

			if slices.Equal(factors, []string{"sms"}) {
				u.texts = texts
				require.Len(rt, u.nextText(rt, s), 6)
			} else {
				require.Equal(rt, jobs, s.smsJobs(rt), "a code was texted though the account has TOTP")
			}

			// Wrong passwords still answer invalid_credentials.
			apptest.Expect(rt, s.login(rt, u.email, apptest.StrongPassword+"x"), http.StatusUnauthorized, "invalid_credentials")
		})
	})
}

var base32Secret = regexp.MustCompile(`^[A-Z2-7]+=*$`)

// Property 14: TOTP setup answers a fresh 160-bit base32 secret, an
// otpauth URL naming the service and the account, and a PNG QR code, and
// enables nothing; only the newest pending secret activates.
func TestProperty14_TOTPSetupGeneratesSecret(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		seen := map[string]bool{}
		s.Check(t, func(rt *rapid.T) {
			u := newUser(rt, s)
			setups := rapid.IntRange(1, 2).Draw(rt, "setups")
			var secrets []string
			for range setups {
				r := s.call(rt, "POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, u.access)
				apptest.Expect(rt, r, http.StatusOK, "")
				require.Equal(rt, "totp", r.Str("method"))
				secret := r.Str("secret")
				require.Regexp(rt, base32Secret, secret)
				key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(secret, "="))
				require.NoError(rt, err)
				require.Len(rt, key, 20, "the secret is not 160 bits")
				require.False(rt, seen[secret], "a secret came twice")
				seen[secret] = true
				secrets = append(secrets, secret)

				link, err := url.Parse(r.Str("otpauth_url"))
				require.NoError(rt, err)
				require.Equal(rt, "otpauth", link.Scheme)
				require.Equal(rt, "totp", link.Host)
				require.Equal(rt, "/Gatehouse:"+u.email, link.Path)
				require.Equal(rt, secret, link.Query().Get("secret"))
				require.Equal(rt, "Gatehouse", link.Query().Get("issuer"))

				qr, ok := strings.CutPrefix(r.Str("qr_code"), "data:image/png;base64,")
				require.True(rt, ok, "qr_code is not a PNG data URI")
				img, err := base64.StdEncoding.DecodeString(qr)
				require.NoError(rt, err)
				_, err = png.Decode(bytes.NewReader(img))
				require.NoError(rt, err, "qr_code is not a PNG")

				me := s.me(rt, u.access)
				require.Equal(rt, false, me["mfa_enabled"], "setup alone enabled MFA")
				require.Empty(rt, me["mfa_methods"])
			}
			require.NotEmpty(rt, s.login(rt, u.email, apptest.StrongPassword).Str("access_token"), "a pending setup asked for a code")

			for _, old := range secrets[:setups-1] {
				u.secret = old
				code := u.totp(rt, s)
				if !slices.Contains(validFor(rt, secrets[setups-1], s), code) {
					r := s.call(rt, "POST", "/auth/mfa/activate", map[string]any{"method": "totp", "code": code}, u.access)
					apptest.Expect(rt, r, http.StatusUnauthorized, "mfa_invalid_code", "a replaced secret activated")
				}
			}
			u.secret = secrets[setups-1]
			u.activate(rt, s, "totp", u.totp(rt, s))
		})
	})
}

// validFor lists the codes of secret the server accepts now.
func validFor(t require.TestingT, secret string, s *suite) []string {
	return (&user{secret: secret}).validNow(t, s)
}

// drawPhone draws a spelling of phone (+1 and ten digits) that E.164
// parsing accepts: spaces, dashes, or none.
func drawPhone(t *rapid.T, phone string) string {
	sep := rapid.SampledFrom([]string{"", " ", "-"}).Draw(t, "separator")
	return strings.Join([]string{phone[:2], phone[2:5], phone[5:8], phone[8:]}, sep)
}

// drawBadPhone draws a phone number that is not E.164.
func drawBadPhone(t *rapid.T) string {
	return rapid.OneOf(
		rapid.StringMatching(`[2-9][0-9]{9}`),     // no +
		rapid.StringMatching(`\+[0-9]{1,3}`),      // too short
		rapid.StringMatching(`\+1[0-9]{14,20}`),   // too long
		rapid.StringMatching(`00[1-9][0-9]{10}`),  // 00 instead of +
		rapid.StringMatching(`\+1[01][0-9]{9}`),   // no such area code
		rapid.SampledFrom([]string{"", " ", "+"}), // nothing
	).Draw(t, "bad_phone")
}

// Property 15: SMS setup with an E.164 number texts one 6-digit code to
// it through Twilio and enables nothing; a bad number is a 422 naming
// body.phone_number and texts nothing.
func TestProperty15_SMSSetupSendsVerification(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		s.Check(t, func(rt *rapid.T) {
			u := newUser(rt, s)
			before := len(s.twilio.Messages())
			bad := drawBadPhone(rt)
			r := s.call(rt, "POST", "/auth/mfa/setup", map[string]any{"method": "sms", "phone_number": bad}, u.access)
			requireField(rt, r, "body.phone_number")

			r = s.call(rt, "POST", "/auth/mfa/setup", map[string]any{"method": "sms", "phone_number": drawPhone(rt, u.phone)}, u.access)
			apptest.Expect(rt, r, http.StatusOK, "")
			require.Equal(rt, "sms", r.Str("method"))
			require.Equal(rt, u.phone, r.Str("phone_number"), "the number is not normalised to E.164")
			require.NotContains(rt, r.JSON, "secret")

			code := u.nextText(rt, s)
			require.Regexp(rt, `^[0-9]{6}$`, code)
			body := textsTo(s, u.phone)[0].Body
			require.Contains(rt, body, "Gatehouse")
			require.NotContains(rt, string(r.Raw), code, "the answer holds the code")
			require.Len(rt, s.twilio.Messages(), before+1, "setup sent more than one text, or one to the bad number")
			require.Equal(rt, false, s.me(rt, u.access)["mfa_enabled"], "setup alone enabled MFA")
		})
	})
}

// Property 16: activation with the right code enables the factor (the
// user shows it, sign-ins ask for it); a wrong code enables nothing.
func TestProperty16_VerificationActivates(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		s.Check(t, func(rt *rapid.T) {
			u := newUser(rt, s)
			method := rapid.SampledFrom([]string{"totp", "sms"}).Draw(rt, "method")
			body := map[string]any{"method": method}
			if method == "sms" {
				body["phone_number"] = u.phone
			}
			r := s.call(rt, "POST", "/auth/mfa/setup", body, u.access)
			apptest.Expect(rt, r, http.StatusOK, "")
			var code string
			if method == "totp" {
				u.secret = r.Str("secret")
				code = u.totp(rt, s)
			} else {
				code = u.nextText(rt, s)
			}
			valid := []string{code}
			if method == "totp" {
				valid = u.validNow(rt, s)
			}
			for range rapid.IntRange(0, 3).Draw(rt, "wrong_tries") {
				wrong := drawWrongDigits(rt, "wrong", valid...)
				r := s.call(rt, "POST", "/auth/mfa/activate", map[string]any{"method": method, "code": wrong}, u.access)
				apptest.Expect(rt, r, http.StatusUnauthorized, "mfa_invalid_code")
				require.Equal(rt, false, s.me(rt, u.access)["mfa_enabled"], "a wrong code enabled MFA")
			}

			u.activate(rt, s, method, code)
			me := s.me(rt, u.access)
			require.Equal(rt, true, me["mfa_enabled"])
			require.Equal(rt, []string{method}, strs(rt, me["mfa_methods"]))
			require.Equal(rt, []string{method, "backup_code"}, strs(rt, u.challenge(rt, s).JSON["methods"]))

			// Nothing is pending any more: the code cannot activate again.
			r = s.call(rt, "POST", "/auth/mfa/activate", map[string]any{"method": method, "code": code}, u.access)
			require.NotEqual(rt, http.StatusOK, r.Status, "activated twice: %s", r.Raw)
		})
	})
}

var backupCodeFormat = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)

// Property 17: activation answers ten distinct human-friendly backup
// codes of 60 bits, stored only as hashes; GET counts the unused ones;
// regeneration (with a code) answers ten new ones and the old ones die.
func TestProperty17_BackupCodesGeneration(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		s.Check(t, func(rt *rapid.T) {
			u := newUser(rt, s)
			u.enrolTOTP(rt, s)
			first := u.backup
			for _, c := range first {
				require.Regexp(rt, backupCodeFormat, c)
			}
			require.Len(rt, slices.Compact(slices.Sorted(slices.Values(first))), 10, "codes repeat")
			require.Equal(rt, 10, s.remaining(rt, u.access))

			stored := s.query(rt, "SELECT hash FROM mfa_backup_codes WHERE user_id = ?", u.id)
			require.Len(rt, stored, 10)
			for _, h := range stored {
				for _, c := range first {
					require.NotContains(rt, h, c)
					require.NotContains(rt, h, strings.ReplaceAll(c, "-", ""))
				}
			}

			used := rapid.IntRange(0, 3).Draw(rt, "used")
			for i := range used {
				apptest.Expect(rt, s.verify(rt, u.challenge(rt, s).Str("challenge_id"), "backup_code", first[i]), http.StatusOK, "")
			}
			require.Equal(rt, 10-used, s.remaining(rt, u.access))

			r := s.call(rt, "POST", "/auth/mfa/backup-codes", map[string]any{"code": u.totp(rt, s)}, u.access)
			apptest.Expect(rt, r, http.StatusOK, "")
			second := strs(rt, r.JSON["backup_codes"])
			require.Len(rt, second, 10)
			for _, c := range second {
				require.Regexp(rt, backupCodeFormat, c)
				require.NotContains(rt, first, c, "a regenerated code repeats an old one")
			}
			require.Equal(rt, 10, s.remaining(rt, u.access))
			old := first[rapid.IntRange(used, 9).Draw(rt, "old")]
			apptest.Expect(rt, s.verify(rt, u.challenge(rt, s).Str("challenge_id"), "", old), http.StatusUnauthorized, "mfa_invalid_code")
		})
	})
}

// Property 18: disabling needs a sign-in within five minutes or the
// password; after that only the password (the right one) lets it through.
func TestProperty18_DisableRequiresRecentAuth(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		s.Check(t, func(rt *rapid.T) {
			u := newUser(rt, s)
			u.enrolTOTP(rt, s)
			// The sign-in was at most a few seconds ago; the token lives 15
			// minutes.
			age := time.Duration(rapid.IntRange(30, 14*60).Draw(rt, "age_seconds")) * time.Second
			s.Clock.Advance(age)
			recent := age <= 5*time.Minute-10*time.Second
			stale := age > 5*time.Minute+10*time.Second
			if !recent && !stale {
				return // too close to the edge to say how long ago the sign-in was
			}
			disable := func(pw string) *apptest.Response {
				body := map[string]any{"method": "totp", "code": u.totp(rt, s)}
				if pw != "" {
					body["password"] = pw
				}
				return s.call(rt, "POST", "/auth/mfa/disable", body, u.access)
			}
			if stale {
				r := disable("")
				apptest.Expect(rt, r, http.StatusForbidden, "recent_auth_required")
				u.lastStep-- // refused before the code was looked at
				apptest.Expect(rt, disable(apptest.StrongPassword+"!"), http.StatusForbidden, "recent_auth_required")
				u.lastStep--
				require.Equal(rt, true, s.me(rt, u.access)["mfa_enabled"], "disabled without recent auth")
				apptest.Expect(rt, disable(apptest.StrongPassword), http.StatusNoContent, "")
			} else {
				pw := rapid.SampledFrom([]string{"", apptest.StrongPassword}).Draw(rt, "password")
				apptest.Expect(rt, disable(pw), http.StatusNoContent, "")
			}
			require.Equal(rt, false, s.me(rt, u.access)["mfa_enabled"])
		})
	})
}

// Property 19: disabling needs a valid code (TOTP or backup): a wrong,
// replayed or used one is refused and leaves MFA on.
func TestProperty19_DisableRequiresCode(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		s.Check(t, func(rt *rapid.T) {
			u := newUser(rt, s)
			u.enrolTOTP(rt, s)
			spent := u.backup[0]
			apptest.Expect(rt, s.verify(rt, u.challenge(rt, s).Str("challenge_id"), "", spent), http.StatusOK, "")
			replayed, err := mfa.TOTPCode(u.secret, time.Unix(u.lastStep*30, 0))
			require.NoError(rt, err)

			wrong := rapid.OneOf(
				rapid.Custom(func(t *rapid.T) string { return drawWrongDigits(t, "digits", u.validNow(rt, s)...) }),
				rapid.StringMatching(`[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}`),
				rapid.Just(spent),
				rapid.Just(replayed),
				rapid.StringMatching(`[a-z ]{1,32}`),
			).Draw(rt, "wrong")
			if slices.Contains(u.backup, wrong) && wrong != spent {
				return
			}
			body := map[string]any{"method": "totp", "code": wrong}
			apptest.Expect(rt, s.call(rt, "POST", "/auth/mfa/disable", body, u.access), http.StatusUnauthorized, "mfa_invalid_code")
			requireField(rt, s.call(rt, "POST", "/auth/mfa/disable", map[string]any{"method": "totp", "code": ""}, u.access), "body.code")
			require.Equal(rt, true, s.me(rt, u.access)["mfa_enabled"], "disabled with a bad code")

			code := u.backup[rapid.IntRange(1, 9).Draw(rt, "backup")]
			if rapid.Bool().Draw(rt, "with_totp") {
				code = u.totp(rt, s)
			}
			apptest.Expect(rt, s.call(rt, "POST", "/auth/mfa/disable", map[string]any{"method": "totp", "code": code}, u.access), http.StatusNoContent, "")
			require.Equal(rt, false, s.me(rt, u.access)["mfa_enabled"])
		})
	})
}

// Property 20: a valid code answers tokens for a new session marked mfa,
// whose amr adds otp (TOTP, backup code) or sms; the challenge is spent.
func TestProperty20_ValidMFACodeCreatesSession(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		s.Check(t, func(rt *rapid.T) {
			u, factors := drawEnrolled(rt, s)
			sessions := s.liveSessions(rt, u.id)
			ch := u.challenge(rt, s).Str("challenge_id")

			method := rapid.SampledFrom(append(slices.Clone(factors), "backup_code")).Draw(rt, "method")
			var code string
			switch method {
			case "totp":
				code = u.totp(rt, s)
			case "sms":
				if len(factors) > 1 {
					apptest.Expect(rt, s.call(rt, "POST", "/auth/mfa/send", map[string]any{"challenge_id": ch, "method": "sms"}, ""), http.StatusAccepted, "")
				}
				code = u.nextText(rt, s)
			default:
				code = u.backup[rapid.IntRange(0, 9).Draw(rt, "backup")]
			}
			named := method
			if !rapid.Bool().Draw(rt, "name_method") {
				named = ""
			}
			r := s.verify(rt, ch, named, code)
			apptest.Expect(rt, r, http.StatusOK, "")
			require.Equal(rt, "Bearer", r.Str("token_type"))
			require.NotEmpty(rt, r.Str("refresh_token"))
			access, sid := r.Str("access_token"), r.Str("session_id")
			require.NotEmpty(rt, sid)
			user, _ := r.JSON["user"].(map[string]any)
			require.Equal(rt, u.id, user["id"])
			require.Equal(rt, true, user["mfa_enabled"])

			c := claims(rt, access)
			amr := "otp"
			if method == "sms" {
				amr = "sms"
			}
			require.Equal(rt, []any{"pwd", amr}, c["amr"])
			require.Equal(rt, sid, c["sid"])
			require.Equal(rt, u.id, c["sub"])
			got := s.sessionOf(rt, access, sid)
			require.Equal(rt, true, got["mfa"])
			require.Equal(rt, true, got["current"])
			require.Equal(rt, sessions+1, s.liveSessions(rt, u.id))

			// The challenge is spent, whatever code comes next.
			apptest.Expect(rt, s.verify(rt, ch, "backup_code", u.backup[9]), http.StatusUnauthorized, "mfa_invalid_code")
			apptest.Expect(rt, s.call(rt, "POST", "/auth/refresh", map[string]any{"refresh_token": r.Str("refresh_token")}, ""), http.StatusOK, "")
		})
	})
}

// Property 21: wrong codes are refused with mfa_invalid_code (401), start
// no session (Verify hands no sign-in back) and, fewer than five, leave the
// challenge open. On the service: the HTTP answer is checked by the flow
// tests.
func TestProperty21_InvalidCodeRejected(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *svcSuite) {
		rapid.Check(t, func(rt *rapid.T) {
			u := s.newUser(rt)
			s.enrolTOTP(rt, u)
			ch := s.challenge(rt, u)
			for i := range rapid.IntRange(1, 4).Draw(rt, "wrong_tries") {
				label := fmt.Sprint("wrong_", i)
				var method, code string
				switch rapid.IntRange(0, 3).Draw(rt, label+"_kind") {
				case 0: // six digits that are no current code
					code = drawWrongDigits(rt, label, s.validNow(rt, u)...)
				case 1: // a backup code of somebody's, not this user's
					code = rapid.StringMatching(`[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}`).Draw(rt, label)
					if slices.Contains(u.backup, code) {
						continue
					}
				case 2: // a right code named as the wrong method
					method, code = "backup_code", s.totp(rt, u)
					u.lastStep-- // not spent
				default: // garbage
					code = rapid.StringMatching(`[!-~]{1,32}`).Draw(rt, label)
					if slices.Contains(u.backup, code) || slices.Contains(s.validNow(rt, u), code) {
						continue
					}
				}
				held, err := s.verify(ch, method, code)
				requireCode(rt, err, gatehouse.CodeMFAInvalidCode)
				require.Zero(rt, held, "a wrong code handed back the sign-in")
			}
			_, err := s.verify("no-such-challenge-"+u.id, "totp", s.totp(rt, u))
			requireCode(rt, err, gatehouse.CodeMFAInvalidCode)
			u.lastStep--
			held, err := s.verify(ch, "totp", s.totp(rt, u))
			require.NoError(rt, err)
			require.Equal(rt, u.id, held.UserID)
		})
	})
}

// Property 22: a backup code, in any case and with or without dashes,
// starts a session once: it is marked used, the count drops and it never
// works again.
func TestProperty22_BackupCodeCreatesSessionAndIsMarkedUsed(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, s *suite) {
		s.Check(t, func(rt *rapid.T) {
			u := newUser(rt, s)
			u.enrolTOTP(rt, s)
			i := rapid.IntRange(0, 9).Draw(rt, "which")
			code := u.backup[i]
			spelled := drawCase(rt, "case", code)
			if rapid.Bool().Draw(rt, "no_dashes") {
				spelled = strings.ReplaceAll(spelled, "-", "")
			}
			r := s.verify(rt, u.challenge(rt, s).Str("challenge_id"), rapid.SampledFrom([]string{"", "backup_code"}).Draw(rt, "method"), spelled)
			apptest.Expect(rt, r, http.StatusOK, "")
			require.Equal(rt, []any{"pwd", "otp"}, claims(rt, r.Str("access_token"))["amr"])
			require.Equal(rt, 9, s.remaining(rt, r.Str("access_token")))
			used := s.query(rt, "SELECT count(*) FROM mfa_backup_codes WHERE user_id = ? AND used_at IS NOT NULL", u.id)
			require.Equal(rt, []string{"1"}, used)

			again := rapid.SampledFrom([]string{code, spelled, strings.ToLower(code)}).Draw(rt, "again")
			apptest.Expect(rt, s.verify(rt, u.challenge(rt, s).Str("challenge_id"), "", again), http.StatusUnauthorized, "mfa_invalid_code")
			require.Equal(rt, 9, s.remaining(rt, u.access))
		})
	})
}

// Property 23: a TOTP code of the current step or one either side is
// accepted, two steps away refused; an accepted code (and any older step)
// is refused afterwards. On the service: TestTOTPFlow checks the same
// over HTTP.
func TestProperty23_TOTPTimeWindowAcceptance(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *svcSuite) {
		rapid.Check(t, func(rt *rapid.T) {
			u := s.newUser(rt)
			s.enrolTOTP(rt, u)
			for i := range rapid.IntRange(1, 4).Draw(rt, "tries") {
				s.clock.Advance(time.Duration(rapid.IntRange(0, 120).Draw(rt, fmt.Sprint("wait_", i))) * time.Second)
				now := s.clock.Now()
				offset := rapid.IntRange(-2, 2).Draw(rt, fmt.Sprint("offset_", i))
				at := now.Add(time.Duration(offset) * 30 * time.Second)
				step := at.Unix() / 30
				code, err := mfa.TOTPCode(u.secret, at)
				require.NoError(rt, err)
				accept := offset >= -1 && offset <= 1 && step > u.lastStep
				want := -1 // where code stands among the window's codes
				if offset >= -1 && offset <= 1 {
					want = offset + 1
				}
				if slices.Index(s.validNow(rt, u), code) != want {
					continue // the same six digits as another step's, by chance
				}
				ch := s.challenge(rt, u)
				held, err := s.verify(ch, rapid.SampledFrom([]string{"", "totp"}).Draw(rt, fmt.Sprint("method_", i)), code)
				if !accept {
					requireCode(rt, err, gatehouse.CodeMFAInvalidCode, "offset ", offset)
					continue
				}
				require.NoError(rt, err, "offset %d", offset)
				require.Equal(rt, []string{"pwd", "otp"}, held.AMR)
				u.lastStep = step
				// Replayed on a new challenge, within its window: refused.
				_, err = s.verify(s.challenge(rt, u), "totp", code)
				requireCode(rt, err, gatehouse.CodeMFAInvalidCode)
			}
		})
	})
}
