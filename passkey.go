package gatehouse

import "time"

// WebAuthnCredential is a registered passkey (a WebAuthn public key
// credential) of one user.
type WebAuthnCredential struct {
	ID     string // our id (UUIDv7), used in the API
	UserID string
	// CredentialID is the authenticator's raw credential id, unique across
	// every user.
	CredentialID []byte
	// PublicKey is the COSE-encoded public key from the attestation.
	PublicKey []byte
	// AttestationType is the attestation format the browser sent ("none",
	// "packed", ...).
	AttestationType string
	AAGUID          []byte
	SignCount       uint32
	// Transports are the hints the browser reported (usb, nfc, ble,
	// internal, hybrid); never nil on reads.
	Transports     []string
	BackupEligible bool
	BackupState    bool
	// Attachment is "platform", "cross-platform" or "" when unknown.
	Attachment string
	Name       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}
