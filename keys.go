package gatehouse

import "time"

// SigningKey is one RSA key of the token signing key ring. The private part
// is stored only encrypted under the master key (PrivateKeyEnc); PublicKeyPEM
// is served in the JWKS.
type SigningKey struct {
	ID            string // the JWK "kid"
	Algorithm     string // always "RS256" today
	PublicKeyPEM  string
	PrivateKeyEnc []byte // AES-256-GCM sealed PKCS#8 DER
	CreatedAt     time.Time
	// RetiredAt is set when a newer key takes over signing; the key stays
	// in the JWKS until ExpiresAt so tokens it signed still verify.
	RetiredAt *time.Time
	// ExpiresAt is when the public key may leave the JWKS (nil while active).
	ExpiresAt *time.Time
}

// Active reports whether the key signs new tokens.
func (k SigningKey) Active() bool { return k.RetiredAt == nil }

// Published reports whether the key belongs in the JWKS at time now.
func (k SigningKey) Published(now time.Time) bool {
	return k.ExpiresAt == nil || now.Before(*k.ExpiresAt)
}
