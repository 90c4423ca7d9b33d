package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Attempt outcomes, the outcome label of gatehouse_job_attempts_total.
const (
	OutcomeCompleted = "completed"
	OutcomeRetried   = "retried"   // failed; River will try again
	OutcomeFailed    = "failed"    // failed for good: no attempts left (discarded)
	OutcomeCancelled = "cancelled" // the worker gave up on it (JobCancel)
	OutcomeSnoozed   = "snoozed"   // put off without counting an attempt (JobSnooze)
)

// jobMetrics exports River's work to Prometheus in two ways, each where it
// is accurate and cheap:
//
//   - gatehouse_jobs{queue,kind,state}: jobs waiting (state available,
//     scheduled or retryable) and running, across every instance, counted
//     in River's job table at scrape time. River's client API can only list
//     jobs a page at a time, so one GROUP BY on river_job (covered by
//     River's index on state and queue) is far cheaper than paging.
//   - gatehouse_jobs_queued{queue} and gatehouse_jobs_oldest_age_seconds{queue}:
//     jobs ready to run and not yet taken (state available), and how long
//     the oldest of them has been ready, for every queue (0 when empty).
//     A growing age is a backlog whatever its size.
//   - gatehouse_job_attempts_total{queue,kind,outcome}: the attempts this
//     instance finished, from River's event subscription, so nothing is
//     missed between scrapes.
type jobMetrics struct {
	client    *Client
	queued    *prometheus.Desc
	ready     *prometheus.Desc
	oldestAge *prometheus.Desc
	attempts  *prometheus.CounterVec
}

// Queues lists every queue the worker serves, so the per-queue gauges
// show each at 0 before it ever holds a job.
var Queues = []string{QueueDefault, QueueEmail, QueueSMS, QueueWebhooks, QueueEvents, QueueMaintenance}

// scrapeTimeout bounds the count query, so a slow database cannot hold up
// the whole scrape.
const scrapeTimeout = 2 * time.Second

// RegisterMetrics adds the job metrics to reg. The attempt counters are
// fed from Start on (a client that only inserts has none to count).
func (c *Client) RegisterMetrics(reg prometheus.Registerer) error {
	m := &jobMetrics{
		client: c,
		queued: prometheus.NewDesc("gatehouse_jobs",
			"Background jobs waiting (state available, scheduled or retryable) or running, by queue and kind, across all instances.",
			[]string{"queue", "kind", "state"}, nil),
		ready: prometheus.NewDesc("gatehouse_jobs_queued",
			"Background jobs ready to run and not yet taken by a worker (state available), by queue, across all instances.",
			[]string{"queue"}, nil),
		oldestAge: prometheus.NewDesc("gatehouse_jobs_oldest_age_seconds",
			"How long the oldest job ready to run in each queue has waited since it became runnable (0 when none waits).",
			[]string{"queue"}, nil),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_job_attempts_total",
			Help: "Job attempts this instance finished, by queue, kind and outcome: completed, retried (failed, to be tried again), failed (failed for good, discarded), cancelled, snoozed.",
		}, []string{"queue", "kind", "outcome"}),
	}
	if err := reg.Register(m); err != nil {
		return fmt.Errorf("register job metrics: %w", err)
	}
	c.metrics = m
	return nil
}

// Describe implements prometheus.Collector.
func (m *jobMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.queued
	ch <- m.ready
	ch <- m.oldestAge
	m.attempts.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *jobMetrics) Collect(ch chan<- prometheus.Metric) {
	m.attempts.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := m.client.countWaiting(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.queued, err)
		return
	}
	for _, c := range counts {
		ch <- prometheus.MustNewConstMetric(m.queued, prometheus.GaugeValue, float64(c.n), c.queue, c.kind, c.state)
	}
	backlog, err := m.client.backlog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.ready, err)
		return
	}
	for _, q := range Queues {
		if _, ok := backlog[q]; !ok {
			backlog[q] = queueBacklog{}
		}
	}
	for q, b := range backlog {
		ch <- prometheus.MustNewConstMetric(m.ready, prometheus.GaugeValue, float64(b.n), q)
		ch <- prometheus.MustNewConstMetric(m.oldestAge, prometheus.GaugeValue, max(b.age, 0), q)
	}
}

type queueBacklog struct {
	n   int64
	age float64 // seconds
}

// backlog counts the available jobs of each queue and the age of the
// oldest, computed by the database against its own clock (River dates
// jobs with it). River's fetch index (state, queue, priority,
// scheduled_at) serves the query.
func (c *Client) backlog(ctx context.Context) (map[string]queueBacklog, error) {
	q := `SELECT queue, count(*), (julianday('now') - julianday(min(scheduled_at))) * 86400.0
		FROM river_job WHERE state = 'available' GROUP BY queue`
	if c.db.Dialect() == postgres {
		q = `SELECT queue, count(*), EXTRACT(EPOCH FROM (now() - min(scheduled_at)))::float8
		FROM river_job WHERE state = 'available' GROUP BY queue`
	}
	rows, err := c.db.DB().QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("job backlog: %w", err)
	}
	defer rows.Close()
	out := map[string]queueBacklog{}
	for rows.Next() {
		var (
			queue string
			b     queueBacklog
			age   sql.NullFloat64
		)
		if err := rows.Scan(&queue, &b.n, &age); err != nil {
			return nil, fmt.Errorf("job backlog: %w", err)
		}
		b.age = age.Float64
		out[queue] = b
	}
	return out, rows.Err()
}

type stateCount struct {
	queue, kind, state string
	n                  int64
}

// countWaiting counts River's unfinished jobs by queue, kind and state;
// completed, cancelled and discarded rows are history, not load.
func (c *Client) countWaiting(ctx context.Context) ([]stateCount, error) {
	rows, err := c.db.DB().QueryContext(ctx, `SELECT queue, kind, state, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running') GROUP BY queue, kind, state`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	var out []stateCount
	for rows.Next() {
		var s stateCount
		if err := rows.Scan(&s.queue, &s.kind, &s.state, &s.n); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// observe counts the attempts River reports until events closes.
func (m *jobMetrics) observe(events <-chan *river.Event) {
	for e := range events {
		if e.Job == nil {
			continue
		}
		outcome := ""
		switch e.Kind {
		case river.EventKindJobCompleted:
			outcome = OutcomeCompleted
		case river.EventKindJobCancelled:
			outcome = OutcomeCancelled
		case river.EventKindJobSnoozed:
			outcome = OutcomeSnoozed
		case river.EventKindJobFailed:
			outcome = OutcomeRetried
			if e.Job.State == rivertype.JobStateDiscarded {
				outcome = OutcomeFailed
			}
		default:
			continue
		}
		m.attempts.WithLabelValues(e.Job.Queue, e.Job.Kind, outcome).Inc()
	}
}
