package webhook

import (
	"context"
	"errors"
	"hash/fnv"
	neturl "net/url"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// Breaker defaults: a host opens its circuit after this many consecutive
// failed attempts, for this long.
const (
	DefaultBreakerThreshold = 5
	DefaultBreakerOpen      = time.Minute
)

// errHostDown is what a delivery job gets while its host's circuit is open:
// nothing was sent.
var errHostDown = errors.New("circuit open")

// hostFailure marks an attempt that says the host is unwell: no answer at
// all, or a 5xx. Other answers (4xx, redirects) show a working server
// that refused one message, and count as successes.
type hostFailure struct{ error }

func (h hostFailure) Unwrap() error { return h.error }

// breakers holds one circuit breaker per receiving host (host:port), made
// on first use. A host that keeps failing opens its circuit: delivery jobs
// to it are snoozed without dialing (River's JobSnooze, which does not
// count an attempt) until the open timeout passes; then one probe goes
// through, and its success closes the circuit for every webhook on that
// host. Each is exported as gatehouse_circuit_breaker_state{name=
// "webhook:<host>"}.
type breakers struct {
	mu        sync.Mutex
	byHost    map[string]*gobreaker.CircuitBreaker[attemptResult]
	threshold uint32
	open      time.Duration
}

func newBreakers(threshold uint32, open time.Duration) *breakers {
	return &breakers{byHost: map[string]*gobreaker.CircuitBreaker[attemptResult]{}, threshold: threshold, open: open}
}

func (b *breakers) get(host string) *gobreaker.CircuitBreaker[attemptResult] {
	b.mu.Lock()
	defer b.mu.Unlock()
	cb, ok := b.byHost[host]
	if !ok {
		threshold := b.threshold
		cb = gobreaker.NewCircuitBreaker[attemptResult](telemetry.TrackBreaker(gobreaker.Settings{
			Name:        "webhook:" + host,
			MaxRequests: 1,
			Timeout:     b.open,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= threshold },
			IsSuccessful: func(err error) bool {
				var hf hostFailure
				return !errors.As(err, &hf)
			},
			// Shutting down (the job's context ends) says nothing of the host.
			IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		}))
		b.byHost[host] = cb
	}
	return cb
}

// hostOf is the breaker key of a webhook URL: its lower-cased host:port.
func hostOf(rawURL string) string {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return strings.ToLower(u.Host)
}

// send makes one attempt through the host's breaker. While the circuit is
// open (or half-open with its probe out) it dials nothing and returns
// errHostDown.
func (s *Service) send(ctx context.Context, url, id string, ts int64, body, key []byte) (attemptResult, error) {
	cb := s.breakers.Load().get(hostOf(url))
	res, err := cb.Execute(func() (attemptResult, error) {
		res := s.client.post(ctx, url, id, ts, body, key)
		switch {
		case res.err != nil && ctx.Err() != nil:
			return res, context.Canceled
		case res.err != nil && (res.status == 0 || res.status >= 500):
			return res, hostFailure{res.err}
		}
		return res, nil
	})
	if telemetry.BreakerRefused(err) {
		return attemptResult{}, errHostDown
	}
	return res, nil
}

// snoozeFor is how long a delivery waits for its host's circuit: the open
// timeout, plus up to a quarter more drawn from the delivery id so that
// the deliveries held back do not all return at the same instant.
func (s *Service) snoozeFor(deliveryID string) time.Duration {
	d := s.breakers.Load().open
	h := fnv.New64a()
	h.Write([]byte(deliveryID))
	return d + time.Duration(h.Sum64()%uint64(d/4+1))
}

// SetBreakers replaces the per-host breakers with fresh ones (all closed)
// of the given threshold and open time, so tests need not wait a minute.
func (s *Service) SetBreakers(threshold uint32, open time.Duration) {
	s.breakers.Store(newBreakers(max(threshold, 1), open))
}
