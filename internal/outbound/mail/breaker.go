package mail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// Breaker defaults: open after this many consecutive failures, for this long.
const (
	DefaultFailureThreshold = 5
	DefaultOpenTimeout      = 30 * time.Second
)

// The states Breaker.State reports.
const (
	StateClosed   = "closed"
	StateHalfOpen = "half-open"
	StateOpen     = "open"
)

// BreakerOption configures a Breaker.
type BreakerOption func(*breakerOptions)

type breakerOptions struct {
	threshold     uint32
	openTimeout   time.Duration
	onStateChange func(name, from, to string)
}

// WithFailureThreshold replaces DefaultFailureThreshold: the number of
// consecutive failures that opens the circuit.
func WithFailureThreshold(n uint32) BreakerOption {
	return func(o *breakerOptions) {
		if n > 0 {
			o.threshold = n
		}
	}
}

// WithOpenTimeout replaces DefaultOpenTimeout: how long the circuit stays
// open before one probe is let through (half-open).
func WithOpenTimeout(d time.Duration) BreakerOption {
	return func(o *breakerOptions) {
		if d > 0 {
			o.openTimeout = d
		}
	}
}

// WithStateChange calls fn (synchronously, so it must be quick) whenever
// the circuit changes state, with the breaker's name and the states as
// StateClosed, StateHalfOpen or StateOpen: a hook for metrics and logs.
func WithStateChange(fn func(name, from, to string)) BreakerOption {
	return func(o *breakerOptions) { o.onStateChange = fn }
}

// Breaker is a Sender behind a circuit breaker. After the threshold of
// consecutive failures it opens: Send then fails at once with
// ErrUnavailable, without touching the wrapped sender, until the open
// timeout passes; then one probe goes through, and its success closes the
// circuit again (its failure reopens it).
//
// What counts: a nil error or one wrapping ErrPermanent is a success (the
// server answered; refusing one recipient says nothing about its health).
// A failure while the caller's context is done is not counted either way,
// so shutting down does not open the circuit. Everything else is a failure.
type Breaker struct {
	next Sender
	cb   *gobreaker.CircuitBreaker[struct{}]
}

var _ Sender = (*Breaker)(nil)

// NewBreaker wraps s; name identifies the breaker in state changes and
// metrics (for example "smtp"); its state is exported as
// gatehouse_circuit_breaker_state{name} (telemetry.TrackBreaker).
func NewBreaker(s Sender, name string, opts ...BreakerOption) *Breaker {
	o := breakerOptions{threshold: DefaultFailureThreshold, openTimeout: DefaultOpenTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     o.openTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= o.threshold },
		IsSuccessful: func(err error) bool {
			return err == nil || errors.Is(err, ErrPermanent)
		},
		IsExcluded: func(err error) bool {
			var ce callerDone
			return errors.As(err, &ce)
		},
	}
	if fn := o.onStateChange; fn != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) {
			fn(name, stateName(from), stateName(to))
		}
	}
	return &Breaker{next: s, cb: gobreaker.NewCircuitBreaker[struct{}](telemetry.TrackBreaker(st))}
}

// Send passes m to the wrapped sender unless the circuit is open, in which
// case it returns an error wrapping ErrUnavailable at once.
func (b *Breaker) Send(ctx context.Context, m Message) error {
	_, err := b.cb.Execute(func() (struct{}, error) {
		err := b.next.Send(ctx, m)
		if err != nil && ctx.Err() != nil {
			err = callerDone{err}
		}
		return struct{}{}, err
	})
	if telemetry.BreakerRefused(err) {
		return fmt.Errorf("%w: circuit %q is %s", ErrUnavailable, b.cb.Name(), b.State())
	}
	var ce callerDone
	if errors.As(err, &ce) {
		return ce.error
	}
	return err
}

// State reports StateClosed, StateHalfOpen or StateOpen, for metrics.
func (b *Breaker) State() string { return stateName(b.cb.State()) }

// Name is the name given to NewBreaker.
func (b *Breaker) Name() string { return b.cb.Name() }

// callerDone marks a failure that happened while the caller's context was
// done; the breaker neither counts it nor shows it to the caller.
type callerDone struct{ error }

func (c callerDone) Unwrap() error { return c.error }

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return StateOpen
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	default:
		return StateClosed
	}
}
