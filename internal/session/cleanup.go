package session

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
)

// CleanupStore deletes what has outlived its use.
type CleanupStore interface {
	DeleteStaleSessions(ctx context.Context, cutoff time.Time) (int64, error)
	DeleteStaleOneTimeTokens(ctx context.Context, cutoff time.Time) (int64, error)
}

// CleanupArgs is the periodic job that deletes expired and revoked
// sessions (with their refresh tokens) and spent one-time tokens.
type CleanupArgs struct{}

// Kind implements river.JobArgs.
func (CleanupArgs) Kind() string { return "session.cleanup" }

// InsertOpts puts cleanup on the maintenance queue, one at a time.
func (CleanupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: river.UniqueOpts{ByPeriod: 10 * time.Minute}}
}

// Retention is how long ended sessions and spent tokens are kept (for the
// user's and an administrator's view of recent history) before deletion.
const Retention = 7 * 24 * time.Hour

// CleanupWorker runs CleanupArgs.
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	Store  CleanupStore
	Now    func() time.Time
	Logger *slog.Logger
}

// Work deletes sessions and one-time tokens that ended before the
// retention window.
func (w *CleanupWorker) Work(ctx context.Context, _ *river.Job[CleanupArgs]) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	cutoff := now().UTC().Add(-Retention)
	sessions, err := w.Store.DeleteStaleSessions(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("cleanup sessions: %w", err)
	}
	tokens, err := w.Store.DeleteStaleOneTimeTokens(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("cleanup one-time tokens: %w", err)
	}
	if w.Logger != nil && sessions+tokens > 0 {
		w.Logger.InfoContext(ctx, "cleanup", "sessions_deleted", sessions, "one_time_tokens_deleted", tokens)
	}
	return nil
}

// CleanupPeriodic schedules the cleanup hourly (and once at start).
func CleanupPeriodic() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return CleanupArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
