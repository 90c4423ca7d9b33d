// Package passkey is WebAuthn: registering passkeys for a signed-in user,
// signing in with one (with an email hint or discoverable, usernameless),
// and listing, renaming and deleting them. The ceremonies themselves are
// github.com/go-webauthn/webauthn; this package keeps their state and the
// credentials, and turns a verified assertion into a session.
//
// Ceremony state lives in the cache for CeremonyTTL and is taken (read and
// deleted atomically) by the finish step, so each challenge works once even
// under concurrent requests. The sign counter is advanced with a
// conditional UPDATE: an assertion whose counter does not move forward
// (unless the authenticator keeps no counter, both zero) is refused and
// recorded as a security.alert event with reason passkey_clone_suspected.
//
// A passkey sign-in with user verification (the authenticator checked a PIN
// or biometric: the UV flag) is phishing-resistant multi-factor
// authentication on its own (possession of the key plus that check), so it
// starts a session marked MFA without an MFA challenge. User verification
// is only preferred, so an authenticator may answer with user presence (a
// touch) alone: that proves possession only, one factor, and the sign-in
// goes like a password's: an account with MFA gets an MFA challenge, and
// the session is not marked MFA. Its amr is
// ["hwk"] when the authenticator is a roaming (cross-platform) one whose
// key cannot leave it (not backup eligible), such as a security key, and
// ["swk"] otherwise: platform authenticators and synced passkeys, whose key
// material may be copied to other devices (RFC 8176).
package passkey

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/cache"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Store is what passkeys need from the database.
type Store interface {
	store.WebAuthn
	GetUser(ctx context.Context, id string) (gatehouse.User, error)
	GetUserByEmail(ctx context.Context, email gatehouse.Email) (gatehouse.User, error)
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Options configure the relying party and the ceremonies.
type Options struct {
	// Off turns the ceremonies off: WebAuthn needs a domain as relying
	// party id, and a server reached by IP address has none. They then
	// answer 404 not_found saying so; passkeys already stored can still
	// be listed, renamed and deleted.
	Off bool
	// RPID is the relying party id, a domain (GATEHOUSE_WEBAUTHN_RP_ID).
	RPID string
	// RPName is what authenticators show (GATEHOUSE_WEBAUTHN_RP_NAME).
	RPName string
	// Origins are the origins ceremonies may come from
	// (GATEHOUSE_WEBAUTHN_ORIGINS).
	Origins []string
	// CeremonyTTL is how long a begun ceremony may be finished (5 minutes).
	CeremonyTTL time.Duration
	// HintKey keys the stand-in credential ids answered for an email with
	// no passkeys, so repeated asks look alike; nil makes a random key
	// (stable for this process only).
	HintKey []byte
	Now     func() time.Time
	Logger  *slog.Logger
}

// Service runs passkey registration, sign-in and management.
type Service struct {
	wa     *webauthn.WebAuthn
	store  Store
	cache  cache.Cache
	events store.Emitter

	opts Options
}

// errOff answers every ceremony when Options.Off is set.
var errOff = gatehouse.Errorf(gatehouse.CodeNotFound,
	"passkeys are off on this server: WebAuthn needs a domain, and the server's public URL is an IP address")

// New makes a Service; unless o.Off, it fails when the relying party
// settings are not usable (an invalid RP id or no origins).
func New(st Store, c cache.Cache, ev store.Emitter, o Options) (*Service, error) {
	if o.CeremonyTTL == 0 {
		o.CeremonyTTL = 5 * time.Minute
	}
	if o.RPName == "" {
		o.RPName = "Gatehouse"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(o.HintKey) == 0 {
		o.HintKey = make([]byte, 32)
		_, _ = rand.Read(o.HintKey)
	}
	if o.Off {
		return &Service{store: st, cache: c, events: ev, opts: o}, nil
	}
	timeout := webauthn.TimeoutConfig{Timeout: o.CeremonyTTL, TimeoutUVD: o.CeremonyTTL}
	wa, err := webauthn.New(&webauthn.Config{
		RPID: o.RPID, RPDisplayName: o.RPName, RPOrigins: o.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementPreferred,
			RequireResidentKey: protocol.ResidentKeyNotRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party: %w", err)
	}
	return &Service{wa: wa, store: st, cache: c, events: ev, opts: o}, nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// Domain errors.
var (
	errNoCeremony = gatehouse.Errorf(gatehouse.CodeInvalidToken,
		"the passkey challenge is unknown, expired or already used; start again")
	errAssertion = gatehouse.Errorf(gatehouse.CodeInvalidCredentials, "the passkey could not be verified")
	errNoPasskey = gatehouse.Errorf(gatehouse.CodeNotFound, "no such passkey")
	errLastLogin = gatehouse.Errorf(gatehouse.CodeLastLoginMethod,
		"this passkey is the only way left to sign in; set a password or add another passkey first")
	errExists = gatehouse.Errorf(gatehouse.CodeConflict, "this passkey is already registered")
)

// credParams are the algorithms offered at registration: ES256, RS256
// and EdDSA, the set every current authenticator supports.
var credParams = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
}

// waUser adapts an account and its credentials to webauthn.User. The user
// handle is the user id's bytes, so a discoverable assertion names its
// account.
type waUser struct {
	u     gatehouse.User
	creds []gatehouse.WebAuthnCredential
}

func (w waUser) WebAuthnID() []byte   { return []byte(w.u.ID) }
func (w waUser) WebAuthnName() string { return w.u.Email.String() }
func (w waUser) WebAuthnDisplayName() string {
	if w.u.Name != "" {
		return w.u.Name
	}
	return w.u.Email.String()
}

func (w waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(w.creds))
	for _, c := range w.creds {
		out = append(out, libCredential(c))
	}
	return out
}

func libCredential(c gatehouse.WebAuthnCredential) webauthn.Credential {
	transports := make([]protocol.AuthenticatorTransport, 0, len(c.Transports))
	for _, t := range c.Transports {
		transports = append(transports, protocol.AuthenticatorTransport(t))
	}
	return webauthn.Credential{
		ID: c.CredentialID, PublicKey: c.PublicKey, AttestationType: c.AttestationType, Transport: transports,
		Flags: webauthn.CredentialFlags{BackupEligible: c.BackupEligible, BackupState: c.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount,
			Attachment: protocol.AuthenticatorAttachment(c.Attachment)},
	}
}

func (s *Service) loadUser(ctx context.Context, userID string) (waUser, error) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return waUser{}, err
	}
	creds, err := s.store.ListWebAuthnCredentials(ctx, userID)
	if err != nil {
		return waUser{}, err
	}
	return waUser{u: u, creds: creds}, nil
}

// ceremonyKey names a ceremony's state in the cache by a hash, so the
// cache never holds the secret that finishes it.
func ceremonyKey(kind, secret string) string {
	return "passkey:" + kind + ":" + hex.EncodeToString(token.Hash(secret))
}

func (s *Service) put(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.cache.Set(ctx, key, raw, s.opts.CeremonyTTL)
}

// take removes and returns a ceremony's state; a missing one (unknown,
// expired or used) is invalid_token.
func (s *Service) take(ctx context.Context, key string, v any) error {
	raw, err := s.cache.Take(ctx, key)
	if errors.Is(err, cache.ErrMiss) {
		return errNoCeremony
	}
	if err != nil {
		return fmt.Errorf("read passkey ceremony: %w", err)
	}
	return json.Unmarshal(raw, v)
}

// malformed is the 422 for a credential that does not parse as the JSON a
// browser produces.
func malformed(err error) error {
	msg := "credential is not a WebAuthn response as the browser produces it"
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		msg += ": " + truncate(pe.DevInfo, 200)
	}
	return gatehouse.InvalidField("credential", msg)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// NormalizeName trims a passkey name and checks its length (1 to 100
// characters once trimmed).
func NormalizeName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return "", gatehouse.InvalidField("name", "name must be 1 to 100 characters")
	}
	return name, nil
}

// stand-in credential id for an email without passkeys: derived from the
// email, so asking twice answers the same, like a real account.
func (s *Service) standIn(email string) []byte {
	m := hmac.New(sha256.New, s.opts.HintKey)
	m.Write([]byte("passkey-hint\x00" + strings.ToLower(strings.TrimSpace(email))))
	return m.Sum(nil)
}
