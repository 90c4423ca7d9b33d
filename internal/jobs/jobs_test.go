package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
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

func TestInsertOnlyClientAndBadDialect(t *testing.T) {
	db := sqltest.SQLite(t)
	client, err := jobs.New(jobs.Config{DB: db.DB(), Dialect: db.Dialect(), InsertOnly: true})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	require.NoError(t, client.Insert(context.Background(), pingArgs{N: 3}, nil))
	require.NoError(t, client.Stop(context.Background()))

	_, err = jobs.New(jobs.Config{DB: db.DB(), Dialect: "oracle"})
	require.ErrorContains(t, err, "unsupported dialect")
}

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
