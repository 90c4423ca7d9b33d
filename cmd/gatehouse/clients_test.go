package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClientsCreate(t *testing.T) {
	env := map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_LOG_LEVEL": "error"}
	out, err := run(t, env, "clients", "create", "--name", "Grafana", "--redirect-uri", "https://grafana.example.com/login/generic_oauth",
		"--scope", "openid", "--scope", "email", "--first-party")
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.NotEmpty(t, c["client_id"])
	require.Len(t, c["client_secret"], 43, "a 256-bit secret, base64url")
	require.Equal(t, []any{"openid", "email"}, c["scopes"])
	require.Equal(t, true, c["first_party"])

	out, err = run(t, env, "clients", "create", "--name", "SPA", "--redirect-uri", "http://localhost:5173/cb", "--public")
	require.NoError(t, err)
	c = nil
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.NotContains(t, c, "client_secret", "a public client has no secret")
	require.Equal(t, []any{"authorization_code", "refresh_token"}, c["grant_types"])

	_, err = run(t, env, "clients", "create", "--redirect-uri", "https://x.example/cb")
	require.ErrorContains(t, err, "--name")
	_, err = run(t, env, "clients", "create", "--name", "bad", "--redirect-uri", "http://evil.example/cb")
	require.ErrorContains(t, err, "loopback")
	_, err = run(t, env, "clients", "create", "--name", "bad", "--redirect-uri", "https://x.example/cb", "--public", "--grant", "client_credentials")
	require.ErrorContains(t, err, "client_credentials")
}
