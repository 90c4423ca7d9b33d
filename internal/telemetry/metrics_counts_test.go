package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
)

// fakeCounts answers the account counts from fields and counts its reads.
type fakeCounts struct {
	sessions, users, withMFA atomic.Int64
	fail                     atomic.Bool
	sessionReads, mfaReads   atomic.Int32
	asOf                     atomic.Value // the now ActiveSessions was given
}

func (f *fakeCounts) counts(clock *testclock.Clock) telemetry.AccountCounts {
	return telemetry.AccountCounts{
		ActiveSessions: func(ctx context.Context, now time.Time) (int64, error) {
			f.sessionReads.Add(1)
			f.asOf.Store(now)
			if _, ok := ctx.Deadline(); !ok {
				return 0, errors.New("no deadline")
			}
			if f.fail.Load() {
				return 0, errors.New("database down")
			}
			return f.sessions.Load(), nil
		},
		MFAUsers: func(context.Context) (int64, int64, error) {
			f.mfaReads.Add(1)
			if f.fail.Load() {
				return 0, 0, errors.New("database down")
			}
			return f.users.Load(), f.withMFA.Load(), nil
		},
		Now: clock.Now,
	}
}

// TestAccountCountsAreCachedForTheTTL: the gauges show the database's
// counts; scrapes within CountsTTL of a read reuse it, many at once
// included; a failure is an error in the scrape, cached alike.
func TestAccountCountsAreCachedForTheTTL(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	f := &fakeCounts{}
	f.sessions.Store(7)
	f.users.Store(10)
	f.withMFA.Store(4)
	m := telemetry.NewMetrics()
	require.NoError(t, m.RegisterAccountCounts(f.counts(clock)))

	require.InDelta(t, 7, gaugeValue(t, m, "gatehouse_sessions_active"), 0)
	require.InDelta(t, 10, gaugeValue(t, m, "gatehouse_users"), 0)
	require.InDelta(t, 4, gaugeValue(t, m, "gatehouse_users_with_mfa"), 0)
	require.Equal(t, clock.Now(), f.asOf.Load(), "sessions are counted as of the clock")

	// Within the TTL: the cached values, however many scrapes at once.
	f.sessions.Store(8)
	f.withMFA.Store(5)
	clock.Advance(telemetry.CountsTTL - time.Millisecond)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = m.Registry().Gather() })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.InDelta(t, 7, gaugeValue(t, m, "gatehouse_sessions_active"), 0)
	require.Equal(t, [2]int32{1, 1}, [2]int32{f.sessionReads.Load(), f.mfaReads.Load()})

	// Past it: read again.
	clock.Advance(time.Millisecond)
	require.InDelta(t, 8, gaugeValue(t, m, "gatehouse_sessions_active"), 0)
	require.InDelta(t, 5, gaugeValue(t, m, "gatehouse_users_with_mfa"), 0)
	require.Equal(t, [2]int32{2, 2}, [2]int32{f.sessionReads.Load(), f.mfaReads.Load()})

	// A failed read leaves the gauges out of the scrape (not a stale or
	// zero value) and is counted as a gathering error; the scrape still
	// answers 200 with the rest, so the instance does not look down. It
	// is not retried before the TTL is up.
	f.fail.Store(true)
	clock.Advance(telemetry.CountsTTL)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.NotContains(t, rec.Body.String(), "gatehouse_sessions_active")
	require.NotContains(t, rec.Body.String(), "gatehouse_users_with_mfa")
	require.Contains(t, rec.Body.String(), "http_requests_in_flight 0")
	_, err := m.Registry().Gather()
	require.Error(t, err)
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Contains(t, rec.Body.String(), `promhttp_metric_handler_errors_total{cause="gathering"} 1`,
		"the failed scrape before this one is counted")
	require.Equal(t, [2]int32{3, 3}, [2]int32{f.sessionReads.Load(), f.mfaReads.Load()})

	// Recovered, once the TTL is up.
	f.fail.Store(false)
	clock.Advance(telemetry.CountsTTL)
	require.InDelta(t, 8, gaugeValue(t, m, "gatehouse_sessions_active"), 0)
}
