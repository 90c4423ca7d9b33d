package events_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/events"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/jobs/jobstest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// recorder collects the events a handler saw.
type recorder struct {
	mu   sync.Mutex
	seen []gatehouse.Event
}

func (r *recorder) handle(_ context.Context, _ store.Tx, e gatehouse.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, e)
	return nil
}

func (r *recorder) events() []gatehouse.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gatehouse.Event(nil), r.seen...)
}

// An event emitted in a transaction that commits is stored and handled
// exactly once; one emitted in a transaction that rolls back leaves no
// row and is never handled.
func TestEmitIsTransactional(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			rec := &recorder{}
			client := jobstest.New(t, db)
			bus := events.NewBus(db, client)
			bus.Handle("recorder", rec.handle, nil)
			workers := jobs.NewWorkers()
			bus.Register(workers)
			client.Work(t, workers, 20*time.Millisecond)
			var err error

			var rolledBack gatehouse.Event
			errBoom := errors.New("boom")
			err = db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				rolledBack, err = bus.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLocked, UserID: "u-rollback"})
				require.NoError(t, err)
				return errBoom
			})
			require.ErrorIs(t, err, errBoom)

			var committed gatehouse.Event
			require.NoError(t, db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				committed, err = bus.Emit(ctx, tx, gatehouse.Event{
					Type: gatehouse.EventUserRegistered, UserID: "u-1", Data: map[string]any{"email": "a@example.com"},
				})
				return err
			}))
			require.NotEmpty(t, committed.ID)

			stored, err := db.GetEvent(ctx, committed.ID)
			require.NoError(t, err)
			require.Equal(t, gatehouse.EventUserRegistered, stored.Type)
			_, err = db.GetEvent(ctx, rolledBack.ID)
			require.ErrorIs(t, err, store.ErrNotFound)

			require.NoError(t, client.Start(ctx))
			t.Cleanup(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				require.NoError(t, client.Stop(sctx))
			})
			require.Eventually(t, func() bool { return len(rec.events()) >= 1 }, 10*time.Second, 10*time.Millisecond)
			// Give a duplicate or the rolled-back job time to show up if it existed.
			time.Sleep(300 * time.Millisecond)
			seen := rec.events()
			require.Len(t, seen, 1)
			require.Equal(t, committed.ID, seen[0].ID)
			require.Equal(t, "u-1", seen[0].UserID)
			require.Equal(t, "a@example.com", seen[0].Data["email"])
		})
	}
}

// A failing handler makes the job retry; its effects roll back with it.
func TestHandlerFailureRetries(t *testing.T) {
	ctx := context.Background()
	db := sqltest.SQLite(t)
	var mu sync.Mutex
	calls := 0
	client := jobstest.New(t, db)
	bus := events.NewBus(db, client)
	bus.Handle("flaky", func(context.Context, store.Tx, gatehouse.Event) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return errors.New("temporary")
		}
		return nil
	}, nil)
	workers := jobs.NewWorkers()
	bus.Register(workers)
	client.Work(t, workers, 20*time.Millisecond)
	require.NoError(t, db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := bus.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserDeleted})
		return err
	}))
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls >= 1
	}, 10*time.Second, 10*time.Millisecond)
	// River's first retry comes after a few seconds; ask for it now.
	list, err := client.River().JobList(ctx, river.NewJobListParams().Kinds("event"))
	require.NoError(t, err)
	require.Len(t, list.Jobs, 1)
	require.Eventually(t, func() bool {
		_, _ = client.River().JobRetry(ctx, list.Jobs[0].ID)
		mu.Lock()
		defer mu.Unlock()
		return calls >= 2
	}, 15*time.Second, 50*time.Millisecond)
}

func TestEmitRefusesUnknownTypesAndMissingEnqueuer(t *testing.T) {
	ctx := context.Background()
	db := sqltest.SQLite(t)
	bus := events.NewBus(db, nil)
	err := db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := bus.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserLogin})
		return err
	})
	require.ErrorContains(t, err, "no enqueuer")

	bus = events.NewBus(db, jobstest.New(t, db))
	err = db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := bus.Emit(ctx, tx, gatehouse.Event{Type: "user.exploded"})
		return err
	})
	require.ErrorContains(t, err, "unknown event type")
}

// An event no handler wants runs the emit hooks but writes no event row
// and no job; one that any handler wants is stored and fanned out to
// every handler. An interest that fails fails the emit, and the change.
func TestEmitFansOutOnlyWhatSomeoneWants(t *testing.T) {
	ctx := context.Background()
	db := sqltest.SQLite(t)
	client := jobstest.New(t, db)
	bus := events.NewBus(db, client)
	rec, other := &recorder{}, &recorder{}
	errInterest := errors.New("interest down")
	bus.Handle("logins", rec.handle, func(_ context.Context, _ store.Tx, e gatehouse.Event) (bool, error) {
		if e.Type == gatehouse.EventUserDeleted {
			return false, errInterest
		}
		return e.Type == gatehouse.EventUserLogin, nil
	})
	bus.Handle("nothing", other.handle, func(context.Context, store.Tx, gatehouse.Event) (bool, error) { return false, nil })
	hooked := &recorder{}
	bus.OnEmit(hooked.handle)
	workers := jobs.NewWorkers()
	bus.Register(workers)
	client.Work(t, workers, 20*time.Millisecond)

	emit := func(typ gatehouse.EventType) (gatehouse.Event, error) {
		var e gatehouse.Event
		err := db.InTx(ctx, func(ctx context.Context, tx store.Tx) (err error) {
			e, err = bus.Emit(ctx, tx, gatehouse.Event{Type: typ, UserID: "u-1"})
			return err
		})
		return e, err
	}
	ignored, err := emit(gatehouse.EventUserLocked)
	require.NoError(t, err)
	login, err := emit(gatehouse.EventUserLogin)
	require.NoError(t, err)
	_, err = emit(gatehouse.EventUserDeleted)
	require.ErrorIs(t, err, errInterest)

	require.Len(t, hooked.events(), 3, "the emit hooks (the audit row) see every event")
	_, err = db.GetEvent(ctx, ignored.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = db.GetEvent(ctx, login.ID)
	require.NoError(t, err)
	list, err := client.River().JobList(ctx, river.NewJobListParams().Kinds("event"))
	require.NoError(t, err)
	require.Len(t, list.Jobs, 1)

	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })
	require.Eventually(t, func() bool { return len(rec.events()) == 1 && len(other.events()) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, login.ID, rec.events()[0].ID)
	require.Equal(t, login.ID, other.events()[0].ID, "a fanned-out event reaches every handler")
	require.Eventually(t, func() bool {
		_, err := db.GetEvent(ctx, login.ID)
		return errors.Is(err, store.ErrNotFound)
	}, 10*time.Second, 10*time.Millisecond, "the fan-out removes the event row")
}

// The cleanup deletes event rows older than Retention (left behind by a
// fan-out that never finished) and keeps the rest.
func TestCleanupDeletesRowsLeftBehind(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			var old, recent []string
			for i, age := range []time.Duration{events.Retention + time.Hour, events.Retention + 24*time.Hour, events.Retention - time.Hour, time.Minute} {
				ev := gatehouse.Event{ID: gatehouse.NewID(), Type: gatehouse.EventUserLogin, UserID: "u", CreatedAt: now.Add(-age)}
				require.NoError(t, db.CreateEvent(ctx, ev), i)
				if age > events.Retention {
					old = append(old, ev.ID)
				} else {
					recent = append(recent, ev.ID)
				}
			}
			w := events.NewCleanupWorker(db, func() time.Time { return now }, nil)
			require.NoError(t, w.Work(ctx, nil))
			for _, id := range old {
				_, err := db.GetEvent(ctx, id)
				require.ErrorIs(t, err, store.ErrNotFound)
			}
			for _, id := range recent {
				_, err := db.GetEvent(ctx, id)
				require.NoError(t, err)
			}
			n, err := db.DeleteEventsBefore(ctx, now)
			require.NoError(t, err)
			require.EqualValues(t, len(recent), n)
		})
	}
}
