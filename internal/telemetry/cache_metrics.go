package telemetry

import "github.com/prometheus/client_golang/prometheus"

// cacheRequests counts lookups in the in-process caches in front of the
// shared cache and the database. It is process-wide, like breakerState:
// caches are built before (and without) the Metrics that serve it, and
// NewMetrics registers it.
var cacheRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "gatehouse_cache_requests_total",
	Help: "Lookups in the in-process caches (sessions, users, permissions), by cache and result (hit or miss).",
}, []string{"cache", "result"})

// CacheCounters returns the hit and miss counters of the named cache, to
// be kept by the cache (resolving labels on every lookup would cost more
// than the lookup).
func CacheCounters(cache string) (hit, miss prometheus.Counter) {
	return cacheRequests.WithLabelValues(cache, "hit"), cacheRequests.WithLabelValues(cache, "miss")
}
