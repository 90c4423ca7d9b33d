package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// messageTypes maps the domain events users hear of to message types.
var messageTypes = map[gatehouse.EventType]string{
	gatehouse.EventUserPasswordChanged: gatehouse.NotifyPasswordChanged,
	gatehouse.EventUserPasswordReset:   gatehouse.NotifyPasswordChanged,
	gatehouse.EventUserMFAEnabled:      gatehouse.NotifyMFAChanged,
	gatehouse.EventUserMFADisabled:     gatehouse.NotifyMFAChanged,
	gatehouse.EventSessionRevoked:      gatehouse.NotifySessionRevoked,
	gatehouse.EventDeviceNew:           gatehouse.NotifyNewDeviceLogin,
	gatehouse.EventSecurityAlert:       gatehouse.NotifySecurityAlert,
}

// WantsEvent is HandleEvent's events.Interest: the events about a user
// that users hear of.
func (h *Hub) WantsEvent(_ context.Context, _ store.Tx, e gatehouse.Event) (bool, error) {
	_, ok := messageTypes[e.Type]
	return ok && e.UserID != "", nil
}

// HandleEvent is the event bus handler (events.Handler): it turns an event
// about a user into a message for their sockets, unless their preferences
// turn the websocket channel off for its type, and closes the sockets of a
// revoked session whatever the preferences. A user that no longer exists
// is told nothing; their revoked sessions' sockets still close.
//
// Publishing is not part of the transaction: if the fan-out then fails
// and is retried the message may go out twice (at least once). A publish
// error is logged and does not fail the fan-out, whose other effects
// (webhooks, emails) matter more than a live hint.
func (h *Hub) HandleEvent(ctx context.Context, tx store.Tx, e gatehouse.Event) error {
	typ, ok := messageTypes[e.Type]
	if !ok || e.UserID == "" {
		return nil
	}
	env := envelope{UserID: e.UserID}
	if id, _ := e.Data["session_id"].(string); e.Type == gatehouse.EventSessionRevoked && id != "" {
		env.CloseSessions, env.Reason = []string{id}, "session revoked"
	}
	u, err := tx.GetUser(ctx, e.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("notify: read user: %w", err)
	case gatehouse.WantsNotification(u.NotificationPreferences, typ, gatehouse.ChannelWebSocket):
		data := maps.Clone(e.Data)
		if data == nil {
			data = map[string]any{}
		}
		data["event_id"], data["event"] = e.ID, string(e.Type)
		env.Message = &Message{Type: typ, Data: data, CreatedAt: e.CreatedAt.UTC()}
	}
	if env.Message == nil && env.CloseSessions == nil {
		return nil
	}
	if err := h.publish(ctx, env); err != nil {
		h.opts.Logger.WarnContext(ctx, "notify: live notification not sent", "event_id", e.ID, "type", e.Type, "err", err)
	}
	return nil
}
