package loadtest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
)

// signedUp creates an account on the server and returns the setup client.
func signedUp(t *testing.T, env *apptest.Env) (*api, *account) {
	t.Helper()
	a := &api{base: env.Server.URL, client: newClient(10*time.Second, false)}
	acct := newAccount("bg", 0, apptest.StrongPassword)
	require.NoError(t, a.register(context.Background(), acct))
	return a, acct
}

// A bearer's access token is renewed through its session's refresh token,
// and through a new sign-in when that token no longer works; each renewed
// token is accepted.
func TestRenewerKeepsAccessTokensFresh(t *testing.T) {
	env := apptest.New(t, "sqlite", nil)
	a, acct := signedUp(t, env)
	ctx := context.Background()
	first, err := a.login(ctx, acct)
	require.NoError(t, err)

	// A spent refresh token: the first renewal must sign in again.
	b := &bearer{acct: acct, refresh: "not-a-live-refresh-token"}
	b.token.Store(&first.AccessToken)
	ticks := make(chan time.Time)
	var waits []time.Duration
	r := &renewer{api: a, after: func(d time.Duration) <-chan time.Time { waits = append(waits, d); return ticks }}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.keep(runCtx, b, first.ExpiresIn); close(done) }()

	seen := map[string]bool{first.AccessToken: true}
	for want := int64(1); want <= 2; want++ {
		ticks <- time.Now()
		require.Eventually(t, func() bool { return r.renewed.Load() == want }, 10*time.Second, 5*time.Millisecond)
		tok := *b.token.Load()
		require.False(t, seen[tok], "renewal %d gave a new token", want)
		seen[tok] = true
		require.NoError(t, a.call(ctx, http.MethodGet, mePath, nil, tok, nil), "renewed token %d is accepted", want)
	}
	stop()
	<-done
	require.Zero(t, r.failures.Load())
	// 15 minute tokens are renewed after 12 minutes.
	require.Equal(t, []time.Duration{12 * time.Minute, 12 * time.Minute, 12 * time.Minute}, waits)
}

// A chain whose token fails is replaced by a new sign-in, outside the
// measurement, and the next refresh waits for and uses the replacement.
func TestChainReplacedAfterAFailedRefresh(t *testing.T) {
	env := apptest.New(t, "sqlite", nil)
	a, acct := signedUp(t, env)
	ctx := context.Background()
	relogins := 0
	pool := newChainPool(ctx, []*chain{{acct: acct, token: "not-a-live-refresh-token"}}, func(ctx context.Context, acct *account) (string, error) {
		relogins++
		tok, err := a.login(ctx, acct)
		return tok.RefreshToken, err
	})
	client := &http.Client{Transport: &chainTransport{next: a.client.Transport, pool: pool}}
	refresh := func() int {
		req, err := http.NewRequest(http.MethodPost, a.base+refreshPath, nil)
		require.NoError(t, err)
		req.Header = header(true)
		req.Header.Set(chainHeader, "1")
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, refresh())
	for range 3 {
		require.Equal(t, http.StatusOK, refresh(), "the replacement chain rotates as it should")
	}
	pool.wait()
	require.Equal(t, 1, relogins)
	require.Equal(t, int64(1), pool.lostCount.Load())
}

// When no chain can be replaced, refreshes fail at once instead of
// waiting for a chain that will never come back.
func TestNoChainLeftFailsFast(t *testing.T) {
	pool := newChainPool(context.Background(), []*chain{{token: "x"}}, func(context.Context, *account) (string, error) {
		return "", context.Canceled
	})
	c, err := pool.take(context.Background())
	require.NoError(t, err)
	pool.lose(c)
	pool.wait()
	_, err = pool.take(context.Background())
	require.ErrorIs(t, err, errNoChain)
}
