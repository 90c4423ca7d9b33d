package session

import (
	"context"
	"crypto/rsa"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

var errKeysDown = errors.New("load signing keys: database down")

// downKeys is oneKey whose PublicKey fails while down.
type downKeys struct {
	oneKey
	down *atomic.Bool
}

func (k downKeys) PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if k.down.Load() {
		return nil, errKeysDown
	}
	return k.oneKey.PublicKey(ctx, kid)
}

// A token that cannot be checked because the signing keys cannot be read
// is service_unavailable (503), not unauthorized (401): the client keeps
// its token and the request is not counted as a refused bearer.
func TestAuthenticateKeyRingFailureIsUnavailable(t *testing.T) {
	eng := sqltest.Engines(t)[0]
	ctx := context.Background()
	db := eng.Open(t)
	key, err := testKey()
	require.NoError(t, err)
	clock := &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c := cache.NewMemory(cache.WithClock(clock.Now))
	t.Cleanup(func() { _ = c.Close() })
	down := &atomic.Bool{}
	tokens := token.New(downKeys{oneKey: oneKey{priv: key}, down: down}, token.Options{Issuer: "https://gatehouse.test", TTL: 15 * time.Minute, Now: clock.Now})
	svc := New(db, c, tokens, nopEmitter{}, Options{Lifetime: 24 * time.Hour, IdleTimeout: time.Hour, Now: clock.Now})

	email, err := gatehouse.ParseEmail("keys-down@example.com")
	require.NoError(t, err)
	u := gatehouse.User{ID: gatehouse.NewID(), Email: email, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
	require.NoError(t, db.CreateUser(ctx, u))
	var sess gatehouse.Session
	require.NoError(t, db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		sess, _, err = svc.Start(ctx, tx, u.ID, Meta{IP: "192.0.2.1"}, []string{"pwd"}, false)
		return err
	}))
	access, _, err := svc.AccessToken(ctx, sess)
	require.NoError(t, err)
	_, err = svc.Authenticate(ctx, access)
	require.NoError(t, err)

	down.Store(true)
	_, err = svc.Authenticate(ctx, access)
	require.Equal(t, gatehouse.CodeUnavailable, gatehouse.ErrorCode(err), "err: %v", err)
	require.ErrorIs(t, err, errKeysDown, "the cause is kept for the logs")
	require.NotErrorIs(t, err, token.ErrInvalid)

	// A malformed token is still unauthorized, whatever the ring's state.
	_, err = svc.Authenticate(ctx, "not.a.jwt")
	require.Equal(t, gatehouse.CodeUnauthorized, gatehouse.ErrorCode(err))

	down.Store(false)
	_, err = svc.Authenticate(ctx, access)
	require.NoError(t, err, "the same token works once the keys can be read")
}
