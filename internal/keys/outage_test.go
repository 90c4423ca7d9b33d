package keys_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

var errDown = errors.New("database down")

// flaky is a store whose key reads fail while down, and counts them.
type flaky struct {
	*sqlstore.DB
	down  atomic.Bool
	reads atomic.Int64
}

func (f *flaky) ListSigningKeys(ctx context.Context) ([]gatehouse.SigningKey, error) {
	f.reads.Add(1)
	if f.down.Load() {
		return nil, errDown
	}
	return f.DB.ListSigningKeys(ctx)
}

// When the database cannot be read after the reload interval, the ring
// keeps serving the keys it holds (tokens verify, the JWKS is served,
// tokens are signed), retries after a short backoff rather than on every
// call, and picks up changes once the database is back.
func TestReloadFailureKeepsServingLoadedKeys(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			fs := &flaky{DB: db}
			clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			opts := keys.Options{MaxTokenTTL: 15 * time.Minute, Now: clk.Now}
			ring := keys.NewRing(fs, box(t, 1), opts)
			_, err := ring.Ensure(ctx)
			require.NoError(t, err)
			tokens := token.New(ring, token.Options{Issuer: "https://x", TTL: 15 * time.Minute, Now: clk.Now})
			raw, _, err := tokens.Issue(ctx, "u", "s", nil, time.Time{})
			require.NoError(t, err)
			kid := signerKid(t, ring)

			fs.down.Store(true)
			clk.Advance(61 * time.Second) // the reload interval passes; the key is still in memory
			before := fs.reads.Load()
			for range 20 {
				_, err = tokens.Verify(ctx, raw)
				require.NoError(t, err, "a database outage does not invalidate tokens")
				require.Equal(t, []string{kid}, jwksKids(t, ring))
				require.Equal(t, kid, signerKid(t, ring))
			}
			require.Equal(t, int64(1), fs.reads.Load()-before, "one failed reload, then a backoff")

			// After the backoff it tries again (once).
			clk.Advance(6 * time.Second)
			_, err = tokens.Verify(ctx, raw)
			require.NoError(t, err)
			_, err = tokens.Verify(ctx, raw)
			require.NoError(t, err)
			require.Equal(t, int64(2), fs.reads.Load()-before)

			// An unknown kid cannot be checked against the database: that
			// is an infrastructure error, not an unknown key.
			_, err = ring.PublicKey(ctx, "no-such-kid")
			require.ErrorIs(t, err, errDown)
			require.NotErrorIs(t, err, keys.ErrUnknownKey)

			// Another instance rotates meanwhile; once the database is back
			// the ring sees the new key within the backoff.
			other := keys.NewRing(db, box(t, 1), opts)
			_, err = other.Ensure(ctx)
			require.NoError(t, err)
			rotated, err := other.Rotate(ctx)
			require.NoError(t, err)
			fs.down.Store(false)
			clk.Advance(6 * time.Second)
			require.ElementsMatch(t, []string{kid, rotated.ID}, jwksKids(t, ring))

			// Expiry still applies to keys served from memory.
			fs.down.Store(true)
			clk.Advance(keys.PublishDelay + 16*time.Minute + 5*time.Minute)
			require.Equal(t, rotated.ID, signerKid(t, ring))
			require.Equal(t, []string{rotated.ID}, jwksKids(t, ring))
			_, err = tokens.Verify(ctx, raw)
			require.ErrorIs(t, err, token.ErrInvalid, "expired")
		})
	}
}

// A ring that never loaded has nothing to serve: it reports the error.
func TestReloadFailureWithoutKeysFails(t *testing.T) {
	e := sqltest.Engines(t)[0]
	fs := &flaky{DB: e.Open(t)}
	fs.down.Store(true)
	ring := keys.NewRing(fs, box(t, 1), keys.Options{})
	_, err := ring.Ensure(t.Context())
	require.ErrorIs(t, err, errDown)
	_, err = ring.PublicKey(t.Context(), "k")
	require.ErrorIs(t, err, errDown)
	_, err = ring.JWKS(t.Context())
	require.ErrorIs(t, err, errDown)
	_, _, err = ring.Signer(t.Context())
	require.ErrorIs(t, err, errDown)
}
