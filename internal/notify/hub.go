package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
)

// Close codes a client may see besides the standard ones: 1001 (going
// away) at server shutdown, 1008 (policy violation) when it sends data. A
// client too slow to read, or silent to pings, is disconnected without a
// close frame.
const (
	// CloseSessionRevoked: the session the socket was opened with ended.
	CloseSessionRevoked websocket.StatusCode = 4001
	// CloseReplaced: the user opened more sockets than the limit on this
	// instance; the oldest is closed to make room for the newest.
	CloseReplaced websocket.StatusCode = 4002
)

// DefaultChannel is the pub/sub channel the hubs of every instance share.
const DefaultChannel = "notify:user"

// Defaults of Options.
const (
	DefaultSendBuffer      = 16
	DefaultMaxConnsPerUser = 5
	DefaultPingInterval    = 30 * time.Second
	DefaultPongTimeout     = 10 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
	DefaultTicketTTL       = 30 * time.Second
)

// Cache is what the hub needs from the cache: pub/sub to reach every
// instance, Set and Take for single-use tickets (a cache.Cache).
type Cache interface {
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Take(ctx context.Context, key string) ([]byte, error)
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(ctx context.Context, channels ...string) (cache.Subscription, error)
}

// Options tune a Hub; zero values take the defaults above.
type Options struct {
	// Channel is the pub/sub channel (DefaultChannel); tests sharing a
	// Redis use their own.
	Channel string
	// SendBuffer is how many messages wait for a slow socket before it is
	// disconnected.
	SendBuffer int
	// MaxConnsPerUser bounds a user's sockets on one instance.
	MaxConnsPerUser int
	// PingInterval is the heartbeat; a socket that does not answer a ping
	// within PongTimeout is closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds the delivery of one message.
	WriteTimeout time.Duration
	// TicketTTL is the life of a ticket from IssueTicket.
	TicketTTL time.Duration
	// Now is the clock tickets expire by (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Hub holds this instance's sockets, by user, and delivers to them what
// any instance publishes.
type Hub struct {
	cache   Cache
	opts    Options
	open    prometheus.Gauge
	dropped prometheus.Counter

	mu     sync.Mutex
	users  map[string][]*conn // oldest first
	closed bool
	serves sync.WaitGroup // running Serve calls

	sub     cache.Subscription
	subDone chan struct{}
}

// NewHub makes a hub; Start subscribes it to the other instances.
func NewHub(c Cache, opts Options) *Hub {
	opts.Channel = cmp.Or(opts.Channel, DefaultChannel)
	opts.SendBuffer = positiveOr(opts.SendBuffer, DefaultSendBuffer)
	opts.MaxConnsPerUser = positiveOr(opts.MaxConnsPerUser, DefaultMaxConnsPerUser)
	opts.PingInterval = positiveOr(opts.PingInterval, DefaultPingInterval)
	opts.PongTimeout = positiveOr(opts.PongTimeout, DefaultPongTimeout)
	opts.WriteTimeout = positiveOr(opts.WriteTimeout, DefaultWriteTimeout)
	opts.TicketTTL = positiveOr(opts.TicketTTL, DefaultTicketTTL)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		cache: c,
		opts:  opts,
		users: map[string][]*conn{},
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "websocket_connections_open",
			Help: "Notification WebSockets open on this instance.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "websocket_slow_clients_dropped_total",
			Help: "Notification WebSockets closed because their send buffer was full.",
		}),
	}
}

func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// RegisterMetrics adds the hub's gauge and counter to reg.
func (h *Hub) RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{h.open, h.dropped} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("notify metrics: %w", err)
		}
	}
	return nil
}

// Start subscribes to the shared channel. Messages published before it
// returns are not delivered here.
func (h *Hub) Start(ctx context.Context) error {
	sub, err := h.cache.Subscribe(ctx, h.opts.Channel)
	if err != nil {
		return fmt.Errorf("notify: subscribe: %w", err)
	}
	h.sub, h.subDone = sub, make(chan struct{})
	go func() {
		defer close(h.subDone)
		for m := range sub.C() {
			h.deliver(m.Payload)
		}
	}()
	return nil
}

// Close stops listening, closes every socket with 1001 (going away) and
// waits for them. Serve refuses new sockets from then on.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var all []*conn
	for _, cs := range h.users {
		all = append(all, cs...)
	}
	h.mu.Unlock()

	var err error
	if h.sub != nil {
		err = h.sub.Close()
		<-h.subDone
	}
	for _, c := range all {
		h.shutdown(c, websocket.StatusGoingAway, "server shutting down", false)
	}
	h.serves.Wait()
	return err
}

// envelope is what travels on the channel: a message for the user's
// sockets, sessions whose sockets must close, or both.
type envelope struct {
	UserID        string   `json:"user_id"`
	Message       *Message `json:"message,omitempty"`
	CloseSessions []string `json:"close_sessions,omitempty"`
	Reason        string   `json:"reason,omitempty"`
}

// Publish sends m to every socket of the user, on every instance. It is
// fire and forget: sockets not open now never see it.
func (h *Hub) Publish(ctx context.Context, userID string, m Message) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = h.opts.Now().UTC()
	}
	if m.Data == nil {
		m.Data = map[string]any{}
	}
	return h.publish(ctx, envelope{UserID: userID, Message: &m})
}

// CloseSessions closes, on every instance, the user's sockets opened with
// one of sessionIDs (close code 4001, with reason).
func (h *Hub) CloseSessions(ctx context.Context, userID, reason string, sessionIDs ...string) error {
	return h.publish(ctx, envelope{UserID: userID, CloseSessions: sessionIDs, Reason: reason})
}

func (h *Hub) publish(ctx context.Context, env envelope) error {
	b, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("notify: encode: %w", err)
	}
	if err := h.cache.Publish(ctx, h.opts.Channel, b); err != nil {
		return fmt.Errorf("notify: publish: %w", err)
	}
	return nil
}

// deliver runs on the subscription goroutine, so it never blocks: a socket
// whose buffer is full is disconnected instead.
func (h *Hub) deliver(payload []byte) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		h.opts.Logger.Warn("notify: undecodable pub/sub message", "err", err)
		return
	}
	h.mu.Lock()
	conns := slices.Clone(h.users[env.UserID])
	h.mu.Unlock()
	if len(conns) == 0 {
		return
	}
	if env.Message != nil {
		b, err := json.Marshal(env.Message)
		if err != nil {
			return
		}
		for _, c := range conns {
			select {
			case c.send <- b:
			default:
				if h.shutdown(c, websocket.StatusPolicyViolation, "send buffer full: the client reads too slowly", true) {
					h.dropped.Inc()
					h.opts.Logger.Info("notify: dropped a slow client", "user_id", c.userID)
				}
			}
		}
	}
	for _, c := range conns {
		if slices.Contains(env.CloseSessions, c.sessionID) {
			h.shutdown(c, CloseSessionRevoked, env.Reason, false)
		}
	}
}

// conn is one socket.
type conn struct {
	ws        *websocket.Conn
	userID    string
	sessionID string
	send      chan []byte
	// stop is cancelled by shutdown after code and reason are set; abort
	// too when the socket must not wait for a write in progress.
	stop, abort           context.Context
	cancelStop, cancelAbt context.CancelFunc
	code                  websocket.StatusCode
	reason                string
}

// Serve upgrades the request to a WebSocket for the (already
// authenticated) user and session, and runs it until either side closes.
// The caller has checked the Origin header, so the library's same-origin
// check is off. A socket over the user's limit on this instance closes the
// user's oldest one (4002), so a user who reopens tabs is never locked out
// by sockets that have not timed out yet.
//
// The socket is registered before the upgrade answer goes out, so a client
// misses nothing published once its handshake has completed.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, userID, sessionID string) {
	c := &conn{userID: userID, sessionID: sessionID, send: make(chan []byte, h.opts.SendBuffer)}
	c.stop, c.cancelStop = context.WithCancel(context.Background())
	c.abort, c.cancelAbt = context.WithCancel(context.Background())
	defer c.cancelStop()
	defer c.cancelAbt()
	if !h.add(c) {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.serves.Done()
	defer h.remove(c)
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the client
	}
	c.ws = ws
	h.run(c)
}

// add registers c, closing the user's oldest socket when c is one too many.
// It reports false when the hub is closed.
func (h *Hub) add(c *conn) bool {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	h.serves.Add(1)
	cs := h.users[c.userID]
	var oldest *conn
	if len(cs) >= h.opts.MaxConnsPerUser {
		oldest = cs[0]
	}
	h.users[c.userID] = append(cs, c)
	h.open.Inc()
	h.mu.Unlock()
	if oldest != nil {
		h.shutdown(oldest, CloseReplaced, fmt.Sprintf("more than %d sockets: replaced by a newer one", h.opts.MaxConnsPerUser), false)
	}
	return true
}

// remove unregisters c and reports whether it was registered.
func (h *Hub) remove(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.users[c.userID]
	i := slices.Index(cs, c)
	if i < 0 {
		return false
	}
	cs = slices.Delete(cs, i, i+1)
	if len(cs) == 0 {
		delete(h.users, c.userID)
	} else {
		h.users[c.userID] = cs
	}
	h.open.Dec()
	return true
}

// shutdown unregisters c and tells its Serve to close it with code and
// reason; hard also aborts a write in progress, for a client whose pending
// writes would otherwise hold its Serve up to WriteTimeout. It reports
// whether c was still registered (only the first shutdown acts).
func (h *Hub) shutdown(c *conn, code websocket.StatusCode, reason string, hard bool) bool {
	if !h.remove(c) {
		return false
	}
	c.code, c.reason = code, reason
	c.cancelStop()
	if hard {
		c.cancelAbt()
	}
	return true
}

// run writes queued messages and heartbeats until the socket ends. Clients
// send nothing: CloseRead answers their control frames and closes the
// socket on a data message.
func (h *Hub) run(c *conn) {
	peerGone := c.ws.CloseRead(context.Background())
	ticker := time.NewTicker(h.opts.PingInterval)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop.Done():
			if c.abort.Err() != nil {
				_ = c.ws.CloseNow() // its buffers are full: a close frame would wait
			} else {
				_ = c.ws.Close(c.code, c.reason)
			}
			return
		case <-peerGone.Done():
			_ = c.ws.CloseNow()
			return
		case b := <-c.send:
			// A graceful close requested mid-write lets the write finish,
			// so the client still gets the close frame; an abort (the
			// library closes the connection when ctx ends) does not.
			ctx, cancel := context.WithTimeout(c.abort, h.opts.WriteTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				_ = c.ws.CloseNow()
				return
			}
		case <-ticker.C:
			ctx, cancel := context.WithTimeout(context.Background(), h.opts.PongTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}
