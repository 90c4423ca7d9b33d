package mail_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
)

func TestParseSMTPURL(t *testing.T) {
	ok := []struct {
		raw  string
		want mail.SMTPConfig
	}{
		{"smtp://mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 587, TLS: mail.TLSStartTLS}},
		{"smtp://mail.example.com/", mail.SMTPConfig{Host: "mail.example.com", Port: 587, TLS: mail.TLSStartTLS}},
		{"smtp://mail.example.com?tls=starttls", mail.SMTPConfig{Host: "mail.example.com", Port: 587, TLS: mail.TLSStartTLS}},
		{"smtp://mail.example.com?tls=implicit", mail.SMTPConfig{Host: "mail.example.com", Port: 465, TLS: mail.TLSImplicit}},
		{"smtp://mail.example.com?tls=NONE", mail.SMTPConfig{Host: "mail.example.com", Port: 25, TLS: mail.TLSNone}},
		{"smtps://mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 465, TLS: mail.TLSImplicit}},
		{"SMTPS://mail.example.com?tls=implicit", mail.SMTPConfig{Host: "mail.example.com", Port: 465, TLS: mail.TLSImplicit}},
		{"smtp://mail.example.com:2525?tls=none", mail.SMTPConfig{Host: "mail.example.com", Port: 2525, TLS: mail.TLSNone}},
		{"  smtp://user:pa%23ss@mail.example.com:587  ", mail.SMTPConfig{Host: "mail.example.com", Port: 587, TLS: mail.TLSStartTLS, Username: "user", Password: "pa#ss"}},
		{"smtp://apikey@mail.example.com", mail.SMTPConfig{Host: "mail.example.com", Port: 587, TLS: mail.TLSStartTLS, Username: "apikey"}},
		{"smtp://[::1]:1025?tls=none", mail.SMTPConfig{Host: "::1", Port: 1025, TLS: mail.TLSNone}},
	}
	for _, c := range ok {
		t.Run(c.raw, func(t *testing.T) {
			got, err := mail.ParseSMTPURL(c.raw)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}

	const secret = "hunter2"
	bad := []struct{ raw, msg string }{
		{"", "missing scheme"},
		{"mail.example.com:587", "unsupported scheme"},
		{"http://mail.example.com", `unsupported scheme "http"`},
		{"smtp:mail.example.com", "two slashes"},
		{"smtp://", "missing host"},
		{"smtp://user:" + secret + "@", "missing host"},
		{"smtp://mail.example.com/path", "unexpected path"},
		{"smtp://user:" + secret + "@mail.example.com:0", "between 1 and 65535"},
		{"smtp://user:" + secret + "@mail.example.com:70000", "between 1 and 65535"},
		{"smtp://user:" + secret + "@mail.example.com:port", "cannot parse"},
		{"smtp://user:" + secret + "@mail.example.com?tls=ssl", `tls="ssl"`},
		{"smtp://user:" + secret + "@mail.example.com?tls=none&foo=1", `unknown parameter "foo"`},
		{"smtps://user:" + secret + "@mail.example.com?tls=starttls", "smtps:// always means tls=implicit"},
		{"smtp://:" + secret + "@mail.example.com", "needs a user name"},
		// An unescaped '#' makes the rest of the password a fragment...
		{"smtp://user:hun#ter2@mail.example.com", "cannot parse"},
		// ...or a '/' makes it a path, with the user name as the host.
		{"smtp://user:hun/ter2@mail.example.com", "cannot parse"},
		{"smtp://user:" + secret + "@mail.example.com#frag", "unexpected fragment"},
		{"smtp://user:" + secret + "@mail example.com", "cannot parse"},
		{"smtp://us\x7fer:" + secret + "@mail.example.com", "cannot parse"},
	}
	for _, c := range bad {
		t.Run(c.raw, func(t *testing.T) {
			_, err := mail.ParseSMTPURL(c.raw)
			require.ErrorContains(t, err, c.msg)
			for _, part := range []string{secret, "ter2"} {
				require.NotContains(t, err.Error(), part, "the password leaked into the error")
			}
			_, err = mail.NewSMTP(c.raw, "a@example.com")
			require.Error(t, err)
			require.NotContains(t, err.Error(), "ter2")
		})
	}
}

func TestSMTPConfigNeverPrintsThePassword(t *testing.T) {
	c, err := mail.ParseSMTPURL("smtp://user:hunter2@mail.example.com:2525?tls=none")
	require.NoError(t, err)
	require.Equal(t, "smtp://user:xxxxx@mail.example.com:2525?tls=none", c.String())
	require.Equal(t, "mail.example.com:2525", c.Addr())
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		require.NotContains(t, s, "hunter2")
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("smtp", "config", c)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("smtp", "config", c)
	js, err := json.Marshal(c)
	require.NoError(t, err)
	b.Write(js)
	require.NotContains(t, b.String(), "hunter2")
	require.Contains(t, b.String(), "xxxxx")

	c, err = mail.ParseSMTPURL("smtp://apikey@[::1]")
	require.NoError(t, err)
	require.Equal(t, "smtp://apikey@[::1]:587?tls=starttls", c.String())
}
