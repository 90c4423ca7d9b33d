// Package sms sends Gatehouse's text messages: MFA login and setup codes.
//
// Capability packages never call a provider themselves. Inside the
// transaction that creates a challenge they call Service.EnqueueTx, which
// seals the message body (it holds a code) with the master key and inserts
// an "sms.send" River job on the sms queue; the worker opens the body and
// hands it to a Sender behind a circuit breaker. So a code goes out exactly
// when its challenge committed, a failing provider is retried a few times
// within seconds, and when sending finally fails (or the code has expired)
// the caller's OnFailure callback learns of it.
//
// Senders:
//   - Twilio calls the Twilio Messaging REST API.
//   - NewLogSender writes the message to a logger instead; it is for
//     development only (see its documentation).
//   - Breaker wraps either in a circuit breaker, so a dead provider fails
//     fast with ErrUnavailable and Available reports it at once.
//
// The package takes plain values; it reads no configuration itself.
package sms

import (
	"context"
	"errors"
)

// Sender delivers text messages.
type Sender interface {
	// Send delivers body to the E.164 number to, or returns why not.
	// Errors wrapping ErrPermanent mean retrying the same message cannot
	// succeed (the number is invalid or refused); errors wrapping
	// ErrUnavailable mean a circuit breaker refused to try; every other
	// error is worth retrying. No error contains the body.
	Send(ctx context.Context, to, body string) error
}

// ErrUnavailable is returned by a Breaker while its circuit is open (or
// half-open and already probing): the provider was not even tried.
var ErrUnavailable = errors.New("sms: sender unavailable")

// ErrPermanent marks a failure that retrying cannot fix, such as an invalid
// or unsubscribed recipient number.
var ErrPermanent = errors.New("sms: permanent failure")
