// Package secret seals small secrets at rest (signing keys, TOTP secrets,
// webhook secrets, queued SMS bodies) with AES-256-GCM under the master key.
//
// A sealed value is: version byte 2 | 4-byte key id | 12-byte random nonce |
// ciphertext+tag, where the key id names the master key that sealed it and
// is authenticated with it. Values written before key ids existed are
// version 1: version byte | nonce | ciphertext+tag; they are still read.
// The caller passes associated data (e.g. the row id and purpose) so a
// sealed value copied to another row or column does not open there.
//
// A Box may hold the previous master key besides the current one (during a
// master key rotation): it seals under the current key only and opens
// values sealed under either, choosing the key by id, so values re-sealed
// by the rotation and values not yet re-sealed both keep working.
package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

const (
	// versionLegacy values carry no key id: any key of the Box may have
	// sealed them, so each is tried (GCM's tag tells the right one).
	versionLegacy byte = 1
	// versionKeyID values name their key.
	versionKeyID byte = 2
	keyIDLen          = 4
)

// ErrOpen means a sealed value could not be opened: wrong key, wrong
// associated data, or tampering. It says nothing more on purpose.
var ErrOpen = errors.New("secret: cannot open sealed value")

// KeyID names a master key without revealing it: the first bytes of an
// HMAC of a fixed label under the key. It is stored in every sealed value.
type KeyID [keyIDLen]byte

// String is the id in hex, as operators see it.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// masterKey is one AES-256-GCM key with its id.
type masterKey struct {
	id   KeyID
	aead cipher.AEAD
}

// Box seals under one current master key and opens values sealed under it
// or under the older keys it was given. It is safe for concurrent use.
type Box struct {
	current *masterKey
	keys    []*masterKey // current first
}

// NewBox makes a Box with one key; key must be exactly 32 bytes (AES-256).
func NewBox(key []byte) (*Box, error) { return NewKeyring(key) }

// NewKeyring makes a Box that seals under current and opens values sealed
// under current or any of old (nil or repeated keys are skipped). Every key
// must be exactly 32 bytes.
func NewKeyring(current []byte, old ...[]byte) (*Box, error) {
	cur, err := newMasterKey(current)
	if err != nil {
		return nil, err
	}
	b := &Box{current: cur, keys: []*masterKey{cur}}
	for _, k := range old {
		if k == nil || b.hasKey(k) {
			continue
		}
		mk, err := newMasterKey(k)
		if err != nil {
			return nil, fmt.Errorf("secret: old key: %w", err)
		}
		b.keys = append(b.keys, mk)
	}
	return b, nil
}

func (b *Box) hasKey(key []byte) bool {
	id := IDOf(key)
	for _, k := range b.keys {
		if k.id == id {
			return true
		}
	}
	return false
}

func newMasterKey(key []byte) (*masterKey, error) {
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
	return &masterKey{id: IDOf(key), aead: aead}, nil
}

// Sealer encrypts secrets at rest (a *Box): Seal binds the ciphertext to
// ad (what the secret belongs to), and Open fails for any other ad.
type Sealer interface {
	Seal(plaintext, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

var _ Sealer = (*Box)(nil)

// IDOf is the id of a master key.
func IDOf(key []byte) KeyID {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("gatehouse master key id"))
	var id KeyID
	copy(id[:], m.Sum(nil))
	return id
}

// CurrentID is the id of the key new values are sealed under.
func (b *Box) CurrentID() KeyID { return b.current.id }

// IDs lists the ids of every key the Box opens with, current first.
func (b *Box) IDs() []KeyID {
	out := make([]KeyID, len(b.keys))
	for i, k := range b.keys {
		out[i] = k.id
	}
	return out
}

// Seal encrypts plaintext under the current key, binding it to associated
// data ad.
func (b *Box) Seal(plaintext, ad []byte) []byte {
	k := b.current
	n := k.aead.NonceSize()
	hdr := 1 + keyIDLen
	out := make([]byte, hdr+n, hdr+n+len(plaintext)+k.aead.Overhead())
	out[0] = versionKeyID
	copy(out[1:hdr], k.id[:])
	if _, err := rand.Read(out[hdr:]); err != nil {
		panic("secret: crypto/rand failed: " + err.Error())
	}
	return k.aead.Seal(out, out[hdr:hdr+n], plaintext, headerAD(out[:hdr], ad))
}

// headerAD binds the version and key id to the ciphertext, so neither can
// be altered without the value failing to open.
func headerAD(hdr, ad []byte) []byte {
	return append(bytes.Clone(hdr), ad...)
}

// Open decrypts a value made by Seal with the same ad under any key of the
// Box, or returns ErrOpen.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, ErrOpen
	}
	switch sealed[0] {
	case versionKeyID:
		hdr := 1 + keyIDLen
		if len(sealed) < hdr {
			return nil, ErrOpen
		}
		k := b.key(KeyID(sealed[1:hdr]))
		if k == nil {
			return nil, ErrOpen
		}
		return open(k, sealed[hdr:], headerAD(sealed[:hdr], ad))
	case versionLegacy:
		for _, k := range b.keys {
			if pt, err := open(k, sealed[1:], ad); err == nil {
				return pt, nil
			}
		}
	}
	return nil, ErrOpen
}

func (b *Box) key(id KeyID) *masterKey {
	for _, k := range b.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// open decrypts nonce|ciphertext+tag with one key.
func open(k *masterKey, body, ad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(body) < n+k.aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := k.aead.Open(nil, body[:n], body[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// SealedWith reports the key id a value names, and false for a legacy
// value (which names none) or one too short to carry an id.
func SealedWith(sealed []byte) (KeyID, bool) {
	if len(sealed) < 1+keyIDLen || sealed[0] != versionKeyID {
		return KeyID{}, false
	}
	return KeyID(sealed[1 : 1+keyIDLen]), true
}

// IsCurrent reports whether a value is sealed under the current key in the
// current format, which is what a master key rotation leaves behind. It
// does not check that the value opens.
func (b *Box) IsCurrent(sealed []byte) bool {
	id, ok := SealedWith(sealed)
	return ok && id == b.current.id
}

// Reseal returns the value sealed under the current key: unchanged (and
// false) when IsCurrent, otherwise opened with whichever key sealed it and
// sealed again with the same ad (and true). ErrOpen when no key opens it.
func (b *Box) Reseal(sealed, ad []byte) ([]byte, bool, error) {
	if b.IsCurrent(sealed) {
		return sealed, false, nil
	}
	pt, err := b.Open(sealed, ad)
	if err != nil {
		return nil, false, err
	}
	return b.Seal(pt, ad), true, nil
}
