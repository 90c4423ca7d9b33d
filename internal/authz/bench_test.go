package authz_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/authz"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// quantile returns the q-quantile (0..1) of sorted values, nearest rank.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// BenchmarkCanCached measures Checker.Can on a warm cache: a map lookup
// under a read lock and a set probe. p50-ns and p99-ns are per-call
// averages over batches of 100 calls (a single call is too short for the
// clock), taken over 10,000 batches after the timed loop.
func BenchmarkCanCached(b *testing.B) {
	ctx := context.Background()
	db := sqltest.SQLite(b)
	uid := storeUserTB(b, db, "moderator")
	mem := cache.NewMemory()
	b.Cleanup(func() { _ = mem.Close() })
	c := authz.NewChecker(db, mem, authz.CheckerOptions{})
	require.NoError(b, c.Start(ctx))
	b.Cleanup(func() { _ = c.Close() })
	ok, err := c.Can(ctx, uid, "users:lock") // warm
	require.NoError(b, err)
	require.True(b, ok)

	b.ReportAllocs()
	allowed := 0
	for b.Loop() {
		if ok, _ := c.Can(ctx, uid, "users:lock"); ok {
			allowed++
		}
	}
	require.Equal(b, b.N, allowed)

	const batches, perBatch = 10_000, 100
	avgs := make([]float64, batches)
	for i := range avgs {
		start := time.Now()
		for range perBatch {
			if ok, _ := c.Can(ctx, uid, "users:lock"); !ok {
				b.Fatal("denied")
			}
		}
		avgs[i] = float64(time.Since(start).Nanoseconds()) / perBatch
	}
	slices.Sort(avgs)
	b.ReportMetric(quantile(avgs, 0.50), "p50-ns")
	b.ReportMetric(quantile(avgs, 0.99), "p99-ns")
}

// BenchmarkAuthzCheckHTTP measures POST /api/v1/authz/check through the
// whole handler (request id, security headers, bearer authentication,
// Huma validation, the checker), in parallel, on SQLite. p50-ns and p99-ns
// are of individual requests.
func BenchmarkAuthzCheckHTTP(b *testing.B) {
	f := newFixture(b, "sqlite", nil)
	_, token := f.NewUser(b, "moderator")
	handler := f.App.HTTP.Handler()
	body := []byte(`{"permission":"users:lock"}`)
	do := func() int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/authz/check", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK && !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
			return 0
		}
		return rec.Code
	}
	require.Equal(b, http.StatusOK, do(), "warm-up") // also marks the session alive

	var (
		mu   sync.Mutex
		lats []float64
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]float64, 0, 4096)
		for pb.Next() {
			start := time.Now()
			code := do()
			local = append(local, float64(time.Since(start).Nanoseconds()))
			if code != http.StatusOK {
				b.Errorf("status %d", code)
				return
			}
		}
		mu.Lock()
		lats = append(lats, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lats)
	b.ReportMetric(quantile(lats, 0.50), "p50-ns")
	b.ReportMetric(quantile(lats, 0.99), "p99-ns")
}
