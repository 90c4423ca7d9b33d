package sms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/jobs"
	"github.com/gatehouse-auth/gatehouse/internal/jobs/jobstest"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms/smstest"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
)

// e2e wires the real pieces: a database, River through internal/jobs, the
// service with a Twilio sender, and the smstest server.
type e2e struct {
	db     *sqlstore.DB
	client *jobstest.Jobs
	svc    *sms.Service
	srv    *smstest.Server
	skew   atomic.Int64  // how far the service's clock is ahead, in ns
	logs   string        // file the service logs to
	marks  *cache.Memory // where the service marks failed messages
}

func forEngine(t *testing.T, fn func(t *testing.T, e *e2e)) {
	for _, eng := range sqltest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) { fn(t, newE2E(t, eng.Open(t))) })
	}
}

func newE2E(t *testing.T, db *sqlstore.DB) *e2e {
	t.Helper()
	box, err := secret.NewBox(bytes.Repeat([]byte{9}, 32))
	require.NoError(t, err)
	e := &e2e{db: db, srv: smstest.Start(t), logs: filepath.Join(t.TempDir(), "log"), marks: cache.NewMemory()}
	f, err := os.Create(e.logs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	logger := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.client = jobstest.New(t, db)
	e.svc = sms.New(twilio(t, e.srv, e.srv.Token), box, e.client, sms.Options{
		Logger: logger, Now: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) },
		Backoff: func(int) time.Duration { return time.Millisecond }, Cache: e.marks,
	})
	workers := jobs.NewWorkers()
	e.svc.Register(workers)
	e.client.Work(t, workers, 20*time.Millisecond)
	return e
}

func (e *e2e) start(t *testing.T) {
	t.Helper()
	require.NoError(t, e.client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, e.client.Stop(ctx))
	})
}

func (e *e2e) enqueue(t *testing.T, to, body, ref string, rollback bool) {
	t.Helper()
	errRollback := errors.New("roll back")
	err := e.db.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		if err := e.svc.EnqueueTx(ctx, tx, to, body, ref); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if rollback {
		require.ErrorIs(t, err, errRollback)
	} else {
		require.NoError(t, err)
	}
}

func (e *e2e) waitJob(t *testing.T, state rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var rows []*rivertype.JobRow
	require.Eventually(t, func() bool {
		res, err := e.client.River().JobList(context.Background(), river.NewJobListParams().Kinds(sms.JobKind).States(state))
		require.NoError(t, err)
		rows = res.Jobs
		return len(rows) == 1
	}, 15*time.Second, 10*time.Millisecond)
	return rows[0]
}

// givenUp waits for ref's message to be marked failed and its job to be
// cancelled with a reason containing why.
func (e *e2e) givenUp(t *testing.T, ref, why string) *rivertype.JobRow {
	t.Helper()
	require.Eventually(t, func() bool { return e.svc.Failed(context.Background(), ref) }, 15*time.Second, 10*time.Millisecond)
	row := e.waitJob(t, rivertype.JobStateCancelled)
	require.Contains(t, row.Errors[0].Error, why)
	return row
}

// requireNoCodeLogged checks the service's log never shows the code.
func (e *e2e) requireNoCodeLogged(t *testing.T) {
	t.Helper()
	logs, err := os.ReadFile(e.logs)
	require.NoError(t, err)
	require.NotContains(t, string(logs), "493817")
}

func (e *e2e) allJobs(t *testing.T) []*rivertype.JobRow {
	t.Helper()
	res, err := e.client.River().JobList(context.Background(), river.NewJobListParams().Kinds(sms.JobKind).First(100))
	require.NoError(t, err)
	return res.Jobs
}

// A committed enqueue sends once, a rolled-back one never; the job
// arguments never hold the body in readable form.
func TestE2ESendsOnlyCommittedAndSealsBody(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		e.enqueue(t, "+15550000002", "Your code is 111222", "chal-rolled-back", true)
		e.enqueue(t, alice, body, "chal-1", false)
		rows := e.allJobs(t)
		require.Len(t, rows, 1, "the rolled-back job was never inserted")
		require.NotContains(t, string(rows[0].EncodedArgs), "493817")
		require.Contains(t, string(rows[0].EncodedArgs), alice)
		require.Equal(t, jobs.QueueSMS, rows[0].Queue)
		require.Equal(t, sms.MaxAttempts, rows[0].MaxAttempts)

		e.start(t)
		require.Equal(t, body, e.srv.WaitMessage(alice).Body)
		done := e.waitJob(t, rivertype.JobStateCompleted)
		require.NotContains(t, string(done.EncodedArgs), "493817")
		require.Len(t, e.srv.Messages(), 1, "exactly one message: none for the rolled-back transaction")
		require.False(t, e.svc.Failed(context.Background(), "chal-1"))
		require.False(t, e.svc.Failed(context.Background(), "chal-2"))
		e.requireNoCodeLogged(t)
		require.True(t, e.svc.Available())
	})
}

func TestE2ERetriesThenSucceeds(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		e.srv.FailNext(2, http.StatusTooManyRequests)
		e.enqueue(t, alice, body, "chal-2", false)
		e.start(t)
		require.Equal(t, body, e.srv.WaitMessage(alice).Body)
		done := e.waitJob(t, rivertype.JobStateCompleted)
		require.Equal(t, 3, done.Attempt)
		require.Len(t, done.Errors, 2)
		for _, je := range done.Errors {
			require.Contains(t, je.Error, "HTTP 429, code 20429")
			require.NotContains(t, je.Error, "493817")
		}
		require.Len(t, e.srv.Messages(), 1)
		require.False(t, e.svc.Failed(context.Background(), "chal-1"))
		require.False(t, e.svc.Failed(context.Background(), "chal-2"))
	})
}

// Five failed attempts give the message up, mark its ref failed, and (five
// consecutive failures) open the breaker.
func TestE2EFinalFailureMarksItFailedAndOpensBreaker(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		e.srv.FailNext(sms.MaxAttempts, http.StatusInternalServerError)
		e.enqueue(t, alice, body, "chal-3", false)
		e.start(t)
		require.Eventually(t, func() bool { return e.svc.Failed(context.Background(), "chal-3") }, 15*time.Second, 10*time.Millisecond)
		require.False(t, e.svc.Failed(context.Background(), "chal-other"))
		row := e.waitJob(t, rivertype.JobStateDiscarded)
		require.Equal(t, sms.MaxAttempts, row.Attempt)
		require.False(t, e.svc.Available(), "the breaker is open after five failures")
		require.Empty(t, e.srv.Messages())
		e.requireNoCodeLogged(t)
	})
}

func TestE2EInvalidNumberIsCancelledAtOnce(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		e.enqueue(t, smstest.InvalidNumber, body, "chal-4", false)
		e.start(t)
		require.Equal(t, 1, e.givenUp(t, "chal-4", "code 21211").Attempt)
		require.True(t, e.svc.Available(), "a refused number says nothing about the provider")
	})
}

// A message still queued when its code expires is not sent.
func TestE2EExpiredMessageIsNotSent(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		e.enqueue(t, alice, body, "chal-5", false)
		e.skew.Store(int64(sms.DefaultTTL))
		e.start(t)
		e.givenUp(t, "chal-5", "expired")
		require.Empty(t, e.srv.Messages())
	})
}

// A sealed body copied into another job (another recipient) does not open.
func TestE2EMovedSealedBodyIsRefused(t *testing.T) {
	forEngine(t, func(t *testing.T, e *e2e) {
		e.enqueue(t, alice, body, "chal-6", false)
		stolen := e.allJobs(t)[0]
		var args sms.SendArgs
		require.NoError(t, json.Unmarshal(stolen.EncodedArgs, &args))
		args.To = "+15550000003"
		require.NoError(t, e.client.Insert(context.Background(), args, nil))
		_, err := e.client.River().JobDelete(context.Background(), stolen.ID)
		require.NoError(t, err)
		e.start(t)
		e.givenUp(t, "chal-6", "cannot open")
		require.Empty(t, e.srv.Messages())
	})
}

func TestEnqueueChecks(t *testing.T) {
	box, err := secret.NewBox(make([]byte, 32))
	require.NoError(t, err)
	require.ErrorContains(t, sms.New(sms.NewLogSender(nil), box, nil, sms.Options{}).EnqueueTx(context.Background(), nil, alice, body, "r"), "no inserter")
	svc := sms.New(sms.NewLogSender(nil), box, &jobs.Client{}, sms.Options{})
	require.ErrorContains(t, svc.EnqueueTx(context.Background(), nil, " ", body, "r"), "empty recipient")
	require.ErrorContains(t, svc.EnqueueTx(context.Background(), nil, alice, "", "r"), "empty recipient or body")
}
