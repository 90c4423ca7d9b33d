package telemetry

import (
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// UnmatchedRoute is the route label of requests no route matched (404, 405,
// CORS preflights), so scanners probing random paths cannot blow up the
// label cardinality.
const UnmatchedRoute = "unmatched"

// Metrics owns the process's Prometheus registry and the HTTP metrics.
// Other packages add their own collectors through Registry.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	biz      *business
	// series are the request counter and histogram of each label set
	// seen, so a request finds its two series with one lookup instead of
	// hashing and checking its labels in each vector (seriesKey →
	// *requestSeries). The vectors bound the label sets; so does this.
	series sync.Map
}

// seriesKey is the labels of one series of the HTTP metrics.
type seriesKey struct {
	method, route string
	status        int
}

// requestSeries are the HTTP metrics of one label set.
type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics makes a registry with the Go runtime and process collectors
// and the HTTP metrics:
//
//	http_requests_total{method,route,status}
//	http_server_request_duration_seconds{method,route,status}
//	http_requests_in_flight
//
// the circuit breakers' gatehouse_circuit_breaker_state (see
// TrackBreaker), and the business counters of API.md § Metrics
// (metrics_business.go), each series of a known label set at 0.
//
// A registry of our own (not prometheus.DefaultRegisterer) keeps tests
// independent and lets several servers live in one process.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_server_request_duration_seconds",
			Help: "Time to answer HTTP requests, by method, route pattern and status code.",
			// Password hashing puts logins in the 50-500 ms range; 0.2 is
			// a bound so the "p95 over 200 ms" alert reads a bucket edge.
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .3, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		biz: newBusiness(),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.inFlight,
		breakerState,
	)
	reg.MustRegister(m.biz.collectors()...)
	return m
}

// Registry returns the registry, for packages that register collectors of
// their own (jobs, cache, rate limiter ...).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails (a count the database cannot answer while it is
// down) leaves its series out of the scrape and counts in
// promhttp_metric_handler_errors_total{cause="gathering"}; the scrape
// itself still answers 200 with everything else, so an outage of a
// dependency does not look like a dead instance (up == 0).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg, // also expose promhttp's own error counters
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
	})
}

// RegisterDBStats exports the connection pool statistics of db (go_sql_*
// metrics labelled db_name=name). Registering the same name twice fails.
func (m *Metrics) RegisterDBStats(db *sql.DB, name string) error {
	if err := m.reg.Register(collectors.NewDBStatsCollector(db, name)); err != nil {
		return fmt.Errorf("register db stats %q: %w", name, err)
	}
	return nil
}

// RequestStarted counts a request in flight; call RequestFinished when it
// is answered.
func (m *Metrics) RequestStarted() { m.inFlight.Inc() }

// RequestFinished records one answered request. route must be a route
// pattern or "" (recorded as UnmatchedRoute), never a raw path; method is
// folded to the standard methods so junk methods share one label.
func (m *Metrics) RequestFinished(method, route string, status int, elapsed time.Duration) {
	m.inFlight.Dec()
	if route == "" {
		route = UnmatchedRoute
	}
	key := seriesKey{method: normalizeMethod(method), route: route, status: status}
	v, ok := m.series.Load(key)
	if !ok {
		code := strconv.Itoa(status)
		v, _ = m.series.LoadOrStore(key, &requestSeries{
			requests: m.requests.WithLabelValues(key.method, route, code),
			duration: m.duration.WithLabelValues(key.method, route, code),
		})
	}
	s := v.(*requestSeries)
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func normalizeMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	default:
		return "OTHER"
	}
}
