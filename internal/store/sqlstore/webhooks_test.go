package sqlstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

var whT0 = time.Date(2025, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+2", 7200))

// onEngines runs fn on a fresh database of every engine, in parallel.
func onEngines(t *testing.T, fn func(t *testing.T, db *sqlstore.DB, ctx context.Context)) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, e.Open(t), t.Context())
		})
	}
}

func whUser(t *testing.T, db *sqlstore.DB, email string) string {
	t.Helper()
	id := gatehouse.NewID()
	require.NoError(t, db.CreateUser(t.Context(), gatehouse.User{ID: id, Email: gatehouse.Email(email), CreatedAt: whT0, UpdatedAt: whT0}))
	return id
}

func whHook(t *testing.T, db *sqlstore.DB, userID string, allUsers bool, events ...string) gatehouse.Webhook {
	t.Helper()
	w := gatehouse.Webhook{ID: gatehouse.NewID(), UserID: userID, URL: "https://example.com/hook", Events: events,
		Description: "d", Active: true, AllUsers: allUsers, SecretEnc: []byte{1, 2, 3}, CreatedAt: whT0, UpdatedAt: whT0}
	require.NoError(t, db.CreateWebhook(t.Context(), w))
	return w
}

func TestWebhooksCRUD(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice, bob := whUser(t, db, "alice@example.com"), whUser(t, db, "bob@example.com")
		w := whHook(t, db, alice, false, "user.login", "*")

		got, err := db.GetWebhook(ctx, w.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"user.login", "*"}, got.Events)
		require.Equal(t, []byte{1, 2, 3}, got.SecretEnc)
		require.True(t, got.Active)
		require.False(t, got.AllUsers)
		require.Nil(t, got.FailingSince)
		require.True(t, whT0.Truncate(time.Microsecond).Equal(got.CreatedAt))
		require.Equal(t, time.UTC, got.CreatedAt.Location())

		require.ErrorIs(t, db.CreateWebhook(ctx, w), store.ErrConflict)
		orphan := w
		orphan.ID, orphan.UserID = gatehouse.NewID(), gatehouse.NewID()
		require.ErrorIs(t, db.CreateWebhook(ctx, orphan), store.ErrConflict)
		_, err = db.GetWebhook(ctx, gatehouse.NewID())
		require.ErrorIs(t, err, store.ErrNotFound)

		got.URL, got.Events, got.Description, got.Active, got.AllUsers = "http://example.org/x", nil, "", false, true
		got.UpdatedAt = whT0.Add(time.Hour)
		require.NoError(t, db.UpdateWebhook(ctx, got))
		again, err := db.GetWebhook(ctx, w.ID)
		require.NoError(t, err)
		require.Equal(t, "http://example.org/x", again.URL)
		require.Equal(t, []string{}, again.Events)
		require.False(t, again.Active)
		require.True(t, again.AllUsers)
		got.ID = gatehouse.NewID()
		require.ErrorIs(t, db.UpdateWebhook(ctx, got), store.ErrNotFound)

		// Paging in id order, only the owner's.
		w2, w3 := whHook(t, db, alice, false, "*"), whHook(t, db, alice, false, "*")
		whHook(t, db, bob, false, "*")
		want := []string{w.ID, w2.ID, w3.ID}
		slices.Sort(want)
		page, err := db.ListWebhooks(ctx, alice, "", 2)
		require.NoError(t, err)
		require.Equal(t, want[:2], ids(page))
		page, err = db.ListWebhooks(ctx, alice, want[1], 2)
		require.NoError(t, err)
		require.Equal(t, want[2:], ids(page))
		_, err = db.ListWebhooks(ctx, alice, "", 0)
		require.Error(t, err)

		require.NoError(t, db.DeleteWebhook(ctx, w3.ID))
		require.ErrorIs(t, db.DeleteWebhook(ctx, w3.ID), store.ErrNotFound)

		// Deleting the owner takes the webhooks.
		require.NoError(t, db.DeleteUser(ctx, bob))
		page, err = db.ListWebhooks(ctx, bob, "", 10)
		require.NoError(t, err)
		require.Empty(t, page)
	})
}

func TestWebhooksSubscribersAndHealth(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice, bob, carol := whUser(t, db, "a@example.com"), whUser(t, db, "b@example.com"), whUser(t, db, "c@example.com")
		own := whHook(t, db, alice, false, "*")
		inactive := whHook(t, db, alice, false, "*")
		inactive.Active = false
		require.NoError(t, db.UpdateWebhook(ctx, inactive))
		whHook(t, db, bob, false, "*")
		global := whHook(t, db, carol, true, "*")

		subs, err := db.ListSubscribers(ctx, alice)
		require.NoError(t, err)
		require.ElementsMatch(t, []string{own.ID, global.ID}, ids(subs))
		subs, err = db.ListSubscribers(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{global.ID}, ids(subs))

		since, err := db.MarkWebhookFailing(ctx, own.ID, whT0)
		require.NoError(t, err)
		require.True(t, whT0.Truncate(time.Microsecond).Equal(since))
		since, err = db.MarkWebhookFailing(ctx, own.ID, whT0.Add(time.Hour))
		require.NoError(t, err)
		require.True(t, whT0.Truncate(time.Microsecond).Equal(since), "the first failure is kept")
		require.NoError(t, db.ClearWebhookFailing(ctx, own.ID))
		got, err := db.GetWebhook(ctx, own.ID)
		require.NoError(t, err)
		require.Nil(t, got.FailingSince)
		_, err = db.MarkWebhookFailing(ctx, gatehouse.NewID(), whT0)
		require.ErrorIs(t, err, store.ErrNotFound)

		done, err := db.DisableWebhook(ctx, own.ID, whT0)
		require.NoError(t, err)
		require.True(t, done)
		done, err = db.DisableWebhook(ctx, own.ID, whT0)
		require.NoError(t, err)
		require.False(t, done, "only the first call disables")
		_, err = db.DisableWebhook(ctx, gatehouse.NewID(), whT0)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func ids(ws []gatehouse.Webhook) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

func TestWebhookDeliveries(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		w := whHook(t, db, whUser(t, db, "a@example.com"), false, "*")
		// NewID is time-ordered only across milliseconds; order them here.
		dids := []string{gatehouse.NewID(), gatehouse.NewID(), gatehouse.NewID()}
		slices.Sort(dids)
		mk := func() gatehouse.WebhookDelivery {
			id := dids[0]
			dids = dids[1:]
			d := gatehouse.WebhookDelivery{ID: id, WebhookID: w.ID, EventID: gatehouse.NewID(),
				EventType: "user.login", Payload: []byte(`{"id":"x","data":{"k":"\u0000é"}}`),
				Status: gatehouse.DeliveryPending, CreatedAt: whT0, NextAttemptAt: &whT0}
			require.NoError(t, db.CreateWebhookDelivery(ctx, d))
			return d
		}
		d1, d2, d3 := mk(), mk(), mk()
		require.ErrorIs(t, db.CreateWebhookDelivery(ctx, d1), store.ErrConflict)

		for i, status := range []int{500, 0, 204} {
			require.NoError(t, db.CreateWebhookAttempt(ctx, gatehouse.WebhookAttempt{DeliveryID: d2.ID, Attempt: i + 1,
				StartedAt: whT0.Add(time.Duration(i) * time.Minute), Duration: 1500 * time.Millisecond,
				ResponseStatus: status, Error: map[bool]string{true: "", false: "failed"}[status == 204]}))
		}
		require.ErrorIs(t, db.CreateWebhookAttempt(ctx, gatehouse.WebhookAttempt{DeliveryID: d2.ID, Attempt: 1, StartedAt: whT0}), store.ErrConflict)
		require.ErrorIs(t, db.CreateWebhookAttempt(ctx, gatehouse.WebhookAttempt{DeliveryID: gatehouse.NewID(), Attempt: 1, StartedAt: whT0}), store.ErrConflict)

		delivered := whT0.Add(time.Hour)
		d2.Status, d2.Attempts, d2.ResponseStatus, d2.LastError, d2.NextAttemptAt, d2.DeliveredAt =
			gatehouse.DeliverySucceeded, 3, 204, "", nil, &delivered
		require.NoError(t, db.UpdateWebhookDelivery(ctx, d2))

		got, err := db.GetWebhookDelivery(ctx, d2.ID)
		require.NoError(t, err)
		require.Equal(t, d2.Payload, got.Payload, "payload bytes are kept exactly")
		require.Equal(t, gatehouse.DeliverySucceeded, got.Status)
		require.Equal(t, 3, got.Attempts)
		require.Equal(t, 204, got.ResponseStatus)
		require.Nil(t, got.NextAttemptAt)
		require.True(t, delivered.Truncate(time.Microsecond).Equal(*got.DeliveredAt))
		require.Len(t, got.History, 3)
		require.Equal(t, []int{500, 0, 204}, []int{got.History[0].ResponseStatus, got.History[1].ResponseStatus, got.History[2].ResponseStatus})
		require.Equal(t, 1500*time.Millisecond, got.History[0].Duration)
		require.Equal(t, "failed", got.History[1].Error)

		page, err := db.ListWebhookDeliveries(ctx, w.ID, "", 2)
		require.NoError(t, err)
		require.Equal(t, []string{d3.ID, d2.ID}, []string{page[0].ID, page[1].ID})
		require.Empty(t, page[0].History)
		require.Len(t, page[1].History, 3)
		page, err = db.ListWebhookDeliveries(ctx, w.ID, d2.ID, 2)
		require.NoError(t, err)
		require.Len(t, page, 1)
		require.Equal(t, d1.ID, page[0].ID)
		require.True(t, whT0.Truncate(time.Microsecond).Equal(*page[0].NextAttemptAt))

		d1.ID = gatehouse.NewID()
		require.ErrorIs(t, db.UpdateWebhookDelivery(ctx, d1), store.ErrNotFound)

		// Deleting the webhook takes its deliveries and attempts.
		require.NoError(t, db.DeleteWebhook(ctx, w.ID))
		_, err = db.GetWebhookDelivery(ctx, d2.ID)
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

// Keep the store usable inside a transaction too (the fan-out runs there).
func TestWebhooksInTx(t *testing.T) {
	onEngines(t, func(t *testing.T, db *sqlstore.DB, ctx context.Context) {
		alice := whUser(t, db, "a@example.com")
		w := whHook(t, db, alice, false, "*")
		require.NoError(t, db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			subs, err := tx.ListSubscribers(ctx, alice)
			require.NoError(t, err)
			require.Len(t, subs, 1)
			list, err := tx.ListWebhookDeliveries(ctx, w.ID, "", 10)
			require.NoError(t, err)
			require.Empty(t, list)
			return nil
		}))
	})
}
