package secret_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/gatehouse-auth/gatehouse/internal/secret"
)

func newBox(t require.TestingT, fill byte) *secret.Box {
	b, err := secret.NewBox(bytes.Repeat([]byte{fill}, 32))
	require.NoError(t, err)
	return b
}

func TestNewBoxRejectsShortKeys(t *testing.T) {
	_, err := secret.NewBox(make([]byte, 16))
	require.ErrorContains(t, err, "32 bytes")
}

func TestSealOpenRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		box := newBox(t, 7)
		pt := rapid.SliceOf(rapid.Byte()).Draw(t, "plaintext")
		ad := rapid.SliceOf(rapid.Byte()).Draw(t, "ad")
		sealed := box.Seal(pt, ad)
		require.False(t, len(pt) > 4 && bytes.Contains(sealed, pt), "plaintext visible in sealed value")
		got, err := box.Open(sealed, ad)
		require.NoError(t, err)
		require.True(t, bytes.Equal(pt, got))
	})
}

func TestOpenRefusesTamperingWrongKeyAndWrongContext(t *testing.T) {
	box := newBox(t, 1)
	sealed := box.Seal([]byte("signing key"), []byte("key:1"))

	_, err := newBox(t, 2).Open(sealed, []byte("key:1"))
	require.ErrorIs(t, err, secret.ErrOpen, "other master key")

	_, err = box.Open(sealed, []byte("key:2"))
	require.ErrorIs(t, err, secret.ErrOpen, "value moved to another row")

	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x40
		_, err = box.Open(bad, []byte("key:1"))
		require.ErrorIs(t, err, secret.ErrOpen, "flipped byte %d", i)
	}
	_, err = box.Open(sealed[:10], []byte("key:1"))
	require.ErrorIs(t, err, secret.ErrOpen, "truncated")
}

func TestSealIsRandomized(t *testing.T) {
	box := newBox(t, 3)
	require.NotEqual(t, box.Seal([]byte("x"), nil), box.Seal([]byte("x"), nil))
}

// legacySeal makes a value in the format written before key ids existed:
// version 1 | nonce | ciphertext+tag.
func legacySeal(t *testing.T, key, pt, ad []byte) []byte {
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	out := make([]byte, 1+aead.NonceSize())
	out[0] = 1
	_, err = rand.Read(out[1:])
	require.NoError(t, err)
	return aead.Seal(out, out[1:], pt, ad)
}

// Values sealed before key ids existed keep opening, under whichever key
// of the ring sealed them, and a rotation turns them into current values.
func TestLegacyValuesStillOpen(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	legacy := legacySeal(t, oldKey, []byte("totp secret"), []byte("mfa-factor:1"))

	pt, err := newBox(t, 1).Open(legacy, []byte("mfa-factor:1"))
	require.NoError(t, err)
	require.Equal(t, "totp secret", string(pt))
	_, err = newBox(t, 1).Open(legacy, []byte("mfa-factor:2"))
	require.ErrorIs(t, err, secret.ErrOpen)

	ring, err := secret.NewKeyring(newKey, oldKey)
	require.NoError(t, err)
	pt, err = ring.Open(legacy, []byte("mfa-factor:1"))
	require.NoError(t, err, "the old key of a ring opens a legacy value")
	require.Equal(t, "totp secret", string(pt))
	require.False(t, ring.IsCurrent(legacy))
	_, ok := secret.SealedWith(legacy)
	require.False(t, ok, "a legacy value names no key")

	resealed, changed, err := ring.Reseal(legacy, []byte("mfa-factor:1"))
	require.NoError(t, err)
	require.True(t, changed)
	require.True(t, ring.IsCurrent(resealed))
	pt, err = newBox(t, 2).Open(resealed, []byte("mfa-factor:1"))
	require.NoError(t, err, "the new key alone opens the re-sealed value")
	require.Equal(t, "totp secret", string(pt))

	// A legacy value under the current key is re-sealed too: afterwards
	// every value names its key.
	current := legacySeal(t, newKey, []byte("x"), nil)
	resealed, changed, err = ring.Reseal(current, nil)
	require.NoError(t, err)
	require.True(t, changed)
	require.True(t, ring.IsCurrent(resealed))
}

// A ring seals under its current key only, opens values of either key by
// the id they carry, and re-sealing is idempotent.
func TestKeyringRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	oldBox := newBox(t, 1)
	underOld := oldBox.Seal([]byte("webhook secret"), []byte("webhook-secret:w1"))
	id, ok := secret.SealedWith(underOld)
	require.True(t, ok)
	require.Equal(t, secret.IDOf(oldKey), id)
	require.Equal(t, oldBox.CurrentID(), id)

	ring, err := secret.NewKeyring(newKey, oldKey, nil, newKey)
	require.NoError(t, err)
	require.Equal(t, []secret.KeyID{secret.IDOf(newKey), secret.IDOf(oldKey)}, ring.IDs(), "nil and repeated keys are skipped")
	require.NotEqual(t, secret.IDOf(oldKey), secret.IDOf(newKey))
	require.Len(t, secret.IDOf(newKey).String(), 8)

	pt, err := ring.Open(underOld, []byte("webhook-secret:w1"))
	require.NoError(t, err)
	require.Equal(t, "webhook secret", string(pt))
	require.False(t, ring.IsCurrent(underOld))

	fresh := ring.Seal([]byte("new"), nil)
	require.True(t, ring.IsCurrent(fresh))
	_, err = oldBox.Open(fresh, nil)
	require.ErrorIs(t, err, secret.ErrOpen, "the ring seals under the new key, not the old")
	same, changed, err := ring.Reseal(fresh, nil)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, fresh, same)

	resealed, changed, err := ring.Reseal(underOld, []byte("webhook-secret:w1"))
	require.NoError(t, err)
	require.True(t, changed)
	pt, err = newBox(t, 2).Open(resealed, []byte("webhook-secret:w1"))
	require.NoError(t, err)
	require.Equal(t, "webhook secret", string(pt))

	_, _, err = newBox(t, 3).Reseal(underOld, []byte("webhook-secret:w1"))
	require.ErrorIs(t, err, secret.ErrOpen, "a value no key of the ring opens is refused")
	_, _, err = ring.Reseal(underOld, []byte("webhook-secret:w2"))
	require.ErrorIs(t, err, secret.ErrOpen, "wrong associated data")

	// The key id is authenticated: a value relabelled as the other key's
	// does not open.
	relabelled := bytes.Clone(underOld)
	nid := secret.IDOf(newKey)
	copy(relabelled[1:5], nid[:])
	_, err = ring.Open(relabelled, []byte("webhook-secret:w1"))
	require.ErrorIs(t, err, secret.ErrOpen)

	_, err = secret.NewKeyring(newKey, make([]byte, 16))
	require.ErrorContains(t, err, "old key")
}
