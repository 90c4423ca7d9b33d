package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/argon2"

	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// Hasher hashes and verifies passwords with Argon2id under a concurrency
// limit. It is safe for concurrent use; make one per process and share it,
// since the limit only works if every caller goes through the same Hasher.
type Hasher struct {
	params Params
	rand   io.Reader
	sem    chan struct{}
	dummy  string
	// metrics times the computations (nil: not timed).
	metrics *telemetry.Metrics

	// inFlight counts operations holding a slot; testHookAcquired, when
	// set by tests in this package, runs while a slot is held so they can
	// observe the limit.
	inFlight         atomic.Int32
	testHookAcquired func()
}

// Option adjusts a Hasher at construction.
type Option func(*Hasher)

// WithMaxConcurrent caps simultaneous hash and verify operations at n
// (n <= 0 keeps the default, GOMAXPROCS). Peak Argon2 memory is about
// n × Params.Memory KiB, so lower it on small machines with big params.
func WithMaxConcurrent(n int) Option {
	return func(h *Hasher) {
		if n > 0 {
			h.sem = make(chan struct{}, n)
		}
	}
}

// WithMetrics records the time of each Argon2id computation (hash or
// verification, not the wait for a slot) in gatehouse_password_hash_seconds.
func WithMetrics(m *telemetry.Metrics) Option {
	return func(h *Hasher) { h.metrics = m }
}

// timed derives like derive, recording how long it took.
func (h *Hasher) timed(password string, salt []byte, p Params) []byte {
	start := time.Now()
	key := derive(password, salt, p)
	h.metrics.PasswordHashed(time.Since(start))
	return key
}

// WithRand replaces crypto/rand as the salt source, so tests can make salt
// generation fail. Production code should not use it.
func WithRand(r io.Reader) Option {
	return func(h *Hasher) { h.rand = r }
}

// dummyPassword and dummySalt (all zeros, as long as any valid salt) make
// the hash VerifyDummy checks against. They need not be secret or random:
// VerifyDummy never reports success, it only spends the time and memory a
// real verification would.
const dummyPassword = "gatehouse-dummy-password-for-unknown-users"

var dummySalt [MaxSaltLen]byte

// NewHasher makes a Hasher for params p. It panics if p is invalid:
// parameters come from configuration, which should call Params.Validate at
// start-up and report the mistake properly. Construction computes one hash
// (the dummy for unknown users), so it takes as long as one Hash.
func NewHasher(p Params, opts ...Option) *Hasher {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	h := &Hasher{params: p, rand: rand.Reader}
	for _, o := range opts {
		o(h)
	}
	if h.sem == nil {
		h.sem = make(chan struct{}, runtime.GOMAXPROCS(0))
	}
	h.dummy = encodePHC(p, dummySalt[:p.SaltLen], derive(dummyPassword, dummySalt[:p.SaltLen], p))
	return h
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns a PHC string for password with a fresh random salt. It
// waits for a free slot and returns ctx.Err() if ctx ends first; once
// started, the Argon2 computation itself cannot be interrupted.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("password: read salt: %w", err)
	}
	var key []byte
	if err := h.run(ctx, "argon2id hash", h.params, func() { key = h.timed(password, salt, h.params) }); err != nil {
		return "", err
	}
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string phc, comparing in
// constant time. needsRehash is true only when ok is true and phc was made
// with parameters other than the Hasher's, so the caller should store a
// fresh Hash while it has the plaintext. A malformed or unsupported phc
// returns an error wrapping ErrMalformedHash or ErrUnsupportedHash; a
// context that ends while waiting for a slot returns ctx.Err().
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok, needsRehash bool, err error) {
	d, err := parsePHC(phc)
	if err != nil {
		return false, false, err
	}
	var key []byte
	if err := h.run(ctx, "argon2id verify", d.params, func() { key = h.timed(password, d.salt, d.params) }); err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(key, d.key) != 1 {
		return false, false, nil
	}
	return true, d.params != h.params, nil
}

// VerifyDummy does the work of a Verify against a hash made with the
// current parameters, and discards the result. Call it when the account
// does not exist (or has no password) so that the response takes as long
// as for a real account and timing does not reveal which emails are
// registered. It returns an error only when ctx ends while waiting.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// run runs fn (one Argon2 derivation) in a slot, inside a span that
// covers the wait for the slot and the derivation, so a trace shows where
// a slow login spent its time.
func (h *Hasher) run(ctx context.Context, name string, p Params, fn func()) error {
	ctx, span := telemetry.StartSpan(ctx, name, trace.WithAttributes(
		attribute.Int("argon2.memory_kib", int(p.Memory)),
		attribute.Int("argon2.iterations", int(p.Iterations)),
		attribute.Int("argon2.parallelism", int(p.Parallelism))))
	if err := h.acquire(ctx); err != nil {
		telemetry.EndSpan(span, err)
		return err
	}
	defer h.release()
	defer span.End()
	fn()
	return nil
}

// acquire takes a slot, preferring to fail when ctx is already done so a
// cancelled request never starts a costly computation.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	h.inFlight.Add(1)
	if h.testHookAcquired != nil {
		h.testHookAcquired()
	}
	return nil
}

func (h *Hasher) release() {
	h.inFlight.Add(-1)
	<-h.sem
}

func derive(password string, salt []byte, p Params) []byte {
	return argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
}
