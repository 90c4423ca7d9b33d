package mfa_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms/smstest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// defaultChecks is how many cases each property runs unless -rapid.checks
// (or RAPID_CHECKS) says otherwise. A case here is a whole sign-up,
// enrolment and sign-in over HTTP against a running server, which under
// -race costs about a second, more on SQLite: rapid's default of 100 would make
// each property take minutes.
const defaultChecks = 10

func TestMain(m *testing.M) {
	flag.Parse()
	set := os.Getenv("RAPID_CHECKS") != ""
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		if err := flag.Set("rapid.checks", strconv.Itoa(defaultChecks)); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// suite is one running server whose SMS go to a fake Twilio.
type suite struct {
	*apptest.Env
	twilio *smstest.Server
}

// forEachEngine runs fn once per database engine, in parallel, each with
// a fresh suite configured with extra.
func forEachEngine(t *testing.T, extra map[string]string, fn func(t *testing.T, s *suite)) {
	t.Helper()
	t.Parallel()
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			t.Parallel()
			fn(t, newSuite(t, eng, extra))
		})
	}
}

// newSuite starts a server texting through a fresh fake Twilio; on
// PostgreSQL it uses the test Redis (when there is one) as its cache, so
// challenges live where they do in production.
func newSuite(t testing.TB, eng string, extra map[string]string) *suite {
	t.Helper()
	tw := smstest.Start(t)
	cfg := map[string]string{
		"GATEHOUSE_SMS_PROVIDER":       "twilio",
		"GATEHOUSE_TWILIO_ACCOUNT_SID": tw.SID,
		"GATEHOUSE_TWILIO_AUTH_TOKEN":  tw.Token,
		"GATEHOUSE_TWILIO_FROM":        smstest.From,
		"GATEHOUSE_TWILIO_API_URL":     tw.URL(),
	}
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); eng == "postgres" && u != "" {
		cfg["GATEHOUSE_REDIS_URL"] = u
	}
	maps.Copy(cfg, extra)
	return &suite{Env: apptest.New(t, eng, cfg), twilio: tw}
}

// send is a JSON call that reports transport errors instead of failing a
// test, so goroutines may use it.
func (s *suite) send(method, path string, body any, bearer string) (*apptest.Response, error) {
	return s.Env.Send(method, path, body, bearer, map[string]string{"User-Agent": "mfa-test/1.0"})
}

// call is send failing t on a transport error; rapid.T works too.
func (s *suite) call(t require.TestingT, method, path string, body any, bearer string) *apptest.Response {
	r, err := s.send(method, path, body, bearer)
	require.NoError(t, err, "%s %s", method, path)
	return r
}

// requireField fails t unless r is a 422 naming location among its errors.
func requireField(t require.TestingT, r *apptest.Response, location string) {
	apptest.Expect(t, r, http.StatusUnprocessableEntity, "", location)
	errs, _ := r.JSON["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["location"] == location {
			return
		}
	}
	require.Failf(t, "field not named", "want an error at %s: %s", location, r.Raw)
}

// user is a test account and what the test knows of its factors.
type user struct {
	id, email string
	access    string // access token of a sign-in made before MFA was on
	sessionID string
	secret    string   // TOTP secret, once set up
	lastStep  int64    // the newest TOTP step spent
	phone     string   // SMS number, once set up
	texts     int      // texts to phone read so far
	backup    []string // the current backup codes
}

var seq atomic.Int64

// uniqueLetters spells n with letters found neither in apptest's strong
// password nor in leet spellings of it, so the policy never calls the
// password personal for these addresses.
func uniqueLetters(n int64) string {
	const alphabet = "jkwxyz"
	var b strings.Builder
	for ; n > 0; n /= int64(len(alphabet)) {
		b.WriteByte(alphabet[n%int64(len(alphabet))])
	}
	return b.String()
}

// newUser makes a verified account and signs it in.
func newUser(t require.TestingT, s *suite) *user {
	n := seq.Add(1)
	u := &user{email: "mfa-" + uniqueLetters(n) + "@example.com", phone: phoneNumber(n)}
	created, err := s.App.Accounts.CreateUser(context.Background(), u.email, apptest.StrongPassword, nil, true)
	require.NoError(t, err)
	u.id = created.ID
	r := s.login(t, u.email, apptest.StrongPassword)
	apptest.Expect(t, r, http.StatusOK, "")
	require.NotEmpty(t, r.Str("access_token"), "a sign-in without MFA answers tokens: %s", r.Raw)
	u.access, u.sessionID = r.Str("access_token"), r.Str("session_id")
	return u
}

// phoneNumber is a valid, unique US number in E.164 form.
func phoneNumber(n int64) string { return "+1415" + strconv.FormatInt(2_000_000+n, 10) }

func (s *suite) login(t require.TestingT, email, pw string) *apptest.Response {
	return s.call(t, "POST", "/auth/login", map[string]any{"email": email, "password": pw}, "")
}

// totp answers a code for a step after every one spent so far, moving the
// clock to the next step when the current one is spent.
func (u *user) totp(t require.TestingT, s *suite) string {
	now := s.Clock.Now()
	if step := now.Unix() / 30; step <= u.lastStep {
		s.Clock.Advance(time.Duration((u.lastStep+1)*30-now.Unix()) * time.Second)
	}
	return u.totpAt(t, s.Clock.Now())
}

// totpAt answers the code of t's step and records the step as spent.
func (u *user) totpAt(t require.TestingT, at time.Time) string {
	code, err := mfa.TOTPCode(u.secret, at)
	require.NoError(t, err)
	u.lastStep = at.Unix() / 30
	return code
}

// enrolTOTP sets up and activates TOTP for u.
func (u *user) enrolTOTP(t require.TestingT, s *suite) {
	r := s.call(t, "POST", "/auth/mfa/setup", map[string]any{"method": "totp"}, u.access)
	apptest.Expect(t, r, http.StatusOK, "")
	u.secret = r.Str("secret")
	require.NotEmpty(t, u.secret)
	u.activate(t, s, "totp", u.totp(t, s))
}

// enrolSMS sets up and activates SMS for u's phone.
func (u *user) enrolSMS(t require.TestingT, s *suite) {
	r := s.call(t, "POST", "/auth/mfa/setup", map[string]any{"method": "sms", "phone_number": u.phone}, u.access)
	apptest.Expect(t, r, http.StatusOK, "")
	u.activate(t, s, "sms", u.nextText(t, s))
}

func (u *user) activate(t require.TestingT, s *suite, method, code string) {
	r := s.call(t, "POST", "/auth/mfa/activate", map[string]any{"method": method, "code": code}, u.access)
	apptest.Expect(t, r, http.StatusOK, "")
	u.backup = strs(t, r.JSON["backup_codes"])
	require.Len(t, u.backup, 10)
}

// nextText waits for the next text to u's phone and answers its code.
func (u *user) nextText(t require.TestingT, s *suite) string {
	u.texts++
	deadline := time.Now().Add(smstest.WaitTimeout)
	for {
		if got := textsTo(s, u.phone); len(got) >= u.texts {
			m := got[u.texts-1]
			require.Equal(t, smstest.From, m.From)
			code := smstest.CodeFrom(m.Body)
			require.NotEmpty(t, code, "no code in %q", m.Body)
			return code
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "text did not arrive", "want %d texts to %s within %s", u.texts, u.phone, smstest.WaitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// textsTo lists the texts the fake Twilio accepted for phone.
func textsTo(s *suite, phone string) []smstest.Message {
	var out []smstest.Message
	for _, m := range s.twilio.Messages() {
		if m.To == phone {
			out = append(out, m)
		}
	}
	return out
}

// challenge signs u in and answers the MFA challenge.
func (u *user) challenge(t require.TestingT, s *suite) *apptest.Response {
	r := s.login(t, u.email, apptest.StrongPassword)
	apptest.Expect(t, r, http.StatusOK, "")
	require.Equal(t, true, r.JSON["mfa_required"], "no challenge: %s", r.Raw)
	require.NotEmpty(t, r.Str("challenge_id"))
	return r
}

// verify meets a challenge; method may be "".
func (s *suite) verify(t require.TestingT, challengeID, method, code string) *apptest.Response {
	body := map[string]any{"challenge_id": challengeID, "code": code}
	if method != "" {
		body["method"] = method
	}
	return s.call(t, "POST", "/auth/mfa/verify", body, "")
}

// remaining is GET /auth/mfa/backup-codes.
func (s *suite) remaining(t require.TestingT, access string) int {
	r := s.call(t, "GET", "/auth/mfa/backup-codes", nil, access)
	apptest.Expect(t, r, http.StatusOK, "")
	n, ok := r.JSON["remaining"].(float64)
	require.True(t, ok, "remaining: %s", r.Raw)
	return int(n)
}

// me is GET /auth/me.
func (s *suite) me(t require.TestingT, access string) map[string]any {
	r := s.call(t, "GET", "/auth/me", nil, access)
	apptest.Expect(t, r, http.StatusOK, "")
	return r.JSON
}

// claims decodes an access token's payload (the signature is the
// server's business; these tests read what it says).
func claims(t require.TestingT, access string) map[string]any {
	parts := strings.Split(access, ".")
	require.Len(t, parts, 3, "access token %q is not a JWT", access)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(raw, &c))
	return c
}

// sessionOf finds a session in the list visible with access.
func (s *suite) sessionOf(t require.TestingT, access, id string) map[string]any {
	r := s.call(t, "GET", "/sessions", nil, access)
	apptest.Expect(t, r, http.StatusOK, "")
	items, _ := r.JSON["items"].([]any)
	for _, it := range items {
		if m, _ := it.(map[string]any); m["id"] == id {
			return m
		}
	}
	require.FailNow(t, "session not listed", "session %s not in %s", id, r.Raw)
	return nil
}

func strs(t require.TestingT, v any) []string {
	list, ok := v.([]any)
	require.True(t, ok, "%v is not a list", v)
	out := make([]string, 0, len(list))
	for _, x := range list {
		str, ok := x.(string)
		require.True(t, ok, "%v is not a string", x)
		out = append(out, str)
	}
	return out
}

// query runs a counting or single-column query, with ? placeholders on
// both engines.
func (s *suite) query(t require.TestingT, q string, args ...any) []string {
	if s.App.DB.Dialect() == store.Postgres {
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", "$"+strconv.Itoa(i), 1)
		}
	}
	rows, err := s.App.DB.DB().QueryContext(context.Background(), q, args...)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v []byte
		require.NoError(t, rows.Scan(&v))
		out = append(out, string(v))
	}
	require.NoError(t, rows.Err())
	return out
}

// liveSessions counts the user's sessions that are not revoked.
func (s *suite) liveSessions(t require.TestingT, userID string) int {
	n, err := strconv.Atoi(s.query(t, "SELECT count(*) FROM sessions WHERE user_id = ? AND revoked_at IS NULL", userID)[0])
	require.NoError(t, err)
	return n
}

// oneSession checks exactly one answer is a TokenResponse and every other
// is 401 mfa_invalid_code.
func oneSession(t *testing.T, answers []*apptest.Response) {
	t.Helper()
	wins := 0
	for i, r := range answers {
		if r.Status == http.StatusOK {
			require.NotEmpty(t, r.Str("access_token"), "racer %d: %s", i, r.Raw)
			wins++
			continue
		}
		apptest.Expect(t, r, http.StatusUnauthorized, "mfa_invalid_code", "racer ", i)
	}
	require.Equal(t, 1, wins, "sessions started")
}

// smsJobs counts the texts ever queued. A text is queued in the
// transaction of the request that causes it, so once the request answered
// the count is final.
func (s *suite) smsJobs(t require.TestingT) int {
	n, err := strconv.Atoi(s.query(t, "SELECT count(*) FROM river_job WHERE kind = ?", sms.JobKind)[0])
	require.NoError(t, err)
	return n
}
