package mail_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail"
	"github.com/gatehouse-auth/gatehouse/internal/outbound/mail/mailtest"
)

// fakeSender returns the queued errors in order, then nil.
type fakeSender struct {
	mu    sync.Mutex
	errs  []error
	calls int
	sent  []mail.Message
}

func (f *fakeSender) Send(ctx context.Context, m mail.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return err
	}
	f.sent = append(f.sent, m)
	return nil
}

func (f *fakeSender) fail(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.errs = append(f.errs, err)
	}
}

func (f *fakeSender) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) record(name, from, to string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, fmt.Sprintf("%s:%s->%s", name, from, to))
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.got...)
}

func TestBreakerOpensAfterFiveFailuresAndRecovers(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("connection refused")
	f := &fakeSender{}
	var tr transitions
	b := mail.NewBreaker(f, "smtp", mail.WithOpenTimeout(100*time.Millisecond), mail.WithStateChange(tr.record), nil)
	require.Equal(t, "smtp", b.Name())
	require.Equal(t, mail.StateClosed, b.State())

	f.fail(5, boom)
	for i := range 5 {
		require.ErrorIs(t, b.Send(ctx, mail.Message{To: "a@example.com"}), boom, "failure %d passes through", i+1)
		if i < 4 {
			require.Equal(t, mail.StateClosed, b.State())
		}
	}
	require.Equal(t, mail.StateOpen, b.State())

	// Open: fails fast without calling the sender.
	err := b.Send(ctx, mail.Message{To: "a@example.com"})
	require.ErrorIs(t, err, mail.ErrUnavailable)
	require.Contains(t, err.Error(), `"smtp"`)
	require.Equal(t, 5, f.callCount())

	// After the open timeout one probe goes through; its success closes.
	require.Eventually(t, func() bool { return b.State() == mail.StateHalfOpen }, 2*time.Second, 5*time.Millisecond)
	require.NoError(t, b.Send(ctx, mail.Message{To: "a@example.com"}))
	require.Equal(t, mail.StateClosed, b.State())
	require.Equal(t, 6, f.callCount())
	require.Equal(t, []string{"smtp:closed->open", "smtp:open->half-open", "smtp:half-open->closed"}, tr.list())
}

func TestBreakerHalfOpenFailureReopens(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("timeout")
	f := &fakeSender{}
	b := mail.NewBreaker(f, "smtp", mail.WithFailureThreshold(2), mail.WithOpenTimeout(50*time.Millisecond))
	f.fail(3, boom)
	require.Error(t, b.Send(ctx, mail.Message{}))
	require.Error(t, b.Send(ctx, mail.Message{}))
	require.Equal(t, mail.StateOpen, b.State())
	require.Eventually(t, func() bool { return b.State() == mail.StateHalfOpen }, 2*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, b.Send(ctx, mail.Message{}), boom)
	require.Equal(t, mail.StateOpen, b.State())
	require.ErrorIs(t, b.Send(ctx, mail.Message{}), mail.ErrUnavailable)
}

func TestBreakerHalfOpenAllowsOneProbe(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	slow := senderFunc(func(ctx context.Context, m mail.Message) error {
		if m.To == "probe" {
			entered <- struct{}{}
			<-release
			return nil
		}
		return errors.New("down")
	})
	b := mail.NewBreaker(slow, "smtp", mail.WithFailureThreshold(1), mail.WithOpenTimeout(20*time.Millisecond))
	require.Error(t, b.Send(ctx, mail.Message{}))
	require.Eventually(t, func() bool { return b.State() == mail.StateHalfOpen }, 2*time.Second, 5*time.Millisecond)

	done := make(chan error, 1)
	go func() { done <- b.Send(ctx, mail.Message{To: "probe"}) }()
	<-entered
	require.ErrorIs(t, b.Send(ctx, mail.Message{To: "second"}), mail.ErrUnavailable)
	close(release)
	require.NoError(t, <-done)
	require.Equal(t, mail.StateClosed, b.State())
}

type senderFunc func(ctx context.Context, m mail.Message) error

func (f senderFunc) Send(ctx context.Context, m mail.Message) error { return f(ctx, m) }

func TestBreakerIgnoresPermanentAndCallerCancellation(t *testing.T) {
	f := &fakeSender{}
	b := mail.NewBreaker(f, "smtp", mail.WithFailureThreshold(2), mail.WithFailureThreshold(0), mail.WithOpenTimeout(0))

	// Refused recipients prove the server is up.
	perm := fmt.Errorf("%w: 550 no such user", mail.ErrPermanent)
	f.fail(10, perm)
	for range 10 {
		require.ErrorIs(t, b.Send(context.Background(), mail.Message{}), mail.ErrPermanent)
	}
	require.Equal(t, mail.StateClosed, b.State())

	// Failures while the caller's context is done (shutdown) do not count,
	// and the caller sees the sender's own error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.fail(10, context.Canceled)
	for range 10 {
		err := b.Send(ctx, mail.Message{})
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, mail.ErrUnavailable)
	}
	require.Equal(t, mail.StateClosed, b.State())

	// But a timeout of the sender's own (the caller's context still live) does.
	f.fail(5, context.DeadlineExceeded)
	for range 5 {
		_ = b.Send(context.Background(), mail.Message{})
	}
	require.Equal(t, mail.StateOpen, b.State())
}

// The breaker around a real SMTP sender: a relay that goes away opens it.
func TestBreakerAroundSMTP(t *testing.T) {
	srv := mailtest.Start(t)
	s, err := mail.NewSMTP(srv.URL(), from, mail.WithTimeout(time.Second))
	require.NoError(t, err)
	b := mail.NewBreaker(s, "smtp")
	require.NoError(t, b.Send(context.Background(), message("a@example.com")))
	srv.Close()
	for range mail.DefaultFailureThreshold {
		err := b.Send(context.Background(), message("a@example.com"))
		require.Error(t, err)
		require.NotErrorIs(t, err, mail.ErrUnavailable)
	}
	require.ErrorIs(t, b.Send(context.Background(), message("a@example.com")), mail.ErrUnavailable)
	require.Equal(t, mail.StateOpen, b.State())
}
