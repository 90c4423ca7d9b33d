package account_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail/mailtest"
	"github.com/gatehouse-auth/gatehouse/internal/password"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Link prefixes of the emails, as configured by apptest's public URL.
const (
	verifyLink = "http://gatehouse.test/verify-email"
	resetLink  = "http://gatehouse.test/reset-password"
)

// mailTimeout bounds the wait for one email: the job workers poll every
// 20 ms, so anything near this means the email is not coming.
const mailTimeout = 10 * time.Second

// forEachEngine runs fn once per database engine, each with one fresh
// server configured with extra (apptest turns rate limits off: the
// properties register and sign in hundreds of accounts from one IP).
//
// Tests and engines run in parallel, as many at once as -parallel
// (GOMAXPROCS by default) allows. Under -race one SQLite server cannot use
// more than one core: its single connection serialises every request and
// job, and each statement is parsed by translated-C SQLite under checkptr.
func forEachEngine(t *testing.T, extra map[string]string, fn func(t *testing.T, env *apptest.Env)) {
	t.Helper()
	t.Parallel()
	apptest.ForEachEngine(t, extra, fn)
}

// seq makes every generated email address unique within the test binary,
// so rapid cases sharing one server never collide.
var seq atomic.Int64

// uniqueEmail is a fresh, never registered, lower-case address. The
// counter is written in groups of two digits ("1-37"), because the policy
// refuses passwords containing any 3-character piece of the email, leet
// spellings included: "137" reads "let", which is in "violet", so a bare
// counter would make apptest.StrongPassword weak for some addresses.
func uniqueEmail(prefix string) string {
	n := strconv.FormatInt(seq.Add(1), 10)
	var groups []string
	for len(n) > 2 {
		groups = append([]string{n[len(n)-2:]}, groups...)
		n = n[:len(n)-2]
	}
	groups = append([]string{n}, groups...)
	return prefix + "." + strings.Join(groups, "-") + "@example.com"
}

// drawEmail draws a fresh valid lower-case address: a drawn local part and
// domain, made unique by a counter.
func drawEmail(t *rapid.T, label string) string {
	local := rapid.StringMatching(`[a-z0-9]([a-z0-9_+-]{0,14}[a-z0-9])?`).Draw(t, label+"_local")
	domain := rapid.SampledFrom([]string{"example.com", "example.org", "mail.example.net", "x.test"}).Draw(t, label+"_domain")
	return fmt.Sprintf("%s.%d@%s", local, seq.Add(1), domain)
}

// drawCase draws a spelling of s that differs at most in letter case.
func drawCase(t *rapid.T, label, s string) string {
	flip := rapid.SliceOfN(rapid.Bool(), len(s), len(s)).Draw(t, label)
	b := []byte(s)
	for i, f := range flip {
		if f && b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// drawName draws a display name: empty, or letters with spaces, hyphens
// and apostrophes in any script, possibly padded with spaces.
func drawName(t *rapid.T) string {
	return rapid.OneOf(
		rapid.Just(""),
		rapid.StringMatching(`[A-Z][a-z]{1,10}( [A-Z][a-z]{1,12})?`),
		rapid.StringOfN(rapid.RuneFrom([]rune{' ', '-', '\''}, unicode.Letter), 1, 40, -1),
	).Draw(t, "name")
}

// pwAlphabet is what the random part of generated passwords is made of.
const pwAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#$%&*+-=?@^_~ "

var policy = password.DefaultPolicy()

// drawPassword draws a password the default policy accepts for an account
// with the given email and name: a drawn prefix (any script, symbols,
// spaces) followed by 16 characters from a drawn seed; when the policy
// still refuses it (it contains a personal word by chance) the next seed
// is tried, deterministically.
func drawPassword(t *rapid.T, label string, personal ...string) string {
	prefix := rapid.StringOfN(rapid.RuneFrom([]rune{' '}, unicode.L, unicode.N, unicode.P, unicode.S), 0, 12, -1).Draw(t, label+"_prefix")
	seed := rapid.Uint64().Draw(t, label+"_seed")
	for i := uint64(0); ; i++ {
		r := rand.New(rand.NewPCG(seed, i))
		var b strings.Builder
		b.WriteString(prefix)
		for range 16 {
			b.WriteByte(pwAlphabet[r.IntN(len(pwAlphabet))])
		}
		if pw := b.String(); len(policy.Check(pw, personal...)) == 0 {
			return pw
		}
	}
}

// drawOther draws a strong password different from pw.
func drawOther(t *rapid.T, label, pw string, personal ...string) string {
	other := drawPassword(t, label, personal...)
	if other == pw {
		other += "!"
	}
	return other
}

// drawWeakPassword draws a password the default policy refuses.
func drawWeakPassword(t *rapid.T, email string) string {
	local, _, _ := strings.Cut(email, "@")
	return rapid.OneOf(
		rapid.StringMatching(`[a-z0-9]{0,11}`),                                       // too short
		rapid.SampledFrom([]string{"password1234", "qwertyuiop123", "123456789012"}), // common
		rapid.Just(local+"-Zq8#vW3!pL0x"),                                            // contains the email
		rapid.StringOfN(rapid.RuneFrom(nil, unicode.L), 129, 140, -1),                // too long
	).Draw(t, "weak_password")
}

// request is a JSON call with the headers the caller chooses. It reports
// transport errors instead of failing a test, so goroutines may use it.
func request(env *apptest.Env, method, path string, body any, headers map[string]string) (*apptest.Response, error) {
	return env.Send(method, path, body, "", headers)
}

// call is request that fails t on a transport error.
func call(t require.TestingT, env *apptest.Env, method, path string, body any, bearer string) *apptest.Response {
	h := map[string]string{"User-Agent": "account-test/1.0"}
	if bearer != "" {
		h["Authorization"] = "Bearer " + bearer
	}
	r, err := request(env, method, path, body, h)
	require.NoError(t, err, "%s %s", method, path)
	return r
}

// obj returns a nested JSON object of r.
func obj(t require.TestingT, m map[string]any, key string) map[string]any {
	v, ok := m[key].(map[string]any)
	require.True(t, ok, "%q is not an object in %v", key, m)
	return v
}

// register creates an account and returns its user object.
func register(t require.TestingT, env *apptest.Env, email, pw, name string) map[string]any {
	body := map[string]any{"email": email, "password": pw}
	if name != "" {
		body["name"] = name
	}
	r := call(t, env, "POST", "/auth/register", body, "")
	apptest.Expect(t, r, http.StatusCreated, "")
	return obj(t, r.JSON, "user")
}

// newAccount makes a verified account directly through the service, for
// properties about what comes after registration: it skips the HTTP call
// and the verification email, which under -race on SQLite cost more than
// the property itself.
func newAccount(t require.TestingT, env *apptest.Env, email, pw string) string {
	u, err := env.App.Accounts.CreateUser(context.Background(), email, pw, nil, true)
	require.NoError(t, err)
	return u.ID
}

// liveSessions counts the user's sessions that are not revoked.
func liveSessions(t require.TestingT, env *apptest.Env, userID string) int {
	require.Regexp(t, `^[0-9a-f-]+$`, userID)
	var n int
	err := env.App.DB.DB().QueryRowContext(context.Background(),
		"SELECT count(*) FROM sessions WHERE user_id = '"+userID+"' AND revoked_at IS NULL").Scan(&n)
	require.NoError(t, err)
	return n
}

// login signs in and returns the TokenResponse.
func login(t require.TestingT, env *apptest.Env, email, pw string) *apptest.Response {
	r := call(t, env, "POST", "/auth/login", map[string]any{"email": email, "password": pw}, "")
	apptest.Expect(t, r, http.StatusOK, "")
	return r
}

// loginStatus tries to sign in and returns the answer whatever it is.
func loginStatus(t require.TestingT, env *apptest.Env, email, pw string) *apptest.Response {
	return call(t, env, "POST", "/auth/login", map[string]any{"email": email, "password": pw}, "")
}

// mailsTo returns the messages received so far for addr, oldest first.
func mailsTo(env *apptest.Env, addr string) []mailtest.Received {
	addr = strings.ToLower(addr)
	var out []mailtest.Received
	for _, m := range env.Mail.Messages() {
		for _, r := range m.Recipients {
			if strings.ToLower(strings.Trim(r, "<> ")) == addr {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// waitMails waits until at least n messages for addr arrived and returns
// them all, oldest first.
func waitMails(t require.TestingT, env *apptest.Env, addr string, n int) []mailtest.Received {
	deadline := time.Now().Add(mailTimeout)
	for {
		got := mailsTo(env, addr)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "email did not arrive", "want %d messages to %s within %s, got %d", n, addr, mailTimeout, len(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitMail waits for the n-th (1-based) message to addr.
func waitMail(t require.TestingT, env *apptest.Env, addr string, n int) mailtest.Received {
	return waitMails(t, env, addr, n)[n-1]
}

// waitSubject waits for a message to addr whose subject contains sub.
func waitSubject(t require.TestingT, env *apptest.Env, addr, sub string) mailtest.Received {
	deadline := time.Now().Add(mailTimeout)
	for {
		for _, m := range mailsTo(env, addr) {
			if strings.Contains(strings.ToLower(m.Subject), strings.ToLower(sub)) {
				return m
			}
		}
		if time.Now().After(deadline) {
			var subjects []string
			for _, m := range mailsTo(env, addr) {
				subjects = append(subjects, m.Subject)
			}
			require.FailNow(t, "email did not arrive", "no message to %s with %q in the subject within %s; got %q", addr, sub, mailTimeout, subjects)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tokenIn extracts the token of the link starting with prefix.
func tokenIn(t require.TestingT, m mailtest.Received, prefix string) string {
	raw := apptest.TokenFromLink(m.Text, prefix)
	require.NotEmpty(t, raw, "no %s link in %q", prefix, m.Text)
	tok, err := url.QueryUnescape(raw)
	require.NoError(t, err)
	return tok
}

// emailJobs returns the email jobs ever enqueued for addr, oldest first.
// Jobs are inserted in the transaction of the request that causes them, so
// once that request answered the list is final: none proves no email will
// ever be sent.
func emailJobs(t require.TestingT, env *apptest.Env, addr string) []mail.SendArgs {
	addr = strings.ToLower(addr)
	require.Regexp(t, safeEmail, addr)
	// River's SQLite driver stores args as binary JSONB; json() makes text.
	args, to := "args::text", "lower(args->>'to')"
	if env.App.DB.Dialect() == store.SQLite {
		args, to = "json(args)", "lower(json_extract(args, '$.to'))"
	}
	rows, err := env.App.DB.DB().QueryContext(context.Background(),
		"SELECT "+args+" FROM river_job WHERE kind = '"+mail.JobKind+"' AND "+to+" = '"+addr+"' ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	var out []mail.SendArgs
	for rows.Next() {
		var raw []byte
		require.NoError(t, rows.Scan(&raw))
		var a mail.SendArgs
		require.NoError(t, json.Unmarshal(raw, &a))
		out = append(out, a)
	}
	require.NoError(t, rows.Err())
	return out
}

// safeEmail guards the addresses tests splice into SQL.
var safeEmail = regexp.MustCompile(`^[a-z0-9._+@-]+$`)

// countUsers counts the accounts whose email is addr in any case.
func countUsers(t require.TestingT, env *apptest.Env, addr string) int {
	require.Regexp(t, safeEmail, addr)
	var n int
	err := env.App.DB.DB().QueryRowContext(context.Background(),
		"SELECT count(*) FROM users WHERE lower(email) = '"+addr+"'").Scan(&n)
	require.NoError(t, err)
	return n
}

// queuedTokens returns the tokens of the links starting with prefix in the
// emails queued for addr, oldest first. The queue is the outbox: an email
// job commits with the change that causes it, before the answer.
func queuedTokens(t require.TestingT, env *apptest.Env, addr, prefix string) []string {
	var out []string
	for _, j := range emailJobs(t, env, addr) {
		link, _ := j.Data["Link"].(string)
		if !strings.HasPrefix(link, prefix) {
			continue
		}
		u, err := url.Parse(link)
		require.NoError(t, err)
		tok := u.Query().Get("token")
		require.NotEmpty(t, tok, "link %q", link)
		out = append(out, tok)
	}
	return out
}

// waitMailIdle waits until every email job enqueued so far was worked.
func waitMailIdle(t testing.TB, env *apptest.Env) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := env.App.DB.DB().QueryRowContext(context.Background(),
			"SELECT count(*) FROM river_job WHERE kind = '"+mail.JobKind+"' AND state IN ('available', 'running', 'retryable', 'scheduled', 'pending')").Scan(&n)
		return err == nil && n == 0
	}, mailTimeout, 10*time.Millisecond)
}

// requireNoSecret fails unless no message to addr carries secret.
func requireNoSecret(t require.TestingT, msgs []mailtest.Received, secret string) {
	for _, m := range msgs {
		require.NotContains(t, string(m.Raw), secret, "an email (%q) contains the password", m.Subject)
		require.NotContains(t, m.Text, secret, "an email (%q) contains the password", m.Subject)
		require.NotContains(t, m.HTML, secret, "an email (%q) contains the password", m.Subject)
	}
}

// sessionsOf lists the sessions visible with an access token.
func sessionsOf(t require.TestingT, env *apptest.Env, access string) []map[string]any {
	r := call(t, env, "GET", "/sessions", nil, access)
	apptest.Expect(t, r, http.StatusOK, "")
	items, ok := r.JSON["items"].([]any)
	require.True(t, ok, "items: %s", r.Raw)
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		out = append(out, it.(map[string]any))
	}
	return out
}
