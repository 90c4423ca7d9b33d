package app_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// BenchmarkBearerRequests sends warm requests through the whole HTTP
// handler (every middleware, Huma, the services) one after the other, on
// SQLite with the in-process cache and rate limits off, as a load test
// does: GET /health/live (the floor every request pays), GET /auth/me and
// POST /authz/check with a bearer token. Allocations per request are the
// number to watch; ns/op is CPU on an otherwise idle core.
func BenchmarkBearerRequests(b *testing.B) {
	env := apptest.New(b, "sqlite", map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "false"})
	env.Register("bench@example.com", apptest.StrongPassword)
	access := env.Login("bench@example.com", apptest.StrongPassword).Access
	h := env.App.HTTP.Handler()
	for _, tc := range []struct {
		name, method, path, body string
		bearer                   bool
	}{
		{"health", http.MethodGet, "/api/v1/health/live", "", false},
		{"me", http.MethodGet, "/api/v1/auth/me", "", true},
		{"authz-check", http.MethodPost, "/api/v1/authz/check", `{"permission":"profile:read"}`, true},
	} {
		do := func() int {
			req := httptest.NewRequest(tc.method, tc.path, bytes.NewReader([]byte(tc.body)))
			req.RemoteAddr = "127.0.0.1:40000"
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.bearer {
				req.Header.Set("Authorization", "Bearer "+access)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		if code := do(); code != http.StatusOK { // warm: the session and permissions are cached
			b.Fatalf("%s: status %d", tc.name, code)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if code := do(); code != http.StatusOK {
					b.Fatalf("status %d", code)
				}
			}
		})
	}
}
