package telemetry_test

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

func scrape(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	b, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(b)
}

func TestMetricsHTTP(t *testing.T) {
	m := telemetry.NewMetrics()

	m.RequestStarted()
	m.RequestStarted()
	m.RequestStarted()
	require.InDelta(t, 3, gaugeValue(t, m, "http_requests_in_flight"), 0)

	m.RequestFinished(http.MethodGet, "GET /api/v1/admin/users/{id}", 200, 20*time.Millisecond)
	m.RequestFinished("BREW", "", 404, time.Millisecond)
	m.RequestFinished(http.MethodGet, "GET /api/v1/admin/users/{id}", 200, 2*time.Second)
	require.InDelta(t, 0, gaugeValue(t, m, "http_requests_in_flight"), 0)

	body := scrape(t, m)
	require.Contains(t, body, `http_requests_total{method="GET",route="GET /api/v1/admin/users/{id}",status="200"} 2`)
	require.Contains(t, body, `http_requests_total{method="OTHER",route="unmatched",status="404"} 1`)
	require.Contains(t, body, `http_server_request_duration_seconds_count{method="GET",route="GET /api/v1/admin/users/{id}",status="200"} 2`)
	require.Contains(t, body, `http_server_request_duration_seconds_bucket{method="GET",route="GET /api/v1/admin/users/{id}",status="200",le="0.025"} 1`)
	require.Contains(t, body, "go_goroutines")
	require.Contains(t, body, "process_") // the process collector (start time at least, on any OS)
}

func gaugeValue(t *testing.T, m *telemetry.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestMetricsRegistryAcceptsOwnCollectors(t *testing.T) {
	m := telemetry.NewMetrics()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_test_total", Help: "test"})
	require.NoError(t, m.Registry().Register(c))
	c.Add(3)
	require.InDelta(t, 3, testutil.ToFloat64(c), 0)
	require.Contains(t, scrape(t, m), "gatehouse_test_total 3")
}

func TestRegisterDBStats(t *testing.T) {
	sql.Register("telemetry-fake", fakeDriver{})
	db, err := sql.Open("telemetry-fake", "")
	require.NoError(t, err)
	defer db.Close()

	m := telemetry.NewMetrics()
	require.NoError(t, m.RegisterDBStats(db, "main"))
	body := scrape(t, m)
	require.True(t, strings.Contains(body, `go_sql_max_open_connections{db_name="main"}`), body)

	err = m.RegisterDBStats(db, "main")
	require.Error(t, err)
	var are prometheus.AlreadyRegisteredError
	require.True(t, errors.As(err, &are))
}

type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) { return nil, errors.New("no connections") }

// BenchmarkRequestFinished is what every answered request costs the HTTP
// metrics.
func BenchmarkRequestFinished(b *testing.B) {
	m := telemetry.NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.RequestStarted()
		m.RequestFinished(http.MethodPost, "POST /api/v1/authz/check", 200, 3*time.Millisecond)
	}
}
