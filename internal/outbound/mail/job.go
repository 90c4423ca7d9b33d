package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/telemetry"
)

// JobKind is the River kind of SendArgs.
const JobKind = "email.send"

// MaxAttempts is how often River tries one email before discarding it.
// With River's default backoff (attempt^4 seconds) that spans about seven
// hours of failures.
const MaxAttempts = 10

// SendArgs is the job that renders one template and sends it to one
// address.
//
// The arguments are stored in the database as JSON, and Data's links hold
// single-use tokens (verification, reset, magic link). That is acceptable
// only because the database is the source of truth anyway: it already holds
// what those tokens unlock, and the tokens themselves are stored there only
// as hashes everywhere else. Mind that rows outlive delivery: our River
// config keeps completed jobs for 24 hours (CompletedJobRetentionPeriod in
// internal/jobs), and River's defaults keep cancelled jobs 24 hours and
// discarded ones 7 days, so a database dump or backup taken in that window
// contains links that may still be live. A later change may encrypt the
// arguments.
type SendArgs struct {
	To       string         `json:"to"`
	Template string         `json:"template"`
	Data     map[string]any `json:"data,omitempty"`
}

// Kind is "email.send".
func (SendArgs) Kind() string { return JobKind }

// InsertOpts puts the job on the email queue with MaxAttempts attempts.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: jobs.QueueEmail, MaxAttempts: MaxAttempts}
}

var _ jobs.Inserter = (*jobs.Client)(nil)

// Enqueue inserts an email.send job inside tx: the email goes out only if
// tx commits. It checks what can be checked now (a recipient, a known
// template) so a mistake fails the caller's transaction instead of a job.
func Enqueue(ctx context.Context, ins jobs.Inserter, tx store.Tx, to, template string, data map[string]any) error {
	if strings.TrimSpace(to) == "" {
		return errors.New("mail: enqueue: empty recipient")
	}
	if !slices.Contains(templateNames, template) {
		return fmt.Errorf("mail: enqueue: %w %q", ErrUnknownTemplate, template)
	}
	if err := ins.InsertTx(ctx, tx, SendArgs{To: to, Template: template, Data: data}, nil); err != nil {
		return fmt.Errorf("mail: enqueue %s: %w", template, err)
	}
	return nil
}

// Snoozing while the breaker is open. See Worker.Work.
const (
	unavailableSnooze    = 30 * time.Second
	unavailableJitter    = 10 * time.Second
	maxUnavailableSnooze = 20
)

// Worker renders and sends email.send jobs. Register it with
// river.AddWorker(workers, mail.NewWorker(...)).
type Worker struct {
	river.WorkerDefaults[SendArgs]
	sender   Sender
	renderer *Renderer
	logger   *slog.Logger
	metrics  *telemetry.Metrics
}

// NewWorker returns the worker for SendArgs; logger may be nil
// (slog.Default()). m counts each attempt in
// gatehouse_emails_sent_total{template,result} (nil: none).
func NewWorker(sender Sender, renderer *Renderer, logger *slog.Logger, m *telemetry.Metrics) *Worker {
	if logger == nil {
		logger = slog.Default()
	}
	return &Worker{sender: sender, renderer: renderer, logger: logger.With("component", "mail"), metrics: m}
}

// Work renders the template and sends it. How each failure is handled:
//
//   - A render failure (unknown template, missing link) or a permanent
//     delivery failure (invalid or refused recipient) cancels the job:
//     retrying the same input cannot succeed.
//   - ErrUnavailable (the breaker is open: the server was not even tried)
//     snoozes the job for about 30 s, the breaker's open time, plus jitter
//     so waiting jobs do not all return at once. Snoozing does not use up
//     an attempt, so a short outage of the relay does not eat into the
//     attempts of every queued email; after 20 snoozes (about ten minutes)
//     the error is returned like any other, so a long outage falls back to
//     River's exponential backoff, which spaces out the polling and
//     eventually gives up.
//   - Any other error is returned, and River retries with exponential
//     backoff up to MaxAttempts.
//
// Data is never logged: its links carry single-use tokens.
func (w *Worker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	log := w.logger.With("job_id", job.ID, "template", job.Args.Template, "attempt", job.Attempt)
	msg, err := w.renderer.Render(job.Args.Template, job.Args.Data)
	if err != nil {
		w.metrics.EmailSent(job.Args.Template, telemetry.Result(err))
		log.ErrorContext(ctx, "email cannot be rendered; cancelling job", "error", err)
		return river.JobCancel(err)
	}
	msg.To = job.Args.To

	err = w.sender.Send(ctx, msg)
	w.metrics.EmailSent(job.Args.Template, telemetry.Result(err))
	switch {
	case err == nil:
		log.DebugContext(ctx, "email sent")
		return nil
	case errors.Is(err, ErrPermanent):
		log.WarnContext(ctx, "email refused permanently; cancelling job", "error", err)
		return river.JobCancel(err)
	case errors.Is(err, ErrUnavailable) && snoozes(job) < maxUnavailableSnooze:
		d := unavailableSnooze + rand.N(unavailableJitter) // #nosec G404 -- jitter, not a secret.
		log.InfoContext(ctx, "email sender unavailable; snoozing job", "snooze", d)
		return river.JobSnooze(d)
	default:
		log.WarnContext(ctx, "email delivery failed; River will retry", "error", err)
		return err
	}
}

// snoozes is how often the job was snoozed, from the "snoozes" counter
// River keeps in its metadata.
func snoozes(job *river.Job[SendArgs]) int {
	if job.JobRow == nil || len(job.Metadata) == 0 {
		return 0
	}
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	if err := json.Unmarshal(job.Metadata, &m); err != nil {
		return 0
	}
	return m.Snoozes
}
