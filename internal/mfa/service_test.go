package mfa_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/mfa"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/sms/smstest"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
)

// The service layer: mfa.Service on a fresh database with an in-memory
// cache and texts captured as they are queued, without a server, job
// workers or HTTP. Rules that HTTP adds nothing to (which requests race,
// what the account looks like afterwards) are checked here; the HTTP
// tests prove the wiring and the answers.

// svcSuite is an mfa.Service on its own database.
type svcSuite struct {
	svc   *mfa.Service
	db    *sqlstore.DB
	clock *testclock.Clock
	texts *textLog
}

// textLog is the SMS sender: it keeps each text queued in a transaction
// that commits.
type textLog struct {
	mu   sync.Mutex
	sent map[string][]string // phone -> bodies, in queue order
}

func (l *textLog) EnqueueTx(_ context.Context, tx store.Tx, to, body, _ string) error {
	tx.AfterCommit(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.sent[to] = append(l.sent[to], body)
	})
	return nil
}

func (l *textLog) Available() bool                     { return true }
func (l *textLog) Failed(context.Context, string) bool { return false }

// last answers the code of the newest text to phone.
func (l *textLog) last(t require.TestingT, phone string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	bodies := l.sent[phone]
	require.NotEmpty(t, bodies, "no text to %s", phone)
	code := smstest.CodeFrom(bodies[len(bodies)-1])
	require.NotEmpty(t, code)
	return code
}

// count answers how many texts went to phone.
func (l *textLog) count(phone string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sent[phone])
}

// quiet is the mailer, the event emitter and the recent-auth check: the
// HTTP tests cover what those do.
type quiet struct{}

func (quiet) SendTx(context.Context, store.Tx, string, string, map[string]any) error { return nil }
func (quiet) Emit(_ context.Context, _ store.Tx, e gatehouse.Event) (gatehouse.Event, error) {
	return e, nil
}
func (quiet) RequireRecentAuth(context.Context, string, time.Time, string) error { return nil }

// forEachStore runs fn as a parallel subtest per engine, each on a fresh
// service suite.
func forEachStore(t *testing.T, fn func(t *testing.T, s *svcSuite)) {
	t.Helper()
	t.Parallel()
	for _, eng := range sqltest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, newSvcSuite(t, eng.Open(t)))
		})
	}
}

func newSvcSuite(t *testing.T, db *sqlstore.DB) *svcSuite {
	clock := testclock.New(time.Now().UTC().Truncate(time.Second))
	c := cache.NewMemory(cache.WithClock(clock.Now))
	t.Cleanup(func() { _ = c.Close() })
	box, err := secret.NewBox([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	texts := &textLog{sent: map[string][]string{}}
	svc := mfa.New(db, c, box, texts, quiet{}, quiet{}, quiet{}, mfa.Options{Now: clock.Now})
	return &svcSuite{svc: svc, db: db, clock: clock, texts: texts}
}

// svcUser is an account of a service suite.
type svcUser struct {
	gatehouse.User
	user // the factors the test knows of
}

// newUser stores an account with no factors.
func (s *svcSuite) newUser(t require.TestingT) *svcUser {
	n := seq.Add(1)
	now := s.clock.Now()
	u := &svcUser{User: gatehouse.User{ID: gatehouse.NewID(), Email: gatehouse.Email("mfa-svc-" + uniqueLetters(n) + "@example.com"),
		EmailVerified: true, CreatedAt: now, UpdatedAt: now}}
	u.id, u.email, u.phone = u.ID, string(u.Email), phoneNumber(n)
	require.NoError(t, s.db.CreateUser(context.Background(), u.User))
	return u
}

// totp is user.totp on the suite's clock.
func (s *svcSuite) totp(t require.TestingT, u *svcUser) string {
	now := s.clock.Now()
	if step := now.Unix() / 30; step <= u.lastStep {
		s.clock.Advance(time.Duration((u.lastStep+1)*30-now.Unix()) * time.Second)
	}
	return u.totpAt(t, s.clock.Now())
}

// enrolTOTP sets up and activates TOTP.
func (s *svcSuite) enrolTOTP(t require.TestingT, u *svcUser) {
	res, err := s.svc.Setup(context.Background(), u.ID, gatehouse.MFAMethodTOTP, "")
	require.NoError(t, err)
	u.secret = res.Secret
	u.backup, err = s.svc.Activate(context.Background(), u.ID, gatehouse.MFAMethodTOTP, s.totp(t, u))
	require.NoError(t, err)
	require.Len(t, u.backup, 10)
}

// setupSMS starts an SMS setup and answers the code texted for it.
func (s *svcSuite) setupSMS(t require.TestingT, u *svcUser) string {
	before := s.texts.count(u.phone)
	_, err := s.svc.Setup(context.Background(), u.ID, gatehouse.MFAMethodSMS, u.phone)
	require.NoError(t, err)
	require.Equal(t, before+1, s.texts.count(u.phone), "one text per setup")
	return s.texts.last(t, u.phone)
}

// signIn holds a password sign-in of u behind a challenge, as the sign-in
// flow does; nil when u has no active factor.
func (s *svcSuite) signIn(t require.TestingT, u *svcUser) *gatehouse.MFAChallenge {
	var ch *gatehouse.MFAChallenge
	require.NoError(t, s.db.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		fresh, err := tx.GetUser(ctx, u.ID)
		if err != nil {
			return err
		}
		ch, err = s.svc.Challenge(ctx, tx, fresh, gatehouse.PendingSignIn{UserID: u.ID, AMR: []string{"pwd"}, Method: "password"})
		return err
	}))
	return ch
}

// challenged reports whether a sign-in of u now stops at a challenge.
func (s *svcSuite) challenged(t require.TestingT, u *svcUser) bool { return s.signIn(t, u) != nil }

// challenge signs u in and answers the challenge's id.
func (s *svcSuite) challenge(t require.TestingT, u *svcUser) string {
	ch := s.signIn(t, u)
	require.NotNil(t, ch, "no challenge")
	return ch.ID
}

// verify meets a challenge; method may be "". On success it answers the
// sign-in held, its factors ending with the second one.
func (s *svcSuite) verify(challengeID, method, code string) (gatehouse.PendingSignIn, error) {
	return s.svc.Verify(context.Background(), challengeID, method, code)
}

// validNow lists the TOTP codes of u the service accepts now (ignoring
// replay).
func (s *svcSuite) validNow(t require.TestingT, u *svcUser) []string {
	return validCodes(t, u.secret, s.clock.Now())
}

// requireCode fails t unless err is the service error of code (what the
// HTTP layer answers as that problem code; the flow tests check the
// mapping).
func requireCode(t require.TestingT, err error, code gatehouse.Code, msgAndArgs ...any) {
	msg := fmt.Sprint(msgAndArgs...)
	require.Error(t, err, msg)
	require.Equal(t, code, gatehouse.ErrorCode(err), "%s: %v", msg, err)
}
