// Package container tests the container image that deploy/container/Containerfile
// packages: built from a static binary made on this machine, since no base
// image can be pulled here, and run with podman.
package container

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// maxImageBytes is the image's size budget: a regression (debug info, a
// forgotten file) shows here. The binary is most of it.
const maxImageBytes = 80 << 20

// podman runs podman with the only settings that work on these machines:
// no default ulimits (CONTAINERS_CONF), runc and cgroupfs.
type podman struct {
	t   *testing.T
	env []string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed, so the image test cannot run (apt-get install podman runc; .ci/run does)", tool)
		}
	}
	conf := filepath.Join(t.TempDir(), "containers.conf")
	require.NoError(t, os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644))
	return &podman{t: t, env: append(os.Environ(), "CONTAINERS_CONF="+conf)}
}

// run runs podman and returns its standard output, failing the test on a
// non-zero exit.
func (p *podman) run(args ...string) string {
	p.t.Helper()
	out, stderr, err := p.try(args...)
	require.NoError(p.t, err, "podman %s\n%s", strings.Join(args, " "), stderr)
	return out
}

// try runs podman and returns its outputs and error.
func (p *podman) try(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", append([]string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}, args...)...)
	cmd.Env = p.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// gitRevision is what context.sh stamps as the revision, or "" without git.
func gitRevision(t *testing.T) string {
	out, err := exec.Command("git", "-C", "../..", "describe", "--always", "--dirty", "--abbrev=12", "--exclude=*").Output()
	if err != nil {
		t.Logf("no git revision to compare with: %v", err)
		return ""
	}
	return strings.TrimSpace(string(out))
}

type health struct {
	Status  string            `json:"status"`
	Checks  map[string]string `json:"checks"`
	Version string            `json:"version"`
}

func getHealth(url string) (int, health, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, health{}, err
	}
	defer resp.Body.Close()
	var h health
	err = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h, err
}

func TestImageBuildsRunsAndIsHealthy(t *testing.T) {
	p := newPodman(t)

	// The build context, as an operator makes it: a static, version-stamped
	// binary built from this checkout, CA certificates and tzdata.
	buildContext := filepath.Join(t.TempDir(), "context")
	script := exec.Command("sh", "context.sh", buildContext)
	script.Env = os.Environ()
	out, err := script.CombinedOutput()
	require.NoError(t, err, "context.sh\n%s", out)

	tag := "localhost/gatehouse-test:" + randomSuffix(t)
	p.run("build", "--format", "docker", "-t", tag, buildContext)
	t.Cleanup(func() { _, _, _ = p.try("rmi", "-f", tag) })

	var images []struct {
		Size   int64
		Config struct {
			User         string
			Entrypoint   []string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
		}
		Healthcheck struct{ Test []string }
	}
	require.NoError(t, json.Unmarshal([]byte(p.run("image", "inspect", tag)), &images))
	require.Len(t, images, 1)
	image := images[0]
	require.Equal(t, "65532:65532", image.Config.User)
	require.Equal(t, []string{"/gatehouse"}, image.Config.Entrypoint)
	require.Contains(t, image.Config.ExposedPorts, "8080/tcp")
	require.Contains(t, image.Config.Volumes, "/data")
	require.Equal(t, []string{"CMD", "/gatehouse", "healthcheck"}, image.Healthcheck.Test)
	require.Less(t, image.Size, int64(maxImageBytes), "image size")
	t.Logf("image size: %.1f MB", float64(image.Size)/1e6)

	// Host networking is the only kind that works here; the port is ours.
	port := freePort(t)
	name := "gatehouse-test-" + randomSuffix(t)
	started := time.Now()
	p.run("run", "-d", "--name", name, "--network", "host",
		"-e", "GATEHOUSE_ADDR=127.0.0.1:"+strconv.Itoa(port), "-e", "GATEHOUSE_LOG_FORMAT=json", tag)
	t.Cleanup(func() { _, _, _ = p.try("rm", "-f", "-v", name) })

	ready := fmt.Sprintf("http://127.0.0.1:%d/api/v1/health/ready", port)
	var h health
	for {
		code, got, err := getHealth(ready)
		if err == nil && code == http.StatusOK {
			h = got
			break
		}
		if time.Since(started) > time.Minute {
			logs, _, _ := p.try("logs", name)
			t.Fatalf("not ready within a minute (last: %d %v)\n%s", code, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ready from the host %s after `podman run`", time.Since(started).Round(time.Millisecond))
	require.Equal(t, "ok", h.Status)
	require.Equal(t, map[string]string{"database": "ok", "cache": "ok", "queue": "ok"}, h.Checks)

	// The server's own start-up time, as it logs it inside the container.
	stdout, stderr, _ := p.try("logs", name)
	logs := stdout + stderr
	var startup string
	for line := range strings.Lines(logs) {
		var rec struct{ Msg, Startup string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "gatehouse started" {
			startup = rec.Startup
		}
	}
	require.NotEmpty(t, startup, "no start-up line in\n%s", logs)
	t.Logf("start-up inside the container (SQLite, first start: migrations and a new signing key): %s", startup)

	// The probe the image's HEALTHCHECK runs, inside the container (no
	// shell, no curl there), both by hand and through podman's check.
	p.run("exec", name, "/gatehouse", "healthcheck")
	p.run("healthcheck", "run", name)
	// Pointed at a port nobody listens on it fails, with one line.
	_, stderr, err = p.try("exec", "-e", "GATEHOUSE_ADDR=127.0.0.1:1", name, "/gatehouse", "healthcheck")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode())
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	require.True(t, strings.HasPrefix(stderr, "gatehouse: healthcheck: not ready: "), stderr)

	// The version is stamped and the same everywhere.
	version := strings.TrimSpace(p.run("exec", name, "/gatehouse", "version"))
	require.Equal(t, version, h.Version, "`gatehouse version` and /health agree")
	require.NotEqual(t, "devel", version)
	if rev := gitRevision(t); rev != "" {
		require.Contains(t, version, rev)
	}

	// SIGTERM drains and exits 0.
	p.run("stop", "-t", "20", name)
	require.Equal(t, "0", strings.TrimSpace(p.run("inspect", "--format", "{{.State.ExitCode}}", name)))
}
