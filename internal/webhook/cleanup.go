package webhook

import (
	"context"
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

// NewCleanupWorker makes the worker of CleanupArgs: it deletes finished
// deliveries older than retention (DefaultDeliveryRetention when zero).
func NewCleanupWorker(st CleanupStore, retention time.Duration, now func() time.Time, logger *slog.Logger) *jobs.Sweeper[CleanupArgs] {
	if retention <= 0 {
		retention = DefaultDeliveryRetention
	}
	return &jobs.Sweeper[CleanupArgs]{What: "old webhook deliveries", Delete: st.DeleteWebhookDeliveriesBefore,
		Retention: retention, Now: now, Logger: logger}
}

// CleanupPeriodic schedules the cleanup hourly (and once at start).
func CleanupPeriodic() *river.PeriodicJob { return jobs.Hourly(CleanupArgs{}) }
