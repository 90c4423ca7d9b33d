// Package jobstest gives tests a job client and its worker as one value,
// the way the server has them: the client first (services take it at
// construction), the worker once the workers are registered.
package jobstest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
)

// Jobs is a client that inserts and, after Work, the worker that works
// its jobs.
type Jobs struct {
	*jobs.Client
	Worker *jobs.Worker
}

// New makes the inserting client on db.
func New(t testing.TB, db jobs.Database) *Jobs {
	t.Helper()
	c, err := jobs.NewClient(db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("jobstest: %v", err)
	}
	return &Jobs{Client: c}
}

// Work makes the worker of workers' jobs, polling every poll (0: one
// second); nothing is worked until Start. It returns j.
func (j *Jobs) Work(t testing.TB, workers *river.Workers, poll time.Duration) *Jobs {
	t.Helper()
	w, err := jobs.NewWorker(j.Client, jobs.WorkerConfig{Workers: workers, PollInterval: poll})
	if err != nil {
		t.Fatalf("jobstest: %v", err)
	}
	j.Worker = w
	return j
}

// Start starts the worker.
func (j *Jobs) Start(ctx context.Context) error { return j.Worker.Start(ctx) }

// Stop stops the worker.
func (j *Jobs) Stop(ctx context.Context) error { return j.Worker.Stop(ctx) }
