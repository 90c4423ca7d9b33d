package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// flaky is a receiver whose next answers the test picks: a status, or
// (status 0) a connection closed without an answer.
type flaky struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int32
}

func newFlaky(t *testing.T) *flaky {
	f := &flaky{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.hits.Add(1)
		if s := int(f.status.Load()); s != 0 {
			w.WriteHeader(s)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// breakerGauge reads gatehouse_circuit_breaker_state{name}.
func breakerGauge(t require.TestingT, m *telemetry.Metrics, name string) float64 {
	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_circuit_breaker_state" {
			continue
		}
		for _, g := range mf.GetMetric() {
			if g.GetLabel()[0].GetValue() == name {
				return g.GetGauge().GetValue()
			}
		}
	}
	t.Errorf("no gatehouse_circuit_breaker_state{name=%q}", name)
	return -1
}

// TestProperty101_CircuitBreakerActivation: whatever the sequence of
// answers, a host's circuit opens exactly when it has failed (no answer,
// or 5xx) threshold times in a row; while it is open nothing is sent to
// that host, and the gauge says open; other hosts are not affected; 4xx
// answers do not count against the host.
func TestProperty101_CircuitBreakerActivation(t *testing.T) {
	sick, healthy := newFlaky(t), newFlaky(t)
	healthy.status.Store(http.StatusNoContent)
	metrics := telemetry.NewMetrics()
	key := []byte("k")
	answers := []int32{0, http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusOK, http.StatusNotFound, http.StatusGone}
	rapid.Check(t, func(rt *rapid.T) {
		threshold := rapid.IntRange(1, 5).Draw(rt, "threshold")
		s := New(nil, nil, nil, nil, nil, Options{AllowPrivate: true, BreakerThreshold: uint32(threshold), BreakerOpen: time.Hour, Timeout: 5 * time.Second})
		name := "webhook:" + hostOf(sick.URL)
		failures, open := 0, false
		for i := range rapid.IntRange(1, 12).Draw(rt, "attempts") {
			answer := rapid.SampledFrom(answers).Draw(rt, "answer")
			sick.status.Store(answer)
			before := sick.hits.Load()
			res, err := s.send(context.Background(), sick.URL+"/hook", "msg", 1, []byte("{}"), key)
			if open {
				require.ErrorIs(rt, err, errHostDown, "attempt %d", i)
				require.Equal(rt, before, sick.hits.Load(), "nothing sent while open")
			} else {
				require.NoError(rt, err)
				require.Equal(rt, before+1, sick.hits.Load())
				require.EqualValues(rt, answer, res.status)
				if answer == 0 || answer >= 500 {
					failures++
				} else {
					failures = 0
				}
				open = failures >= threshold
			}
			require.Equal(rt, 2*boolFloat(open), breakerGauge(rt, metrics, name))

			res, err = s.send(context.Background(), healthy.URL, "msg", 1, []byte("{}"), key)
			require.NoError(rt, err, "another host is not affected")
			require.Equal(rt, http.StatusNoContent, res.status)
		}
	})
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
