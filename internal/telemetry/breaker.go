package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// breakerState is process-wide, unlike the rest of Metrics: breakers are
// made deep inside packages that have no Metrics at hand, and a name is
// one breaker per process ("smtp", "sms", "webhook:<host>"). Every
// registry NewMetrics makes exports it.
var breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "gatehouse_circuit_breaker_state",
	Help: "State of each circuit breaker: 0 closed, 1 half-open, 2 open.",
}, []string{"name"})

// BreakerStateChanged records a breaker's new state in
// gatehouse_circuit_breaker_state{name}. Its signature is gobreaker's
// Settings.OnStateChange, so it can be used as that hook directly; the
// gauge values are gobreaker's State values (0 closed, 1 half-open,
// 2 open).
func BreakerStateChanged(name string, _, to gobreaker.State) {
	breakerState.WithLabelValues(name).Set(float64(to))
}

// TrackBreaker returns st set up to export the state of the breaker made
// from it: the gauge starts at closed, and every state change is recorded
// before st's own OnStateChange (if any) runs. Use it as
//
//	cb := gobreaker.NewCircuitBreaker[T](telemetry.TrackBreaker(gobreaker.Settings{Name: "oauth:google", ...}))
//
// A breaker changes from open to half-open only when it is next asked
// (a request or State), so the gauge may show open a little longer than
// the open timeout.
func TrackBreaker(st gobreaker.Settings) gobreaker.Settings {
	BreakerStateChanged(st.Name, gobreaker.StateClosed, gobreaker.StateClosed)
	next := st.OnStateChange
	st.OnStateChange = func(name string, from, to gobreaker.State) {
		BreakerStateChanged(name, from, to)
		if next != nil {
			next(name, from, to)
		}
	}
	return st
}

// BreakerRefused reports whether err is a circuit breaker refusing the
// call without making it: open, or half-open with its probe already out.
func BreakerRefused(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}
