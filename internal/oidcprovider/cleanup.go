package oidcprovider

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
)

// CleanupStore deletes authorization requests that have outlived their use.
type CleanupStore interface {
	DeleteStaleAuthRequests(ctx context.Context, cutoff time.Time) (int64, error)
}

// CleanupArgs is the periodic job that deletes expired authorization
// requests (and their spent or unspent codes).
type CleanupArgs struct{}

// Kind implements river.JobArgs.
func (CleanupArgs) Kind() string { return "oidc.cleanup" }

// InsertOpts puts cleanup on the maintenance queue, one at a time.
func (CleanupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
}

// CleanupWorker runs CleanupArgs.
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	Store  CleanupStore
	Now    func() time.Time
	Logger *slog.Logger
}

// Work deletes requests that expired over an hour ago.
func (w *CleanupWorker) Work(ctx context.Context, _ *river.Job[CleanupArgs]) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	n, err := w.Store.DeleteStaleAuthRequests(ctx, now().UTC().Add(-time.Hour))
	if err != nil {
		return fmt.Errorf("cleanup authorization requests: %w", err)
	}
	if w.Logger != nil && n > 0 {
		w.Logger.InfoContext(ctx, "cleanup", "auth_requests_deleted", n)
	}
	return nil
}

// CleanupPeriodic schedules the cleanup hourly (and once at start).
func CleanupPeriodic() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return CleanupArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
