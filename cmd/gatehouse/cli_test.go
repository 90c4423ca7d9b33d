package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app"
	"github.com/gatehouse-auth/gatehouse/internal/config"
)

// run executes the CLI in-process with the given environment.
func run(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	return runIn(t, env, "", args...)
}

// runIn is run with standard input.
func runIn(t *testing.T, env map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	t.Chdir(t.TempDir()) // no stray .env
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	cmd := newRootCmd(&out, &errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCommands(t *testing.T) {
	golden, err := os.ReadFile("../../api/openapi.json")
	require.NoError(t, err)
	env := map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_LOG_LEVEL": "error"}

	out, err := run(t, env, "version")
	require.NoError(t, err)
	require.NotEmpty(t, strings.TrimSpace(out))

	out, err = run(t, env, "openapi")
	require.NoError(t, err)
	var a, b map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &a))
	require.NoError(t, json.Unmarshal(golden, &b))
	delete(a["info"].(map[string]any), "version")
	delete(b["info"].(map[string]any), "version")
	require.Equal(t, b, a, "api/openapi.json is stale: run `go run ./cmd/gatehouse openapi > api/openapi.json`")

	out, err = run(t, env, "migrate", "status")
	require.NoError(t, err)
	require.Contains(t, out, " pending\n")
	out, err = run(t, env, "migrate", "up")
	require.NoError(t, err)
	require.Contains(t, out, "migrations applied")
	out, err = run(t, env, "migrate", "status")
	require.NoError(t, err)
	require.NotContains(t, out, " pending\n")
	require.Contains(t, out, "gatehouse")
	require.Contains(t, out, "river")
	out, err = run(t, env, "migrate", "down")
	require.NoError(t, err)
	require.Contains(t, out, "rolled back")
	out, err = run(t, env, "migrate", "status")
	require.NoError(t, err)
	require.Contains(t, out, " pending\n")

	out, err = run(t, env, "keys", "list")
	require.NoError(t, err)
	require.Contains(t, out, "signing")
	first := strings.Fields(strings.Split(out, "\n")[1])[0]
	out, err = run(t, env, "keys", "rotate")
	require.NoError(t, err)
	require.Contains(t, out, "new signing key:")
	require.Contains(t, out, "signs from")
	second := strings.Fields(strings.TrimPrefix(out, "new signing key:"))[0]
	out, err = run(t, env, "keys", "list")
	require.NoError(t, err)
	// The new key is published but the old one signs until it is 7 minutes old.
	require.Regexp(t, `(?m)^`+regexp.QuoteMeta(second)+`\s+RS256\s+next\s`, out)
	require.Regexp(t, `(?m)^`+regexp.QuoteMeta(first)+`\s+RS256\s+signing\s`, out)

	out, err = run(t, env, "users", "create", "--email", "Root@Example.com", "--role", "admin", "--verified")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, "id and the generated password")
	require.Regexp(t, `^[0-9a-f-]{36}$`, lines[0])
	require.GreaterOrEqual(t, len(lines[1]), 20)
	_, err = run(t, env, "users", "create", "--email", "root@example.com")
	require.ErrorContains(t, err, "already exists")
	_, err = run(t, env, "users", "create", "--email", "x@example.com", "--role", "no-such-role")
	require.ErrorContains(t, err, `no role is named "no-such-role"`)
	require.NotContains(t, err.Error(), "store:", "the store's wording stays inside")
	_, err = run(t, env, "users", "create")
	require.ErrorContains(t, err, "--email")
	out, err = runIn(t, env, "violet-Anchor-drift-93-Quasar\n", "users", "create", "--email", "ops@example.com", "--password-stdin")
	require.NoError(t, err)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 1, "a given password is not printed")
	_, err = runIn(t, env, "password123456\n", "users", "create", "--email", "weak@example.com", "--password-stdin")
	require.ErrorContains(t, err, "weak_password")
	_, err = runIn(t, env, "", "users", "create", "--email", "none@example.com", "--password-stdin")
	require.ErrorContains(t, err, "no password")

	_, err = run(t, map[string]string{"GATEHOUSE_ACCESS_TOKEN_TTL": "x"}, "keys", "list")
	require.ErrorContains(t, err, "GATEHOUSE_ACCESS_TOKEN_TTL")
	_, err = run(t, env, "migrate", "sideways")
	require.Error(t, err)

	out, err = run(t, env, "--help")
	require.NoError(t, err)
	for _, c := range []string{"serve", "migrate", "keys", "openapi", "version"} {
		require.Contains(t, out, c)
	}
}

// SIGTERM (here: the context ending) lets an in-flight request finish,
// then the server stops cleanly.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := config.FromMap(map[string]string{"GATEHOUSE_DATA_DIR": t.TempDir(), "GATEHOUSE_LOG_LEVEL": "error"})
	require.NoError(t, err)
	log, _ := loadTestLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.Build(ctx, cfg, log, app.Options{Migrate: true, Jobs: true, PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)

	entered := make(chan struct{})
	a.HTTP.Mux().HandleFunc("GET /test/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		time.Sleep(500 * time.Millisecond)
		_, _ = io.WriteString(w, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/test/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	cancel() // the signal
	r := <-got
	require.NoError(t, r.err)
	require.Equal(t, "finished", r.body)
	require.NoError(t, <-served)

	_, err = http.Get("http://" + ln.Addr().String() + "/api/v1/health/live")
	require.Error(t, err, "no longer accepting")
}
