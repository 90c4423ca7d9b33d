package sms_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms/smstest"
)

// The breaker around the real Twilio sender: a provider answering 5xx
// opens it; after the open timeout one probe goes through and closes it.
func TestBreakerOpensAndRecovers(t *testing.T) {
	ctx := context.Background()
	srv := smstest.Start(t)
	b := sms.NewBreaker(twilio(t, srv, srv.Token), "twilio", 3, 20*time.Millisecond)
	srv.FailNext(3, http.StatusServiceUnavailable)
	for range 3 {
		require.True(t, b.Available())
		var te *sms.TwilioError
		require.ErrorAs(t, b.Send(ctx, alice, body), &te)
	}
	require.False(t, b.Available())
	err := b.Send(ctx, alice, body)
	require.ErrorIs(t, err, sms.ErrUnavailable)
	require.Contains(t, err.Error(), `"twilio"`)

	require.Eventually(t, b.Available, 2*time.Second, 5*time.Millisecond)
	require.NoError(t, b.Send(ctx, alice, body))
	require.True(t, b.Available())
	require.Len(t, srv.Messages(), 1, "the open circuit did not call Twilio")
}

// A refused number proves Twilio is up, and failures while the caller's
// context is done (shutdown) do not count: neither opens the circuit.
func TestBreakerIgnoresPermanentAndCallerCancellation(t *testing.T) {
	srv := smstest.Start(t)
	b := sms.NewBreaker(twilio(t, srv, srv.Token), "twilio", 2, 0)
	for range 3 {
		require.ErrorIs(t, b.Send(context.Background(), smstest.InvalidNumber, body), sms.ErrPermanent)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		err := b.Send(ctx, alice, body)
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, sms.ErrUnavailable)
	}
	require.True(t, b.Available())
	require.NoError(t, b.Send(context.Background(), alice, body))
}
