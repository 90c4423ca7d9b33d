package telemetry

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DBPoolStats is a snapshot of the database connection pool, from
// database/sql's DBStats or pgxpool's Stat.
type DBPoolStats struct {
	// InUse and Idle are the connections lent out and waiting; Max is the
	// pool's limit.
	InUse, Idle, Max int
	// Waits counts acquisitions that had to wait for a connection, and
	// WaitTime is the total time they waited; both since start.
	Waits    int64
	WaitTime time.Duration
}

// RegisterDBPool exports the pool snapshot stats returns at each scrape:
//
//	gatehouse_db_pool_connections{state="in_use"|"idle"}
//	gatehouse_db_pool_max_connections
//	gatehouse_db_pool_waits_total
//	gatehouse_db_pool_wait_seconds_total
//
// A pool whose in-use count sits at its max, with waits climbing, is
// exhausted: requests queue for a connection.
func (m *Metrics) RegisterDBPool(stats func() DBPoolStats) error {
	if err := m.reg.Register(&poolCollector{stats: stats}); err != nil {
		return fmt.Errorf("register db pool metrics: %w", err)
	}
	return nil
}

var (
	poolConns = prometheus.NewDesc("gatehouse_db_pool_connections",
		"Database connections by state: in_use (lent to a query or transaction) or idle.", []string{"state"}, nil)
	poolMax = prometheus.NewDesc("gatehouse_db_pool_max_connections",
		"The most connections the pool opens.", nil, nil)
	poolWaits = prometheus.NewDesc("gatehouse_db_pool_waits_total",
		"Connection acquisitions that had to wait because every connection was in use.", nil, nil)
	poolWaitSeconds = prometheus.NewDesc("gatehouse_db_pool_wait_seconds_total",
		"Total time spent waiting for a connection.", nil, nil)
)

type poolCollector struct{ stats func() DBPoolStats }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolConns
	ch <- poolMax
	ch <- poolWaits
	ch <- poolWaitSeconds
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.InUse), "in_use")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.Max))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.Waits))
	ch <- prometheus.MustNewConstMetric(poolWaitSeconds, prometheus.CounterValue, s.WaitTime.Seconds())
}
