package session

import (
	"context"
	"crypto/rsa"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
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
	key, err := testKey()
	require.NoError(t, err)
	down := &atomic.Bool{}
	f := newFixture(t, eng.Open(t), downKeys{oneKey: oneKey{priv: key}, down: down}, "keys-down@example.com")
	svc, access := f.svc, f.access

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
