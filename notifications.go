package gatehouse

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The security notifications a user hears of: the message types a
// WebSocket receives (API.md, "Webhooks, real time, operations"). They
// double as the alert types of notification preferences.
const (
	NotifyNewDeviceLogin  = "security.new_device_login"
	NotifyPasswordChanged = "security.password_changed"
	NotifyMFAChanged      = "security.mfa_changed"
	NotifySessionRevoked  = "security.session_revoked"
	NotifySecurityAlert   = "security.alert"
)

// NotificationTypes lists every message type.
var NotificationTypes = []string{NotifyNewDeviceLogin, NotifyPasswordChanged, NotifyMFAChanged, NotifySessionRevoked, NotifySecurityAlert}

// The channels an alert can use.
const (
	ChannelEmail     = "email"
	ChannelWebSocket = "websocket"
)

// NotificationChannels lists every channel.
var NotificationChannels = []string{ChannelEmail, ChannelWebSocket}

// WantsNotification reports whether the user's preferences let alertType
// use channel. Preferences map an alert type to the channels it uses; a type that is
// absent (or nil preferences) uses every channel, so the default is all on,
// and an empty list turns the type off everywhere.
func WantsNotification(prefs map[string][]string, alertType, channel string) bool {
	channels, ok := prefs[alertType]
	return !ok || slices.Contains(channels, channel)
}

// ValidateNotificationPreferences checks the shape of notification_preferences: keys
// are message types (NotificationTypes), values lists of NotificationChannels. The error is a 422
// validation_failed naming the offending field,
// body.notification_preferences.<type>.
func ValidateNotificationPreferences(prefs map[string][]string) error {
	keys := make([]string, 0, len(prefs))
	for k := range prefs {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad field is the same on every call
	for _, k := range keys {
		field := "notification_preferences." + k
		if !slices.Contains(NotificationTypes, k) {
			return InvalidField(field, "unknown alert type; the types are "+strings.Join(NotificationTypes, ", "))
		}
		for _, c := range prefs[k] {
			if !slices.Contains(NotificationChannels, c) {
				return InvalidField(field, "unknown channel "+quoteValue(c)+"; the channels are "+strings.Join(NotificationChannels, ", "))
			}
		}
	}
	return nil
}

// quoteValue shows a client-chosen value in a message, cut so a huge one
// cannot bloat the answer.
func quoteValue(s string) string {
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "…"
	}
	return strconv.Quote(s)
}
