package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/httpapi"
)

func ok(context.Context) error { return nil }

func healthBody(t *testing.T, b []byte) httpapi.HealthBody {
	t.Helper()
	var h httpapi.HealthBody
	require.NoError(t, json.Unmarshal(b, &h))
	return h
}

func TestHealthOK(t *testing.T) {
	e := newEnv(t, func(d *httpapi.Deps) {
		d.Checks = []httpapi.HealthCheck{{Name: "database", Check: ok}, {Name: "cache", Check: ok}, {Name: "queue", Check: ok}}
	})
	for _, path := range []string{"/api/v1/health", "/api/v1/health/ready"} {
		rec := e.get(path)
		require.Equal(t, http.StatusOK, rec.Code, path)
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		require.Equal(t, httpapi.HealthBody{
			Status:  "ok",
			Checks:  map[string]string{"database": "ok", "cache": "ok", "queue": "ok"},
			Version: "1.2.3",
		}, healthBody(t, rec.Body.Bytes()))
	}
	rec := e.get("/api/v1/health/live")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())
}

func TestHealthDegraded(t *testing.T) {
	t.Parallel()
	start := make(chan struct{}, 3)
	e := newEnv(t, func(d *httpapi.Deps) {
		d.Checks = []httpapi.HealthCheck{
			{Name: "database", Check: func(context.Context) error {
				start <- struct{}{}
				return errors.New("dial tcp 10.9.8.7:5432: connection refused; password=hunter2")
			}},
			{Name: "cache", Check: func(ctx context.Context) error {
				start <- struct{}{}
				<-ctx.Done() // hangs until the deadline
				return ctx.Err()
			}},
			{Name: "queue", Check: func(context.Context) error {
				start <- struct{}{}
				return gatehouse.Errorf(gatehouse.CodeUnavailable, "queue is paused")
			}},
			{Name: "mail", Check: func(context.Context) error { panic("oops") }},
		}
	})
	began := time.Now()
	rec := e.get("/api/v1/health")
	elapsed := time.Since(began)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.Less(t, elapsed, 3*time.Second, "checks share one ~2 s deadline")
	require.Len(t, start, 3, "checks ran")

	h := healthBody(t, rec.Body.Bytes())
	require.Equal(t, "degraded", h.Status)
	require.Equal(t, map[string]string{
		"database": "unavailable",
		"cache":    "timeout",
		"queue":    "queue is paused",
		"mail":     "unavailable",
	}, h.Checks)
	require.NotContains(t, rec.Body.String(), "10.9.8.7")
	require.NotContains(t, rec.Body.String(), "hunter2")
	require.Contains(t, e.logs.String(), "connection refused", "the cause is logged")

	require.Equal(t, http.StatusServiceUnavailable, e.get("/api/v1/health/ready").Code)
	require.Equal(t, http.StatusOK, e.get("/api/v1/health/live").Code, "liveness ignores dependencies")
}

func TestHealthCheckIgnoringContextDoesNotBlock(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	e := newEnv(t, func(d *httpapi.Deps) {
		d.Checks = []httpapi.HealthCheck{{Name: "database", Check: func(context.Context) error {
			<-release // ignores ctx
			return nil
		}}}
	})
	began := time.Now()
	rec := e.get("/api/v1/health/ready")
	require.Less(t, time.Since(began), 3*time.Second)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "timeout", healthBody(t, rec.Body.Bytes()).Checks["database"])
}

// Only an optional dependency down (Redis, which the instance survives in
// its degraded mode): ready stays 200 and says degraded, naming the check,
// so a load balancer keeps every instance in during a Redis outage.
func TestHealthOptionalCheckDegradesWithout503(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *httpapi.Deps) {
		d.Checks = []httpapi.HealthCheck{
			{Name: "database", Check: func(context.Context) error { return nil }},
			{Name: "cache", Optional: true, Check: func(context.Context) error {
				return errors.New("dial tcp 127.0.0.1:6379: connection refused")
			}},
			{Name: "queue", Check: func(context.Context) error { return nil }},
		}
	})
	for _, path := range []string{"/api/v1/health", "/api/v1/health/ready"} {
		rec := e.get(path)
		require.Equal(t, http.StatusOK, rec.Code, path)
		h := healthBody(t, rec.Body.Bytes())
		require.Equal(t, "degraded", h.Status)
		require.Equal(t, map[string]string{"database": "ok", "cache": "unavailable", "queue": "ok"}, h.Checks)
	}
}
