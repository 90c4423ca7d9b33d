package notify_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/notify"
)

// Two instances share pub/sub: a message published on A reaches the
// user's socket on B, and only that user's; closing a session on A closes
// its socket on B with 4001 and leaves the user's other socket open.
func TestMessagesCrossInstances(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			caches, ch := be.open(t), channel()
			a := newInstance(t, caches(), notify.Options{Channel: ch})
			b := newInstance(t, caches(), notify.Options{Channel: ch})
			ctx := context.Background()

			onB := b.dial(t, "u1", "s1")
			onA := a.dial(t, "u1", "s2")
			other := b.dial(t, "u2", "s3")
			eventually(t, func() bool { return b.metric(t, "websocket_connections_open") == 2 }, "B registers its sockets")

			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			require.NoError(t, a.hub.Publish(ctx, "u1", notify.Message{Type: gatehouse.NotifySecurityAlert, Data: map[string]any{"k": "v"}, CreatedAt: at}))
			for _, c := range []*websocket.Conn{onB, onA} {
				m := read(t, c)
				require.Equal(t, gatehouse.NotifySecurityAlert, m.Type)
				require.Equal(t, "v", m.Data["k"])
				require.True(t, at.Equal(m.CreatedAt))
			}
			require.Empty(t, sentinel(t, b.hub, other, "u2"), "u2 heard nothing of u1's message")

			require.NoError(t, a.hub.CloseSessions(ctx, "u1", "session revoked", "s1"))
			require.Equal(t, "session revoked", requireClosed(t, onB, notify.CloseSessionRevoked))
			require.Empty(t, sentinel(t, a.hub, onA, "u1"), "the other session's socket stays open")
			eventually(t, func() bool { return b.metric(t, "websocket_connections_open") == 1 }, "B forgets the closed socket")
		})
	}
}

// A client that does not read fills its buffer and is dropped; the hub
// keeps delivering to everyone else meanwhile.
func TestSlowClientIsDroppedWithoutBlockingOthers(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := newInstance(t, be.open(t)(), notify.Options{Channel: channel(), SendBuffer: 4})
			ctx := context.Background()
			_ = in.dial(t, "slow", "s1") // never read
			fast := in.dial(t, "fast", "s2")
			eventually(t, func() bool { return in.metric(t, "websocket_connections_open") == 2 }, "both registered")

			// Big messages fill the socket's kernel buffers, then its own.
			big := map[string]any{"pad": strings.Repeat("x", 256<<10)}
			for i := 0; in.metric(t, "websocket_slow_clients_dropped_total") == 0; i++ {
				require.Less(t, i, 5000, "the slow client was never dropped")
				require.NoError(t, in.hub.Publish(ctx, "slow", notify.Message{Type: gatehouse.NotifySecurityAlert, Data: big}))
				time.Sleep(time.Millisecond) // let the subscription keep up: pub/sub drops what overflows it
			}
			require.NoError(t, in.hub.Publish(ctx, "fast", notify.Message{Type: gatehouse.NotifyMFAChanged}))
			require.Equal(t, gatehouse.NotifyMFAChanged, read(t, fast).Type)
			require.Equal(t, 1.0, in.metric(t, "websocket_slow_clients_dropped_total"))
			require.Equal(t, 1.0, in.metric(t, "websocket_connections_open"))
		})
	}
}

// Over the per-user limit the oldest socket closes with 4002; the others
// keep working, and other users are not counted.
func TestConnectionLimitClosesTheOldest(t *testing.T) {
	in := newInstance(t, cache.NewMemory(), notify.Options{MaxConnsPerUser: 2})
	first := in.dial(t, "u", "s")
	second := in.dial(t, "u", "s")
	_ = in.dial(t, "someone-else", "s")
	eventually(t, func() bool { return in.metric(t, "websocket_connections_open") == 3 }, "registered")
	third := in.dial(t, "u", "s")

	reason := requireClosed(t, first, notify.CloseReplaced)
	require.Contains(t, reason, "more than 2")
	for _, c := range []*websocket.Conn{second, third} {
		require.Empty(t, sentinel(t, in.hub, c, "u"))
	}
	eventually(t, func() bool { return in.metric(t, "websocket_connections_open") == 3 }, "the oldest is gone")
}

// A client that does not answer pings is closed.
func TestSilentClientIsClosedByTheHeartbeat(t *testing.T) {
	in := newInstance(t, cache.NewMemory(), notify.Options{PingInterval: 20 * time.Millisecond, PongTimeout: 20 * time.Millisecond})
	_ = in.dial(t, "u", "s") // never reads, so never answers a ping
	eventually(t, func() bool { return in.metric(t, "websocket_connections_open") == 1 }, "registered")
	eventually(t, func() bool { return in.metric(t, "websocket_connections_open") == 0 }, "the silent socket is closed")
}

// Closing the hub closes every socket with 1001 and refuses new ones (503).
func TestCloseSaysGoingAway(t *testing.T) {
	in := newInstance(t, cache.NewMemory(), notify.Options{})
	c := in.dial(t, "u", "s")
	eventually(t, func() bool { return in.metric(t, "websocket_connections_open") == 1 }, "registered")
	closed := make(chan error, 1)
	go func() { closed <- in.hub.Close() }() // waits for the client's close frame
	requireClosed(t, c, websocket.StatusGoingAway)
	require.NoError(t, <-closed)
	require.Equal(t, 0.0, in.metric(t, "websocket_connections_open"))

	_, resp, err := websocket.Dial(context.Background(), "ws"+in.srv.URL[len("http"):], nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestTickets(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var now atomic.Pointer[time.Time]
			start := time.Now()
			now.Store(&start)
			hub := notify.NewHub(be.open(t)(), notify.Options{Now: func() time.Time { return *now.Load() }})

			tk, err := hub.IssueTicket(ctx, "u", "s")
			require.NoError(t, err)
			require.Len(t, tk, 43, "256 bits, base64url")
			u, s, err := hub.RedeemTicket(ctx, tk)
			require.NoError(t, err)
			require.Equal(t, []string{"u", "s"}, []string{u, s})
			_, _, err = hub.RedeemTicket(ctx, tk)
			require.ErrorContains(t, err, "unauthorized", "single use")

			// Twenty concurrent redemptions: exactly one wins.
			tk, err = hub.IssueTicket(ctx, "u", "s")
			require.NoError(t, err)
			var wins atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if _, _, err := hub.RedeemTicket(ctx, tk); err == nil {
						wins.Add(1)
					}
				})
			}
			wg.Wait()
			require.EqualValues(t, 1, wins.Load())

			// Expired by the hub's clock, whatever the cache's.
			tk, err = hub.IssueTicket(ctx, "u", "s")
			require.NoError(t, err)
			later := start.Add(notify.DefaultTicketTTL)
			now.Store(&later)
			_, _, err = hub.RedeemTicket(ctx, tk)
			require.ErrorContains(t, err, "unauthorized")

			for _, bad := range []string{"", "short", strings.Repeat("A", 43), strings.Repeat("A", 5000)} {
				_, _, err = hub.RedeemTicket(ctx, bad)
				require.ErrorContains(t, err, "unauthorized")
			}
		})
	}
}
