package keys_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/keys"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store/sqlstore/sqltest"
	"github.com/gatehouse-auth/gatehouse/internal/testclock"
)

func box(t *testing.T, fill byte) *secret.Box {
	b, err := secret.NewBox(bytes.Repeat([]byte{fill}, 32))
	require.NoError(t, err)
	return b
}

func sign(t *testing.T, k *rsa.PrivateKey, msg string) []byte {
	h := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	require.NoError(t, err)
	return sig
}

func verify(pub *rsa.PublicKey, msg string, sig []byte) error {
	h := sha256.Sum256([]byte(msg))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
}

func TestKeyRing(t *testing.T) {
	for _, e := range sqltest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			opts := keys.Options{MaxTokenTTL: 15 * time.Minute, Leeway: time.Minute, Now: clk.Now}
			ring := keys.NewRing(db, box(t, 1), opts)

			created, err := ring.Ensure(ctx)
			require.NoError(t, err)
			require.True(t, created, "first start makes a key")
			created, err = ring.Ensure(ctx)
			require.NoError(t, err)
			require.False(t, created, "second start keeps it")

			kid1, priv1, err := ring.Signer(ctx)
			require.NoError(t, err)
			require.Equal(t, 2048, priv1.N.BitLen())
			sig := sign(t, priv1, "token-1")

			// The stored private key is sealed, never plain.
			rows, err := db.ListSigningKeys(ctx)
			require.NoError(t, err)
			require.Len(t, rows, 1)
			require.NotContains(t, string(rows[0].PrivateKeyEnc), "PRIVATE")

			// JWKS carries public parts only.
			set, err := ring.JWKS(ctx)
			require.NoError(t, err)
			require.Len(t, set.Keys, 1)
			require.Equal(t, kid1, set.Keys[0].KeyID)
			require.Equal(t, "RS256", set.Keys[0].Algorithm)
			raw, err := json.Marshal(set)
			require.NoError(t, err)
			for _, private := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
				require.NotContains(t, string(raw), private)
			}

			// A restarted instance (new ring, same database and key) signs
			// with the same key.
			restarted := keys.NewRing(db, box(t, 1), opts)
			_, err = restarted.Ensure(ctx)
			require.NoError(t, err)
			kid, _, err := restarted.Signer(ctx)
			require.NoError(t, err)
			require.Equal(t, kid1, kid)

			// Another master key cannot use the stored key: a clear error.
			_, err = keys.NewRing(db, box(t, 2), opts).Ensure(ctx)
			require.ErrorContains(t, err, "GATEHOUSE_SECRET_KEY")

			// Rotation: the new key is published at once but the old one
			// signs until the new one is PublishDelay old; the old key still
			// verifies until its tokens expire.
			rotated, err := ring.Rotate(ctx)
			require.NoError(t, err)
			kid, _, err = ring.Signer(ctx)
			require.NoError(t, err)
			require.Equal(t, kid1, kid, "the old key signs until the new one is published everywhere")
			set, err = ring.JWKS(ctx)
			require.NoError(t, err)
			require.Len(t, set.Keys, 2)
			kid2 := rotated.ID
			require.NotEqual(t, kid1, kid2)

			// The other instance knows the new key: at once for an unknown
			// kid, and in its JWKS after its reload interval.
			pub2, err := restarted.PublicKey(ctx, kid2)
			require.NoError(t, err)
			clk.Advance(2 * time.Minute)
			kid, _, err = restarted.Signer(ctx)
			require.NoError(t, err)
			require.Equal(t, kid1, kid)

			// Once the new key is PublishDelay old, both instances sign with it.
			clk.Advance(keys.PublishDelay - 2*time.Minute)
			for _, r := range []*keys.Ring{ring, restarted} {
				kid, priv2, err := r.Signer(ctx)
				require.NoError(t, err)
				require.Equal(t, kid2, kid)
				require.Equal(t, priv2.N, pub2.N)
				require.NotEqual(t, priv1.N, priv2.N)
			}
			pub1, err := ring.PublicKey(ctx, kid1)
			require.NoError(t, err)
			require.NoError(t, verify(pub1, "token-1", sig))

			// After the longest token lifetime plus leeway from when it
			// stopped signing, the old key is gone.
			clk.Advance(15*time.Minute + time.Minute - time.Second) // 1s before the old key expires
			_, err = ring.PublicKey(ctx, kid1)
			require.NoError(t, err, "a token the old key signed last is still live")
			clk.Advance(time.Second)
			_, err = ring.PublicKey(ctx, kid1)
			require.ErrorIs(t, err, keys.ErrUnknownKey)
			set, err = ring.JWKS(ctx)
			require.NoError(t, err)
			require.Len(t, set.Keys, 1)
			clk.Advance(time.Second) // deleted once strictly past its ExpiresAt
			_, err = ring.Rotate(ctx)
			require.NoError(t, err)
			all, err := ring.List(ctx)
			require.NoError(t, err)
			require.Len(t, all, 2, "expired keys are deleted at the next rotation")

			_, err = ring.PublicKey(ctx, "no-such-kid")
			require.ErrorIs(t, err, keys.ErrUnknownKey)
		})
	}
}
