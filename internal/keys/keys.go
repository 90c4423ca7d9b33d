// Package keys keeps the RSA key ring that signs access tokens. Private keys
// are stored in the database sealed with AES-256-GCM under the master key;
// the public halves are served as a JWKS. Rotation publishes a new key at
// once but signs with it only after PublishDelay, when every instance and
// every verifier's cached JWKS has it; the previous key keeps signing until
// then and stays published until every token it signed has expired, so
// rotation never logs anybody out.
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
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/secret"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Algorithm is the only signing algorithm the ring makes and accepts.
const Algorithm = "RS256"

// ErrUnknownKey means a token names a kid that is not in the ring.
var ErrUnknownKey = token.ErrUnknownKey

const (
	// JWKSMaxAge is how long verifiers may cache the JWKS (the max-age of
	// its Cache-Control).
	JWKSMaxAge = 5 * time.Minute

	// PublishDelay is how long a new key is published before it signs
	// anything: the default Reload interval of the other instances (1m),
	// plus JWKSMaxAge of verifiers' caches, plus a minute of clock skew.
	// A Reload longer than a minute lengthens it accordingly.
	PublishDelay = 7 * time.Minute

	// reloadRetry is how soon a ring whose reload failed tries again; it
	// keeps serving the keys it loaded before meanwhile.
	reloadRetry = 5 * time.Second
)

// Store is what the ring needs from the database.
type Store interface {
	store.SigningKeys
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Options tune the ring.
type Options struct {
	// Bits is the RSA modulus size of new keys (default 2048).
	Bits int
	// MaxTokenTTL is the longest lifetime of a token the ring signs; a
	// retired key stays published this long plus Leeway after it stopped
	// signing.
	MaxTokenTTL time.Duration
	// Leeway covers clock skew between instances and verifiers (default 5m).
	Leeway time.Duration
	// Reload is how long loaded keys are trusted before the ring rereads
	// the database, so a rotation on another instance is picked up
	// (default 1m).
	Reload time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets a warning when a reload fails (default slog.Default()).
	Logger *slog.Logger
	// GenerateKey makes the RSA key of a new signing key (default
	// rsa.GenerateKey from crypto/rand). Tests hand out keys made once.
	GenerateKey func(bits int) (*rsa.PrivateKey, error)
}

// Key is a loaded key: the stored row and its parsed material.
type Key struct {
	gatehouse.SigningKey
	Public  *rsa.PublicKey
	private *rsa.PrivateKey // nil for keys that will never sign again (not decrypted)
}

// Ring is the key ring. It is safe for concurrent use.
type Ring struct {
	store        Store
	sealer       secret.Sealer
	opts         Options
	publishDelay time.Duration

	mu         sync.RWMutex
	keys       []Key           // newest first
	byID       map[string]*Key // nil until the first successful load
	loadedAt   time.Time
	nextLoadAt time.Time // reloadIfStale rereads the database after this
	lastMissAt time.Time
}

// NewRing makes a ring; call Ensure before use.
func NewRing(st Store, sealer secret.Sealer, opts Options) *Ring {
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
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.GenerateKey == nil {
		opts.GenerateKey = func(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }
	}
	return &Ring{store: st, sealer: sealer, opts: opts,
		publishDelay: max(PublishDelay, opts.Reload+JWKSMaxAge+time.Minute)}
}

// PublishDelay is how long a key made by Rotate is published before it
// signs (the PublishDelay constant unless Options.Reload is over a minute).
func (r *Ring) PublishDelay() time.Duration { return r.publishDelay }

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

// Rotate makes a new signing key. It is published (in the JWKS, and to
// other instances at their next reload) at once, but signs only once it is
// PublishDelay old: until then the current signing key goes on signing.
// The keys that have not been retired yet are retired as of that moment
// and stay published for MaxTokenTTL plus Leeway after it, until every
// token they signed has expired. Keys whose publication has ended are
// deleted. When there is no key that could sign (first start), the new
// key signs at once.
func (r *Ring) Rotate(ctx context.Context) (gatehouse.SigningKey, error) {
	row, err := r.generate()
	if err != nil {
		return gatehouse.SigningKey{}, err
	}
	now := r.opts.Now().UTC()
	retireAt := row.CreatedAt.Add(r.publishDelay)
	err = r.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		existing, err := tx.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		for _, k := range existing {
			if k.Active() {
				if err := tx.RetireSigningKey(ctx, k.ID, retireAt, retireAt.Add(r.opts.MaxTokenTTL+r.opts.Leeway)); err != nil {
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
	if err := r.load(ctx); err != nil {
		return row, fmt.Errorf("signing key %s was made, but reloading the ring failed: %w", row.ID, err)
	}
	return row, nil
}

// List returns every stored key, newest first.
func (r *Ring) List(ctx context.Context) ([]gatehouse.SigningKey, error) {
	return r.store.ListSigningKeys(ctx)
}

// State is what a stored key does at a given time.
type State string

const (
	// StateSigning is the key that signs new tokens.
	StateSigning State = "signing"
	// StateNext is a published key that starts signing at SignsFrom.
	StateNext State = "next"
	// StateRetired is a key that no longer signs; it verifies (and stays
	// in the JWKS) until its ExpiresAt.
	StateRetired State = "retired"
)

// Status is a stored key and what it does.
type Status struct {
	gatehouse.SigningKey
	State State
	// SignsFrom is when a StateNext key takes over signing (zero otherwise).
	SignsFrom time.Time
	// SignsUntil is when a signing or next key stops signing, because a
	// newer key takes over (zero when no rotation is scheduled).
	SignsUntil time.Time
}

// Statuses lists every stored key, newest first, with what it does now.
func (r *Ring) Statuses(ctx context.Context) ([]Status, error) {
	rows, err := r.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(rows, newestFirst)
	now := r.opts.Now()
	signing := signingIndex(len(rows), func(i int) gatehouse.SigningKey { return rows[i] }, now, r.publishDelay)
	out := make([]Status, len(rows))
	for i, k := range rows {
		st := Status{SigningKey: k, State: StateRetired}
		switch {
		case i == signing:
			st.State = StateSigning
		case i < signing && mayStillSign(k, now):
			st.State, st.SignsFrom = StateNext, k.CreatedAt.Add(r.publishDelay)
		}
		if st.State != StateRetired && k.RetiredAt != nil {
			st.SignsUntil = *k.RetiredAt
		}
		out[i] = st
	}
	return out, nil
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

// PublicKey returns the verification key for kid, or an error wrapping
// ErrUnknownKey when the ring has no published key of that id. An unknown
// kid makes the ring reread the database (at most every few seconds, so
// random kids in forged tokens cannot hammer it) in case another instance
// rotated; when that read fails the database error is returned, not
// ErrUnknownKey, since the ring could not tell. (A kid the ring holds but
// no longer publishes is unknown at once.) A failed periodic reload
// does not fail the call: the keys loaded before keep verifying.
func (r *Ring) PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if err := r.reloadIfStale(ctx); err != nil {
		return nil, err
	}
	k, known := r.lookup(kid)
	if k != nil {
		return k.Public, nil
	}
	if known {
		return nil, ErrUnknownKey // no longer published; that never changes
	}
	r.mu.Lock()
	retry := r.opts.Now().Sub(r.lastMissAt) > 5*time.Second
	if retry {
		r.lastMissAt = r.opts.Now()
	}
	r.mu.Unlock()
	if retry {
		if err := r.load(ctx); err != nil {
			return nil, fmt.Errorf("look up signing key %q: %w", kid, err)
		}
		if k, _ := r.lookup(kid); k != nil {
			return k.Public, nil
		}
	}
	return nil, ErrUnknownKey
}

// JWKS returns the published public keys: every key that signs, will sign
// or signed a token that may still be live. Like PublicKey it rereads the
// database every Reload interval, so rotations on other instances show up
// within it, and serves the keys loaded before when that read fails.
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

// lookup returns the published key kid, or nil; known reports whether the
// ring holds kid at all (published or not).
func (r *Ring) lookup(kid string) (k *Key, known bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k = r.byID[kid]
	if k == nil || !k.Published(r.opts.Now()) {
		return nil, k != nil
	}
	return k, true
}

func (r *Ring) signer() (Key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := signingIndex(len(r.keys), func(i int) gatehouse.SigningKey { return r.keys[i].SigningKey }, r.opts.Now(), r.publishDelay)
	if i < 0 || r.keys[i].private == nil {
		return Key{}, false
	}
	return r.keys[i], true
}

// mayStillSign reports whether k has not been retired by now: it was never
// retired, or its retirement (set by a rotation) is still to come.
func mayStillSign(k gatehouse.SigningKey, now time.Time) bool {
	return k.RetiredAt == nil || now.Before(*k.RetiredAt)
}

// signingIndex picks the key that signs at now among n keys (newest
// first): the newest key not retired by now that has been published for
// delay, so that every verifier has it; when none has been (the first key,
// or every key is younger), the oldest such key, which has been published
// longest. -1 when every key is retired.
//
// Rotate retires the previous keys at the moment the new key is delay old,
// so signing passes from one key to the next at one instant on every
// instance, and ExpiresAt of the previous key counts from that instant.
func signingIndex(n int, key func(int) gatehouse.SigningKey, now time.Time, delay time.Duration) int {
	oldest := -1
	for i := range n {
		k := key(i)
		if !mayStillSign(k, now) {
			continue
		}
		if !k.CreatedAt.After(now.Add(-delay)) {
			return i
		}
		oldest = i
	}
	return oldest
}

// newestFirst orders keys by creation, newest first; of keys made at the
// same instant (possible with a coarse clock), the one a rotation retired
// counts as older than the one that replaced it: no RetiredAt, or a later
// one, is newer.
func newestFirst(a, b gatehouse.SigningKey) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	switch {
	case a.RetiredAt == nil && b.RetiredAt == nil:
		return 0
	case a.RetiredAt == nil:
		return -1
	case b.RetiredAt == nil:
		return 1
	}
	return b.RetiredAt.Compare(*a.RetiredAt)
}

// reloadIfStale rereads the database once the Reload interval has passed.
// When that fails and keys were loaded before, the ring keeps serving them
// (expiry is still checked against the clock), logs a warning and tries
// again after reloadRetry, not on every call; only a ring that never
// loaded returns the error. One caller reloads at a time; the others go on
// with the loaded keys meanwhile.
func (r *Ring) reloadIfStale(ctx context.Context) error {
	now := r.opts.Now()
	r.mu.Lock()
	if !now.After(r.nextLoadAt) {
		r.mu.Unlock()
		return nil
	}
	loaded, loadedAt := r.byID != nil, r.loadedAt
	if loaded {
		r.nextLoadAt = now.Add(reloadRetry)
	}
	r.mu.Unlock()
	err := r.load(ctx)
	if err == nil || !loaded {
		return err
	}
	r.opts.Logger.WarnContext(ctx, "signing keys: reload failed; serving the keys loaded before",
		"loaded_at", loadedAt, "retry_in", reloadRetry, "err", err)
	return nil
}

func (r *Ring) load(ctx context.Context) error {
	rows, err := r.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	slices.SortStableFunc(rows, newestFirst)
	now := r.opts.Now()
	keys := make([]Key, 0, len(rows))
	for _, row := range rows {
		k, err := r.parse(row, now)
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
	r.keys, r.byID, r.loadedAt, r.nextLoadAt = keys, byID, now, now.Add(r.opts.Reload)
	r.mu.Unlock()
	return nil
}

func (r *Ring) parse(row gatehouse.SigningKey, now time.Time) (Key, error) {
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
	if !mayStillSign(row, now) {
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
	priv, err := r.opts.GenerateKey(r.opts.Bits)
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

// SealedColumn is where the ring keeps sealed private keys, for master key
// rotation.
func SealedColumn() secret.Column {
	return secret.Column{Table: "signing_keys", Name: "private_key_enc", ID: "id",
		Rewrite: secret.Plain(func(row []string) []byte { return sealContext(row[0]) })}
}
