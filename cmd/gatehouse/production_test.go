package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// productionEnv is a configuration GATEHOUSE_ENV=production accepts, on a
// public URL whose host is an IP address, with a bootstrap administrator.
func productionEnv(t *testing.T, dataDir string, extra ...string) []string {
	pw := filepath.Join(t.TempDir(), "admin-password")
	require.NoError(t, os.WriteFile(pw, []byte("violet-Anchor-drift-93-Quasar\n"), 0o600))
	env := baseEnv(dataDir,
		"GATEHOUSE_ENV=production",
		"GATEHOUSE_PUBLIC_URL=https://203.0.113.7",
		"GATEHOUSE_SECRET_KEY="+strings.Repeat("p", 40),
		"GATEHOUSE_SMTP_URL=smtp://127.0.0.1:1",
		"GATEHOUSE_SMS_PROVIDER=none",
		"GATEHOUSE_BOOTSTRAP_ADMIN_EMAIL=root@example.com",
		"GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE="+pw,
	)
	return append(env, extra...)
}

// API.md "Production mode": each unsafe setting stops start-up with one
// line naming it.
func TestProductionModeRefusesUnsafeSettings(t *testing.T) {
	for _, c := range []struct{ setting, value string }{
		{"GATEHOUSE_PUBLIC_URL", "http://auth.example.com"},
		{"GATEHOUSE_SECRET_KEY", ""},
		{"GATEHOUSE_SMTP_URL", ""},
		{"GATEHOUSE_SMS_PROVIDER", "log"},
		{"GATEHOUSE_RATE_LIMIT_ENABLED", "false"},
		{"GATEHOUSE_WEBHOOK_ALLOW_PRIVATE", "true"},
	} {
		t.Run(c.setting, func(t *testing.T) {
			last, _ := startFails(t, productionEnv(t, t.TempDir(), c.setting+"="+c.value))
			require.True(t, strings.HasPrefix(last, "gatehouse: config: "+c.setting+": "), last)
			require.Contains(t, last, "GATEHOUSE_ENV=production")
		})
	}
	// One-shot commands run with what they are given: a migration job
	// needs no mail server.
	_, err := run(t, map[string]string{"GATEHOUSE_ENV": "production", "GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_LOG_LEVEL": "error",
		"GATEHOUSE_PUBLIC_URL": "https://auth.example.com", "GATEHOUSE_SECRET_KEY": strings.Repeat("p", 40)}, "migrate", "up")
	require.NoError(t, err)

	// A password the policy refuses stops it too, without showing it.
	pw := filepath.Join(t.TempDir(), "weak")
	require.NoError(t, os.WriteFile(pw, []byte("password1234\n"), 0o600))
	last, stderr := startFails(t, productionEnv(t, t.TempDir(), "GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE="+pw))
	require.True(t, strings.HasPrefix(last, "gatehouse: config: GATEHOUSE_BOOTSTRAP_ADMIN_PASSWORD_FILE: "), last)
	require.NotContains(t, stderr, "password1234")
}

// A production server on an IP address starts with passkeys off (one
// warning) and makes the bootstrap administrator on its first start only;
// the password never reaches the log.
func TestProductionModeStartsOnAnIPAddress(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := start(t, productionEnv(t, data))
	logs := s.logs.String()
	require.Equal(t, 1, strings.Count(logs, "passkeys are off"), logs)
	require.Equal(t, 1, strings.Count(logs, "made the first administrator"), logs)
	require.NotContains(t, logs, "violet-Anchor-drift-93-Quasar")

	resp, err := http.Post(s.base+"/api/v1/auth/login", "application/json",
		strings.NewReader(`{"email":"root@example.com","password":"violet-Anchor-drift-93-Quasar"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the administrator signs in with the file's password")
	resp, err = http.Post(s.base+"/api/v1/auth/webauthn/authenticate/begin", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	s.stop(t)

	again := start(t, productionEnv(t, data))
	require.NotContains(t, again.logs.String(), "made the first administrator", "only once")
	again.stop(t)
}
