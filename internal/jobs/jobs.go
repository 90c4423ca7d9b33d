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

	"github.com/gatehouse-auth/gatehouse/internal/store"
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

// Database is the SQL store the jobs live in (a *sqlstore.DB).
type Database interface {
	// DB is the database/sql pool, in which the store's transactions run.
	DB() *sql.DB
	// Dialect names the engine.
	Dialect() store.Dialect
	// Pool is the pgx pool under DB on PostgreSQL (nil on SQLite).
	Pool() *pgxpool.Pool
}

// Config configures the client.
type Config struct {
	DB     Database
	Logger *slog.Logger
	// Workers holds every worker; capability packages add theirs with
	// river.AddWorker before New.
	Workers *river.Workers
	// PeriodicJobs are scheduled by the leader instance only.
	PeriodicJobs []*river.PeriodicJob
	// PollInterval is how often idle queues look for new jobs (default 1s).
	// On PostgreSQL a notification wakes them sooner; polling is the
	// fallback when the listener's connection is down.
	PollInterval time.Duration
	// InsertOnly makes a client that inserts but never works jobs (CLI
	// commands, tests of enqueueing).
	InsertOnly bool
}

// Client inserts and works jobs.
type Client struct {
	river       *river.Client[*sql.Tx] // inserts (and, on SQLite, works)
	worker      worker                 // works jobs; nil when InsertOnly
	cfg         Config
	metrics     *jobMetrics // nil until RegisterMetrics
	unsubscribe func()
}

// worker is the River client that works jobs, whatever its driver's
// transaction type.
type worker interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Subscribe(kinds ...river.EventKind) (<-chan *river.Event, func())
}

// NewWorkers returns an empty worker registry.
func NewWorkers() *river.Workers { return river.NewWorkers() }

// Driver returns River's driver for the dialect.
func Driver(db *sql.DB, dialect store.Dialect) (riverdriver.Driver[*sql.Tx], error) {
	switch dialect {
	case store.SQLite:
		return riversqlite.New(db), nil
	case store.Postgres:
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

// New makes a client; it works nothing until Start.
func New(cfg Config) (*Client, error) {
	if cfg.DB == nil {
		return nil, errors.New("jobs: no database")
	}
	dialect := cfg.DB.Dialect()
	driver, err := Driver(cfg.DB.DB(), dialect)
	if err != nil {
		return nil, err
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	base := river.Config{
		Logger:               cfg.Logger.With("component", "jobs"),
		FetchPollInterval:    cfg.PollInterval,
		FetchCooldown:        min(cfg.PollInterval, river.FetchCooldownDefault),
		JobTimeout:           JobTimeout,
		RescueStuckJobsAfter: RescueStuckJobsAfter,
		MaxAttempts:          10,
		// Completed rows are only bookkeeping; keep a day for debugging.
		CompletedJobRetentionPeriod: 24 * time.Hour,
	}
	working := base
	if !cfg.InsertOnly {
		if cfg.Workers == nil {
			cfg.Workers = river.NewWorkers()
		}
		working.Workers = cfg.Workers
		working.PeriodicJobs = cfg.PeriodicJobs
		working.Queues = map[string]river.QueueConfig{
			QueueDefault:     {MaxWorkers: 10},
			QueueEmail:       {MaxWorkers: 10},
			QueueSMS:         {MaxWorkers: 10},
			QueueWebhooks:    {MaxWorkers: 20},
			QueueEvents:      {MaxWorkers: 10},
			QueueMaintenance: {MaxWorkers: 2},
		}
	}
	c := &Client{cfg: cfg}
	if dialect != store.Postgres || cfg.InsertOnly {
		// One client does everything (SQLite), or only inserts.
		if c.river, err = river.NewClient(driver, &working); err != nil {
			return nil, fmt.Errorf("jobs: new client: %w", err)
		}
		if !cfg.InsertOnly {
			c.worker = c.river
		}
		return c, nil
	}
	if cfg.DB.Pool() == nil {
		return nil, errors.New("jobs: PostgreSQL needs the pgx pool to work jobs")
	}
	if c.river, err = river.NewClient(driver, &base); err != nil {
		return nil, fmt.Errorf("jobs: new client: %w", err)
	}
	if c.worker, err = river.NewClient(riverpgxv5.New(cfg.DB.Pool()), &working); err != nil {
		return nil, fmt.Errorf("jobs: new worker: %w", err)
	}
	return c, nil
}

// Start begins working jobs in the background.
func (c *Client) Start(ctx context.Context) error {
	if c.worker == nil {
		return nil
	}
	if c.metrics != nil && c.unsubscribe == nil {
		events, cancel := c.worker.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
			river.EventKindJobCancelled, river.EventKindJobSnoozed)
		c.unsubscribe = cancel
		go c.metrics.observe(events)
	}
	if err := c.worker.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// Stop stops fetching new jobs and waits for running ones until ctx ends;
// then it cancels what still runs (River retries those later).
func (c *Client) Stop(ctx context.Context) error {
	if c.worker == nil {
		return nil
	}
	// Stopping closes the metrics subscription; a later Start subscribes anew.
	defer func() { c.unsubscribe = nil }()
	err := c.worker.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		hard, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.worker.StopAndCancel(hard)
	}
	return err
}

// InsertTx enqueues a job inside tx: it runs only if tx commits.
func (c *Client) InsertTx(ctx context.Context, tx store.Tx, args river.JobArgs, opts *river.InsertOpts) error {
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

// River exposes the client on database/sql, for listing, retrying and
// deleting jobs (in tests and admin operations). On PostgreSQL it is not
// the one working jobs.
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
func CompleteTx[T river.JobArgs](ctx context.Context, tx store.Tx, job *river.Job[T]) error {
	if job.State != rivertype.JobStateRunning {
		return fmt.Errorf("complete job %d: it is %s, not running", job.ID, job.State)
	}
	var exec riverdriver.ExecutorTx
	if tx.Dialect() == store.Postgres {
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
