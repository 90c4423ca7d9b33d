package events

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
)

// Retention is how long an event row may outlive its fan-out. The fan-out
// deletes the row when it succeeds; one whose job was discarded or
// cancelled (or written before fan-outs deleted their rows) is left, and
// the cleanup removes it after this. It is far past the last retry of a
// fan-out (ten attempts with River's backoff take about seven hours).
const Retention = 7 * 24 * time.Hour

// CleanupStore deletes old event rows (a *sqlstore.DB).
type CleanupStore interface {
	// DeleteEventsBefore deletes events created before cutoff and
	// returns how many.
	DeleteEventsBefore(ctx context.Context, cutoff time.Time) (int64, error)
}

// CleanupArgs is the periodic job that deletes event rows left behind.
type CleanupArgs struct{}

// Kind implements river.JobArgs.
func (CleanupArgs) Kind() string { return "events.cleanup" }

// InsertOpts puts the cleanup on the maintenance queue, one at a time.
func (CleanupArgs) InsertOpts() river.InsertOpts { return jobs.MaintenanceOpts() }

// NewCleanupWorker makes the worker of CleanupArgs. Their audit rows
// stay: the audit trail, not the events table, is the record.
func NewCleanupWorker(st CleanupStore, now func() time.Time, logger *slog.Logger) *jobs.Sweeper[CleanupArgs] {
	return &jobs.Sweeper[CleanupArgs]{What: "event rows left behind by their fan-out", Delete: st.DeleteEventsBefore,
		Retention: Retention, Now: now, Logger: logger}
}

// CleanupPeriodic schedules the cleanup hourly (and once at start).
func CleanupPeriodic() *river.PeriodicJob { return jobs.Hourly(CleanupArgs{}) }
