package apptest_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

func TestSmoke(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, map[string]string{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE": "true"})
			e.Clock.Advance(123456789 * time.Nanosecond) // a time the database cannot keep exactly
			e.Register("a@example.com", apptest.StrongPassword)
			m := e.Mail.WaitFor(t, "a@example.com", 5*time.Second)
			tok := apptest.TokenFromLink(m.Text, "http://gatehouse.test/verify-email")
			r := e.Do("POST", "/auth/verify-email", map[string]any{"token": tok}, "")
			if r.Status != 200 {
				t.Fatal(r.Status, string(r.Raw))
			}
			tk := e.Login("a@example.com", apptest.StrongPassword)
			me := e.Do("GET", "/auth/me", nil, tk.Access)
			require.Equal(t, 200, me.Status, string(me.Raw))
			// An answer built in memory and the row read back agree.
			hook := e.Do("POST", "/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"*"}}, tk.Access)
			require.Equal(t, 201, hook.Status, string(hook.Raw))
			again := e.Do("GET", "/webhooks/"+hook.Str("id"), nil, tk.Access)
			require.Equal(t, 200, again.Status, string(again.Raw))
			require.Equal(t, hook.JSON["created_at"], again.JSON["created_at"])
		})
	}
}

// recordingT notes failures instead of stopping the test.
type recordingT struct{ failures []string }

func (r *recordingT) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recordingT) FailNow() { panic(r) }

// expect runs apptest.Expect and reports whether it failed, with what.
func expect(r *apptest.Response, status int, code string, msgAndArgs ...any) (failed bool, out string) {
	rt := &recordingT{}
	func() {
		defer func() { _ = recover() }()
		apptest.Expect(rt, r, status, code, msgAndArgs...)
	}()
	return len(rt.failures) > 0, strings.Join(rt.failures, "\n")
}

func TestExpect(t *testing.T) {
	r := &apptest.Response{Status: 409, Raw: []byte(`{"code":"email_taken"}`), JSON: map[string]any{"code": "email_taken"}}
	for _, tc := range []struct {
		status int
		code   string
		fails  bool
	}{{409, "email_taken", false}, {409, "", false}, {400, "email_taken", true}, {409, "weak_password", true}} {
		failed, out := expect(r, tc.status, tc.code, "case %d", tc.status)
		require.Equal(t, tc.fails, failed, "%d %q: %s", tc.status, tc.code, out)
		if failed {
			require.Contains(t, out, "case "+strconv.Itoa(tc.status)+": body: {")
		}
	}
}
