// Package notify pushes live security notifications to signed-in users
// over WebSocket. A Hub per instance holds each user's sockets; messages
// travel between instances on the cache's pub/sub (Redis in production,
// in-process otherwise), so a user hears of a change made through any
// instance. Messages come from domain events (HandleEvent), filtered by the
// user's notification preferences.
package notify

import (
	"strconv"
	"strings"
	"time"
)

// Message is what a socket receives, as JSON.
type Message struct {
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	CreatedAt time.Time      `json:"created_at"`
}

// quote shows a client-chosen value in a message, cut so a huge one cannot
// bloat the answer.
func quote(s string) string {
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "…"
	}
	return strconv.Quote(s)
}
