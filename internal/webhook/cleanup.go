package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
)

// DefaultDeliveryRetention is how long finished delivery records are kept
// (GATEHOUSE_WEBHOOK_DELIVERY_RETENTION).
const DefaultDeliveryRetention = 30 * 24 * time.Hour

// CleanupStore deletes old delivery records (a *sqlstore.DB).
type CleanupStore interface {
	// DeleteWebhookDeliveriesBefore deletes succeeded and failed
	// deliveries created before cutoff, with their attempts, and returns
	// how many it deleted. Pending ones stay.
	DeleteWebhookDeliveriesBefore(ctx context.Context, cutoff time.Time) (int64, error)
}

// CleanupArgs is the periodic job that deletes old delivery records.
type CleanupArgs struct{}

// Kind implements river.JobArgs.
func (CleanupArgs) Kind() string { return "webhook.cleanup" }

// InsertOpts puts the cleanup on the maintenance queue, one at a time.
func (CleanupArgs) InsertOpts() river.InsertOpts { return jobs.MaintenanceOpts() }

// CleanupWorker runs CleanupArgs: it deletes finished deliveries older
// than Retention (default DefaultDeliveryRetention).
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	Store     CleanupStore
	Retention time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Work deletes the old records.
func (w *CleanupWorker) Work(ctx context.Context, _ *river.Job[CleanupArgs]) error {
	now, retention := time.Now, w.Retention
	if w.Now != nil {
		now = w.Now
	}
	if retention <= 0 {
		retention = DefaultDeliveryRetention
	}
	n, err := w.Store.DeleteWebhookDeliveriesBefore(ctx, now().UTC().Add(-retention))
	if err != nil {
		return fmt.Errorf("cleanup webhook deliveries: %w", err)
	}
	if n > 0 && w.Logger != nil {
		w.Logger.InfoContext(ctx, "deleted old webhook deliveries", "count", n, "retention", retention.String())
	}
	return nil
}

// CleanupPeriodic schedules the cleanup hourly (and once at start).
func CleanupPeriodic() *river.PeriodicJob { return jobs.Hourly(CleanupArgs{}) }
