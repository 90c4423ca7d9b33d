package telemetry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// A tracked breaker shows closed from the start, open once it trips and
// half-open when it lets a probe through, in every registry; its own
// state hook still runs.
func TestTrackBreaker(t *testing.T) {
	a, b := telemetry.NewMetrics(), telemetry.NewMetrics()
	var changes []gobreaker.State
	cb := gobreaker.NewCircuitBreaker[struct{}](telemetry.TrackBreaker(gobreaker.Settings{
		Name:          "test-tracked",
		Timeout:       time.Nanosecond,
		ReadyToTrip:   func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
		OnStateChange: func(_ string, _, to gobreaker.State) { changes = append(changes, to) },
	}))
	state := func(m *telemetry.Metrics) float64 {
		t.Helper()
		mfs, err := m.Registry().Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			for _, g := range mf.GetMetric() {
				if mf.GetName() == "gatehouse_circuit_breaker_state" && g.GetLabel()[0].GetValue() == "test-tracked" {
					return g.GetGauge().GetValue()
				}
			}
		}
		t.Fatal("no gauge for test-tracked")
		return -1
	}
	require.Zero(t, state(a))

	_, _ = cb.Execute(func() (struct{}, error) { return struct{}{}, errors.New("down") })
	require.Equal(t, float64(gobreaker.StateOpen), state(a))
	require.Equal(t, float64(gobreaker.StateOpen), state(b))
	// The open timeout (1 ns) has passed by the time it is asked.
	require.Equal(t, gobreaker.StateHalfOpen, cb.State())
	require.Equal(t, float64(gobreaker.StateHalfOpen), state(a))
	_, _ = cb.Execute(func() (struct{}, error) { return struct{}{}, nil })
	require.Zero(t, state(b))
	require.Equal(t, []gobreaker.State{gobreaker.StateOpen, gobreaker.StateHalfOpen, gobreaker.StateClosed}, changes)
}
