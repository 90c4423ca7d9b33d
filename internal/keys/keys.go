// Package keys keeps the RSA key ring that signs access tokens. Private keys
// are stored in the database sealed with AES-256-GCM under the master key;
// the public halves are served as a JWKS. Rotation makes a new signing key
// and keeps retired public keys published until every token they signed has
// expired, so rotation never logs anybody out.
package keys

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
)

// Algorithm is the only signing algorithm the ring makes and accepts.
const Algorithm = "RS256"

// ErrUnknownKey means a token names a kid that is not in the ring.
var ErrUnknownKey = errors.New("keys: unknown key id")

// Store is what the ring needs from the database.
type Store interface {
	store.SigningKeys
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Sealer seals private keys at rest (a *secret.Box).
type Sealer interface {
	Seal(plaintext, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

// Options tune the ring.
type Options struct {
	// Bits is the RSA modulus size of new keys (default 2048).
	Bits int
	// MaxTokenTTL is the longest lifetime of a token the ring signs; a
	// retired key stays published this long plus Leeway.
	MaxTokenTTL time.Duration
	// Leeway covers clock skew between instances and verifiers (default 5m).
	Leeway time.Duration
	// Reload is how long loaded keys are trusted before the ring rereads
	// the database, so a rotation on another instance is picked up
	// (default 1m).
	Reload time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Key is a loaded key: the stored row and its parsed material.
type Key struct {
	gatehouse.SigningKey
	Public  *rsa.PublicKey
	private *rsa.PrivateKey // nil for keys whose material could not be opened
}

// Ring is the key ring. It is safe for concurrent use.
type Ring struct {
	store  Store
	sealer Sealer
	opts   Options

	mu         sync.RWMutex
	keys       []Key // newest first
	byID       map[string]*Key
	loadedAt   time.Time
	lastMissAt time.Time
}

// NewRing makes a ring; call Ensure before use.
func NewRing(st Store, sealer Sealer, opts Options) *Ring {
	if opts.Bits == 0 {
		opts.Bits = 2048
	}
	if opts.MaxTokenTTL == 0 {
		opts.MaxTokenTTL = 15 * time.Minute
	}
	if opts.Leeway == 0 {
		opts.Leeway = 5 * time.Minute
	}
	if opts.Reload == 0 {
		opts.Reload = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Ring{store: st, sealer: sealer, opts: opts}
}

// Ensure loads the ring and makes the first signing key when there is none
// (first start). It reports whether it made one.
func (r *Ring) Ensure(ctx context.Context) (created bool, err error) {
	if err := r.load(ctx); err != nil {
		return false, err
	}
	if _, ok := r.signer(); ok {
		return false, nil
	}
	if _, err := r.Rotate(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Rotate makes a new signing key and retires the active ones: they keep
// verifying (and stay in the JWKS) until tokens they signed have expired.
// Keys whose publication has ended are deleted.
func (r *Ring) Rotate(ctx context.Context) (gatehouse.SigningKey, error) {
	row, err := r.generate()
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	now := r.opts.Now().UTC()
	err = r.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		existing, err := tx.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		for _, k := range existing {
			if k.Active() {
				if err := tx.RetireSigningKey(ctx, k.ID, now, now.Add(r.opts.MaxTokenTTL+r.opts.Leeway)); err != nil {
					return err
				}
			}
		}
		if err := tx.CreateSigningKey(ctx, row); err != nil {
			return err
		}
		_, err = tx.DeleteExpiredSigningKeys(ctx, now)
		return err
	})
	if err != nil {
		return gatehouse.SigningKey{}, fmt.Errorf("rotate signing key: %w", err)
	}
	return row, r.load(ctx)
}

// List returns every stored key, newest first.
func (r *Ring) List(ctx context.Context) ([]gatehouse.SigningKey, error) {
	return r.store.ListSigningKeys(ctx)
}

// Signer returns the key that signs new tokens.
func (r *Ring) Signer(ctx context.Context) (kid string, key *rsa.PrivateKey, err error) {
	if err := r.reloadIfStale(ctx); err != nil {
		return "", nil, err
	}
	k, ok := r.signer()
	if !ok {
		return "", nil, errors.New("keys: no active signing key; run Ensure")
	}
	return k.ID, k.private, nil
}

// PublicKey returns the verification key for kid. An unknown kid makes the
// ring reread the database (at most every few seconds, so random kids in
// forged tokens cannot hammer it) in case another instance rotated.
func (r *Ring) PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if err := r.reloadIfStale(ctx); err != nil {
		return nil, err
	}
	if k := r.lookup(kid); k != nil {
		return k.Public, nil
	}
	r.mu.Lock()
	retry := r.opts.Now().Sub(r.lastMissAt) > 5*time.Second
	if retry {
		r.lastMissAt = r.opts.Now()
	}
	r.mu.Unlock()
	if retry {
		if err := r.load(ctx); err != nil {
			return nil, err
		}
		if k := r.lookup(kid); k != nil {
			return k.Public, nil
		}
	}
	return nil, ErrUnknownKey
}

// JWKS returns the published public keys.
func (r *Ring) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	if err := r.reloadIfStale(ctx); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	now := r.opts.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range r.keys {
		if !k.Published(now) {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: Algorithm, Use: "sig"})
	}
	return set, nil
}

func (r *Ring) lookup(kid string) *Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k := r.byID[kid]
	if k == nil || !k.Published(r.opts.Now()) {
		return nil
	}
	return k
}

func (r *Ring) signer() (Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range r.keys {
		if k.Active() && k.private != nil {
			return k, true
		}
	}
	return Key{}, false
}

func (r *Ring) reloadIfStale(ctx context.Context) error {
	r.mu.RLock()
	stale := r.opts.Now().Sub(r.loadedAt) > r.opts.Reload
	r.mu.RUnlock()
	if !stale {
		return nil
	}
	return r.load(ctx)
}

func (r *Ring) load(ctx context.Context) error {
	rows, err := r.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	keys := make([]Key, 0, len(rows))
	for _, row := range rows {
		k, err := r.parse(row)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	byID := make(map[string]*Key, len(keys))
	for i := range keys {
		byID[keys[i].ID] = &keys[i]
	}
	r.mu.Lock()
	r.keys, r.byID, r.loadedAt = keys, byID, r.opts.Now()
	r.mu.Unlock()
	return nil
}

func (r *Ring) parse(row gatehouse.SigningKey) (Key, error) {
	block, _ := pem.Decode([]byte(row.PublicKeyPEM))
	if block == nil {
		return Key{}, fmt.Errorf("signing key %s: bad public key PEM", row.ID)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return Key{}, fmt.Errorf("signing key %s: %w", row.ID, err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return Key{}, fmt.Errorf("signing key %s: not an RSA key", row.ID)
	}
	k := Key{SigningKey: row, Public: rsaPub}
	if !row.Active() {
		return k, nil // retired keys only verify; do not decrypt them
	}
	der, err := r.sealer.Open(row.PrivateKeyEnc, sealContext(row.ID))
	if err != nil {
		return Key{}, fmt.Errorf("signing key %s: cannot decrypt the private key; is GATEHOUSE_SECRET_KEY the one it was made with? (%w)", row.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Key{}, fmt.Errorf("signing key %s: %w", row.ID, err)
	}
	rsaPriv, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return Key{}, fmt.Errorf("signing key %s: not an RSA private key", row.ID)
	}
	k.private = rsaPriv
	return k, nil
}

func (r *Ring) generate() (gatehouse.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, r.opts.Bits)
	if err != nil {
		return gatehouse.SigningKey{}, fmt.Errorf("generate RSA key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: &priv.PublicKey}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	kid := base64.RawURLEncoding.EncodeToString(thumb)
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	return gatehouse.SigningKey{
		ID:            kid,
		Algorithm:     Algorithm,
		PublicKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})),
		PrivateKeyEnc: r.sealer.Seal(privDER, sealContext(kid)),
		CreatedAt:     r.opts.Now().UTC().Truncate(time.Microsecond),
	}, nil
}

func sealContext(kid string) []byte { return []byte("signing_key:" + kid) }
