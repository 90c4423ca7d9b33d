package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var signingKeyCreated = prometheus.NewDesc("gatehouse_signing_key_created_timestamp_seconds",
	"When the token signing key that signs new tokens was made (Unix seconds); alert on its age to rotate keys on schedule.", nil, nil)

// keyScrapeTimeout bounds the read of the key ring at scrape time.
const keyScrapeTimeout = 2 * time.Second

// RegisterSigningKey exports gatehouse_signing_key_created_timestamp_seconds,
// read at each scrape from activeSince (the creation time of the key that
// signs, e.g. from the key ring).
func (m *Metrics) RegisterSigningKey(activeSince func(ctx context.Context) (time.Time, error)) error {
	if err := m.reg.Register(&keyCollector{activeSince: activeSince}); err != nil {
		return fmt.Errorf("register signing key metrics: %w", err)
	}
	return nil
}

type keyCollector struct {
	activeSince func(ctx context.Context) (time.Time, error)
}

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- signingKeyCreated }

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), keyScrapeTimeout)
	defer cancel()
	at, err := c.activeSince(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(signingKeyCreated, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(signingKeyCreated, prometheus.GaugeValue, float64(at.Unix()))
}
