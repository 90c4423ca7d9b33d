package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// webhookCases cover Webhooks: subscriptions, deliveries and attempts.
var webhookCases = []testCase{
	{name: "Webhooks/CreateGet", covers: []string{"CreateWebhook", "GetWebhook"}, fn: testWebhooksCreateGet},
	{name: "Webhooks/CreateRefused", covers: []string{"CreateWebhook", "GetWebhook"}, fn: testWebhooksCreateRefused},
	{name: "Webhooks/Update", covers: []string{"UpdateWebhook"}, fn: testWebhooksUpdate},
	{name: "Webhooks/List", covers: []string{"ListWebhooks"}, fn: testWebhooksList},
	{name: "Webhooks/ListSubscribers", fresh: true, covers: []string{"ListSubscribers"}, fn: testWebhooksListSubscribers},
	{name: "Webhooks/Delete", covers: []string{"DeleteWebhook"}, fn: testWebhooksDelete},
	{name: "Webhooks/DeleteRace", covers: []string{"DeleteWebhook"}, fn: testWebhooksDeleteRace},
	{name: "Webhooks/DeletedWithUser", covers: []string{"DeleteUser"}, fn: testWebhooksDeletedWithUser},
	{name: "Webhooks/Failing", covers: []string{"MarkWebhookFailing", "ClearWebhookFailing"}, fn: testWebhooksFailing},
	{name: "Webhooks/MarkFailingRace", covers: []string{"MarkWebhookFailing"}, fn: testWebhooksMarkFailingRace},
	{name: "Webhooks/Disable", covers: []string{"DisableWebhook"}, fn: testWebhooksDisable},
	{name: "Webhooks/DisableRace", covers: []string{"DisableWebhook"}, fn: testWebhooksDisableRace},
	{name: "Webhooks/Deliveries", covers: []string{"CreateWebhookDelivery", "GetWebhookDelivery", "ListWebhookDeliveries", "UpdateWebhookDelivery"}, fn: testWebhooksDeliveries},
	{name: "Webhooks/DeliveriesRefused", covers: []string{"CreateWebhookDelivery", "GetWebhookDelivery", "ListWebhookDeliveries", "UpdateWebhookDelivery"}, fn: testWebhooksDeliveriesRefused},
	{name: "Webhooks/Attempts", covers: []string{"CreateWebhookAttempt", "GetWebhookDelivery", "ListWebhookDeliveries"}, fn: testWebhooksAttempts},
	{name: "Webhooks/AttemptRace", covers: []string{"CreateWebhookAttempt"}, fn: testWebhooksAttemptRace},
	{name: "Webhooks/InTx", covers: []string{"GetWebhook", "ListWebhooks", "ListWebhookDeliveries", "CreateWebhookDelivery"}, fn: testWebhooksInTx},
}

func newWebhook(userID string, events ...string) gatehouse.Webhook {
	return gatehouse.Webhook{
		ID:          gatehouse.NewID(),
		UserID:      userID,
		URL:         "https://hooks.example.com/in?x=1&y=é",
		Events:      events,
		Description: "CI — Grüße 🌍 \"quoted\"",
		Active:      true,
		SecretEnc:   []byte{0x00, 0x01, 0xfe, 0xff, 's', 0x00},
		CreatedAt:   base.Add(-time.Hour),
		UpdatedAt:   base,
	}
}

func createWebhook(t *testing.T, s store.Store, userID string, allUsers bool) gatehouse.Webhook {
	t.Helper()
	w := newWebhook(userID, "*")
	w.AllUsers = allUsers
	require.NoError(t, s.CreateWebhook(t.Context(), w))
	return w
}

// requireWebhook compares every field; nil Events in want read back as an
// empty, non-nil list.
func requireWebhook(t *testing.T, want, got gatehouse.Webhook) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.UserID, got.UserID)
	require.Equal(t, want.URL, got.URL)
	require.NotNil(t, got.Events, "Events is never nil")
	if len(want.Events) == 0 {
		require.Empty(t, got.Events)
	} else {
		require.Equal(t, want.Events, got.Events)
	}
	require.Equal(t, want.Description, got.Description)
	require.Equal(t, want.Active, got.Active, "Active")
	require.Equal(t, want.AllUsers, got.AllUsers, "AllUsers")
	require.Equal(t, want.SecretEnc, got.SecretEnc)
	requireTimePtr(t, want.FailingSince, got.FailingSince, "FailingSince")
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTime(t, want.UpdatedAt, got.UpdatedAt, "UpdatedAt")
}

func webhookIDs(ws []gatehouse.Webhook) []string {
	return idsOf(ws, func(x gatehouse.Webhook) string { return x.ID })
}

func getWebhook(t *testing.T, s store.Store, id string) gatehouse.Webhook {
	t.Helper()
	w, err := s.GetWebhook(t.Context(), id)
	require.NoError(t, err)
	return w
}

func testWebhooksCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	full := newWebhook(u.ID, "user.login", "*", "user.password_changed")
	full.AllUsers, full.FailingSince = true, ptr(base.Add(-time.Minute))
	require.NoError(t, s.CreateWebhook(ctx, full))
	requireWebhook(t, full, getWebhook(t, s, full.ID))

	// Zero values round-trip; no events read back as an empty list.
	for _, events := range [][]string{nil, {}} {
		bare := gatehouse.Webhook{ID: gatehouse.NewID(), UserID: u.ID, URL: "http://localhost:9/x", Events: events,
			SecretEnc: []byte{1}, CreatedAt: base, UpdatedAt: base}
		require.NoError(t, s.CreateWebhook(ctx, bare))
		got := getWebhook(t, s, bare.ID)
		requireWebhook(t, bare, got)
		require.Equal(t, []string{}, got.Events)
	}
}

func testWebhooksCreateRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	w := createWebhook(t, s, u.ID, false)
	dup := newWebhook(u.ID, "user.login")
	dup.ID = w.ID
	require.ErrorIs(t, s.CreateWebhook(ctx, dup), store.ErrConflict)
	requireWebhook(t, w, getWebhook(t, s, w.ID))

	orphan := newWebhook(gatehouse.NewID(), "*")
	require.ErrorIs(t, s.CreateWebhook(ctx, orphan), store.ErrConflict, "an unknown owner")
	_, err := s.GetWebhook(ctx, orphan.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
}

func testWebhooksUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	w := newWebhook(u.ID, "user.login")
	w.FailingSince = ptr(base)
	require.NoError(t, s.CreateWebhook(ctx, w))
	kept := createWebhook(t, s, u.ID, false)

	upd := w
	upd.URL, upd.Events, upd.Description = "http://127.0.0.1:8080/hook", []string{"*"}, ""
	upd.Active, upd.AllUsers, upd.UpdatedAt = false, true, base.Add(time.Hour)
	// Not the owner, secret, failure run or creation time.
	upd.UserID, upd.SecretEnc, upd.FailingSince, upd.CreatedAt = other.ID, []byte("other"), nil, base.Add(99*time.Hour)
	require.NoError(t, s.UpdateWebhook(ctx, upd))
	want := upd
	want.UserID, want.SecretEnc, want.FailingSince, want.CreatedAt = w.UserID, w.SecretEnc, w.FailingSince, w.CreatedAt
	requireWebhook(t, want, getWebhook(t, s, w.ID))

	// And back; nil events are stored as none.
	upd = want
	upd.Active, upd.AllUsers, upd.Events = true, false, nil
	require.NoError(t, s.UpdateWebhook(ctx, upd))
	requireWebhook(t, upd, getWebhook(t, s, w.ID))
	require.NoError(t, s.UpdateWebhook(ctx, upd), "unchanged values still match the row")

	requireWebhook(t, kept, getWebhook(t, s, kept.ID))
	missing := newWebhook(u.ID, "*")
	err := s.UpdateWebhook(ctx, missing)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NotErrorIs(t, err, store.ErrConflict)
	_, err = s.GetWebhook(ctx, missing.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "an update never inserts")
}

func testWebhooksList(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := createUser(t, s), createUser(t, s)
	page, err := s.ListWebhooks(ctx, u.ID, "", 10)
	require.NoError(t, err)
	require.Empty(t, page)

	ids := sortedIDs(5)
	byID := map[string]gatehouse.Webhook{}
	for i := len(ids) - 1; i >= 0; i-- { // newest first: the store sorts
		w := newWebhook(u.ID, "user.login")
		w.ID, w.AllUsers, w.Active = ids[i], i == 1, i != 2
		require.NoError(t, s.CreateWebhook(ctx, w))
		byID[w.ID] = w
	}
	createWebhook(t, s, other.ID, true) // another owner's, even for all users

	var got []gatehouse.Webhook
	after := ""
	for range 10 {
		page, err := s.ListWebhooks(ctx, u.ID, after, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2)
		got = append(got, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	require.Equal(t, ids, webhookIDs(got), "every webhook of the owner once, in id order, inactive ones too")
	for _, w := range got {
		requireWebhook(t, byID[w.ID], w)
	}
	page, err = s.ListWebhooks(ctx, u.ID, ids[1], 100)
	require.NoError(t, err)
	require.Equal(t, ids[2:], webhookIDs(page), "after is exclusive")
	for _, limit := range []int{0, -1} {
		_, err := s.ListWebhooks(ctx, u.ID, "", limit)
		require.Error(t, err, "limit %d", limit)
	}
}

func testWebhooksListSubscribers(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice, bob, carol := createUser(t, s), createUser(t, s), createUser(t, s)
	own := createWebhook(t, s, alice.ID, false)
	ownAll := createWebhook(t, s, alice.ID, true) // alice's own all-users one: listed once
	inactive := newWebhook(alice.ID, "*")
	inactive.Active = false
	require.NoError(t, s.CreateWebhook(ctx, inactive))
	bobs := createWebhook(t, s, bob.ID, false)
	global := createWebhook(t, s, carol.ID, true)
	globalOff := newWebhook(carol.ID, "*")
	globalOff.AllUsers, globalOff.Active = true, false
	require.NoError(t, s.CreateWebhook(ctx, globalOff))

	subs := func(q store.Queries, userID string) []string {
		t.Helper()
		got, err := q.ListSubscribers(ctx, userID)
		require.NoError(t, err)
		for _, w := range got {
			require.True(t, w.Active)
		}
		ids := webhookIDs(got)
		slices.Sort(ids)
		return ids
	}
	sorted := func(ws ...gatehouse.Webhook) []string {
		ids := webhookIDs(ws)
		slices.Sort(ids)
		return ids
	}
	require.Equal(t, sorted(own, ownAll, global), subs(s, alice.ID))
	require.Equal(t, sorted(bobs, ownAll, global), subs(s, bob.ID))
	require.Equal(t, sorted(ownAll, global), subs(s, carol.ID), "carol's own hook is all-users; listed once")
	require.Equal(t, sorted(ownAll, global), subs(s, ""), "an event about no user")
	require.Equal(t, sorted(ownAll, global), subs(s, gatehouse.NewID()))

	// The fan-out reads them inside its transaction.
	require.NoError(t, s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		require.Equal(t, sorted(own, ownAll, global), subs(tx, alice.ID))
		return nil
	}))
	// Full rows come back.
	got, err := s.ListSubscribers(ctx, bob.ID)
	require.NoError(t, err)
	for _, w := range got {
		want := map[string]gatehouse.Webhook{bobs.ID: bobs, ownAll.ID: ownAll, global.ID: global}[w.ID]
		requireWebhook(t, want, w)
	}
}

func testWebhooksDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	w, kept := createWebhook(t, s, u.ID, false), createWebhook(t, s, u.ID, false)
	d := createDelivery(t, s, w.ID, gatehouse.NewID())
	require.NoError(t, s.CreateWebhookAttempt(ctx, gatehouse.WebhookAttempt{DeliveryID: d.ID, Attempt: 1, StartedAt: base}))
	keptDelivery := createDelivery(t, s, kept.ID, gatehouse.NewID())

	require.NoError(t, s.DeleteWebhook(ctx, w.ID))
	_, err := s.GetWebhook(ctx, w.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteWebhook(ctx, w.ID), store.ErrNotFound)
	_, err = s.GetWebhookDelivery(ctx, d.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "deliveries go with their webhook")
	// Its attempts went too: the delivery id is free for a new delivery
	// with a first attempt.
	again := newDelivery(kept.ID, d.ID)
	require.NoError(t, s.CreateWebhookDelivery(ctx, again))
	require.NoError(t, s.CreateWebhookAttempt(ctx, gatehouse.WebhookAttempt{DeliveryID: d.ID, Attempt: 1, StartedAt: base}))

	requireWebhook(t, kept, getWebhook(t, s, kept.ID))
	got, err := s.GetWebhookDelivery(ctx, keptDelivery.ID)
	require.NoError(t, err)
	require.Equal(t, keptDelivery.ID, got.ID)
	require.ErrorIs(t, s.DeleteWebhook(ctx, gatehouse.NewID()), store.ErrNotFound)
}

func testWebhooksDeleteRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	w := createWebhook(t, s, u.ID, false)
	requireOneWinner(t, s, "delete a webhook", store.ErrNotFound, func(ctx context.Context, q store.Queries, _ int) (bool, error) {
		return won(q.DeleteWebhook(ctx, w.ID))
	})
	_, err := s.GetWebhook(t.Context(), w.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testWebhooksDeletedWithUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, kept := createUser(t, s), createUser(t, s)
	w := createWebhook(t, s, u.ID, true)
	d := createDelivery(t, s, w.ID, gatehouse.NewID())
	keptHook := createWebhook(t, s, kept.ID, false)
	require.NoError(t, s.DeleteUser(ctx, u.ID))
	_, err := s.GetWebhook(ctx, w.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetWebhookDelivery(ctx, d.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	page, err := s.ListWebhooks(ctx, u.ID, "", 10)
	require.NoError(t, err)
	require.Empty(t, page)
	requireWebhook(t, keptHook, getWebhook(t, s, keptHook.ID))
}

func testWebhooksFailing(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	w, other := createWebhook(t, s, u.ID, false), createWebhook(t, s, u.ID, false)

	first := base.Add(time.Minute)
	since, err := s.MarkWebhookFailing(ctx, w.ID, first)
	require.NoError(t, err)
	requireTime(t, first, since, "first failure")
	since, err = s.MarkWebhookFailing(ctx, w.ID, first.Add(time.Hour))
	require.NoError(t, err)
	requireTime(t, first, since, "the run's first failure is kept")
	w.FailingSince = &first
	requireWebhook(t, w, getWebhook(t, s, w.ID))
	requireWebhook(t, other, getWebhook(t, s, other.ID))

	require.NoError(t, s.ClearWebhookFailing(ctx, w.ID))
	w.FailingSince = nil
	requireWebhook(t, w, getWebhook(t, s, w.ID))
	require.NoError(t, s.ClearWebhookFailing(ctx, w.ID), "clearing a healthy webhook")
	// A new run starts afresh.
	since, err = s.MarkWebhookFailing(ctx, w.ID, first.Add(2*time.Hour))
	require.NoError(t, err)
	requireTime(t, first.Add(2*time.Hour), since, "a new run")

	_, err = s.MarkWebhookFailing(ctx, gatehouse.NewID(), first)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, s.ClearWebhookFailing(ctx, gatehouse.NewID()), "no error for an unknown id")
}

// testWebhooksMarkFailingRace: deliveries failing at once all read back
// one start of the run, the time of one of them.
func testWebhooksMarkFailingRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	w := createWebhook(t, s, u.ID, false)
	got := raceAll(t, s, nil, func(ctx context.Context, q store.Queries, i int) (time.Time, error) {
		return q.MarkWebhookFailing(ctx, w.ID, racerTime(i))
	})
	first := got[0]
	for i, since := range got {
		require.Truef(t, first.Equal(since), "racer %d saw %s, racer 0 %s", i, since, first)
	}
	isRacers := false
	for i := range racers {
		isRacers = isRacers || norm(racerTime(i)).Equal(first)
	}
	require.True(t, isRacers, "the run starts at one racer's time, not %s", first)
	stored := getWebhook(t, s, w.ID).FailingSince
	requireTimePtr(t, &first, stored, "FailingSince")
}

func testWebhooksDisable(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	w, other := createWebhook(t, s, u.ID, false), createWebhook(t, s, u.ID, false)
	done, err := s.DisableWebhook(ctx, w.ID, base.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, done)
	require.False(t, getWebhook(t, s, w.ID).Active)
	done, err = s.DisableWebhook(ctx, w.ID, base.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, done, "only the first call disables")
	require.True(t, getWebhook(t, s, other.ID).Active)

	// Reactivated by its owner, it may be disabled again.
	w = getWebhook(t, s, w.ID)
	w.Active = true
	require.NoError(t, s.UpdateWebhook(ctx, w))
	done, err = s.DisableWebhook(ctx, w.ID, base.Add(2*time.Hour))
	require.NoError(t, err)
	require.True(t, done)

	done, err = s.DisableWebhook(ctx, gatehouse.NewID(), base)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.False(t, done)
}

// testWebhooksDisableRace: deliveries giving up on a webhook at once turn
// it off once, so its owner gets one email.
func testWebhooksDisableRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	w := createWebhook(t, s, u.ID, false)
	requireOneWinner(t, s, "disable a webhook", nil, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return q.DisableWebhook(ctx, w.ID, racerTime(i))
	})
	require.False(t, getWebhook(t, s, w.ID).Active)
}

// --- deliveries and attempts ---

func newDelivery(webhookID, id string) gatehouse.WebhookDelivery {
	return gatehouse.WebhookDelivery{
		ID: id, WebhookID: webhookID, EventID: gatehouse.NewID(), EventType: "user.login",
		// The exact bytes sent, escapes and all, are kept.
		Payload: []byte(`{"id":"x","data":{"k":"\u0000é","n":1.50}}`),
		Status:  gatehouse.DeliveryPending, CreatedAt: base, NextAttemptAt: ptr(base.Add(time.Second)),
	}
}

func createDelivery(t *testing.T, s store.Store, webhookID, id string) gatehouse.WebhookDelivery {
	t.Helper()
	d := newDelivery(webhookID, id)
	require.NoError(t, s.CreateWebhookDelivery(t.Context(), d))
	return d
}

// requireDelivery compares every stored field but History.
func requireDelivery(t *testing.T, want, got gatehouse.WebhookDelivery) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.WebhookID, got.WebhookID)
	require.Equal(t, want.EventID, got.EventID)
	require.Equal(t, want.EventType, got.EventType)
	require.Equal(t, want.Payload, got.Payload, "payload bytes are kept exactly")
	require.Equal(t, want.Status, got.Status)
	require.Equal(t, want.Attempts, got.Attempts)
	require.Equal(t, want.ResponseStatus, got.ResponseStatus)
	require.Equal(t, want.LastError, got.LastError)
	requireTime(t, want.CreatedAt, got.CreatedAt, "CreatedAt")
	requireTimePtr(t, want.NextAttemptAt, got.NextAttemptAt, "NextAttemptAt")
	requireTimePtr(t, want.DeliveredAt, got.DeliveredAt, "DeliveredAt")
}

func deliveryIDs(ds []gatehouse.WebhookDelivery) []string {
	return idsOf(ds, func(x gatehouse.WebhookDelivery) string { return x.ID })
}

func testWebhooksDeliveries(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	w, other := createWebhook(t, s, u.ID, false), createWebhook(t, s, u.ID, false)
	page, err := s.ListWebhookDeliveries(ctx, w.ID, "", 10)
	require.NoError(t, err)
	require.Empty(t, page)

	ids := sortedIDs(5)
	byID := map[string]gatehouse.WebhookDelivery{}
	for _, i := range []int{3, 0, 4, 1, 2} { // out of order: the store sorts
		d := newDelivery(w.ID, ids[i])
		d.EventType = []string{"user.login", "user.logout"}[i%2]
		if i == 4 {
			d.Status, d.Attempts, d.ResponseStatus, d.LastError = gatehouse.DeliveryFailed, 3, 503, "Service Unavailable"
			d.NextAttemptAt, d.DeliveredAt = nil, ptr(base.Add(time.Hour))
		}
		require.NoError(t, s.CreateWebhookDelivery(ctx, d))
		byID[d.ID] = d
	}
	createDelivery(t, s, other.ID, gatehouse.NewID())

	for _, id := range ids {
		got, err := s.GetWebhookDelivery(ctx, id)
		require.NoError(t, err)
		requireDelivery(t, byID[id], got)
		require.Empty(t, got.History)
	}

	// Newest first, page by page, only this webhook's.
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)
	var all []gatehouse.WebhookDelivery
	before := ""
	for range 10 {
		page, err := s.ListWebhookDeliveries(ctx, w.ID, before, 2)
		require.NoError(t, err)
		all = append(all, page...)
		if len(page) < 2 {
			break
		}
		before = page[len(page)-1].ID
	}
	require.Equal(t, newestFirst, deliveryIDs(all))
	for _, d := range all {
		requireDelivery(t, byID[d.ID], d)
	}
	page, err = s.ListWebhookDeliveries(ctx, w.ID, ids[3], 100)
	require.NoError(t, err)
	require.Equal(t, []string{ids[2], ids[1], ids[0]}, deliveryIDs(page), "before is exclusive")

	// An update writes the progress fields only.
	d := byID[ids[1]]
	upd := d
	upd.Status, upd.Attempts, upd.ResponseStatus, upd.LastError = gatehouse.DeliverySucceeded, 2, 204, ""
	upd.NextAttemptAt, upd.DeliveredAt = nil, ptr(base.Add(time.Minute))
	upd.WebhookID, upd.EventID, upd.EventType = other.ID, gatehouse.NewID(), "ignored"
	upd.Payload, upd.CreatedAt = []byte(`{}`), base.Add(99*time.Hour)
	require.NoError(t, s.UpdateWebhookDelivery(ctx, upd))
	want := upd
	want.WebhookID, want.EventID, want.EventType, want.Payload, want.CreatedAt = d.WebhookID, d.EventID, d.EventType, d.Payload, d.CreatedAt
	got, err := s.GetWebhookDelivery(ctx, d.ID)
	require.NoError(t, err)
	requireDelivery(t, want, got)
	// And back to pending with no status and a next attempt.
	upd = want
	upd.Status, upd.ResponseStatus, upd.LastError, upd.NextAttemptAt, upd.DeliveredAt = gatehouse.DeliveryPending, 0, "timeout", ptr(base), nil
	require.NoError(t, s.UpdateWebhookDelivery(ctx, upd))
	got, err = s.GetWebhookDelivery(ctx, d.ID)
	require.NoError(t, err)
	requireDelivery(t, upd, got)
	require.NoError(t, s.UpdateWebhookDelivery(ctx, upd), "unchanged values still match the row")
}

func testWebhooksDeliveriesRefused(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	w := createWebhook(t, s, u.ID, false)
	d := createDelivery(t, s, w.ID, gatehouse.NewID())

	dup := newDelivery(w.ID, d.ID)
	dup.EventType = "other"
	require.ErrorIs(t, s.CreateWebhookDelivery(ctx, dup), store.ErrConflict)
	orphan := newDelivery(gatehouse.NewID(), gatehouse.NewID())
	require.ErrorIs(t, s.CreateWebhookDelivery(ctx, orphan), store.ErrConflict, "an unknown webhook")
	_, err := s.GetWebhookDelivery(ctx, orphan.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err := s.GetWebhookDelivery(ctx, d.ID)
	require.NoError(t, err)
	requireDelivery(t, d, got)

	missing := newDelivery(w.ID, gatehouse.NewID())
	require.ErrorIs(t, s.UpdateWebhookDelivery(ctx, missing), store.ErrNotFound)
	_, err = s.GetWebhookDelivery(ctx, missing.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "an update never inserts")
	for _, limit := range []int{0, -1} {
		_, err := s.ListWebhookDeliveries(ctx, w.ID, "", limit)
		require.Error(t, err, "limit %d", limit)
	}
}

func testWebhooksAttempts(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	w := createWebhook(t, s, u.ID, false)
	ids := sortedIDs(2)
	d, other := createDelivery(t, s, w.ID, ids[0]), createDelivery(t, s, w.ID, ids[1])
	attempts := []gatehouse.WebhookAttempt{
		{DeliveryID: d.ID, Attempt: 1, StartedAt: base, Duration: 1500 * time.Millisecond, ResponseStatus: 500, Error: "500 Internal Server Error"},
		{DeliveryID: d.ID, Attempt: 2, StartedAt: base.Add(time.Minute), Duration: 30 * time.Second, Error: "dial tcp: connection refused"},
		{DeliveryID: d.ID, Attempt: 3, StartedAt: base.Add(time.Hour), Duration: 0, ResponseStatus: 204},
	}
	for _, i := range []int{2, 0, 1} { // out of order: reads sort by attempt
		require.NoError(t, s.CreateWebhookAttempt(ctx, attempts[i]))
	}
	requireHistory := func(got gatehouse.WebhookDelivery) {
		t.Helper()
		require.Len(t, got.History, len(attempts))
		for i, want := range attempts {
			a := got.History[i]
			require.Equal(t, want.DeliveryID, a.DeliveryID)
			require.Equal(t, want.Attempt, a.Attempt)
			requireTime(t, want.StartedAt, a.StartedAt, "StartedAt")
			require.Equal(t, want.Duration, a.Duration, "Duration (whole milliseconds)")
			require.Equal(t, want.ResponseStatus, a.ResponseStatus)
			require.Equal(t, want.Error, a.Error)
		}
	}
	got, err := s.GetWebhookDelivery(ctx, d.ID)
	require.NoError(t, err)
	requireHistory(got)
	page, err := s.ListWebhookDeliveries(ctx, w.ID, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{other.ID, d.ID}, deliveryIDs(page))
	require.Empty(t, page[0].History, "each delivery has its own history")
	requireHistory(page[1])

	err = s.CreateWebhookAttempt(ctx, gatehouse.WebhookAttempt{DeliveryID: d.ID, Attempt: 2, StartedAt: base})
	require.ErrorIs(t, err, store.ErrConflict, "an attempt number is recorded once")
	err = s.CreateWebhookAttempt(ctx, gatehouse.WebhookAttempt{DeliveryID: gatehouse.NewID(), Attempt: 1, StartedAt: base})
	require.ErrorIs(t, err, store.ErrConflict, "an unknown delivery")
	got, err = s.GetWebhookDelivery(ctx, d.ID)
	require.NoError(t, err)
	requireHistory(got)
}

// testWebhooksAttemptRace: workers that both ran one delivery attempt
// (a job retried while its first run was still going) record it once; the
// loser's transaction, and so its bookkeeping, rolls back.
func testWebhooksAttemptRace(t *testing.T, s store.Store) {
	u := createUser(t, s)
	w := createWebhook(t, s, u.ID, false)
	d := createDelivery(t, s, w.ID, gatehouse.NewID())
	win := requireOneWinner(t, s, "record attempt 1", store.ErrConflict, func(ctx context.Context, q store.Queries, i int) (bool, error) {
		return won(q.CreateWebhookAttempt(ctx, gatehouse.WebhookAttempt{
			DeliveryID: d.ID, Attempt: 1, StartedAt: racerTime(i), ResponseStatus: 200 + i}))
	})
	got, err := s.GetWebhookDelivery(t.Context(), d.ID)
	require.NoError(t, err)
	require.Len(t, got.History, 1)
	require.Equal(t, 200+win, got.History[0].ResponseStatus)
	requireTime(t, racerTime(win), got.History[0].StartedAt, "StartedAt is the winner's")
}

// testWebhooksInTx: the fan-out and the delivery worker use the webhook
// reads inside transactions; their writes roll back with them.
func testWebhooksInTx(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := createUser(t, s)
	w := createWebhook(t, s, u.ID, false)
	d := newDelivery(w.ID, gatehouse.NewID())
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.GetWebhook(ctx, w.ID)
		require.NoError(t, err)
		requireWebhook(t, w, got)
		list, err := tx.ListWebhooks(ctx, u.ID, "", 10)
		require.NoError(t, err)
		require.Equal(t, []string{w.ID}, webhookIDs(list))
		require.NoError(t, tx.CreateWebhookDelivery(ctx, d))
		deliveries, err := tx.ListWebhookDeliveries(ctx, w.ID, "", 10)
		require.NoError(t, err)
		require.Equal(t, []string{d.ID}, deliveryIDs(deliveries), "the transaction sees its own delivery")
		return errBoom
	})
	require.ErrorIs(t, err, errBoom)
	deliveries, err := s.ListWebhookDeliveries(ctx, w.ID, "", 10)
	require.NoError(t, err)
	require.Empty(t, deliveries, "rolled back")
}
