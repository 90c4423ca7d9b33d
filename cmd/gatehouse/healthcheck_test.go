package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadyURL(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080/api/v1/health/ready",
		"0.0.0.0:9000":   "http://127.0.0.1:9000/api/v1/health/ready",
		"[::]:8080":      "http://127.0.0.1:8080/api/v1/health/ready",
		"127.0.0.2:8080": "http://127.0.0.2:8080/api/v1/health/ready",
		"[::1]:8080":     "http://[::1]:8080/api/v1/health/ready",
		"localhost:81":   "http://localhost:81/api/v1/health/ready",
	} {
		got, err := readyURL(addr)
		require.NoError(t, err, addr)
		require.Equal(t, want, got, addr)
	}
	for _, addr := range []string{"8080", "127.0.0.1:0", "host:"} {
		_, err := readyURL(addr)
		require.Error(t, err, addr)
		require.Contains(t, err.Error(), "GATEHOUSE_ADDR", addr)
	}
}

func TestCheckReadyNamesFailingChecks(t *testing.T) {
	t.Parallel()
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, readyPath, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status": "degraded",
			"checks": map[string]string{"database": "unavailable", "cache": "ok", "queue": "timeout"},
		})
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ready, err := readyURL(u.Host)
	require.NoError(t, err)

	err = checkReady(context.Background(), ready)
	require.Error(t, err)
	require.Equal(t, "healthcheck: not ready: GET "+ready+" answered 503 Service Unavailable (database: unavailable, queue: timeout)", err.Error())

	status = http.StatusOK
	require.NoError(t, checkReady(context.Background(), ready))

	// A server that does not answer in time is not ready.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = checkReady(ctx, hang.URL+readyPath)
	require.ErrorContains(t, err, "not ready")
}

// The real binary, as a container's HEALTHCHECK runs it: exit 0 while the
// server is ready, exit 1 with one line on stderr once it is gone. Its
// version is the one /health reports.
func TestHealthcheckAndVersionCommands(t *testing.T) {
	t.Parallel()
	s := start(t, baseEnv(t.TempDir()))
	u, err := url.Parse(s.base)
	require.NoError(t, err)
	healthcheck := func() (int, string) {
		cmd := exec.Command(binary, "healthcheck")
		cmd.Env = baseEnv(t.TempDir(), "GATEHOUSE_ADDR=:"+u.Port())
		cmd.Dir = t.TempDir()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		require.Empty(t, stdout.String())
		if err == nil {
			return 0, stderr.String()
		}
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		return exit.ExitCode(), stderr.String()
	}

	code, stderr := healthcheck()
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)

	out, err := exec.Command(binary, "version").Output()
	require.NoError(t, err)
	version := strings.TrimSpace(string(out))
	var health struct {
		Version string `json:"version"`
	}
	_, body, _ := get(t, s.base+"/api/v1/health")
	require.NoError(t, json.Unmarshal([]byte(body), &health))
	require.Equal(t, version, health.Version, "`gatehouse version` and /health say the same")

	s.stop(t)
	code, stderr = healthcheck()
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	require.True(t, strings.HasPrefix(stderr, "gatehouse: healthcheck: not ready: "), stderr)
}

// A build from a git checkout names its revision: never a bare "devel".
// TestMain builds with -buildvcs=true, so the go command stamps the
// revision it reads from git.
func TestVersionOfCheckoutBuildNamesRevision(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not a git checkout")
	}
	if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
		// The go command (1.26) stamps no VCS information in a git
		// worktree, whose .git is a file; build scripts there pass -ldflags.
		t.Skip("a git worktree: the go command does not stamp VCS information here")
	}
	out, err := exec.Command(binary, "version").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), strings.TrimSpace(string(head))[:12])
}
