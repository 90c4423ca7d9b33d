package telemetry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CountsTTL is how long a count read from the database at scrape time is
// served from memory: however many scrapers (Prometheus replicas, a
// curious operator), each count runs at most once per CountsTTL per
// instance.
const CountsTTL = 5 * time.Second

// countScrapeTimeout bounds one count query.
const countScrapeTimeout = 2 * time.Second

// AccountCounts reads the account gauges from the database. Each function
// runs at most once per CountsTTL, under a timeout.
type AccountCounts struct {
	// ActiveSessions counts sessions neither revoked nor expired at now.
	ActiveSessions func(ctx context.Context, now time.Time) (int64, error)
	// MFAUsers counts the users and those with an active second factor.
	MFAUsers func(ctx context.Context) (users, withMFA int64, err error)
	// Now is the clock of the cache and of ActiveSessions' now.
	Now func() time.Time
}

var (
	sessionsActive = prometheus.NewDesc("gatehouse_sessions_active",
		"Sessions neither revoked nor expired, across all instances (counted in the database at scrape time, up to 5 s old).", nil, nil)
	usersDesc = prometheus.NewDesc("gatehouse_users",
		"User accounts, across all instances (counted in the database at scrape time, up to 5 s old).", nil, nil)
	usersWithMFA = prometheus.NewDesc("gatehouse_users_with_mfa",
		"User accounts with at least one active second factor (TOTP or SMS), across all instances (up to 5 s old).", nil, nil)
)

// RegisterAccountCounts exports the gauges counted in the database:
//
//	gatehouse_sessions_active
//	gatehouse_users
//	gatehouse_users_with_mfa
//
// Every instance reports the same database-wide values: aggregate them
// with max, not sum. A failed count makes the scrape report an error for
// its gauge (and that error is served for CountsTTL too, so a database in
// trouble is not asked again on every scrape).
func (m *Metrics) RegisterAccountCounts(c AccountCounts) error {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	col := &countsCollector{
		sessions: cachedCount[int64]{now: now, read: func(ctx context.Context) (int64, error) {
			return c.ActiveSessions(ctx, now())
		}},
		mfa: cachedCount[[2]int64]{now: now, read: func(ctx context.Context) ([2]int64, error) {
			users, withMFA, err := c.MFAUsers(ctx)
			return [2]int64{users, withMFA}, err
		}},
	}
	if err := m.reg.Register(col); err != nil {
		return fmt.Errorf("register account counts: %w", err)
	}
	return nil
}

type countsCollector struct {
	sessions cachedCount[int64]
	mfa      cachedCount[[2]int64]
}

func (c *countsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsActive
	ch <- usersDesc
	ch <- usersWithMFA
}

func (c *countsCollector) Collect(ch chan<- prometheus.Metric) {
	if n, err := c.sessions.get(); err != nil {
		ch <- prometheus.NewInvalidMetric(sessionsActive, err)
	} else {
		ch <- prometheus.MustNewConstMetric(sessionsActive, prometheus.GaugeValue, float64(n))
	}
	if n, err := c.mfa.get(); err != nil {
		ch <- prometheus.NewInvalidMetric(usersDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(usersDesc, prometheus.GaugeValue, float64(n[0]))
		ch <- prometheus.MustNewConstMetric(usersWithMFA, prometheus.GaugeValue, float64(n[1]))
	}
}

// cachedCount serves read's last answer, value or error, for CountsTTL.
// Concurrent scrapes wait for one read rather than each running it.
type cachedCount[T any] struct {
	read func(ctx context.Context) (T, error)
	now  func() time.Time

	mu  sync.Mutex
	at  time.Time // of the last read; zero before the first
	val T
	err error
}

func (c *cachedCount[T]) get() (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); !c.at.IsZero() && now.Sub(c.at) < CountsTTL && !now.Before(c.at) {
		return c.val, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), countScrapeTimeout)
	defer cancel()
	c.val, c.err = c.read(ctx)
	c.at = c.now()
	return c.val, c.err
}
