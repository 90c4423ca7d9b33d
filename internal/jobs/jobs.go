// Package jobs runs Gatehouse's background work on River, over the same SQL
// database as everything else (riversqlite on SQLite, riverdatabasesql on
// PostgreSQL). Jobs are inserted inside the caller's transaction, so a job
// exists exactly when the change that caused it committed: a crash never
// loses an email or webhook, and a rollback never sends one.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
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

// Config configures the client.
type Config struct {
	DB      *sql.DB
	Dialect store.Dialect
	Logger  *slog.Logger
	// Workers holds every worker; capability packages add theirs with
	// river.AddWorker before New.
	Workers *river.Workers
	// PeriodicJobs are scheduled by the leader instance only.
	PeriodicJobs []*river.PeriodicJob
	// PollInterval is how often idle queues look for new jobs (default 1s;
	// neither driver here has LISTEN/NOTIFY).
	PollInterval time.Duration
	// InsertOnly makes a client that inserts but never works jobs (CLI
	// commands, tests of enqueueing).
	InsertOnly bool
}

// Client inserts and works jobs.
type Client struct {
	river       *river.Client[*sql.Tx]
	cfg         Config
	metrics     *jobMetrics // nil until RegisterMetrics
	unsubscribe func()
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
// marked running (its process died) is run again.
const RescueStuckJobsAfter = 20 * time.Minute

// New makes a client; it works nothing until Start.
func New(cfg Config) (*Client, error) {
	driver, err := Driver(cfg.DB, cfg.Dialect)
	if err != nil {
		return nil, err
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	rc := &river.Config{
		Logger:            cfg.Logger.With("component", "jobs"),
		FetchPollInterval: cfg.PollInterval,
		FetchCooldown:     min(cfg.PollInterval, river.FetchCooldownDefault),
		JobTimeout:        time.Minute,
		// A job running when its process died is picked up again after
		// this. It must exceed the longest job timeout (the audit prune's
		// 15 minutes) so that a job still running is never doubled;
		// River's default is an hour.
		RescueStuckJobsAfter: RescueStuckJobsAfter,
		MaxAttempts:          10,
		// Completed rows are only bookkeeping; keep a day for debugging.
		CompletedJobRetentionPeriod: 24 * time.Hour,
	}
	if !cfg.InsertOnly {
		if cfg.Workers == nil {
			cfg.Workers = river.NewWorkers()
		}
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
	}
	rc2, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: new client: %w", err)
	}
	return &Client{river: rc2, cfg: cfg}, nil
}

// Start begins working jobs in the background.
func (c *Client) Start(ctx context.Context) error {
	if c.cfg.InsertOnly {
		return nil
	}
	if c.metrics != nil && c.unsubscribe == nil {
		events, cancel := c.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
			river.EventKindJobCancelled, river.EventKindJobSnoozed)
		c.unsubscribe = cancel
		go c.metrics.observe(events)
	}
	if err := c.river.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// Stop stops fetching new jobs and waits for running ones until ctx ends;
// then it cancels what still runs (River retries those later).
func (c *Client) Stop(ctx context.Context) error {
	if c.cfg.InsertOnly {
		return nil
	}
	// Stopping closes the metrics subscription; a later Start subscribes anew.
	defer func() { c.unsubscribe = nil }()
	err := c.river.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		hard, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.river.StopAndCancel(hard)
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

// River exposes the underlying client (subscriptions in tests, metrics).
func (c *Client) River() *river.Client[*sql.Tx] { return c.river }

// JobRow is River's job row, re-exported for callers that list jobs.
type JobRow = rivertype.JobRow

// CompleteTx marks the running job completed inside tx, so the job's own
// effects (rows it wrote, jobs it enqueued) and its completion commit
// together: a crash can neither repeat nor lose them. Call it only from
// inside a worker's Work.
func CompleteTx[T river.JobArgs](ctx context.Context, tx store.Tx, job *river.Job[T]) error {
	_, err := river.JobCompleteTx[riverdriver.Driver[*sql.Tx]](ctx, tx.SQLTx(), job)
	if err != nil {
		return fmt.Errorf("complete job %d: %w", job.ID, err)
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
