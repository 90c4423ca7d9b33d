package apptest_test

import (
	"testing"
	"time"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

func TestSmoke(t *testing.T) {
	for _, eng := range apptest.Engines(t) {
		t.Run(eng, func(t *testing.T) {
			e := apptest.New(t, eng, nil)
			e.Register("a@example.com", apptest.StrongPassword)
			m := e.Mail.WaitFor(t, "a@example.com", 5*time.Second)
			tok := apptest.TokenFromLink(m.Text, "http://gatehouse.test/verify-email")
			r := e.Do("POST", "/auth/verify-email", map[string]any{"token": tok}, "")
			if r.Status != 200 {
				t.Fatal(r.Status, string(r.Raw))
			}
			tk := e.Login("a@example.com", apptest.StrongPassword)
			if r := e.Do("GET", "/auth/me", nil, tk.Access); r.Status != 200 {
				t.Fatal(string(r.Raw))
			}
		})
	}
}
