package sms

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// Breaker is a Sender behind a circuit breaker, as mail.Breaker is for
// email. After the threshold of consecutive failures it opens: Send then
// fails at once with ErrUnavailable, without touching the wrapped sender,
// and Available reports false, until the open timeout passes; then one
// probe goes through, and its success closes the circuit again.
//
// A nil error or one wrapping ErrPermanent is a success (the provider
// answered); a failure while the caller's context is done is not counted,
// so shutting down does not open the circuit; everything else is a failure.
type Breaker struct {
	next Sender
	cb   *gobreaker.CircuitBreaker[struct{}]
}

var _ Sender = (*Breaker)(nil)

// NewBreaker wraps s; name identifies it in errors and in the
// gatehouse_circuit_breaker_state{name} metric. The circuit opens
// after threshold consecutive failures (default 5) for openTimeout
// (default 30 s).
func NewBreaker(s Sender, name string, threshold uint32, openTimeout time.Duration) *Breaker {
	threshold = cmp.Or(threshold, 5)
	openTimeout = cmp.Or(max(openTimeout, 0), 30*time.Second)
	return &Breaker{next: s, cb: gobreaker.NewCircuitBreaker[struct{}](telemetry.TrackBreaker(gobreaker.Settings{
		Name:         name,
		MaxRequests:  1,
		Timeout:      openTimeout,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
		IsSuccessful: func(err error) bool { return err == nil || errors.Is(err, ErrPermanent) },
		IsExcluded:   func(err error) bool { return errors.Is(err, errCallerDone) },
	}))}
}

var errCallerDone = errors.New("caller done")

// Send passes the message to the wrapped sender unless the circuit is open,
// in which case it returns an error wrapping ErrUnavailable at once.
func (b *Breaker) Send(ctx context.Context, to, body string) error {
	var sendErr error
	_, err := b.cb.Execute(func() (struct{}, error) {
		sendErr = b.next.Send(ctx, to, body)
		if sendErr != nil && ctx.Err() != nil {
			return struct{}{}, errCallerDone
		}
		return struct{}{}, sendErr
	})
	if telemetry.BreakerRefused(err) {
		return fmt.Errorf("%w: circuit %q is open", ErrUnavailable, b.cb.Name())
	}
	return sendErr
}

// Available is false while the circuit is open: callers should answer
// "unavailable" at once rather than queue a message that would fail.
func (b *Breaker) Available() bool { return b.cb.State() != gobreaker.StateOpen }
