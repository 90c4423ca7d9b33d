package session_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// benchEnv starts a server for benchmarks, one per engine for the whole
// benchmark (sub-benchmarks run several times to size b.N).
func benchEnv(b *testing.B, eng string) (*apptest.Env, apptest.Tokens) {
	e := apptest.New(b, eng, map[string]string{"GATEHOUSE_RATE_LIMIT_ENABLED": "false"})
	quietJobs(b, e)
	_, tks := signUp(e, "pbn", 1)
	return e, tks[0]
}

// The auth middleware's hot path: a valid token whose session the cache
// already vouches for (RS256 verification plus two cache reads).
func BenchmarkAuthenticateCacheHit(b *testing.B) {
	for _, eng := range apptest.Engines(b) {
		e, tk := benchEnv(b, eng)
		ctx := context.Background()
		if _, err := e.App.Sessions.Authenticate(ctx, tk.Access); err != nil {
			b.Fatal(err)
		}
		b.Run(eng, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.App.Sessions.Authenticate(ctx, tk.Access); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// GET /auth/me through the whole handler stack, from parallel clients.
func BenchmarkAuthenticateHTTP(b *testing.B) {
	for _, eng := range apptest.Engines(b) {
		e, tk := benchEnv(b, eng)
		client := newRawClient(e).c
		b.Run(eng, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, err := http.NewRequest("GET", e.URL+"/auth/me", nil)
					if err != nil {
						b.Error(err)
						return
					}
					req.Header.Set("Authorization", "Bearer "+tk.Access)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// POST /auth/refresh end to end, each exchange spending the previous
// one's refresh token.
func BenchmarkRefresh(b *testing.B) {
	for _, eng := range apptest.Engines(b) {
		e, tk := benchEnv(b, eng)
		rc := newRawClient(e)
		current := tk.Refresh
		b.Run(eng, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				status, body, err := rc.do("POST", "/auth/refresh", map[string]any{"refresh_token": current}, "")
				if err != nil || status != http.StatusOK {
					b.Fatalf("refresh: %d %v %v", status, body, err)
				}
				current, _ = body["refresh_token"].(string)
			}
		})
	}
}
