// Package secret seals small secrets at rest (signing keys, TOTP secrets,
// OAuth tokens, webhook secrets) with AES-256-GCM under the master key.
// A sealed value is: version byte | 12-byte random nonce | ciphertext+tag.
// The caller passes associated data (e.g. the row id and purpose) so a
// sealed value copied to another row or column does not open there.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

const version byte = 1

// ErrOpen means a sealed value could not be opened: wrong key, wrong
// associated data, or tampering. It says nothing more on purpose.
var ErrOpen = errors.New("secret: cannot open sealed value")

// Box seals and opens values under one 32-byte key. It is safe for
// concurrent use.
type Box struct {
	aead cipher.AEAD
}

// NewBox makes a Box; key must be exactly 32 bytes (AES-256).
func NewBox(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Sealer encrypts secrets at rest (a *Box): Seal binds the ciphertext to
// ad (what the secret belongs to), and Open fails for any other ad.
type Sealer interface {
	Seal(plaintext, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

var _ Sealer = (*Box)(nil)

// Seal encrypts plaintext, binding it to associated data ad.
func (b *Box) Seal(plaintext, ad []byte) []byte {
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
	return b.aead.Seal(out, out[1:1+b.aead.NonceSize()], plaintext, ad)
}

// Open decrypts a value made by Seal with the same ad, or returns ErrOpen.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
