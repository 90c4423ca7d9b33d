package sms_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms/smstest"
)

const (
	alice = "+15551230001"
	body  = "Your Gatehouse code is 493817"
)

func twilio(t *testing.T, srv *smstest.Server, token string) *sms.Twilio {
	t.Helper()
	tw, err := sms.NewTwilio(srv.URL()+"/", srv.SID, token, smstest.From, 0)
	require.NoError(t, err)
	return tw
}

func TestTwilioSendsFormWithBasicAuth(t *testing.T) {
	srv := smstest.Start(t)
	require.NoError(t, twilio(t, srv, srv.Token).Send(context.Background(), alice, body))
	got := srv.WaitMessage(alice)
	require.Equal(t, smstest.Message{SID: got.SID, To: alice, From: smstest.From, Body: body}, got)
	require.Regexp(t, `^SM[0-9a-f]{32}$`, got.SID)
	require.Equal(t, "493817", smstest.CodeFrom(got.Body))
}

func TestTwilioErrors(t *testing.T) {
	ctx := context.Background()
	srv := smstest.Start(t)
	tw := twilio(t, srv, srv.Token)
	cases := []struct {
		name      string
		status    int
		code      int
		permanent bool
	}{
		{"invalid number", http.StatusBadRequest, 21211, true},
		{"rate limited", http.StatusTooManyRequests, 20429, false},
		{"twilio down", http.StatusInternalServerError, 20500, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.FailNext(1, c.status)
			err := tw.Send(ctx, alice, body)
			var te *sms.TwilioError
			require.ErrorAs(t, err, &te)
			require.Equal(t, c.status, te.Status)
			require.Equal(t, c.code, te.Code)
			require.NotEmpty(t, te.Message)
			require.Equal(t, c.permanent, errors.Is(err, sms.ErrPermanent))
			require.NotContains(t, err.Error(), "493817")
			require.NotContains(t, err.Error(), srv.Token)
		})
	}

	t.Run("wrong token is not permanent and never shown", func(t *testing.T) {
		err := twilio(t, srv, "wrong-token-0123").Send(ctx, alice, body)
		require.EqualError(t, err, "twilio: HTTP 401, code 20003: Authenticate")
		require.NotErrorIs(t, err, sms.ErrPermanent)
	})
	t.Run("magic invalid number", func(t *testing.T) {
		err := tw.Send(ctx, smstest.InvalidNumber, body)
		require.ErrorIs(t, err, sms.ErrPermanent)
		require.Contains(t, err.Error(), "code 21211")
	})
	t.Run("network failure", func(t *testing.T) {
		down := smstest.Start(t)
		down.Close()
		err := twilio(t, down, down.Token).Send(ctx, alice, body)
		require.ErrorContains(t, err, "twilio: send")
		require.NotErrorIs(t, err, sms.ErrPermanent)
		require.NotContains(t, err.Error(), down.Token)
	})
	require.Empty(t, srv.Messages())
}

func TestTwilioErrorWithoutTwilioJSON(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway " + body + "</html>"))
	}))
	defer proxy.Close()
	tw, err := sms.NewTwilio(proxy.URL, "AC1", "tok", smstest.From, 0)
	require.NoError(t, err)
	require.EqualError(t, tw.Send(context.Background(), alice, body), "twilio: HTTP 502")
}

// Whatever Twilio echoes, an error never carries the body (its code) or
// the auth token.
func TestTwilioErrorsRedactSecrets(t *testing.T) {
	const token = "tok-5f2e9c1d"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":21617,"status":400,"message":"bad body ` + r.PostForm.Get("Body") + ` for ` + token + `"}`))
	}))
	defer echo.Close()
	tw, err := sms.NewTwilio(echo.URL, "AC1", token, smstest.From, 0)
	require.NoError(t, err)
	rapid.Check(t, func(t *rapid.T) {
		code := rapid.StringMatching(`[0-9]{6}`).Draw(t, "code")
		err := tw.Send(context.Background(), alice, "Your code is "+code)
		require.ErrorIs(t, err, sms.ErrPermanent)
		require.NotContains(t, err.Error(), code)
		require.NotContains(t, err.Error(), token)
		require.Contains(t, err.Error(), "code 21617: bad body [redacted]")
	})
}

func TestNewTwilioValidates(t *testing.T) {
	for _, u := range []string{"", "api.twilio.com", "ftp://api.twilio.com", "https://"} {
		_, err := sms.NewTwilio(u, "AC1", "tok", smstest.From, 0)
		require.ErrorContains(t, err, "not an http(s) URL", u)
	}
	_, err := sms.NewTwilio("https://api.twilio.com", "AC1", "", smstest.From, 0)
	require.ErrorContains(t, err, "auth token")
}
