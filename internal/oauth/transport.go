package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// Breaker defaults: a provider's circuit opens after this many consecutive
// failed calls, for this long.
const (
	breakerThreshold   = 5
	breakerOpenTimeout = 30 * time.Second
)

// errCircuitOpen means the provider failed repeatedly and is not called
// until the breaker lets a probe through.
var errCircuitOpen = errors.New("oauth: provider circuit open")

// serverFailure marks a 5xx answer, which the breaker counts as a failure
// while the caller still sees the response.
type serverFailure struct{ status int }

func (e serverFailure) Error() string { return fmt.Sprintf("provider answered %d", e.status) }

// callerDone marks a failure while the caller's context was done (the
// client went away): not the provider's fault, not counted.
type callerDone struct{ error }

func (c callerDone) Unwrap() error { return c.error }

// breakerTransport sends every call to one provider through its circuit
// breaker: transport errors and 5xx answers count as failures; an open
// circuit fails at once without touching the network.
type breakerTransport struct {
	next http.RoundTripper
	cb   *gobreaker.CircuitBreaker[*http.Response]
}

func newBreakerTransport(name string, next http.RoundTripper) *breakerTransport {
	if next == nil {
		next = http.DefaultTransport
	}
	return &breakerTransport{next: next, cb: gobreaker.NewCircuitBreaker[*http.Response](telemetry.TrackBreaker(gobreaker.Settings{
		Name:        "oauth:" + name,
		MaxRequests: 1,
		Timeout:     breakerOpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerThreshold },
		IsExcluded: func(err error) bool {
			var cd callerDone
			return errors.As(err, &cd)
		},
	}))}
}

// RoundTrip implements http.RoundTripper.
func (t *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.cb.Execute(func() (*http.Response, error) {
		resp, err := t.next.RoundTrip(req)
		switch {
		case err != nil && req.Context().Err() != nil && !errors.Is(req.Context().Err(), context.DeadlineExceeded):
			return nil, callerDone{err}
		case err != nil:
			return nil, err
		case resp.StatusCode >= 500:
			return resp, serverFailure{resp.StatusCode}
		}
		return resp, nil
	})
	var sf serverFailure
	var cd callerDone
	switch {
	case errors.As(err, &sf):
		return resp, nil
	case telemetry.BreakerRefused(err):
		return nil, fmt.Errorf("%w (%s)", errCircuitOpen, t.cb.Name())
	case errors.As(err, &cd):
		return nil, cd.error
	}
	return resp, err
}
