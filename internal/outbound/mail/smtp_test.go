package mail_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail/mailtest"
)

const from = "Gatehouse <no-reply@localhost>"

// A long link with characters quoted-printable must encode ('=') and a
// length that forces soft line breaks.
const longLink = "https://auth.example.com/verify?token=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOpQrStUvWxYz&user=42"

func message(to string) mail.Message {
	return mail.Message{
		To:      to,
		Subject: "Grüße aus Gatehouse",
		Text:    "Hello Jürgen,\n\nOpen this link:\n\n" + longLink + "\n\nBye\n",
		HTML:    `<p>Hello Jürgen,</p><p><a href="` + strings.ReplaceAll(longLink, "&", "&amp;") + `">verify</a></p>`,
	}
}

func send(t *testing.T, s mail.Sender, m mail.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Send(ctx, m)
}

func requireDelivered(t *testing.T, srv *mailtest.Server, to string) mailtest.Received {
	t.Helper()
	got := srv.WaitFor(t, to, 5*time.Second)
	require.NoError(t, got.ParseErr)
	require.Equal(t, "no-reply@localhost", got.From, "envelope sender")
	require.Equal(t, to, got.To)
	hdrFrom, err := netmail.ParseAddress(got.Header["From"][0])
	require.NoError(t, err)
	require.Equal(t, netmail.Address{Name: "Gatehouse", Address: "no-reply@localhost"}, *hdrFrom)
	require.Equal(t, "Grüße aus Gatehouse", got.Subject)
	require.Contains(t, got.Header["Content-Type"][0], "multipart/alternative")
	require.Regexp(t, `^<[A-Z2-7]{26}@localhost>$`, got.Header["Message-Id"][0])
	require.Equal(t, []string{"auto-generated"}, got.Header["Auto-Submitted"])
	require.NotContains(t, got.Header, "User-Agent")
	require.NotContains(t, got.Header, "X-Mailer")
	require.Equal(t, longLink, mailtest.LinkFrom(got.Text, "https://auth.example.com/verify?"))
	require.Contains(t, got.Text, "Hello Jürgen,")
	require.Contains(t, got.HTML, "<p>Hello Jürgen,</p>")
	return got
}

func TestSMTPPlain(t *testing.T) {
	srv := mailtest.Start(t)
	s, err := mail.NewSMTP(srv.URL(), from)
	require.NoError(t, err)
	require.Equal(t, mail.TLSNone, s.Config().TLS)
	require.NoError(t, send(t, s, message("alice@example.com")))
	requireDelivered(t, srv, "alice@example.com")
	require.Len(t, srv.Messages(), 1)
}

func TestSMTPTextOnlyAndHeaderInjection(t *testing.T) {
	srv := mailtest.Start(t)
	s, err := mail.NewSMTP(srv.URL(), from)
	require.NoError(t, err)
	require.NoError(t, send(t, s, mail.Message{
		To:      "alice@example.com",
		Subject: "Hello\r\nBcc: victim@example.com",
		Text:    "just text",
	}))
	got := srv.WaitFor(t, "alice@example.com", 5*time.Second)
	require.Equal(t, "Hello Bcc: victim@example.com", got.Subject)
	require.NotContains(t, got.Header, "Bcc")
	require.Contains(t, got.Header["Content-Type"][0], "text/plain")
	require.Equal(t, "just text", strings.TrimSpace(got.Text))
	require.Empty(t, got.HTML)
	require.Equal(t, []string{"alice@example.com"}, got.Recipients)
}

func TestSMTPAuth(t *testing.T) {
	const pass = "s3cr#t/p@ss?word"
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run(mech, func(t *testing.T) {
			srv := mailtest.Start(t, mailtest.WithAuth("alice", pass), mailtest.WithAuthMechanisms(mech))
			s, err := mail.NewSMTP(srv.URL(), from)
			require.NoError(t, err)
			require.Equal(t, pass, s.Config().Password)
			require.NotContains(t, s.Config().String(), pass)
			require.NoError(t, send(t, s, message("bob@example.com")))
			requireDelivered(t, srv, "bob@example.com")
		})
	}

	t.Run("wrong password is an error without the password", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.WithAuth("alice", pass))
		bad := strings.Replace(srv.URL(), "s3cr", "wr0ng", 1)
		s, err := mail.NewSMTP(bad, from)
		require.NoError(t, err)
		err = send(t, s, message("bob@example.com"))
		require.Error(t, err)
		require.NotErrorIs(t, err, mail.ErrPermanent)
		require.NotContains(t, err.Error(), "wr0ng")
		require.Contains(t, err.Error(), "535")
		require.Empty(t, srv.Messages())
	})
	t.Run("no credentials where the server wants them", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.WithAuth("alice", pass))
		s, err := mail.NewSMTP("smtp://"+srv.Addr()+"?tls=none", from)
		require.NoError(t, err)
		require.Error(t, send(t, s, message("bob@example.com")))
	})
	t.Run("server offers no usable mechanism", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.WithAuth("alice", pass), mailtest.WithAuthMechanisms("CRAM-MD5"))
		s, err := mail.NewSMTP(srv.URL(), from)
		require.NoError(t, err)
		err = send(t, s, message("bob@example.com"))
		require.ErrorContains(t, err, "no PLAIN or LOGIN")
		require.NotContains(t, err.Error(), pass)
	})
}

func TestSMTPStartTLS(t *testing.T) {
	serverCfg, clientCfg := mailtest.SelfSignedTLS(t)

	t.Run("trusted via WithTLSConfig, with AUTH", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.WithSTARTTLS(serverCfg), mailtest.WithAuth("alice", "pw"))
		s, err := mail.NewSMTP(srv.URL(), from, mail.WithTLSConfig(clientCfg), mail.WithHELO("gatehouse.test"))
		require.NoError(t, err)
		require.Equal(t, mail.TLSStartTLS, s.Config().TLS)
		require.NoError(t, send(t, s, message("carol@example.com")))
		requireDelivered(t, srv, "carol@example.com")
		require.Empty(t, clientCfg.ServerName, "the caller's config must not be modified")
	})
	t.Run("untrusted certificate fails", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.WithSTARTTLS(serverCfg))
		s, err := mail.NewSMTP(srv.URL(), from)
		require.NoError(t, err)
		err = send(t, s, message("carol@example.com"))
		require.ErrorContains(t, err, "certificate")
		require.Empty(t, srv.Messages())
	})
	t.Run("InsecureSkipVerify option", func(t *testing.T) {
		srv := mailtest.Start(t, mailtest.WithSTARTTLS(serverCfg))
		s, err := mail.NewSMTP(srv.URL(), from, mail.WithInsecureSkipVerify())
		require.NoError(t, err)
		require.NoError(t, send(t, s, message("carol@example.com")))
		requireDelivered(t, srv, "carol@example.com")
	})
	t.Run("STARTTLS is mandatory", func(t *testing.T) {
		srv := mailtest.Start(t) // offers no STARTTLS
		s, err := mail.NewSMTP(strings.Replace(srv.URL(), "tls=none", "tls=starttls", 1), from)
		require.NoError(t, err)
		err = send(t, s, message("carol@example.com"))
		require.ErrorContains(t, err, "STARTTLS")
		require.Empty(t, srv.Messages())
	})
}

func TestSMTPImplicitTLS(t *testing.T) {
	serverCfg, clientCfg := mailtest.SelfSignedTLS(t)
	srv := mailtest.Start(t, mailtest.WithImplicitTLS(serverCfg), mailtest.WithAuth("alice", "pw"))
	require.Contains(t, srv.URL(), "tls=implicit")
	s, err := mail.NewSMTP(srv.URL(), from, mail.WithTLSConfig(clientCfg))
	require.NoError(t, err)
	require.NoError(t, send(t, s, message("dave@example.com")))
	requireDelivered(t, srv, "dave@example.com")

	// smtps:// means the same.
	s, err = mail.NewSMTP("smtps://alice:pw@"+srv.Addr(), from, mail.WithTLSConfig(clientCfg))
	require.NoError(t, err)
	require.NoError(t, send(t, s, message("dave@example.com")))
	requireDelivered(t, srv, "dave@example.com")
}

func TestSMTPPermanentAndTemporaryFailures(t *testing.T) {
	srv := mailtest.Start(t)
	s, err := mail.NewSMTP(srv.URL(), from)
	require.NoError(t, err)

	t.Run("refused recipient is permanent", func(t *testing.T) {
		err := send(t, s, message("x@"+mailtest.RejectedDomain))
		require.ErrorIs(t, err, mail.ErrPermanent)
		require.Contains(t, err.Error(), "550")
	})
	t.Run("malformed recipient is permanent", func(t *testing.T) {
		require.ErrorIs(t, send(t, s, message("not an address")), mail.ErrPermanent)
		require.ErrorIs(t, send(t, s, message("  ")), mail.ErrPermanent)
	})
	t.Run("4xx is temporary", func(t *testing.T) {
		srv.FailNext(1)
		err := send(t, s, message("erin@example.com"))
		require.Error(t, err)
		require.NotErrorIs(t, err, mail.ErrPermanent)
		require.Contains(t, err.Error(), "451")
		require.NoError(t, send(t, s, message("erin@example.com")))
		requireDelivered(t, srv, "erin@example.com")
	})
	t.Run("connection refused is temporary", func(t *testing.T) {
		down := mailtest.Start(t)
		s, err := mail.NewSMTP(down.URL(), from)
		require.NoError(t, err)
		down.Close()
		err = send(t, s, message("erin@example.com"))
		require.Error(t, err)
		require.NotErrorIs(t, err, mail.ErrPermanent)
	})
}

func TestSMTPTimeout(t *testing.T) {
	// A server that accepts the connection but never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	s, err := mail.NewSMTP("smtp://"+l.Addr().String()+"?tls=none", from, mail.WithTimeout(200*time.Millisecond))
	require.NoError(t, err)
	start := time.Now()
	err = send(t, s, message("frank@example.com"))
	require.Error(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestNewSMTPErrors(t *testing.T) {
	_, err := mail.NewSMTP("smtp://localhost", "not an address")
	require.ErrorContains(t, err, "From address")

	_, err = mail.NewSMTP("smtp://user:hunter2@localhost?tls=bogus", from)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")

	_, err = mail.NewSMTP("smtp://user:hunter2@mail.example.com?tls=none", from)
	require.ErrorContains(t, err, "clear text to mail.example.com")
	require.NotContains(t, err.Error(), "hunter2")
	_, err = mail.NewSMTP("smtp://user:hunter2@localhost?tls=none", from)
	require.NoError(t, err)

	// Options are applied defensively.
	s, err := mail.NewSMTP("smtp://localhost", from, nil, mail.WithTimeout(0), mail.WithTLSConfig(&tls.Config{ServerName: "mail.example.com"}))
	require.NoError(t, err)
	require.Equal(t, 587, s.Config().Port)
}

func TestSMTPCancelledContext(t *testing.T) {
	srv := mailtest.Start(t)
	s, err := mail.NewSMTP(srv.URL(), from)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.Send(ctx, message("gina@example.com"))
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
}
