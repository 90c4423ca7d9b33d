package mailtest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
)

const multipartMsg = "From: Gatehouse <no-reply@localhost>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: =?UTF-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=outer\r\n" +
	"\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=inner\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Open https://auth.example.com/verify?token=3Dabcdefghijklmnopqrstuvwxyz0123456789abcdefghijk=\r\n" +
	"lmnop now.\r\n" +
	"Gr=C3=BC=C3=9Fe\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+SGk8L3A+\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"second text part is ignored\r\n" +
	"--outer--\r\n"

func TestParse(t *testing.T) {
	t.Run("nested multipart with quoted-printable and base64", func(t *testing.T) {
		m := parse([]byte(multipartMsg))
		require.NoError(t, m.ParseErr)
		require.Equal(t, "Grüße", m.Subject)
		require.Equal(t, "Gatehouse <no-reply@localhost>", m.Header["From"][0])
		require.Equal(t, "Open https://auth.example.com/verify?token=abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop now.\nGrüße", m.Text)
		require.Equal(t, "<p>Hi</p>", m.HTML)
		require.Equal(t, "https://auth.example.com/verify?token=abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop",
			LinkFrom(m.Text, "https://auth.example.com/verify?"))
	})
	t.Run("single part without content type", func(t *testing.T) {
		m := parse([]byte("Subject: plain\r\n\r\nhello\r\nworld\r\n"))
		require.NoError(t, m.ParseErr)
		require.Equal(t, "plain", m.Subject)
		require.Equal(t, "hello\nworld\n", m.Text)
		require.Empty(t, m.HTML)
	})
	t.Run("single html part, quoted-printable", func(t *testing.T) {
		m := parse([]byte("Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<a href=3D\"x\">x</a>"))
		require.NoError(t, m.ParseErr)
		require.Equal(t, `<a href="x">x</a>`, m.HTML)
	})
	t.Run("undecodable subject is kept raw", func(t *testing.T) {
		m := parse([]byte("Subject: =?x-unknown?q?abc?=\r\n\r\nbody"))
		require.Equal(t, "=?x-unknown?q?abc?=", m.Subject)
	})
	t.Run("not a message", func(t *testing.T) {
		m := parse([]byte("no header here"))
		require.Error(t, m.ParseErr)
		require.Equal(t, []byte("no header here"), m.Raw)
	})
	t.Run("bad content type", func(t *testing.T) {
		m := parse([]byte("Content-Type: text/plain; =\r\n\r\nx"))
		require.ErrorContains(t, m.ParseErr, "content type")
	})
	t.Run("broken multipart", func(t *testing.T) {
		m := parse([]byte("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nunterminated"))
		require.ErrorContains(t, m.ParseErr, "read 7bit body")
	})
	t.Run("broken part", func(t *testing.T) {
		m := parse([]byte("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; =\r\n\r\nx\r\n--b--\r\n"))
		require.ErrorContains(t, m.ParseErr, "content type")
	})
	t.Run("bad base64", func(t *testing.T) {
		m := parse([]byte("Content-Transfer-Encoding: base64\r\n\r\n!!!!"))
		require.ErrorContains(t, m.ParseErr, "read base64 body")
	})
}

func TestLinkFrom(t *testing.T) {
	const p = "https://auth.example.com/reset?"
	cases := []struct{ body, want string }{
		{"Open https://auth.example.com/reset?token=abc now", p + "token=abc"},
		{"Open https://auth.example.com/reset?token=abc.", p + "token=abc"},
		{"(see https://auth.example.com/reset?token=abc)", p + "token=abc"},
		{"line\nhttps://auth.example.com/reset?token=abc\r\nnext", p + "token=abc"},
		{`<a href="https://auth.example.com/reset?token=abc">`, p + "token=abc"},
		{"<https://auth.example.com/reset?token=abc>", p + "token=abc"},
		{"https://auth.example.com/reset?token=abc", p + "token=abc"},
		{"first https://auth.example.com/reset?a=1 then https://auth.example.com/reset?a=2", p + "a=1"},
		{"https://other.example.com/reset?token=abc", ""},
		{"", ""},
	}
	for _, c := range cases {
		require.Equal(t, c.want, LinkFrom(c.body, p), c.body)
	}
	require.Empty(t, LinkFrom("anything", ""))
}

func send(t *testing.T, addr, from string, to []string, body string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	return c.SendMail(from, to, strings.NewReader(body))
}

func TestServerReceivesAndWaitForWalksInOrder(t *testing.T) {
	srv := Start(t)
	require.Equal(t, "smtp://"+srv.Addr()+"?tls=none", srv.URL())

	for i, to := range []string{"alice@example.com", "bob@example.com", "Alice@Example.com"} {
		require.NoError(t, send(t, srv.Addr(), "no-reply@localhost", []string{to},
			fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i)))
	}
	require.Len(t, srv.Messages(), 3)

	first := srv.WaitFor(t, "ALICE@example.com", time.Second)
	require.Equal(t, "m0", first.Subject)
	require.Equal(t, "no-reply@localhost", first.From)
	require.Equal(t, "alice@example.com", first.To)
	require.Equal(t, []string{"alice@example.com"}, first.Recipients)
	require.Equal(t, "body 0\n", first.Text)
	second := srv.WaitFor(t, "<alice@example.com>", time.Second)
	require.Equal(t, "m2", second.Subject)
	require.Equal(t, "m1", srv.WaitFor(t, "bob@example.com", time.Second).Subject)

	// A message that arrives while WaitFor waits wakes it up.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = send(t, srv.Addr(), "no-reply@localhost", []string{"carol@example.com", "dave@example.com"}, "Subject: late\r\n\r\nx")
	}()
	late := srv.WaitFor(t, "dave@example.com", 5*time.Second)
	require.Equal(t, "late", late.Subject)
	require.Equal(t, "carol@example.com", late.To)
	require.Equal(t, []string{"carol@example.com", "dave@example.com"}, late.Recipients)
}

// fakeTB records Fatalf and stops the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestWaitForTimesOut(t *testing.T) {
	srv := Start(t)
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.WaitFor(ft, "nobody@example.com", 50*time.Millisecond)
	}()
	<-done
	require.Contains(t, ft.failed, "no new message to nobody@example.com within 50ms")
}

func TestFailNext(t *testing.T) {
	srv := Start(t)
	srv.FailNext(2)
	for range 2 {
		err := send(t, srv.Addr(), "a@localhost", []string{"b@example.com"}, "Subject: x\r\n\r\nx")
		var se *smtp.SMTPError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 451, se.Code)
	}
	require.Empty(t, srv.Messages())
	require.NoError(t, send(t, srv.Addr(), "a@localhost", []string{"b@example.com"}, "Subject: x\r\n\r\nx"))
	require.Len(t, srv.Messages(), 1)
}

func TestRejectedRecipient(t *testing.T) {
	srv := Start(t)
	err := send(t, srv.Addr(), "a@localhost", []string{"x@" + RejectedDomain}, "Subject: x\r\n\r\nx")
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 550, se.Code)
	require.Empty(t, srv.Messages())
}

func TestAuth(t *testing.T) {
	srv := Start(t, WithAuth("alice", "p@ss word/#?"))
	require.Equal(t, "smtp://alice:p%40ss%20word%2F%23%3F@"+srv.Addr()+"?tls=none", srv.URL())

	dial := func(t *testing.T) *smtp.Client {
		c, err := smtp.Dial(srv.Addr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	t.Run("no auth", func(t *testing.T) {
		c := dial(t)
		require.Error(t, c.Mail("a@localhost", nil))
		require.Error(t, c.Rcpt("b@example.com", nil))
	})
	t.Run("plain", func(t *testing.T) {
		c := dial(t)
		require.NoError(t, c.Auth(sasl.NewPlainClient("", "alice", "p@ss word/#?")))
		require.NoError(t, c.SendMail("a@localhost", []string{"b@example.com"}, strings.NewReader("Subject: p\r\n\r\nx")))
	})
	t.Run("login", func(t *testing.T) {
		c := dial(t)
		require.NoError(t, c.Auth(sasl.NewLoginClient("alice", "p@ss word/#?")))
		require.NoError(t, c.SendMail("a@localhost", []string{"b@example.com"}, strings.NewReader("Subject: l\r\n\r\nx")))
	})
	t.Run("wrong password", func(t *testing.T) {
		c := dial(t)
		err := c.Auth(sasl.NewPlainClient("", "alice", "nope"))
		var se *smtp.SMTPError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 535, se.Code)
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		c := dial(t)
		require.Error(t, c.Auth(sasl.NewAnonymousClient("x")))
	})
	require.Len(t, srv.Messages(), 2)
}

func TestLoginServerSteps(t *testing.T) {
	var got [2]string
	l := &loginServer{check: func(u, p string) error { got = [2]string{u, p}; return nil }}
	ch, done, err := l.Next(nil)
	require.NoError(t, err)
	require.False(t, done)
	require.Equal(t, "Username:", string(ch))
	ch, done, err = l.Next([]byte("alice"))
	require.NoError(t, err)
	require.False(t, done)
	require.Equal(t, "Password:", string(ch))
	_, done, err = l.Next([]byte("pw"))
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, [2]string{"alice", "pw"}, got)
	_, _, err = l.Next(nil)
	require.Error(t, err)

	// With an initial response the user name comes first.
	l = &loginServer{check: func(u, p string) error { got = [2]string{u, p}; return errors.New("no") }}
	ch, _, err = l.Next([]byte("bob"))
	require.NoError(t, err)
	require.Equal(t, "Password:", string(ch))
	_, done, err = l.Next([]byte("pw2"))
	require.True(t, done)
	require.Error(t, err)
	require.Equal(t, [2]string{"bob", "pw2"}, got)
}

func TestAuthMechanismsOption(t *testing.T) {
	srv := Start(t, WithAuth("u", "p"), WithAuthMechanisms(sasl.Login))
	c, err := smtp.Dial(srv.Addr())
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	require.NoError(t, c.Hello("localhost"))
	require.True(t, c.SupportsAuth(sasl.Login))
	require.False(t, c.SupportsAuth(sasl.Plain))
	require.Error(t, c.Auth(sasl.NewPlainClient("", "u", "p")))
}

func TestTLS(t *testing.T) {
	serverCfg, clientCfg := SelfSignedTLS(t)

	t.Run("starttls", func(t *testing.T) {
		srv := Start(t, WithImplicitTLS(serverCfg), WithSTARTTLS(serverCfg))
		require.Contains(t, srv.URL(), "tls=starttls")
		c, err := smtp.DialStartTLS(srv.Addr(), clientCfg)
		require.NoError(t, err)
		defer func() { _ = c.Close() }()
		_, isTLS := c.TLSConnectionState()
		require.True(t, isTLS)
		require.NoError(t, c.SendMail("a@localhost", []string{"b@example.com"}, strings.NewReader("Subject: s\r\n\r\nx")))
		require.Equal(t, "s", srv.WaitFor(t, "b@example.com", time.Second).Subject)
	})
	t.Run("implicit", func(t *testing.T) {
		srv := Start(t, WithSTARTTLS(serverCfg), WithImplicitTLS(serverCfg))
		require.Contains(t, srv.URL(), "tls=implicit")
		c, err := smtp.DialTLS(srv.Addr(), clientCfg)
		require.NoError(t, err)
		defer func() { _ = c.Close() }()
		require.NoError(t, c.SendMail("a@localhost", []string{"b@example.com"}, strings.NewReader("Subject: i\r\n\r\nx")))
		require.Equal(t, "i", srv.WaitFor(t, "b@example.com", time.Second).Subject)
	})
	t.Run("untrusted", func(t *testing.T) {
		srv := Start(t, WithImplicitTLS(serverCfg))
		_, err := smtp.DialTLS(srv.Addr(), &tls.Config{MinVersion: tls.VersionTLS12})
		require.Error(t, err)
	})
}

func TestCloseRefusesConnections(t *testing.T) {
	srv := Start(t)
	srv.Close()
	srv.Close() // idempotent
	_, err := net.DialTimeout("tcp", srv.Addr(), time.Second)
	require.Error(t, err)
}
