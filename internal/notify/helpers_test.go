package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/notify"
)

// wait bounds every wait for something that must happen; tests never
// assert on how long it took.
const wait = 10 * time.Second

// backend is a way for instances to share pub/sub: one in-process cache,
// or one Redis reached through a client per instance.
type backend struct {
	name string
	// open returns the maker of each instance's cache.
	open func(t *testing.T) func() cache.Cache
}

func backends() []backend {
	out := []backend{{name: "memory", open: func(t *testing.T) func() cache.Cache {
		c := cache.NewMemory()
		t.Cleanup(func() { _ = c.Close() })
		return func() cache.Cache { return c }
	}}}
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		out = append(out, backend{name: "redis", open: func(t *testing.T) func() cache.Cache {
			return func() cache.Cache {
				c, err := cache.OpenRedis(context.Background(), u)
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.Close() })
				return c
			}
		}})
	}
	return out
}

// instance is one hub behind a test server that trusts the user and
// session named in the query (the HTTP layer's authentication is tested
// in httpapi).
type instance struct {
	hub *notify.Hub
	srv *httptest.Server
	reg *prometheus.Registry
}

func newInstance(t *testing.T, c cache.Cache, opts notify.Options) *instance {
	t.Helper()
	hub := notify.NewHub(c, opts)
	reg := prometheus.NewRegistry()
	require.NoError(t, hub.RegisterMetrics(reg))
	require.NoError(t, hub.Start(context.Background()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hub.Serve(w, r, r.URL.Query().Get("user"), r.URL.Query().Get("session"))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.NoError(t, hub.Close()) })
	return &instance{hub: hub, srv: srv, reg: reg}
}

// channel is a pub/sub channel of the test's own, so tests sharing a Redis
// do not hear each other.
func channel() string { return "notify-test:" + gatehouse.NewID() }

func (in *instance) dial(t *testing.T, user, session string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	u := "ws" + in.srv.URL[len("http"):] + "/?user=" + url.QueryEscape(user) + "&session=" + url.QueryEscape(session)
	c, _, err := websocket.Dial(ctx, u, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// metric reads a gauge or counter of the instance.
func (in *instance) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := in.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func read(t *testing.T, c *websocket.Conn) notify.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var m notify.Message
	require.NoError(t, wsjson.Read(ctx, c, &m))
	return m
}

// requireClosed reads until the server closes c and checks the close code.
func requireClosed(t *testing.T, c *websocket.Conn, code websocket.StatusCode) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			require.Equal(t, code, websocket.CloseStatus(err), "close error: %v", err)
			var ce websocket.CloseError
			require.ErrorAs(t, err, &ce)
			return ce.Reason
		}
	}
}

// sentinel publishes a marker and reads up to it, returning what came
// before: pub/sub keeps one publisher's order on a channel, so whatever an
// earlier publish delivered has arrived by then.
func sentinel(t *testing.T, hub *notify.Hub, c *websocket.Conn, user string) []notify.Message {
	t.Helper()
	require.NoError(t, hub.Publish(context.Background(), user, notify.Message{Type: "test.sentinel"}))
	var before []notify.Message
	for {
		m := read(t, c)
		if m.Type == "test.sentinel" {
			return before
		}
		before = append(before, m)
	}
}

// eventually polls cond until it holds or wait passes.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, wait, 5*time.Millisecond, msg)
}
