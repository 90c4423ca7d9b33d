package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var _ Limiter = (*Fallback)(nil)

// Defaults of FallbackOptions.
const (
	// DefaultProbeInterval is how long an outage skips Redis before trying
	// it again, so requests do not each wait on a dead server.
	DefaultProbeInterval = 5 * time.Second
	// DefaultPrimaryTimeout bounds one decision by the primary.
	DefaultPrimaryTimeout = time.Second
)

// FallbackOptions tune a Fallback. Zero values are safe.
type FallbackOptions struct {
	Logger *slog.Logger
	// Registerer receives gatehouse_ratelimit_fallback_total, the decisions
	// taken in-process because the primary failed.
	Registerer prometheus.Registerer
	// Now is the clock of the probe interval (default time.Now).
	Now func() time.Time
	// ProbeInterval defaults to DefaultProbeInterval, PrimaryTimeout to
	// DefaultPrimaryTimeout.
	ProbeInterval  time.Duration
	PrimaryTimeout time.Duration
	// PrimaryDown, when set, reports an outage the primary's owner already
	// knows of (the Redis cache's degraded mode): the local limiter answers
	// at once, without a probe waiting on a server that does not answer.
	PrimaryDown func() bool
}

// Fallback asks the primary limiter (Redis) and, when it fails, the local
// one (a Memory), so a Redis outage neither lets every request through
// nor turns them into errors. Limits are then per instance until Redis is
// back. The outage is logged when it starts and when it ends, and every
// decision taken locally is counted.
type Fallback struct {
	primary, local Limiter
	log            *slog.Logger
	now            func() time.Time
	probe, timeout time.Duration
	primaryDown    func() bool
	fallbacks      prometheus.Counter

	mu        sync.Mutex
	down      bool
	nextProbe time.Time
}

// NewFallback wraps primary with local as its stand-in.
func NewFallback(primary, local Limiter, o FallbackOptions) *Fallback {
	f := &Fallback{primary: primary, local: local, log: o.Logger, now: o.Now,
		probe: o.ProbeInterval, timeout: o.PrimaryTimeout, primaryDown: o.PrimaryDown}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.probe <= 0 {
		f.probe = DefaultProbeInterval
	}
	if f.timeout <= 0 {
		f.timeout = DefaultPrimaryTimeout
	}
	f.fallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_ratelimit_fallback_total",
		Help: "Rate-limit decisions taken in-process because Redis failed.",
	})
	if o.Registerer != nil {
		if err := o.Registerer.Register(f.fallbacks); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if errors.As(err, &dup) {
				if c, ok := dup.ExistingCollector.(prometheus.Counter); ok {
					f.fallbacks = c
				}
			}
		}
	}
	return f
}

// Allow implements Limiter; it fails only when the local limiter does
// (a Memory never does).
func (f *Fallback) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	if f.usePrimary() {
		pctx, cancel := context.WithTimeout(ctx, f.timeout)
		res, err := f.primary.Allow(pctx, key, limit)
		cancel()
		if err == nil {
			f.recovered()
			return res, nil
		}
		if ctx.Err() == nil { // a client that left is no outage
			f.failed(err)
		}
	}
	f.fallbacks.Inc()
	return f.local.Allow(ctx, key, limit)
}

// usePrimary is false while the primary's owner reports it down, and
// during an outage the limiter saw itself, except once per probe interval.
func (f *Fallback) usePrimary() bool {
	if f.primaryDown != nil && f.primaryDown() {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.down {
		return true
	}
	if now := f.now(); !now.Before(f.nextProbe) {
		f.nextProbe = now.Add(f.probe)
		return true
	}
	return false
}

func (f *Fallback) failed(err error) {
	f.mu.Lock()
	started := !f.down
	f.down = true
	f.nextProbe = f.now().Add(f.probe)
	f.mu.Unlock()
	if started {
		f.log.Error("rate limiter: Redis failed; limiting in-process (per instance) until it is back", "err", err)
	}
}

func (f *Fallback) recovered() {
	f.mu.Lock()
	ended := f.down
	f.down = false
	f.mu.Unlock()
	if ended {
		f.log.Info("rate limiter: Redis is back; limits are shared again")
	}
}
