package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// JobKind is the River kind of SendArgs.
const JobKind = "sms.send"

// MaxAttempts is how often River tries one message. With the default
// backoff (2, 4, 8, 16 s) the last attempt comes about 30 s after the
// first, about the breaker's default open time: a code that cannot be sent by then is
// better reported as failed than delivered late.
const MaxAttempts = 5

// DefaultTTL is how long after enqueueing a message is still worth
// sending: the lifetime of a login code.
const DefaultTTL = 5 * time.Minute

// ErrExpired is the cancellation reason of a job that could not be sent
// before its code expired.
var ErrExpired = errors.New("sms: message expired before it could be sent")

// SendArgs is the job that sends one message. Body is sealed under the
// master key (it holds a code), bound to To and Ref, so the jobs table never
// holds a code in readable form.
type SendArgs struct {
	To        string    `json:"to"`
	Body      []byte    `json:"body_sealed"`
	Ref       string    `json:"ref,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Kind is "sms.send".
func (SendArgs) Kind() string { return JobKind }

// InsertOpts puts the job on the sms queue with MaxAttempts attempts.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueSMS, MaxAttempts: MaxAttempts}
}

var _ jobs.Inserter = (*jobs.Client)(nil)

// Options tune a Service; zero values mean the defaults.
type Options struct {
	// Logger receives job outcomes (never bodies); default slog.Default().
	Logger *slog.Logger
	// Now is the clock that dates and expires messages; default time.Now.
	Now func() time.Time
	// TTL is how long a message stays worth sending; default DefaultTTL.
	TTL time.Duration
	// Backoff is the wait after failed attempt n (1-based) before the
	// next; default 2^n seconds.
	Backoff func(attempt int) time.Duration
	// FailureThreshold and OpenTimeout configure the circuit breaker New
	// puts around the sender (see NewBreaker).
	FailureThreshold uint32
	OpenTimeout      time.Duration
	// Cache keeps, for TTL, the refs of messages that finally could not be
	// sent (see Failed); nil keeps none.
	Cache cache.Cache
	// Metrics counts each attempt in gatehouse_sms_sent_total (nil: none).
	Metrics *telemetry.Metrics
}

// Service enqueues text messages as jobs and sends them from its worker.
type Service struct {
	sender *Breaker
	box    *secret.Box
	opts   Options
	log    *slog.Logger

	ins jobs.Inserter
}

// New returns a Service sending through sender, which it wraps in a
// Breaker unless it is one already, enqueueing with ins. box seals bodies
// in job arguments. Register adds its worker.
func New(sender Sender, box *secret.Box, ins jobs.Inserter, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Backoff == nil {
		opts.Backoff = func(n int) time.Duration { return time.Duration(1<<min(n, 10)) * time.Second }
	}
	b, ok := sender.(*Breaker)
	if !ok {
		b = NewBreaker(sender, "sms", opts.FailureThreshold, opts.OpenTimeout)
	}
	return &Service{sender: b, box: box, ins: ins, opts: opts, log: opts.Logger.With("component", "sms")}
}

// failedKey marks a message's ref as finally failed.
func failedKey(ref string) string { return "sms:failed:" + ref }

// Failed reports whether the message sent for ref finally could not be
// sent: its last attempt failed, the provider refused it permanently, or
// it expired first. The mark lasts the messages' TTL; without a Cache,
// nothing is ever marked.
func (s *Service) Failed(ctx context.Context, ref string) bool {
	if s.opts.Cache == nil || ref == "" {
		return false
	}
	_, err := s.opts.Cache.Get(ctx, failedKey(ref))
	return err == nil
}

// Available is false while the sender's circuit is open: callers should
// answer 503 at once instead of queueing a message that cannot go out.
func (s *Service) Available() bool { return s.sender.Available() }

// EnqueueTx inserts an sms.send job inside tx: the message is sent only if
// tx commits. body is sealed in the job's arguments; ref (a challenge or
// setup id) is what Failed answers for when the message cannot be sent.
func (s *Service) EnqueueTx(ctx context.Context, tx store.Tx, to, body, ref string) error {
	ins := s.ins
	switch {
	case ins == nil:
		return errors.New("sms: enqueue: no inserter set")
	case strings.TrimSpace(to) == "" || body == "":
		return errors.New("sms: enqueue: empty recipient or body")
	}
	args := SendArgs{To: to, Body: s.box.Seal([]byte(body), sealContext(to, ref)), Ref: ref, ExpiresAt: s.opts.Now().Add(s.opts.TTL)}
	if err := ins.InsertTx(ctx, tx, args, nil); err != nil {
		return fmt.Errorf("sms: enqueue: %w", err)
	}
	return nil
}

// sealContext binds a sealed body to its recipient and ref, so it cannot be
// moved to another job.
func sealContext(to, ref string) []byte { return []byte(JobKind + "\x00" + to + "\x00" + ref) }

// SealedColumn is where queued messages keep their sealed bodies: the args
// of sms.send jobs in River's table, whatever their state. Only the body
// is rewritten; the other fields are kept as they are.
func SealedColumn() secret.Column {
	return secret.Column{Table: "river_job", Name: "args", ID: "id", Where: "kind = '" + JobKind + "'", JSON: true,
		Rewrite: func(stored []byte, _ []string, f func(sealed, ad []byte) ([]byte, error)) ([]byte, error) {
			var fields map[string]json.RawMessage
			var a SendArgs
			if err := json.Unmarshal(stored, &fields); err != nil {
				return nil, fmt.Errorf("sms job args: %w", err)
			}
			if err := json.Unmarshal(stored, &a); err != nil {
				return nil, fmt.Errorf("sms job args: %w", err)
			}
			body, err := f(a.Body, sealContext(a.To, a.Ref))
			if err != nil {
				return nil, err
			}
			if fields["body_sealed"], err = json.Marshal(body); err != nil {
				return nil, err
			}
			return json.Marshal(fields)
		}}
}

// Register adds the sms.send worker to workers.
func (s *Service) Register(workers *river.Workers) { river.AddWorker(workers, &worker{s: s}) }

type worker struct {
	river.WorkerDefaults[SendArgs]
	s *Service
}

// NextRetry is seconds, not River's hours: a code is useless in minutes.
func (w *worker) NextRetry(job *river.Job[SendArgs]) time.Time {
	return time.Now().Add(w.s.opts.Backoff(job.Attempt))
}

// Timeout leaves the Twilio call its own timeout first.
func (w *worker) Timeout(*river.Job[SendArgs]) time.Duration {
	return DefaultTwilioTimeout + 5*time.Second
}

// Work opens the body and sends it. An expired message, a body that does
// not open and a permanent refusal cancel the job; any other failure
// (ErrUnavailable included) is returned for River to retry, and on the
// last attempt the job is given up. Whenever a message is given up, the
// OnFailure callback hears of it.
func (w *worker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	a := job.Args
	log := w.s.log.With("job_id", job.ID, "attempt", job.Attempt)
	if !w.s.opts.Now().Before(a.ExpiresAt) {
		log.WarnContext(ctx, "SMS expired before it could be sent; cancelling job")
		return w.giveUp(ctx, a.Ref, river.JobCancel(ErrExpired))
	}
	body, err := w.s.box.Open(a.Body, sealContext(a.To, a.Ref))
	if err != nil {
		log.ErrorContext(ctx, "SMS body cannot be opened; cancelling job", "error", err)
		return w.giveUp(ctx, a.Ref, river.JobCancel(err))
	}
	err = w.s.sender.Send(ctx, a.To, string(body))
	w.s.opts.Metrics.SMSSent(telemetry.Result(err))
	switch {
	case err == nil:
		log.DebugContext(ctx, "SMS sent")
		return nil
	case errors.Is(err, ErrPermanent):
		log.WarnContext(ctx, "SMS refused permanently; cancelling job", "error", err)
		return w.giveUp(ctx, a.Ref, river.JobCancel(err))
	case job.Attempt >= job.MaxAttempts:
		log.ErrorContext(ctx, "SMS failed on its last attempt; giving up", "error", err)
		return w.giveUp(ctx, a.Ref, err)
	default:
		log.WarnContext(ctx, "SMS failed; River will retry", "error", err)
		return err
	}
}

func (w *worker) giveUp(ctx context.Context, ref string, err error) error {
	if c := w.s.opts.Cache; c != nil && ref != "" {
		// The job's context may be what timed out; the mark is still set.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if serr := c.Set(cctx, failedKey(ref), []byte{1}, w.s.opts.TTL); serr != nil {
			w.s.log.WarnContext(ctx, "cannot mark the SMS as failed", "error", serr)
		}
	}
	return err
}
