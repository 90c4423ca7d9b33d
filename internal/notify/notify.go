// Package notify pushes live security notifications to signed-in users
// over WebSocket. A Hub per instance holds each user's sockets; messages
// travel between instances on the cache's pub/sub (Redis in production,
// in-process otherwise), so a user hears of a change made through any
// instance. Messages come from domain events (HandleEvent), filtered by the
// user's notification preferences.
package notify

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse"
)

// The message types a socket receives (API.md, "Webhooks, real time,
// operations"). They double as the alert types of notification preferences.
const (
	TypeNewDeviceLogin  = "security.new_device_login"
	TypePasswordChanged = "security.password_changed"
	TypeMFAChanged      = "security.mfa_changed"
	TypeSessionRevoked  = "security.session_revoked"
	TypeSecurityAlert   = "security.alert"
)

// Types lists every message type.
var Types = []string{TypeNewDeviceLogin, TypePasswordChanged, TypeMFAChanged, TypeSessionRevoked, TypeSecurityAlert}

// The channels an alert can use.
const (
	ChannelEmail     = "email"
	ChannelWebSocket = "websocket"
)

// Channels lists every channel.
var Channels = []string{ChannelEmail, ChannelWebSocket}

// Message is what a socket receives, as JSON.
type Message struct {
	Type      string         `json:"type"`
	Data      map[string]any `json:"data"`
	CreatedAt time.Time      `json:"created_at"`
}

// Wants reports whether the user's preferences let alertType use channel.
// Preferences map an alert type to the channels it uses; a type that is
// absent (or nil preferences) uses every channel, so the default is all on,
// and an empty list turns the type off everywhere.
func Wants(prefs map[string][]string, alertType, channel string) bool {
	channels, ok := prefs[alertType]
	return !ok || slices.Contains(channels, channel)
}

// ValidatePreferences checks the shape of notification_preferences: keys
// are message types (Types), values lists of Channels. The error is a 422
// validation_failed naming the offending field,
// body.notification_preferences.<type>.
func ValidatePreferences(prefs map[string][]string) error {
	keys := make([]string, 0, len(prefs))
	for k := range prefs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad field is the same on every call
	for _, k := range keys {
		field := "body.notification_preferences." + k
		if !slices.Contains(Types, k) {
			return gatehouse.InvalidField(field, "unknown alert type; the types are "+strings.Join(Types, ", "))
		}
		for _, c := range prefs[k] {
			if !slices.Contains(Channels, c) {
				return gatehouse.InvalidField(field, "unknown channel "+quote(c)+"; the channels are "+strings.Join(Channels, ", "))
			}
		}
	}
	return nil
}

// quote shows a client-chosen value in a message, cut so a huge one cannot
// bloat the answer.
func quote(s string) string {
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "…"
	}
	return strconv.Quote(s)
}
