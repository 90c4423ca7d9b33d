package gatehouse

import "time"

// EventType names something that happened to an account. Webhook
// subscribers and WebSocket clients receive events by these names.
type EventType string

// The event catalogue. Add new types here; never rename one.
const (
	EventUserRegistered    EventType = "user.registered"
	EventUserEmailVerified EventType = "user.email_verified"
	// EventUserEmailChanged: the account's email was changed to a new
	// address, proven by a link sent there (data: old_email, new_email).
	EventUserEmailChanged    EventType = "user.email_changed"
	EventUserLogin           EventType = "user.login"
	EventUserLoginFailed     EventType = "user.login_failed"
	EventUserLocked          EventType = "user.locked"
	EventUserUnlocked        EventType = "user.unlocked"
	EventUserPasswordChanged EventType = "user.password_changed"
	EventUserPasswordReset   EventType = "user.password_reset"
	EventUserMFAEnabled      EventType = "user.mfa_enabled"
	EventUserMFADisabled     EventType = "user.mfa_disabled"
	EventUserDeleted         EventType = "user.deleted"
	EventUserRolesChanged    EventType = "user.roles_changed"
	EventUserOAuthLinked     EventType = "user.oauth_linked"
	EventUserOAuthUnlinked   EventType = "user.oauth_unlinked"
	EventUserPasskeyAdded    EventType = "user.passkey_added"
	EventUserPasskeyRemoved  EventType = "user.passkey_removed"
	EventSessionRevoked      EventType = "session.revoked"
	EventDeviceNew           EventType = "device.new"
	EventRoleCreated         EventType = "role.created"
	EventRoleUpdated         EventType = "role.updated"
	EventRoleDeleted         EventType = "role.deleted"
	EventSecurityAlert       EventType = "security.alert"
	// OpenID Provider: clients registered, changed (a rotated secret
	// included) and removed; a user signed in to a client (a code was
	// issued); tokens granted to a client; a consent revoked.
	EventClientCreated        EventType = "client.created"
	EventClientUpdated        EventType = "client.updated"
	EventClientDeleted        EventType = "client.deleted"
	EventClientAuthorized     EventType = "client.authorized"
	EventClientTokenGranted   EventType = "client.token_granted"
	EventClientConsentRevoked EventType = "client.consent_revoked"
)

// EventTypes lists every known event type, in catalogue order.
var EventTypes = []EventType{
	EventUserRegistered, EventUserEmailVerified, EventUserLogin, EventUserLoginFailed,
	EventUserLocked, EventUserUnlocked, EventUserPasswordChanged, EventUserPasswordReset,
	EventUserMFAEnabled, EventUserMFADisabled, EventUserDeleted, EventUserRolesChanged,
	EventUserOAuthLinked, EventUserOAuthUnlinked, EventUserPasskeyAdded, EventUserPasskeyRemoved,
	EventSessionRevoked, EventDeviceNew, EventRoleCreated, EventRoleUpdated,
	EventRoleDeleted, EventSecurityAlert,
	EventClientCreated, EventClientUpdated, EventClientDeleted, EventClientAuthorized,
	EventClientTokenGranted, EventClientConsentRevoked, EventUserEmailChanged,
}

// Valid reports whether t is in the catalogue.
func (t EventType) Valid() bool {
	for _, k := range EventTypes {
		if k == t {
			return true
		}
	}
	return false
}

// Event is one recorded occurrence. It is stored in the same transaction as
// the change it describes, then fanned out by the event worker.
type Event struct {
	ID        string         `json:"id"`
	Type      EventType      `json:"type"`
	UserID    string         `json:"user_id,omitempty"`
	ActorID   string         `json:"actor_id,omitempty"`
	Data      map[string]any `json:"data"`
	CreatedAt time.Time      `json:"created_at"`
}
