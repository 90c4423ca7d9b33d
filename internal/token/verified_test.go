package token_test

import (
	"context"
	"crypto/rsa"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// switchRing is a one-key ring whose key can be retired or whose lookups
// can fail, while tokens signed by it are remembered as verified.
type switchRing struct {
	priv *rsa.PrivateKey
	mu   sync.Mutex
	err  error // what PublicKey answers instead of the key
}

func (r *switchRing) Signer(context.Context) (string, *rsa.PrivateKey, error) {
	return "k1", r.priv, nil
}
func (r *switchRing) PublicKey(_ context.Context, kid string) (*rsa.PublicKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	if kid != "k1" {
		return nil, keys.ErrUnknownKey
	}
	pub := r.priv.PublicKey // a fresh copy each time, as a reloaded ring gives
	return &pub, nil
}

func (r *switchRing) fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// A token verified once is not believed blindly afterwards: the key ring,
// the clock and the claims the caller requires are consulted on every
// use, with the same answers as for a token seen the first time.
func TestVerifiedTokensAreCheckedAgainEachTime(t *testing.T) {
	c := testclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	ours, _ := keysForTest(t)
	r := &switchRing{priv: ours}
	s := token.New(r, token.Options{Issuer: "https://auth.example.com", TTL: 15 * time.Minute, Now: c.Now, VerifiedCacheSize: 10})
	ctx := context.Background()
	raw, issued, err := s.Issue(ctx, "u", "s", []string{"pwd"}, c.Now())
	require.NoError(t, err)

	first, err := s.Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, 1, token.VerifiedLen(s))
	first.AMR[0] = "changed by a caller"
	again, err := s.Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, issued.AMR, again.AMR, "each caller gets its own claims")
	first.AMR[0] = "pwd"
	require.Equal(t, first, again)

	down := errors.New("database down")
	r.fail(down)
	_, err = s.Verify(ctx, raw)
	require.ErrorIs(t, err, down)
	require.NotErrorIs(t, err, token.ErrInvalid, "a ring that cannot look does not make the token invalid")
	r.fail(keys.ErrUnknownKey)
	_, err = s.Verify(ctx, raw)
	require.ErrorIs(t, err, token.ErrInvalid, "a retired key stops its tokens at once")
	r.fail(nil)
	_, err = s.Verify(ctx, raw)
	require.NoError(t, err)

	client, _, err := s.IssueClient(ctx, "app", nil)
	require.NoError(t, err)
	_, err = s.VerifyAny(ctx, client)
	require.NoError(t, err)
	_, err = s.Verify(ctx, client)
	require.ErrorIs(t, err, token.ErrInvalid, "Verify still wants a session")

	c.Advance(16 * time.Minute)
	_, err = s.Verify(ctx, raw)
	require.ErrorIs(t, err, token.ErrInvalid, "expired")
}

// The cache keeps at most its size, whatever the number of tokens, and
// every token still verifies.
func TestVerifiedCacheIsBounded(t *testing.T) {
	c := testclock.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	ours, _ := keysForTest(t)
	s := token.New(ring{kid: "k1", priv: ours}, token.Options{Issuer: "https://auth.example.com", TTL: 15 * time.Minute, Now: c.Now, VerifiedCacheSize: 8})
	ctx := context.Background()
	for i := range 50 {
		raw, _, err := s.Issue(ctx, "u", "s", nil, time.Time{})
		require.NoError(t, err)
		for range 2 {
			_, err = s.Verify(ctx, raw)
			require.NoError(t, err, i)
		}
		require.LessOrEqual(t, token.VerifiedLen(s), 8)
	}
	c.Advance(time.Hour) // all expired: the next one sweeps them out
	raw, _, err := s.Issue(ctx, "u", "s", nil, time.Time{})
	require.NoError(t, err)
	_, err = s.Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, 1, token.VerifiedLen(s))
}
