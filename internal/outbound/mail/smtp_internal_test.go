package mail

import (
	"testing"

	"github.com/stretchr/testify/require"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// Over tls=none, credentials go only to localhost: go-mail's PLAIN and
// LOGIN refuse any other host before anything is sent.
func TestCleartextAuthOnlyTowardsLocalhost(t *testing.T) {
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		remote := &cleartextAuth{user: "u", pass: "hunter2", host: "mail.example.com"}
		_, resp, err := remote.Start(&gosmtp.ServerInfo{Name: "mail.example.com", Auth: []string{mech}})
		require.ErrorIs(t, err, gosmtp.ErrUnencrypted, mech)
		require.Empty(t, resp)

		local := &cleartextAuth{user: "u", pass: "hunter2", host: "127.0.0.1"}
		got, _, err := local.Start(&gosmtp.ServerInfo{Name: "127.0.0.1", Auth: []string{"CRAM-MD5", mech}})
		require.NoError(t, err, mech)
		require.Equal(t, mech, got)
	}
	_, _, err := (&cleartextAuth{host: "localhost"}).Start(&gosmtp.ServerInfo{Name: "localhost", Auth: []string{"XOAUTH2"}})
	require.ErrorContains(t, err, "no PLAIN or LOGIN")
}
