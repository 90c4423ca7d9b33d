package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

var binary string

// TestMain builds the real binary once: the end-to-end tests start it as a
// process, send it signals and read its exit code. -buildvcs=true stamps the
// git revision even where GOFLAGS turns that off, as a release build would.
//
// Tests that load the machine (the fault tests) or run the CLI in-process
// (t.Setenv) run one at a time, first; the others, which mostly wait on
// their processes (a SIGKILL test waits out River's rescue), call
// t.Parallel and run together afterwards.
func TestMain(m *testing.M) {
	if os.Getenv(burnCPUEnv) != "" {
		burnCPU() // a helper process of a fault test; never returns
	}
	dir, err := os.MkdirTemp("", "gatehouse-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "gatehouse")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build gatehouse: " + err.Error())
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running gatehouse process.
type server struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan error
}

// syncBuffer is a bytes.Buffer safe to write from the log reader while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// baseEnv isolates the process from the developer's environment and .env.
func baseEnv(dataDir string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"GATEHOUSE_ADDR=127.0.0.1:0",
		"GATEHOUSE_DATA_DIR=" + dataDir,
		"GATEHOUSE_LOG_FORMAT=json",
	}
	return append(env, extra...)
}

func start(t *testing.T, env []string) *server {
	t.Helper()
	cmd := exec.Command(binary)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &server{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			s.logs.Write(append(bytes.Clone(line), '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "gatehouse started" {
				addr <- rec.Addr
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case a := <-addr:
		s.base = "http://" + a
	case err := <-s.done:
		t.Fatalf("gatehouse exited early: %v\n%s", err, s.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("gatehouse did not start\n%s", s.logs)
	}
	return s
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		require.NoError(t, err, "exit code after SIGTERM\n%s", s.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", s.logs)
	}
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

func jwksKids(t *testing.T, base string) []string {
	code, body, _ := get(t, base+"/.well-known/jwks.json")
	require.Equal(t, 200, code)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &set))
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// checkServes asserts everything the foundation promises is served.
func checkServes(t *testing.T, s *server) {
	code, body, _ := get(t, s.base+"/api/v1/health")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"database":"ok"`)
	require.Contains(t, body, `"cache":"ok"`)
	require.Contains(t, body, `"queue":"ok"`)
	code, _, _ = get(t, s.base+"/api/v1/health/ready")
	require.Equal(t, 200, code)
	code, body, _ = get(t, s.base+"/api/v1/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, "http_requests_total")
	require.Contains(t, body, "go_goroutines")
	code, body, _ = get(t, s.base+"/api/v1/openapi.json")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"openapi":"3.1`)
	code, body, hdr := get(t, s.base+"/api/v1/docs")
	require.Equal(t, 200, code)
	require.Contains(t, hdr.Get("Content-Type"), "text/html")
	require.NotEmpty(t, body)
	require.Len(t, jwksKids(t, s.base), 1)
}

func TestServeOnSQLiteKeepsKeysAcrossRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := start(t, baseEnv(data))
	checkServes(t, s)
	kids := jwksKids(t, s.base)
	s.stop(t)
	require.Contains(t, s.logs.String(), "GATEHOUSE_SECRET_KEY is not set")

	again := start(t, baseEnv(data))
	require.Equal(t, kids, jwksKids(t, again.base), "restart keeps the signing key")
	again.stop(t)
}

func TestServeOnPostgresAndRedis(t *testing.T) {
	t.Parallel()
	pg := sqltest.PostgresURL(t)
	redisURL := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("GATEHOUSE_TEST_REDIS_URL not set")
	}
	env := baseEnv(t.TempDir(), "GATEHOUSE_DATABASE_URL="+pg, "GATEHOUSE_REDIS_URL="+redisURL,
		"GATEHOUSE_SECRET_KEY="+strings.Repeat("s", 40))
	s := start(t, env)
	checkServes(t, s)
	kids := jwksKids(t, s.base)
	require.Contains(t, s.logs.String(), `"database":"postgres"`)
	require.Contains(t, s.logs.String(), `"redis":true`)
	require.NotContains(t, s.logs.String(), "GATEHOUSE_SECRET_KEY is not set")
	s.stop(t)

	again := start(t, env)
	require.Equal(t, kids, jwksKids(t, again.base))
	again.stop(t)
}

// Bad configuration stops start-up with one clear line and a non-zero exit.
func TestBadConfigurationStopsStartup(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"unknown scheme", []string{"GATEHOUSE_DATABASE_URL=mysql://db/x"}, "GATEHOUSE_DATABASE_URL"},
		{"unreachable postgres", []string{"GATEHOUSE_DATABASE_URL=postgres://postgres:hunter2secret@127.0.0.1:1/x?connect_timeout=2"}, "database"},
		{"malformed ttl", []string{"GATEHOUSE_ACCESS_TOKEN_TTL=soon"}, "GATEHOUSE_ACCESS_TOKEN_TTL"},
		{"short secret key", []string{"GATEHOUSE_SECRET_KEY=tooshort"}, "GATEHOUSE_SECRET_KEY"},
	}
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		// An unreachable Redis is an outage to ride out (the server starts
		// degraded); credentials it refuses are a configuration error.
		wrong := strings.Replace(u, "redis://", "redis://nosuchuser:hunter2secret@", 1)
		cases = append(cases, struct {
			name string
			env  []string
			want string
		}{"redis refuses the password", []string{"GATEHOUSE_REDIS_URL=" + wrong}, "cache"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			last, stderr := startFails(t, baseEnv(t.TempDir(), c.env...))
			require.Contains(t, last, c.want)
			require.NotContains(t, stderr, "hunter2secret", "passwords never printed")
		})
	}
}

// startFails runs the server with env, requires it to exit non-zero
// within 30 seconds, and answers the last line it wrote, which must be the
// one "gatehouse: ..." line, and all it wrote.
func startFails(t *testing.T, env []string) (last, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary) // killed when ctx ends
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stderr = &out
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "start-up did not stop")
	require.Error(t, err, "must exit non-zero")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.NotEqual(t, 0, exit.ExitCode())
	last = lastLine(out.String())
	require.True(t, strings.HasPrefix(last, "gatehouse: "), last)
	return last, out.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
