package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Private servers for fault tests: each test starts its own redis-server or
// PostgreSQL cluster on a free port and kills only that one, never the
// shared services other tests use. They need the server binaries; the tests
// that use them run where the shared services run (CI sets
// GATEHOUSE_TEST_REDIS_URL and GATEHOUSE_TEST_POSTGRES_URL and installs
// both).

// freePort returns a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// privateRedis is a redis-server of this test's own.
type privateRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

// startPrivateRedis starts a redis-server on a free port, keeping nothing on
// disk; it is killed when the test ends.
func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if os.Getenv("GATEHOUSE_TEST_REDIS_URL") == "" {
		t.Skip("GATEHOUSE_TEST_REDIS_URL is not set: Redis is not available here")
	}
	r := &privateRedis{t: t, port: freePort(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

// URL is the server's redis:// URL.
func (r *privateRedis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start (re)starts the server on its port and waits until it answers.
func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	require.NoError(r.t, r.cmd.Start(), "redis-server must be installed (.ci/run installs it)")
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port)})
	defer client.Close()
	eventually(r.t, "the private redis-server to answer", 10*time.Second, func() bool {
		return client.Ping(context.Background()).Err() == nil
	})
}

// kill stops the server at once (SIGKILL), as a crash would.
func (r *privateRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// pause freezes the server (SIGSTOP): connections stay open, nothing
// answers, and its data survives, as in a network partition.
func (r *privateRedis) pause()  { require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGSTOP)) }
func (r *privateRedis) resume() { require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGCONT)) }

// privatePostgres is a PostgreSQL cluster of this test's own.
type privatePostgres struct {
	t    *testing.T
	port int
	dir  string
	bin  string
	asPG bool // run the tools as the postgres user (initdb refuses root)
}

// startPrivatePostgres makes a cluster in a temporary directory (initdb)
// and starts it on a free port; it is stopped and removed when the test
// ends.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if os.Getenv("GATEHOUSE_TEST_POSTGRES_URL") == "" {
		t.Skip("GATEHOUSE_TEST_POSTGRES_URL is not set: PostgreSQL is not available here")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	require.NotEmpty(t, bins, "PostgreSQL's server binaries must be installed (.ci/run installs them)")
	p := &privatePostgres{t: t, port: freePort(t), bin: filepath.Dir(bins[len(bins)-1]), asPG: os.Geteuid() == 0}
	dir, err := os.MkdirTemp("", "gatehouse-pg-")
	require.NoError(t, err)
	p.dir = dir
	t.Cleanup(func() {
		_ = p.pgctl("stop", "-m", "immediate")
		_ = os.RemoveAll(dir)
	})
	if p.asPG {
		pg, err := user.Lookup("postgres")
		require.NoError(t, err)
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
	}
	out, err := p.run("initdb", "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync")
	require.NoError(t, err, "initdb: %s", out)
	p.start()
	return p
}

// run runs one of PostgreSQL's tools, as the postgres user when root.
func (p *privatePostgres) run(tool string, args ...string) (string, error) {
	name, argv := filepath.Join(p.bin, tool), args
	if p.asPG {
		name, argv = "runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, tool)}, args...)
	}
	out, err := exec.Command(name, argv...).CombinedOutput()
	return string(out), err
}

func (p *privatePostgres) pgctl(action string, args ...string) error {
	out, err := p.run("pg_ctl", append([]string{action, "-D", filepath.Join(p.dir, "data"), "-w", "-t", "30"}, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", action, err, out)
	}
	return nil
}

// start starts the cluster and waits until it accepts connections.
func (p *privatePostgres) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", p.port, p.dir)
	require.NoError(p.t, p.pgctl("start", "-o", opts, "-l", filepath.Join(p.dir, "log")))
}

// stop shuts the cluster down at once: sessions are cut, as when the
// database server goes away.
func (p *privatePostgres) stop() {
	p.t.Helper()
	require.NoError(p.t, p.pgctl("stop", "-m", "immediate"))
}

// URL is a URL of the cluster's postgres database.
func (p *privatePostgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// ping reports whether the cluster answers.
func (p *privatePostgres) ping() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL())
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx) == nil
}
