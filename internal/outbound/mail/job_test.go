package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/jobs/jobstest"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail/mailtest"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

func TestSendArgs(t *testing.T) {
	var a mail.SendArgs
	require.Equal(t, "email.send", a.Kind())
	require.Equal(t, river.InsertOpts{Queue: jobs.QueueEmail, MaxAttempts: 10}, a.InsertOpts())
}

type fakeInserter struct {
	args []river.JobArgs
	err  error
}

func (f *fakeInserter) InsertTx(_ context.Context, _ jobs.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if opts != nil {
		return errors.New("Enqueue should rely on SendArgs.InsertOpts")
	}
	f.args = append(f.args, args)
	return f.err
}

func TestEnqueueValidates(t *testing.T) {
	ctx := context.Background()
	ins := &fakeInserter{}
	data := map[string]any{gatehouse.MailKeyLink: link}
	require.NoError(t, mail.Enqueue(ctx, ins, nil, "alice@example.com", gatehouse.MailTemplateVerifyEmail, data))
	require.Equal(t, []river.JobArgs{mail.SendArgs{To: "alice@example.com", Template: "verify_email", Data: data}}, ins.args)

	require.ErrorContains(t, mail.Enqueue(ctx, ins, nil, " ", gatehouse.MailTemplateVerifyEmail, nil), "empty recipient")
	require.ErrorIs(t, mail.Enqueue(ctx, ins, nil, "a@example.com", "verify-email", nil), mail.ErrUnknownTemplate)
	require.Len(t, ins.args, 1)

	ins.err = errors.New("database is locked")
	err := mail.Enqueue(ctx, ins, nil, "a@example.com", gatehouse.MailTemplateWelcome, nil)
	require.ErrorIs(t, err, ins.err)
	require.Contains(t, err.Error(), "welcome")
}

func job(args mail.SendArgs, metadata string) *river.Job[mail.SendArgs] {
	return &river.Job[mail.SendArgs]{
		JobRow: &rivertype.JobRow{ID: 7, Attempt: 1, Kind: mail.JobKind, Metadata: []byte(metadata)},
		Args:   args,
	}
}

func TestWorkerOutcomes(t *testing.T) {
	ctx := context.Background()
	r := renderer(t)
	args := mail.SendArgs{To: "alice@example.com", Template: gatehouse.MailTemplateMagicLink, Data: map[string]any{gatehouse.MailKeyLink: link}}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	t.Run("sent", func(t *testing.T) {
		f := &fakeSender{}
		require.NoError(t, mail.NewWorker(f, r, logger, nil).Work(ctx, job(args, `{}`)))
		require.Len(t, f.sent, 1)
		require.Equal(t, "alice@example.com", f.sent[0].To)
		require.Equal(t, "Your Acme ID sign-in link", f.sent[0].Subject)
		require.Contains(t, f.sent[0].Text, link)
	})
	t.Run("render failure cancels", func(t *testing.T) {
		f := &fakeSender{}
		err := mail.NewWorker(f, r, logger, nil).Work(ctx, job(mail.SendArgs{To: "a@example.com", Template: "gone"}, ""))
		var cancel *river.JobCancelError
		require.ErrorAs(t, err, &cancel)
		require.ErrorIs(t, err, mail.ErrUnknownTemplate)
		require.Zero(t, f.calls)
	})
	t.Run("permanent failure cancels", func(t *testing.T) {
		f := &fakeSender{}
		f.fail(1, fmt.Errorf("%w: 550", mail.ErrPermanent))
		err := mail.NewWorker(f, r, logger, nil).Work(ctx, job(args, ""))
		var cancel *river.JobCancelError
		require.ErrorAs(t, err, &cancel)
	})
	t.Run("unavailable snoozes about 30s", func(t *testing.T) {
		f := &fakeSender{}
		f.fail(1, fmt.Errorf("%w: open", mail.ErrUnavailable))
		err := mail.NewWorker(f, r, logger, nil).Work(ctx, job(args, `{"snoozes": 19}`))
		var snooze *river.JobSnoozeError
		require.ErrorAs(t, err, &snooze)
		require.GreaterOrEqual(t, snooze.Duration, 30*time.Second)
		require.Less(t, snooze.Duration, 40*time.Second)
	})
	t.Run("unavailable for long becomes a normal retry", func(t *testing.T) {
		f := &fakeSender{}
		f.fail(1, fmt.Errorf("%w: open", mail.ErrUnavailable))
		err := mail.NewWorker(f, r, logger, nil).Work(ctx, job(args, `{"snoozes": 20}`))
		require.ErrorIs(t, err, mail.ErrUnavailable)
		var snooze *river.JobSnoozeError
		require.False(t, errors.As(err, &snooze))
	})
	t.Run("unreadable metadata counts as no snoozes", func(t *testing.T) {
		f := &fakeSender{}
		f.fail(1, mail.ErrUnavailable)
		var snooze *river.JobSnoozeError
		require.ErrorAs(t, mail.NewWorker(f, r, logger, nil).Work(ctx, job(args, `not json`)), &snooze)
	})
	t.Run("other failures are returned for River to retry", func(t *testing.T) {
		f := &fakeSender{}
		boom := errors.New("451 try later")
		f.fail(1, boom)
		require.ErrorIs(t, mail.NewWorker(f, r, nil, nil).Work(ctx, job(args, "")), boom)
	})

	require.NotContains(t, logs.String(), "abc123", "job data (tokens) must never be logged")
	require.Contains(t, logs.String(), "email sent")
}

// e2e wires the real pieces: SQLite, River through internal/jobs, the
// worker, an SMTP sender behind a breaker, and the mailtest server.
type e2e struct {
	db     *sqlstore.DB
	client *jobstest.Jobs
	srv    *mailtest.Server
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// forEngine runs fn on SQLite, and on PostgreSQL when sqltest offers it.
func forEngine(t *testing.T, fn func(t *testing.T, e *e2e)) {
	for _, eng := range sqltest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) { fn(t, startE2E(t, eng.Open(t))) })
	}
}

func startE2E(t *testing.T, db *sqlstore.DB) *e2e {
	t.Helper()
	ctx := context.Background()
	e := &e2e{db: db, srv: mailtest.Start(t), logs: &syncBuffer{}}
	sender, err := mail.NewSMTP(e.srv.URL(), from)
	require.NoError(t, err)
	r, err := mail.NewRenderer("Gatehouse")
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	workers := jobs.NewWorkers()
	river.AddWorker(workers, mail.NewWorker(mail.NewBreaker(sender, "smtp"), r, logger, nil))
	e.client = jobstest.New(t, e.db).Work(t, workers, 20*time.Millisecond)
	require.NoError(t, e.client.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, e.client.Stop(ctx))
	})
	return e
}

func (e *e2e) enqueue(t *testing.T, to, token string, fail bool) error {
	t.Helper()
	errRollback := errors.New("roll back")
	err := e.db.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		if err := mail.Enqueue(ctx, e.client, tx, to, gatehouse.MailTemplateVerifyEmail, map[string]any{
			gatehouse.MailKeyName:      "Alice",
			gatehouse.MailKeyLink:      "http://localhost:8080/verify?token=" + token,
			gatehouse.MailKeyExpiresIn: "24 hours",
		}); err != nil {
			return err
		}
		if fail {
			return errRollback
		}
		return nil
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

func (e *e2e) jobsOf(t *testing.T, states ...rivertype.JobState) []*rivertype.JobRow {
	t.Helper()
	params := river.NewJobListParams().Kinds(mail.JobKind).First(100)
	if len(states) > 0 {
		params = params.States(states...)
	}
	res, err := e.client.River().JobList(context.Background(), params)
	require.NoError(t, err)
	return res.Jobs
}

func TestE2EEmailOnlyForCommittedTransactions(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		require.NoError(t, e.enqueue(t, "bob@example.com", "rolledback", true))
		require.NoError(t, e.enqueue(t, "alice@example.com", "tok-alice", false))

		got := e.srv.WaitFor(t, "alice@example.com", 10*time.Second)
		require.Equal(t, "Verify your email address for Gatehouse", got.Subject)
		require.Equal(t, "http://localhost:8080/verify?token=tok-alice", mailtest.LinkFrom(got.Text, "http://localhost:8080/verify?"))
		require.Contains(t, got.Text, "Hello Alice,")

		require.Eventually(t, func() bool {
			return len(e.jobsOf(t, rivertype.JobStateCompleted)) == 1
		}, 10*time.Second, 20*time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		msgs := e.srv.Messages()
		require.Len(t, msgs, 1, "exactly one email: none for the rolled-back transaction")
		require.Equal(t, "alice@example.com", msgs[0].To)
		require.Len(t, e.jobsOf(t), 1, "the rolled-back job was never inserted")
		require.NotContains(t, e.logs.String(), "tok-alice")
	})
}

func TestE2ERetryAfterTemporaryFailure(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		e.srv.FailNext(1)
		require.NoError(t, e.enqueue(t, "carol@example.com", "tok-carol", false))

		// The first attempt gets 451 and the job waits for its retry (as
		// "available" with a future scheduled_at when the backoff is shorter
		// than River's scheduler interval, else "retryable"); make it run now
		// instead of after River's backoff.
		var retryable []*rivertype.JobRow
		// Under load River's own retry may already have run (or be running)
		// when the test looks; then there is nothing to hurry.
		require.Eventually(t, func() bool {
			retryable = e.jobsOf(t, rivertype.JobStateAvailable, rivertype.JobStateRetryable,
				rivertype.JobStateRunning, rivertype.JobStateCompleted)
			return len(retryable) == 1 && len(retryable[0].Errors) >= 1
		}, 10*time.Second, 5*time.Millisecond)
		require.Contains(t, retryable[0].Errors[0].Error, "451")
		require.NotContains(t, retryable[0].Errors[0].Error, "tok-carol")
		if st := retryable[0].State; st == rivertype.JobStateAvailable || st == rivertype.JobStateRetryable {
			_, err := e.client.River().JobRetry(context.Background(), retryable[0].ID)
			require.NoError(t, err)
		}

		got := e.srv.WaitFor(t, "carol@example.com", 10*time.Second)
		require.Equal(t, "http://localhost:8080/verify?token=tok-carol", mailtest.LinkFrom(got.Text, "http://localhost:8080/verify?"))
		require.Eventually(t, func() bool {
			done := e.jobsOf(t, rivertype.JobStateCompleted)
			return len(done) == 1 && done[0].Attempt == 2
		}, 10*time.Second, 20*time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		require.Len(t, e.srv.Messages(), 1, "delivered exactly once")
		require.NotContains(t, e.logs.String(), "tok-carol")
	})
}

func TestE2ERefusedRecipientIsCancelled(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		require.NoError(t, e.enqueue(t, "x@"+mailtest.RejectedDomain, "tok-x", false))
		require.Eventually(t, func() bool {
			return len(e.jobsOf(t, rivertype.JobStateCancelled)) == 1
		}, 10*time.Second, 20*time.Millisecond)
		require.Empty(t, e.srv.Messages())
	})
}
