package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
)

// LinkArgs is the periodic job that links audit rows left waiting for their
// place in the hash chain. On PostgreSQL a row is linked right after the
// transaction that wrote it commits; a process that dies between the two
// leaves it unlinked (present, but not yet covered by the chain) until this
// job runs.
type LinkArgs struct{}

// Kind implements river.JobArgs.
func (LinkArgs) Kind() string { return "audit.link" }

// InsertOpts puts linking on the maintenance queue, one per minute across
// instances.
func (LinkArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueMaintenance, UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

// LinkPeriodic schedules linking every minute (and once at start).
func LinkPeriodic() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
		func() (river.JobArgs, *river.InsertOpts) { return LinkArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

// Linker links waiting audit rows (the SQL store).
type Linker interface {
	LinkAuditLogs(ctx context.Context) (int, error)
}

// LinkWorker runs LinkArgs.
type LinkWorker struct {
	river.WorkerDefaults[LinkArgs]
	Store  Linker
	Logger *slog.Logger
}

// Work links what waits.
func (w *LinkWorker) Work(ctx context.Context, _ *river.Job[LinkArgs]) error {
	n, err := w.Store.LinkAuditLogs(ctx)
	if err != nil {
		return fmt.Errorf("link audit rows: %w", err)
	}
	if n > 0 && w.Logger != nil {
		w.Logger.WarnContext(ctx, "linked audit rows that a previous process left unlinked", "rows", n)
	}
	return nil
}
