// Package mail sends Gatehouse's email: verification, password reset,
// welcome, security alerts and magic links.
//
// Capability packages never talk to a mail server themselves. Inside the
// transaction that makes a change they call Enqueue, which inserts an
// "email.send" River job; the job's Worker renders the named template and
// hands the Message to a Sender. So an email exists exactly when its change
// committed, and a failed delivery is retried by River with exponential
// backoff.
//
// Senders:
//   - SMTPSender delivers through an SMTP relay (go-mail), with STARTTLS,
//     implicit TLS or plain connections and SMTP AUTH.
//   - LogSender writes the message to a logger instead; it is for
//     development only (see its documentation).
//   - Breaker wraps either in a circuit breaker so an unreachable relay fails
//     fast with ErrUnavailable instead of tying up workers on timeouts.
//
// The package takes plain values (URL, From address, service name); it
// reads no configuration itself.
package mail

import (
	"context"
	"errors"
)

// Message is one rendered email to one recipient.
type Message struct {
	// To is the recipient's address (one recipient per message).
	To string
	// Subject is a single line; senders replace any line break with a space.
	Subject string
	// Text is the plain-text body.
	Text string
	// HTML is the HTML alternative; empty means a text-only message.
	HTML string
}

// Sender delivers messages.
type Sender interface {
	// Send delivers m or returns why not. Errors wrapping ErrPermanent mean
	// retrying the same message cannot succeed (the recipient address is
	// invalid or was refused); errors wrapping ErrUnavailable mean a circuit
	// breaker refused to try; every other error is worth retrying.
	Send(ctx context.Context, m Message) error
}

// ErrUnavailable is returned by a Breaker while its circuit is open (or
// half-open and already probing): the sender was not even tried.
var ErrUnavailable = errors.New("mail: sender unavailable")

// ErrPermanent marks a delivery failure that retrying cannot fix: the
// recipient address is malformed or the server refused it with a 5xx reply.
var ErrPermanent = errors.New("mail: permanent failure")
