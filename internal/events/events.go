// Package events records domain events and fans them out. A service emits
// an event inside the transaction of the change it describes: the OnEmit
// hooks (the audit row) run in it, and when any handler has something to
// do for the event (a webhook subscribed to it, a live notification), the
// event row and one River job are written with that change or not at all.
// The event worker then runs every registered handler in one transaction
// that also completes the job, so each handler's own effects (typically
// jobs it enqueues: a webhook delivery, an email) happen exactly once.
//
// An event nobody is listening for (most sign-ins) costs no job: a job is
// three more writes of the job table (insert, fetch, completion), which
// on a login is more than the sign-in's own rows.
package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Args is the job that carries one event to the handlers.
type Args struct {
	EventID string `json:"event_id"`
}

// Kind implements river.JobArgs.
func (Args) Kind() string { return "event" }

// InsertOpts routes event jobs to their own queue.
func (Args) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: jobs.QueueEvents} }

// Handler reacts to an event inside the fan-out transaction. It must not
// call slow external services; it enqueues jobs for them with tx.
type Handler func(ctx context.Context, tx store.Tx, e gatehouse.Event) error

// Interest tells, inside the emitting transaction, whether a handler will
// have anything to do for e. It must answer true whenever the handler
// might act; a false answer for every handler means e is not fanned out.
type Interest func(ctx context.Context, tx store.Tx, e gatehouse.Event) (bool, error)

// Store is what the bus needs from the database.
type Store interface {
	GetEvent(ctx context.Context, id string) (gatehouse.Event, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Bus emits events and holds their handlers.
type Bus struct {
	store    Store
	enqueuer jobs.Inserter
	now      func() time.Time
	handlers []namedHandler
	onEmit   []Handler
}

type namedHandler struct {
	name  string
	fn    Handler
	wants Interest
}

// NewBus makes a bus that enqueues fan-outs with ins. Handle and OnEmit
// register what hears of events, and Register adds the fan-out worker.
func NewBus(st Store, ins jobs.Inserter) *Bus { return &Bus{store: st, enqueuer: ins, now: time.Now} }

// Handle registers a handler and what it wants to see (nil: every
// event); call it before the job client starts.
func (b *Bus) Handle(name string, fn Handler, wants Interest) {
	b.handlers = append(b.handlers, namedHandler{name, fn, wants})
}

// OnEmit registers a hook that Emit runs in the emitting transaction,
// after the event row is written: its error fails the Emit, and so the
// change (the audit trail records every event this way). Call it before
// anything emits.
func (b *Bus) OnEmit(fn Handler) { b.onEmit = append(b.onEmit, fn) }

// Register adds the event worker to a worker registry.
func (b *Bus) Register(workers *river.Workers) {
	river.AddWorker(workers, &worker{bus: b})
}

// Emit runs the OnEmit hooks for e and, when a handler wants it, stores e
// and enqueues its fan-out, all inside tx. It fills ID and CreatedAt when
// empty and returns the event.
func (b *Bus) Emit(ctx context.Context, tx store.Tx, e gatehouse.Event) (gatehouse.Event, error) {
	if b.enqueuer == nil {
		return e, errors.New("events: bus has no enqueuer")
	}
	if !e.Type.Valid() {
		return e, fmt.Errorf("events: unknown event type %q", e.Type)
	}
	if e.ID == "" {
		e.ID = gatehouse.NewID()
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = b.now().UTC()
	}
	if e.Data == nil {
		e.Data = map[string]any{}
	}
	for _, fn := range b.onEmit {
		if err := fn(ctx, tx, e); err != nil {
			return e, fmt.Errorf("emit %s: %w", e.Type, err)
		}
	}
	wanted, err := b.wanted(ctx, tx, e)
	if err != nil || !wanted {
		return e, err
	}
	if err := tx.CreateEvent(ctx, e); err != nil {
		return e, fmt.Errorf("emit %s: %w", e.Type, err)
	}
	if err := b.enqueuer.InsertTx(ctx, tx, Args{EventID: e.ID}, nil); err != nil {
		return e, fmt.Errorf("emit %s: %w", e.Type, err)
	}
	return e, nil
}

// wanted reports whether any handler has something to do for e.
func (b *Bus) wanted(ctx context.Context, tx store.Tx, e gatehouse.Event) (bool, error) {
	for _, h := range b.handlers {
		if h.wants == nil {
			return true, nil
		}
		ok, err := h.wants(ctx, tx, e)
		if err != nil {
			return false, fmt.Errorf("emit %s: handler %s: %w", e.Type, h.name, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

type worker struct {
	river.WorkerDefaults[Args]
	bus *Bus
}

func (w *worker) Timeout(*river.Job[Args]) time.Duration { return 30 * time.Second }

func (w *worker) Work(ctx context.Context, job *river.Job[Args]) error {
	e, err := w.bus.store.GetEvent(ctx, job.Args.EventID)
	if errors.Is(err, store.ErrNotFound) {
		// The event's owner was deleted with everything it owned; nothing
		// is left to tell anyone.
		return river.JobCancel(fmt.Errorf("event %s no longer exists", job.Args.EventID))
	}
	if err != nil {
		return err
	}
	return w.bus.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, h := range w.bus.handlers {
			if err := h.fn(ctx, tx, e); err != nil {
				return fmt.Errorf("event %s handler %s: %w", e.Type, h.name, err)
			}
		}
		// The row was only the fan-out's input; the audit row is the record.
		if err := tx.DeleteEvent(ctx, e.ID); err != nil {
			return err
		}
		return jobs.CompleteTx(ctx, tx, job)
	})
}
