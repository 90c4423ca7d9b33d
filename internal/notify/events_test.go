package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/notify"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// eventEnv is a hub fed by HandleEvent from a real database.
type eventEnv struct {
	*instance
	db *sqlstore.DB
}

func newEventEnv(t *testing.T, db *sqlstore.DB) *eventEnv {
	return &eventEnv{instance: newInstance(t, cache.NewMemory(), notify.Options{}), db: db}
}

// user creates an account with the given preferences.
func (e *eventEnv) user(t require.TestingT, prefs map[string][]string) string {
	id := gatehouse.NewID()
	now := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, e.db.CreateUser(context.Background(), gatehouse.User{
		ID: id, Email: gatehouse.Email(id + "@example.com"), NotificationPreferences: prefs, CreatedAt: now, UpdatedAt: now,
	}))
	return id
}

func (e *eventEnv) handle(t require.TestingT, ev gatehouse.Event) {
	if ev.ID == "" {
		ev.ID = gatehouse.NewID()
	}
	require.NoError(t, e.db.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		return e.hub.HandleEvent(ctx, tx, ev)
	}))
}

// notifies checks, on every engine, that events of the given types reach
// the user's socket as messages of typ carrying the event's data.
func notifies(t *testing.T, typ string, events ...gatehouse.EventType) {
	for _, eng := range sqltest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			e := newEventEnv(t, eng.Open(t))
			rapid.Check(t, func(rt *rapid.T) {
				user := e.user(rt, nil)
				c := e.dial(t, user, "s")
				ev := gatehouse.Event{
					Type: rapid.SampledFrom(events).Draw(rt, "event"), UserID: user,
					Data:      map[string]any{"detail": rapid.String().Draw(rt, "detail")},
					CreatedAt: time.Unix(rapid.Int64Range(0, 1<<33).Draw(rt, "at"), 0).UTC(),
				}
				e.handle(rt, ev)
				got := sentinel(t, e.hub, c, user)
				require.Len(rt, got, 1)
				require.Equal(rt, typ, got[0].Type)
				require.Equal(rt, ev.Data["detail"], got[0].Data["detail"])
				require.Equal(rt, string(ev.Type), got[0].Data["event"])
				require.True(rt, ev.CreatedAt.Equal(got[0].CreatedAt))
				_ = c.CloseNow()
			})
		})
	}
}

func TestProperty88_NewDeviceNotification(t *testing.T) {
	notifies(t, gatehouse.NotifyNewDeviceLogin, gatehouse.EventDeviceNew)
}

func TestProperty89_PasswordChangeNotification(t *testing.T) {
	notifies(t, gatehouse.NotifyPasswordChanged, gatehouse.EventUserPasswordChanged, gatehouse.EventUserPasswordReset)
}

func TestProperty90_MFAChangeNotification(t *testing.T) {
	notifies(t, gatehouse.NotifyMFAChanged, gatehouse.EventUserMFAEnabled, gatehouse.EventUserMFADisabled)
}

// For any preferences, an event reaches the socket exactly when gatehouse.WantsNotification says
// the websocket channel is on for its type; the default is on.
func TestProperty91_WebSocketPreference(t *testing.T) {
	e := newEventEnv(t, sqltest.SQLite(t))
	mapped := map[gatehouse.EventType]string{
		gatehouse.EventDeviceNew: gatehouse.NotifyNewDeviceLogin, gatehouse.EventUserPasswordChanged: gatehouse.NotifyPasswordChanged,
		gatehouse.EventUserMFAEnabled: gatehouse.NotifyMFAChanged, gatehouse.EventSessionRevoked: gatehouse.NotifySessionRevoked,
		gatehouse.EventSecurityAlert: gatehouse.NotifySecurityAlert,
	}
	rapid.Check(t, func(rt *rapid.T) {
		prefs := map[string][]string{}
		for _, typ := range gatehouse.NotificationTypes {
			if rapid.Bool().Draw(rt, "set "+typ) {
				prefs[typ] = rapid.SliceOfDistinct(rapid.SampledFrom(gatehouse.NotificationChannels), rapid.ID[string]).Draw(rt, typ)
			}
		}
		require.NoError(rt, gatehouse.ValidateNotificationPreferences(prefs))
		user := e.user(rt, prefs)
		c := e.dial(t, user, "s")
		ev := rapid.SampledFrom([]gatehouse.EventType{gatehouse.EventDeviceNew, gatehouse.EventUserPasswordChanged,
			gatehouse.EventUserMFAEnabled, gatehouse.EventSessionRevoked, gatehouse.EventSecurityAlert}).Draw(rt, "event")
		e.handle(rt, gatehouse.Event{Type: ev, UserID: user, Data: map[string]any{"session_id": "another"}})
		got := sentinel(t, e.hub, c, user)
		if gatehouse.WantsNotification(prefs, mapped[ev], gatehouse.ChannelWebSocket) {
			require.Len(rt, got, 1)
			require.Equal(rt, mapped[ev], got[0].Type)
		} else {
			require.Empty(rt, got)
		}
		_ = c.CloseNow()
	})
}

// A revoked session's socket closes whatever the preferences; the user's
// other sockets hear of it unless they turned it off; events about nobody,
// unmapped events and events of deleted users send nothing.
func TestSessionRevokedEvent(t *testing.T) {
	e := newEventEnv(t, sqltest.SQLite(t))
	quiet := e.user(t, map[string][]string{gatehouse.NotifySessionRevoked: {gatehouse.ChannelEmail}})
	revoked, kept := e.dial(t, quiet, "s1"), e.dial(t, quiet, "s2")
	e.handle(t, gatehouse.Event{Type: gatehouse.EventSessionRevoked, UserID: quiet, Data: map[string]any{"session_id": "s1"}})
	require.Equal(t, "session revoked", requireClosed(t, revoked, notify.CloseSessionRevoked))
	require.Empty(t, sentinel(t, e.hub, kept, quiet))

	loud := e.user(t, nil)
	revoked, kept = e.dial(t, loud, "s1"), e.dial(t, loud, "s2")
	e.handle(t, gatehouse.Event{Type: gatehouse.EventSessionRevoked, UserID: loud, Data: map[string]any{"session_id": "s1"}})
	requireClosed(t, revoked, notify.CloseSessionRevoked)
	got := sentinel(t, e.hub, kept, loud)
	require.Len(t, got, 1)
	require.Equal(t, gatehouse.NotifySessionRevoked, got[0].Type)
	require.Equal(t, "s1", got[0].Data["session_id"])

	e.handle(t, gatehouse.Event{Type: gatehouse.EventUserLogin, UserID: loud})
	e.handle(t, gatehouse.Event{Type: gatehouse.EventSecurityAlert})
	require.Empty(t, sentinel(t, e.hub, kept, loud))

	gone := gatehouse.NewID() // no such user: told nothing, but the socket still closes
	c1, c2 := e.dial(t, gone, "s1"), e.dial(t, gone, "s2")
	e.handle(t, gatehouse.Event{Type: gatehouse.EventSessionRevoked, UserID: gone, Data: map[string]any{"session_id": "s1"}})
	requireClosed(t, c1, notify.CloseSessionRevoked)
	require.Empty(t, sentinel(t, e.hub, c2, gone))
}

func TestWantsAndValidatePreferences(t *testing.T) {
	require.True(t, gatehouse.WantsNotification(nil, gatehouse.NotifyMFAChanged, gatehouse.ChannelWebSocket), "default on")
	prefs := map[string][]string{gatehouse.NotifyMFAChanged: {gatehouse.ChannelEmail}, gatehouse.NotifySecurityAlert: {}}
	require.True(t, gatehouse.WantsNotification(prefs, gatehouse.NotifyMFAChanged, gatehouse.ChannelEmail))
	require.False(t, gatehouse.WantsNotification(prefs, gatehouse.NotifyMFAChanged, gatehouse.ChannelWebSocket))
	require.False(t, gatehouse.WantsNotification(prefs, gatehouse.NotifySecurityAlert, gatehouse.ChannelEmail), "an empty list is all off")
	require.True(t, gatehouse.WantsNotification(prefs, gatehouse.NotifyNewDeviceLogin, gatehouse.ChannelEmail), "absent types stay on")
	require.NoError(t, gatehouse.ValidateNotificationPreferences(prefs))
	require.NoError(t, gatehouse.ValidateNotificationPreferences(nil))

	for _, tc := range []struct {
		prefs map[string][]string
		field string
	}{
		{map[string][]string{"security.nope": {"email"}}, "notification_preferences.security.nope"},
		{map[string][]string{gatehouse.NotifyPasswordChanged: {"email", "sms"}}, "notification_preferences." + gatehouse.NotifyPasswordChanged},
		{map[string][]string{gatehouse.NotifyPasswordChanged: {"", "websocket"}}, "notification_preferences." + gatehouse.NotifyPasswordChanged},
	} {
		err := gatehouse.ValidateNotificationPreferences(tc.prefs)
		require.Equal(t, gatehouse.CodeValidationFailed, gatehouse.ErrorCode(err))
		var ge *gatehouse.Error
		require.ErrorAs(t, err, &ge)
		require.Equal(t, tc.field, ge.Fields[0].Location)
	}
}
