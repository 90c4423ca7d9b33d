package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/jobs/jobstest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

type pingArgs struct {
	N int `json:"n"`
}

func (pingArgs) Kind() string { return "test_ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
	runs map[int]*atomic.Int32
}

func (w *pingWorker) Work(_ context.Context, job *river.Job[pingArgs]) error {
	w.runs[job.Args.N].Add(1)
	return nil
}

// A job inserted in a transaction that rolls back never runs; one that
// commits runs exactly once. On both engines.
func TestInsertTxRunsOnlyWhenCommitted(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			w := &pingWorker{runs: map[int]*atomic.Int32{1: {}, 2: {}}}
			client := newClient(t, db, w)

			errRollback := errors.New("roll back")
			err := db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				require.NoError(t, client.InsertTx(ctx, tx, pingArgs{N: 1}, nil))
				return errRollback
			})
			require.ErrorIs(t, err, errRollback)
			require.NoError(t, db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				return client.InsertTx(ctx, tx, pingArgs{N: 2}, nil)
			}))

			require.NoError(t, client.Start(ctx))
			require.NoError(t, client.Ping(ctx))
			require.Eventually(t, func() bool { return w.runs[2].Load() == 1 }, 10*time.Second, 10*time.Millisecond)
			time.Sleep(200 * time.Millisecond)
			require.EqualValues(t, 0, w.runs[1].Load(), "rolled-back job ran")
			require.EqualValues(t, 1, w.runs[2].Load(), "committed job ran more than once")

			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			require.NoError(t, client.Stop(sctx))
		})
	}
}

func TestClientAloneAndBadDialect(t *testing.T) {
	db := sqltest.SQLite(t)
	client, err := jobs.NewClient(db, quiet)
	require.NoError(t, err)
	require.NoError(t, client.Insert(context.Background(), pingArgs{N: 3}, nil))
	require.NoError(t, client.Ping(context.Background()))

	_, err = jobs.NewClient(oracle{db}, quiet)
	require.ErrorContains(t, err, "unsupported dialect")
	_, err = jobs.NewClient(nil, quiet)
	require.ErrorContains(t, err, "no database")
}

// oracle is a database of a dialect the queue does not speak.
type oracle struct{ jobs.Database }

func (oracle) Dialect() string { return "oracle" }

// A Sweeper deletes what is older than its retention, at the time its
// clock says, and names what it failed to delete.
func TestSweeperCutoffAndErrors(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	var cutoff time.Time
	errDisk := errors.New("disk gone")
	var fail bool
	w := &jobs.Sweeper[pingArgs]{What: "old pings", Retention: time.Hour, Now: func() time.Time { return now },
		Delete: func(_ context.Context, c time.Time) (int64, error) {
			cutoff = c
			if fail {
				return 0, errDisk
			}
			return 3, nil
		}}
	require.NoError(t, w.Work(t.Context(), nil))
	require.Equal(t, now.UTC().Add(-time.Hour), cutoff)
	require.Equal(t, time.UTC, cutoff.Location())
	fail = true
	err := w.Work(t.Context(), nil)
	require.ErrorIs(t, err, errDisk)
	require.ErrorContains(t, err, "delete old pings")
}

type slowArgs struct {
	Timeout time.Duration `json:"timeout"`
}

func (slowArgs) Kind() string { return "test_slow" }

// slowWorker's jobs each declare their own timeout.
type slowWorker struct {
	river.WorkerDefaults[slowArgs]
	runs atomic.Int32
}

func (w *slowWorker) Timeout(job *river.Job[slowArgs]) time.Duration { return job.Args.Timeout }

func (w *slowWorker) Work(context.Context, *river.Job[slowArgs]) error {
	w.runs.Add(1)
	return nil
}

// A job left running by a process that died (killed mid-delivery) is run
// again once it has been running for RescueStuckJobsAfter and its own
// timeout, within about a minute of the crash; a long job whose own
// timeout has not passed (the audit prune, 15 minutes) is left alone, so
// it is never doubled while it may still be running elsewhere.
func TestCrashedJobsAreRescuedLongOnesAreNot(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			inserter, err := jobs.NewClient(db, quiet)
			require.NoError(t, err)
			require.NoError(t, inserter.Insert(ctx, slowArgs{Timeout: 10 * time.Second}, nil))
			require.NoError(t, inserter.Insert(ctx, slowArgs{Timeout: 15 * time.Minute}, nil))
			// As a killed process leaves them: running, attempted a minute ago.
			started := time.Now().Add(-time.Minute).UTC()
			at := any(started)
			if db.Dialect() == store.SQLite {
				at = started.Format("2006-01-02 15:04:05.000000")
			}
			q := `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = $1`
			if db.Dialect() == store.SQLite {
				q = `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = ?`
			}
			_, err = db.DB().ExecContext(ctx, q, at)
			require.NoError(t, err)

			w := &slowWorker{}
			workers := jobs.NewWorkers()
			river.AddWorker(workers, w)
			client := jobstest.New(t, db).Work(t, workers, 50*time.Millisecond)
			require.NoError(t, client.Start(ctx))
			t.Cleanup(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = client.Stop(sctx)
			})
			require.Eventually(t, func() bool { return w.runs.Load() == 1 }, 45*time.Second, 50*time.Millisecond,
				"the job cut off by the crash runs again")
			time.Sleep(500 * time.Millisecond)
			require.EqualValues(t, 1, w.runs.Load(), "the long job, maybe still running elsewhere, is not doubled")
			list, err := client.River().JobList(ctx, river.NewJobListParams().Kinds(slowArgs{}.Kind()).States("running"))
			require.NoError(t, err)
			require.Len(t, list.Jobs, 1)
		})
	}
}

var quiet = slog.New(slog.DiscardHandler)

// On PostgreSQL the worker listens: a job committed by another client (the
// store's database/sql one) runs at once, long before the next poll; so
// does one committed right after another on the same queue (River's
// insert-notify limiter would otherwise skip its notification).
func TestPostgresWorkerIsNotified(t *testing.T) {
	if os.Getenv(sqltest.PostgresURLEnv) == "" {
		t.Skip("needs PostgreSQL")
	}
	ctx := t.Context()
	db := sqltest.Postgres(t)
	w := &pingWorker{runs: map[int]*atomic.Int32{7: {}, 8: {}}}
	workers := jobs.NewWorkers()
	river.AddWorker(workers, w)
	client := jobstest.New(t, db).Work(t, workers, time.Minute)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	})
	time.Sleep(2 * time.Second) // the listener is up and the first poll is over
	for _, n := range []int{7, 8} {
		require.NoError(t, db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
			return client.InsertTx(ctx, tx, pingArgs{N: n}, nil)
		}))
	}
	require.Eventually(t, func() bool { return w.runs[7].Load() == 1 && w.runs[8].Load() == 1 },
		10*time.Second, 20*time.Millisecond)
}
