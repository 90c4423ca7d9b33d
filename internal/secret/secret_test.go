package secret_test

import (
	"bytes"
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
