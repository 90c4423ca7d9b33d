// Package jobs runs Gatehouse's background work on River, over the same SQL
// database as everything else. Jobs are inserted inside the caller's
// transaction, so a job exists exactly when the change that caused it
// committed: a crash never loses an email or webhook, and a rollback never
// sends one.
//
// On SQLite one River client (riversqlite) inserts and works jobs, polling.
// On PostgreSQL two clients share the tables: one on database/sql
// (riverdatabasesql) inserts jobs inside the store's transactions and
// notifies the queue in the same transaction, and one on the pgx pool
// (riverpgxv5) works them, woken by LISTEN/NOTIFY instead of polling.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"
)

// Queue names. Each has its own worker pool so a flood in one (webhooks)
// cannot delay another (login codes by SMS).
const (
	QueueDefault     = river.QueueDefault
	QueueEmail       = "email"
	QueueSMS         = "sms"
	QueueWebhooks    = "webhooks"
	QueueEvents      = "events"
	QueueMaintenance = "maintenance"
)

// The engines the queue runs on (store.SQLite and store.Postgres).
const (
	sqlite   = "sqlite"
	postgres = "postgres"
)

// Database is the SQL store the jobs live in (a *sqlstore.DB).
type Database interface {
	// DB is the database/sql pool, in which the store's transactions run.
	DB() *sql.DB
	// Dialect names the engine: "sqlite" or "postgres".
	Dialect() string
	// Pool is the pgx pool under DB on PostgreSQL (nil on SQLite).
	Pool() *pgxpool.Pool
}

// Tx is a transaction of the store (a store.Tx) that jobs are inserted in.
type Tx interface {
	SQLTx() *sql.Tx
	Dialect() string
}

// Inserter inserts a job inside a transaction (a *Client): it exists only
// if the transaction commits.
type Inserter interface {
	InsertTx(ctx context.Context, tx Tx, args river.JobArgs, opts *river.InsertOpts) error
}

var _ Inserter = (*Client)(nil)

// Client inserts jobs, inside the caller's transaction or on their own.
// It is made first, from the database alone, so every service can be
// given it at construction; the Worker that works the jobs is made last,
// once every service has registered its workers.
type Client struct {
	river   *river.Client[*sql.Tx]
	db      Database
	logger  *slog.Logger
	metrics *jobMetrics // nil until RegisterMetrics
}

// NewWorkers returns an empty worker registry.
func NewWorkers() *river.Workers { return river.NewWorkers() }

// driver returns River's database/sql driver for the dialect.
func driver(db *sql.DB, dialect string) (riverdriver.Driver[*sql.Tx], error) {
	switch dialect {
	case sqlite:
		return riversqlite.New(db), nil
	case postgres:
		return riverdatabasesql.New(db), nil
	default:
		return nil, fmt.Errorf("jobs: unsupported dialect %q", dialect)
	}
}

// RescueStuckJobsAfter is how long after its start a job that is still
// marked running (its process died) is run again, at the soonest: River's
// rescuer, which looks every 30 s, also waits out the job's own Timeout, so
// a long job (the audit prune's 15 minutes) still running elsewhere is never
// doubled while a webhook delivery cut off by a crash goes out again within
// about a minute. It must be at least JobTimeout (River checks).
const RescueStuckJobsAfter = 30 * time.Second

// JobTimeout bounds a job whose worker sets no Timeout of its own.
const JobTimeout = 25 * time.Second

// riverConfig is what every client shares.
func riverConfig(logger *slog.Logger, poll time.Duration, tp trace.TracerProvider) river.Config {
	return river.Config{
		Middleware:           []rivertype.Middleware{&tracing{tp: tp}},
		Logger:               logger.With("component", "jobs"),
		FetchPollInterval:    poll,
		FetchCooldown:        min(poll, river.FetchCooldownDefault),
		JobTimeout:           JobTimeout,
		RescueStuckJobsAfter: RescueStuckJobsAfter,
		MaxAttempts:          10,
		// Completed rows are only bookkeeping; keep a day for debugging.
		CompletedJobRetentionPeriod: 24 * time.Hour,
	}
}

// NewClient makes the inserting client. A nil logger is slog.Default().
func NewClient(db Database, logger *slog.Logger) (*Client, error) {
	if db == nil {
		return nil, errors.New("jobs: no database")
	}
	if logger == nil {
		logger = slog.Default()
	}
	drv, err := driver(db.DB(), db.Dialect())
	if err != nil {
		return nil, err
	}
	cfg := riverConfig(logger, time.Second, nil)
	// This client only inserts; its FetchCooldown is how long River's
	// insert-notify limiter stays quiet on a queue after notifying it. At
	// the default 100 ms a job committed soon after another on the same
	// queue (a second email, the next fan-out stage) sent no notification
	// and waited for the workers' next poll; the workers' own cooldown
	// already spaces their fetches, so every inserting transaction notifies.
	cfg.FetchCooldown = river.FetchCooldownMin
	rc, err := river.NewClient(drv, &cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: new client: %w", err)
	}
	return &Client{river: rc, db: db, logger: logger}, nil
}

// WorkerConfig is what the working client runs.
type WorkerConfig struct {
	// Workers holds every worker; services add theirs with
	// river.AddWorker as they are built.
	Workers *river.Workers
	// PeriodicJobs are scheduled by the leader instance only.
	PeriodicJobs []*river.PeriodicJob
	// PollInterval is how often idle queues look for new jobs (default 1s).
	// On PostgreSQL a notification wakes them sooner; polling is the
	// fallback when the listener's connection is down.
	PollInterval time.Duration
	// TracerProvider makes a span per job worked, linked to the span that
	// enqueued it; nil (tracing off) makes none.
	TracerProvider trace.TracerProvider
}

// Worker works jobs. On SQLite it is a second River client on the same
// database; on PostgreSQL a River client on the pgx pool (riverpgxv5),
// woken by LISTEN/NOTIFY: the inserting client notifies in the inserting
// transaction.
type Worker struct {
	client      *Client
	river       workingClient
	unsubscribe func()
}

// workingClient is the River client that works jobs, whatever its
// driver's transaction type.
type workingClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Subscribe(kinds ...river.EventKind) (<-chan *river.Event, func())
}

// NewWorker makes the client that works jobs on c's database; it works
// nothing until Start.
func NewWorker(c *Client, cfg WorkerConfig) (*Worker, error) {
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Workers == nil {
		cfg.Workers = river.NewWorkers()
	}
	rc := riverConfig(c.logger, cfg.PollInterval, cfg.TracerProvider)
	rc.Workers = cfg.Workers
	rc.PeriodicJobs = cfg.PeriodicJobs
	rc.Queues = map[string]river.QueueConfig{
		QueueDefault:     {MaxWorkers: 10},
		QueueEmail:       {MaxWorkers: 10},
		QueueSMS:         {MaxWorkers: 10},
		QueueWebhooks:    {MaxWorkers: 20},
		QueueEvents:      {MaxWorkers: 10},
		QueueMaintenance: {MaxWorkers: 2},
	}
	w := &Worker{client: c}
	var err error
	if c.db.Dialect() == postgres {
		if c.db.Pool() == nil {
			return nil, errors.New("jobs: PostgreSQL needs the pgx pool to work jobs")
		}
		w.river, err = river.NewClient(riverpgxv5.New(c.db.Pool()), &rc)
	} else {
		var drv riverdriver.Driver[*sql.Tx]
		if drv, err = driver(c.db.DB(), c.db.Dialect()); err == nil {
			w.river, err = river.NewClient(drv, &rc)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: new worker: %w", err)
	}
	return w, nil
}

// Start begins working jobs in the background.
func (w *Worker) Start(ctx context.Context) error {
	if m := w.client.metrics; m != nil && w.unsubscribe == nil {
		events, cancel := w.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
			river.EventKindJobCancelled, river.EventKindJobSnoozed)
		w.unsubscribe = cancel
		go m.observe(events)
	}
	if err := w.river.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// Stop stops fetching new jobs and waits for running ones until ctx ends;
// then it cancels what still runs (River retries those later).
func (w *Worker) Stop(ctx context.Context) error {
	// Stopping closes the metrics subscription; a later Start subscribes anew.
	defer func() { w.unsubscribe = nil }()
	err := w.river.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		hard, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return w.river.StopAndCancel(hard)
	}
	return err
}

// InsertTx enqueues a job inside tx: it runs only if tx commits.
func (c *Client) InsertTx(ctx context.Context, tx Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := c.river.InsertTx(ctx, tx.SQLTx(), args, opts); err != nil {
		return fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// Insert enqueues a job outside any transaction (for work with no
// database change to be atomic with, such as a retry an admin asked for).
func (c *Client) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := c.river.Insert(ctx, args, opts); err != nil {
		return fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// Ping checks the queue is usable: it can read River's tables.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.river.QueueList(ctx, river.NewQueueListParams().First(1))
	return err
}

// River exposes the inserting client, for listing, retrying and deleting
// jobs (in tests and admin operations).
func (c *Client) River() *river.Client[*sql.Tx] { return c.river }

// JobRow is River's job row, re-exported for callers that list jobs.
type JobRow = rivertype.JobRow

// CompleteTx marks the running job completed inside tx, so the job's own
// effects (rows it wrote, jobs it enqueued) and its completion commit
// together: a crash can neither repeat nor lose them. Call it only from
// inside a worker's Work.
//
// It runs River's own completion statement through the database/sql driver
// of tx's engine rather than river.JobCompleteTx, which insists that the
// client working the job speaks tx's type: on PostgreSQL the worker is on
// pgx while the store's transactions are on database/sql.
func CompleteTx[T river.JobArgs](ctx context.Context, tx Tx, job *river.Job[T]) error {
	if job.State != rivertype.JobStateRunning {
		return fmt.Errorf("complete job %d: it is %s, not running", job.ID, job.State)
	}
	var exec riverdriver.ExecutorTx
	if tx.Dialect() == postgres {
		exec = riverdatabasesql.New(nil).UnwrapExecutor(tx.SQLTx())
	} else {
		exec = riversqlite.New(nil).UnwrapExecutor(tx.SQLTx())
	}
	p := riverdriver.JobSetStateCompleted(job.ID, time.Now().UTC(), nil)
	rows, err := exec.JobSetStateIfRunningMany(ctx, &riverdriver.JobSetStateIfRunningManyParams{
		ID: []int64{p.ID}, Attempt: []*int{p.Attempt}, ErrData: [][]byte{p.ErrData},
		FinalizedAt: []*time.Time{p.FinalizedAt}, MetadataDoMerge: []bool{false}, MetadataUpdates: [][]byte{nil},
		ScheduledAt: []*time.Time{p.ScheduledAt}, State: []rivertype.JobState{p.State},
	})
	if err != nil {
		return fmt.Errorf("complete job %d: %w", job.ID, err)
	}
	if len(rows) == 0 || rows[0].State != rivertype.JobStateCompleted {
		return fmt.Errorf("complete job %d: it was no longer running", job.ID)
	}
	return nil
}

// MaintenanceOpts are the insert options of periodic cleanup jobs: the
// maintenance queue, at most one of a kind per ten minutes (every instance
// may schedule it; one runs).
func MaintenanceOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueMaintenance, UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
}

// Hourly schedules args every hour, and once at start.
func Hourly(args river.JobArgs) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return args, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

// Sweeper is a periodic maintenance worker for args A: it deletes what is
// older than Retention through Delete and logs how much went.
type Sweeper[A river.JobArgs] struct {
	river.WorkerDefaults[A]
	// What names what is deleted, in errors and logs ("old events").
	What string
	// Delete removes what was created before cutoff and says how many.
	Delete    func(ctx context.Context, cutoff time.Time) (int64, error)
	Retention time.Duration
	Now       func() time.Time // nil: time.Now
	Logger    *slog.Logger     // nil: no log
}

// Work deletes what is older than the retention.
func (w *Sweeper[A]) Work(ctx context.Context, _ *river.Job[A]) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	n, err := w.Delete(ctx, now().UTC().Add(-w.Retention))
	if err != nil {
		return fmt.Errorf("delete %s: %w", w.What, err)
	}
	if n > 0 && w.Logger != nil {
		w.Logger.InfoContext(ctx, "deleted "+w.What, "count", n, "retention", w.Retention.String())
	}
	return nil
}
