package session

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// These tests need the cache keys, so they live inside the package (and
// therefore cannot use apptest, which imports this package through app).

type oneKey struct{ priv *rsa.PrivateKey }

var testKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func (k oneKey) Signer(context.Context) (string, *rsa.PrivateKey, error) { return "k1", k.priv, nil }
func (k oneKey) PublicKey(_ context.Context, kid string) (*rsa.PublicKey, error) {
	if kid != "k1" {
		return nil, token.ErrInvalid
	}
	return &k.priv.PublicKey, nil
}

type nopEmitter struct{}

func (nopEmitter) Emit(_ context.Context, _ store.Tx, e gatehouse.Event) (gatehouse.Event, error) {
	return e, nil
}

// fixtureTTL is the access-token lifetime of a fixture.
const fixtureTTL = 15 * time.Minute

// fixture is a session service over a fresh database with an in-memory
// cache and a test clock, and one user with a session whose access token
// has been checked once.
type fixture struct {
	svc    *Service
	cache  *cache.Memory
	clock  *testclock.Clock
	user   gatehouse.User
	sess   gatehouse.Session
	access string
}

func newFixture(t *testing.T, db *sqlstore.DB, keys token.Keys, email string) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{clock: testclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	f.cache = cache.NewMemory(cache.WithClock(f.clock.Now))
	t.Cleanup(func() { _ = f.cache.Close() })
	tokens := token.New(keys, token.Options{Issuer: "https://gatehouse.test", TTL: fixtureTTL, Now: f.clock.Now})
	f.svc = New(db, f.cache, tokens, nopEmitter{}, Options{Lifetime: 24 * time.Hour, IdleTimeout: time.Hour, Now: f.clock.Now})

	addr, err := gatehouse.ParseEmail(email)
	require.NoError(t, err)
	f.user = gatehouse.User{ID: gatehouse.NewID(), Email: addr, CreatedAt: f.clock.Now(), UpdatedAt: f.clock.Now()}
	require.NoError(t, db.CreateUser(ctx, f.user))
	require.NoError(t, db.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		f.sess, _, err = f.svc.Start(ctx, tx, f.user.ID, gatehouse.ClientInfo{IP: "192.0.2.1"}, []string{"pwd"}, false)
		return err
	}))
	f.access, _, err = f.svc.AccessToken(ctx, f.sess)
	require.NoError(t, err)
	_, err = f.svc.Authenticate(ctx, f.access)
	require.NoError(t, err)
	return f
}

// A request that read the session as alive just before it was revoked can
// write the "alive" mark after Forget deleted it. The deny list must win
// over such a stale mark, for as long as any token naming the session
// could still verify.
func TestDenyListOutranksStaleAliveMark(t *testing.T) {
	t.Parallel()
	for _, eng := range sqltest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			key, err := testKey()
			require.NoError(t, err)
			f := newFixture(t, eng.Open(t), oneKey{priv: key}, "deny@example.com")
			c, clock, svc, u, sess, access := f.cache, f.clock, f.svc, f.user, f.sess, f.access
			_, err = c.Get(ctx, alivePrefix+sess.ID)
			require.NoError(t, err, "a successful check vouches for the session")

			require.NoError(t, svc.Revoke(ctx, u.ID, sess.ID, "revoked_by_user"))
			_, err = c.Get(ctx, alivePrefix+sess.ID)
			require.ErrorIs(t, err, cache.ErrMiss, "Forget drops the mark")
			// The racing request's late write.
			require.NoError(t, c.Set(ctx, alivePrefix+sess.ID, []byte{1}, aliveTTL))
			_, err = svc.Authenticate(ctx, access)
			require.Equal(t, gatehouse.CodeUnauthorized, gatehouse.ErrorCode(err), "err: %v", err)

			// The deny entry outlives every token that names the session
			// (TTL plus the verifier's 30 s leeway).
			clock.Advance(fixtureTTL + 30*time.Second)
			_, err = c.Get(ctx, revokedPrefix+sess.ID)
			require.NoError(t, err)
		})
	}
}
