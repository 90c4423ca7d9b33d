// Package passkeytest is a software WebAuthn authenticator for tests: it
// answers the options Gatehouse sends with the JSON a browser would
// produce, with real ES256 keys, "none" attestation and real assertion
// signatures over authenticatorData and the client data hash.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// ErrExcluded is what Create answers when the options exclude a credential
// this authenticator holds (a browser's InvalidStateError).
var ErrExcluded = errors.New("passkeytest: the authenticator holds an excluded credential")

// Credential is one key pair the authenticator holds.
type Credential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	UserHandle []byte
	// Counter is the signature counter; Get adds one before signing
	// unless the authenticator has NoCounter.
	Counter uint32
}

// Authenticator is a software authenticator. Its fields describe the
// device and the page it runs in; change them between ceremonies to
// simulate another origin, a security key, a synced passkey ...
type Authenticator struct {
	mu sync.Mutex
	// Origin is the page's origin written into clientDataJSON.
	Origin string
	// RPID, when set, overrides the relying party id the options name
	// (the rpIdHash in authenticatorData).
	RPID string
	// Attachment is "platform" or "cross-platform" (reported by the browser).
	Attachment string
	// BackupEligible marks a synced passkey (BE and BS flags).
	BackupEligible bool
	// NoCounter keeps every counter at zero, as many platform authenticators do.
	NoCounter bool
	// NoUV clears the UV flag: a test of user presence only (a touch), no
	// PIN or biometric, as a security key without a PIN set answers.
	NoUV bool
	// NextID, when set, is the id of the next credential Create makes (a
	// cloned or colliding credential).
	NextID []byte
	Creds  []*Credential
}

// New makes a platform authenticator on origin.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin, Attachment: "platform"}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

type descriptor struct {
	ID string `json:"id"`
}

type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Exclude []descriptor `json:"excludeCredentials"`
		Allow   []descriptor `json:"allowCredentials"`
	} `json:"publicKey"`
}

func parseOptions(raw []byte) (options, error) {
	var o options
	if err := json.Unmarshal(raw, &o); err != nil {
		return o, fmt.Errorf("passkeytest: options: %w", err)
	}
	return o, nil
}

func (a *Authenticator) flags(extra byte) byte {
	f := byte(flagUP|flagUV) | extra
	if a.NoUV {
		f &^= flagUV
	}
	if a.BackupEligible {
		f |= flagBE | flagBS
	}
	return f
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) rpIDHash(fromOptions string) []byte {
	id := fromOptions
	if a.RPID != "" {
		id = a.RPID
	}
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// Create answers navigator.credentials.create() for the options JSON
// ({publicKey: ...}) and returns the PublicKeyCredential JSON and the new
// credential, which the authenticator keeps.
func (a *Authenticator) Create(optionsJSON []byte) ([]byte, *Credential, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, err := parseOptions(optionsJSON)
	if err != nil {
		return nil, nil, err
	}
	for _, ex := range o.PublicKey.Exclude {
		for _, c := range a.Creds {
			if ex.ID == b64(c.ID) {
				return nil, nil, ErrExcluded
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	handle, err := unb64(o.PublicKey.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("passkeytest: user.id: %w", err)
	}
	c := &Credential{ID: a.NextID, Key: key, UserHandle: handle}
	if c.ID == nil {
		c.ID = make([]byte, 16)
		_, _ = rand.Read(c.ID)
	}
	a.NextID = nil

	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, nil, err
	}
	coseKey, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:]})
	if err != nil {
		return nil, nil, err
	}
	authData := slices.Concat(a.rpIDHash(o.PublicKey.RP.ID), []byte{a.flags(flagAT)}, binary.BigEndian.AppendUint32(nil, 0),
		make([]byte, 16), binary.BigEndian.AppendUint16(nil, uint16(len(c.ID))), c.ID, coseKey)
	attObj, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, nil, err
	}
	transports := []string{"internal", "hybrid"}
	if a.Attachment == "cross-platform" {
		transports = []string{"usb", "nfc"}
	}
	out, err := json.Marshal(map[string]any{
		"id": b64(c.ID), "rawId": b64(c.ID), "type": "public-key", "authenticatorAttachment": a.Attachment,
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(a.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64(attObj),
			"transports":        transports,
		},
	})
	if err != nil {
		return nil, nil, err
	}
	a.Creds = append(a.Creds, c)
	return out, c, nil
}

// Get answers navigator.credentials.get() for the options JSON with cred,
// or, when cred is nil, with the first held credential the allow list
// names (any held credential when the list is empty: discoverable).
func (a *Authenticator) Get(optionsJSON []byte, cred *Credential) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, err := parseOptions(optionsJSON)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		for _, c := range a.Creds {
			if len(o.PublicKey.Allow) == 0 || slices.ContainsFunc(o.PublicKey.Allow, func(d descriptor) bool { return d.ID == b64(c.ID) }) {
				cred = c
				break
			}
		}
	}
	if cred == nil {
		return nil, errors.New("passkeytest: no credential for these options")
	}
	if !a.NoCounter {
		cred.Counter++
	}
	authData := slices.Concat(a.rpIDHash(o.PublicKey.RPID), []byte{a.flags(0)}, binary.BigEndian.AppendUint32(nil, cred.Counter))
	clientData := a.clientData("webauthn.get", o.PublicKey.Challenge)
	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(slices.Concat(authData, cdHash[:]))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.Key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(cred.ID), "rawId": b64(cred.ID), "type": "public-key", "authenticatorAttachment": a.Attachment,
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(clientData),
			"authenticatorData": b64(authData),
			"signature":         b64(sig),
			"userHandle":        b64(cred.UserHandle),
		},
	})
}
