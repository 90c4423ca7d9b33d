package token

import (
	"crypto/rsa"
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers access tokens whose RS256 signature checked out,
// so a client sending the same bearer token request after request costs
// one SHA-256 and a map lookup instead of a JSON parse and an RSA
// verification (about 50 µs of CPU) each time.
//
// An entry is keyed by the SHA-256 of the whole token string, so only that
// exact token hits it, and holds what the signature vouched for: the
// decoded claims, the kid and the key that verified them. It stays until
// the token's exp (plus the leeway: no later check could pass). Everything
// that can change while a token lives is still checked on every use, as
// on a miss: the kid must still be in the key ring with the same key
// (a retired key stops its tokens at once), exp/nbf/iat against the clock,
// iss and aud, and the claims the caller requires. Only verified tokens
// get in, so garbage cannot fill it; at most max entries are kept.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[[sha256.Size]byte]*verifiedToken
	max int
}

// verifiedToken is a token whose signature was verified by pub.
type verifiedToken struct {
	kid    string
	pub    *rsa.PublicKey
	claims jwtClaims
	until  time.Time // exp + leeway: past this it can never verify again
}

func newVerifiedCache(max int) *verifiedCache {
	if max <= 0 {
		return nil
	}
	return &verifiedCache{m: make(map[[sha256.Size]byte]*verifiedToken), max: max}
}

// get returns the entry of the token hashed to key, unless it is past its
// time (now is the service's clock).
func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time) *verifiedToken {
	c.mu.RLock()
	v := c.m[key]
	c.mu.RUnlock()
	if v == nil || now.After(v.until) {
		return nil
	}
	return v
}

// put remembers a verified token. When the cache is full it first drops
// the entries past their time and then, if that freed too little, about
// an eighth of the others (whichever the map yields first).
func (c *verifiedCache) put(key [sha256.Size]byte, v *verifiedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k, e := range c.m {
			if now.After(e.until) {
				delete(c.m, k)
			}
		}
		if drop := len(c.m) - c.max + max(c.max/8, 1); drop > 0 {
			for k := range c.m {
				if drop == 0 {
					break
				}
				delete(c.m, k)
				drop--
			}
		}
	}
	c.m[key] = v
}

// len is the number of entries, for tests.
func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
