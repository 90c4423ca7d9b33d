package jobs_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/jobs/jobstest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// outcomeArgs asks the worker for one outcome.
type outcomeArgs struct {
	Outcome string `json:"outcome"`
}

func (outcomeArgs) Kind() string { return "test_outcome" }

type outcomeWorker struct {
	river.WorkerDefaults[outcomeArgs]
	snoozed atomic.Bool
}

func (w *outcomeWorker) NextRetry(*river.Job[outcomeArgs]) time.Time { return time.Now() }

func (w *outcomeWorker) Work(_ context.Context, job *river.Job[outcomeArgs]) error {
	switch job.Args.Outcome {
	case jobs.OutcomeRetried:
		if job.Attempt == 1 {
			return errors.New("first attempt fails")
		}
	case jobs.OutcomeFailed:
		return errors.New("always fails")
	case jobs.OutcomeCancelled:
		return river.JobCancel(errors.New("given up"))
	case jobs.OutcomeSnoozed:
		if !w.snoozed.Swap(true) {
			return river.JobSnooze(0)
		}
	}
	return nil
}

// Waiting jobs are counted per queue, kind and state from River's table;
// every finished attempt is counted by outcome. On both engines.
func TestMetrics(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			client := newClient(t, db, &outcomeWorker{})
			reg := prometheus.NewRegistry()
			require.NoError(t, client.RegisterMetrics(reg))

			outcomes := []string{jobs.OutcomeCompleted, jobs.OutcomeRetried, jobs.OutcomeFailed, jobs.OutcomeCancelled, jobs.OutcomeSnoozed}
			require.NoError(t, db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
				for _, o := range outcomes {
					opts := &river.InsertOpts{MaxAttempts: 2}
					if o == jobs.OutcomeFailed {
						opts.MaxAttempts = 1
					}
					if err := client.InsertTx(ctx, tx, outcomeArgs{Outcome: o}, opts); err != nil {
						return err
					}
				}
				return nil
			}))
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP gatehouse_jobs Background jobs waiting (state available, scheduled or retryable) or running, by queue and kind, across all instances.
# TYPE gatehouse_jobs gauge
gatehouse_jobs{kind="test_outcome",queue="default",state="available"} 5
`), "gatehouse_jobs"))
			require.Equal(t, 5.0, gauge(t, reg, "gatehouse_jobs_queued", "default"))
			require.Zero(t, gauge(t, reg, "gatehouse_jobs_queued", jobs.QueueWebhooks), "every queue is present, at 0")
			require.GreaterOrEqual(t, gauge(t, reg, "gatehouse_jobs_oldest_age_seconds", "default"), 0.0)
			require.Less(t, gauge(t, reg, "gatehouse_jobs_oldest_age_seconds", "default"), 3600.0, "seconds, not days or milliseconds")
			require.Zero(t, gauge(t, reg, "gatehouse_jobs_oldest_age_seconds", jobs.QueueEmail))

			require.NoError(t, client.Start(ctx))
			want := map[string]int{jobs.OutcomeCompleted: 3, jobs.OutcomeRetried: 1, jobs.OutcomeFailed: 1, jobs.OutcomeCancelled: 1, jobs.OutcomeSnoozed: 1}
			require.Eventually(t, func() bool {
				for o, n := range want {
					if attempts(t, reg, o) != n {
						return false
					}
				}
				return true
			}, 30*time.Second, 20*time.Millisecond)

			n, err := testutil.GatherAndCount(reg, "gatehouse_jobs")
			require.NoError(t, err)
			require.Zero(t, n, "nothing waits any more")
			require.Zero(t, gauge(t, reg, "gatehouse_jobs_queued", "default"))
			require.Zero(t, gauge(t, reg, "gatehouse_jobs_oldest_age_seconds", "default"))
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			require.NoError(t, client.Stop(sctx))
		})
	}
}

// gauge is the value of the per-queue gauge name for queue.
func gauge(t *testing.T, reg *prometheus.Registry, name, queue string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == queue {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("%s{queue=%q} not found", name, queue)
	return 0
}

// attempts is the gatehouse_job_attempts_total count of outcome.
func attempts(t *testing.T, reg *prometheus.Registry, outcome string) int {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_job_attempts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					n += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return n
}

// newClient is a job client on db working w's jobs, polling often.
func newClient[T river.JobArgs](t *testing.T, db *sqlstore.DB, w river.Worker[T]) *jobstest.Jobs {
	workers := jobs.NewWorkers()
	river.AddWorker(workers, w)
	return jobstest.New(t, db).Work(t, workers, 20*time.Millisecond)
}
