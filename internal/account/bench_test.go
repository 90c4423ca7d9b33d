package account_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/password"
)

// BenchmarkLogin measures end-to-end password logins through the HTTP
// handler on SQLite with the default (OWASP) Argon2id parameters, under
// parallel load. Compare with BenchmarkArgon2Raw: hashing should dominate,
// so login throughput should be at least 0.9x the raw verification rate.
func BenchmarkLogin(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a whole server")
	}
	env := newEnv(b, "sqlite", map[string]string{
		"GATEHOUSE_ARGON2_MEMORY_KIB":  "19456",
		"GATEHOUSE_ARGON2_ITERATIONS":  "2",
		"GATEHOUSE_ARGON2_PARALLELISM": "1",
		"GATEHOUSE_RATE_LIMIT_ENABLED": "false",
	})
	email := uniqueEmail("bench")
	r, err := request(env, "POST", "/auth/register", map[string]any{"email": email, "password": apptest.StrongPassword}, nil)
	if err != nil || r.Status != http.StatusCreated {
		b.Fatalf("register: %v %v", err, r)
	}
	body := map[string]any{"email": email, "password": apptest.StrongPassword}
	headers := map[string]string{"User-Agent": "bench/1.0"}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := request(env, "POST", "/auth/login", body, headers)
			if err != nil {
				b.Error(err)
				return
			}
			if r.Status != http.StatusOK {
				b.Errorf("login: %d %s", r.Status, r.Raw)
				return
			}
		}
	})
}

// BenchmarkArgon2Raw is one Argon2id verification with the default
// parameters under the same parallel load: the ceiling for BenchmarkLogin.
func BenchmarkArgon2Raw(b *testing.B) {
	h := password.NewHasher(password.DefaultParams)
	ctx := context.Background()
	phc, err := h.Hash(ctx, apptest.StrongPassword)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify(ctx, apptest.StrongPassword, phc); err != nil || !ok {
				b.Error(ok, err)
				return
			}
		}
	})
}
