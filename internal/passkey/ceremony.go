package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/gatehouse-auth/gatehouse"
	"github.com/gatehouse-auth/gatehouse/internal/store"
	"github.com/gatehouse-auth/gatehouse/internal/token"
)

// Sign-in method and amr values of a passkey session.
const (
	Method  = "passkey"
	AMRHard = "hwk"
	AMRSoft = "swk"
)

// AMR is the authentication method of a passkey sign-in: "hwk" for a
// roaming (cross-platform) authenticator whose key cannot be synced (not
// backup eligible), "swk" for platform authenticators and synced passkeys.
func AMR(attachment string, backupEligible bool) string {
	if attachment == string(protocol.CrossPlatform) && !backupEligible {
		return AMRHard
	}
	return AMRSoft
}

// registerKey scopes a registration to its user and challenge: begin
// answers no id, and the browser's response carries the challenge.
func registerKey(userID, challenge string) string {
	return ceremonyKey("register", userID+"\x00"+challenge)
}

// BeginRegistration starts registering a passkey for the user and answers
// the options for navigator.credentials.create() (under "publicKey"). The
// user's passkeys are excluded, so an authenticator holding one declines.
func (s *Service) BeginRegistration(ctx context.Context, userID string) (*protocol.CredentialCreation, error) {
	if s.opts.Off {
		return nil, errOff
	}
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	creation, sd, err := s.wa.BeginRegistration(u,
		webauthn.WithExclusions(webauthn.Credentials(u.WebAuthnCredentials()).CredentialDescriptors()),
		webauthn.WithCredentialParameters(credParams))
	if err != nil {
		return nil, fmt.Errorf("begin passkey registration: %w", err)
	}
	if err := s.put(ctx, registerKey(userID, sd.Challenge), sd); err != nil {
		return nil, fmt.Errorf("begin passkey registration: %w", err)
	}
	return creation, nil
}

// FinishRegistration verifies the browser's answer to a registration the
// user began (credential is the PublicKeyCredential JSON) and stores the
// passkey. name may be empty ("Passkey", or "Security key" for a roaming
// authenticator). Errors: 422 for a credential that does not parse, 400
// invalid_token when its challenge is unknown, used or expired, 400
// bad_request when it does not verify (origin, RP id, signature ...), 409
// conflict when the passkey is registered already.
func (s *Service) FinishRegistration(ctx context.Context, userID string, credential json.RawMessage, name string) (gatehouse.WebAuthnCredential, error) {
	if s.opts.Off {
		return gatehouse.WebAuthnCredential{}, errOff
	}
	if name != "" {
		var err error
		if name, err = NormalizeName(name); err != nil {
			return gatehouse.WebAuthnCredential{}, err
		}
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return gatehouse.WebAuthnCredential{}, malformed(err)
	}
	var sd webauthn.SessionData
	if err := s.take(ctx, registerKey(userID, parsed.Response.CollectedClientData.Challenge), &sd); err != nil {
		return gatehouse.WebAuthnCredential{}, err
	}
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return gatehouse.WebAuthnCredential{}, err
	}
	cred, err := s.wa.CreateCredential(u, sd, parsed)
	if err != nil {
		s.opts.Logger.InfoContext(ctx, "passkey registration refused", "user_id", userID, "reason", reason(err))
		return gatehouse.WebAuthnCredential{}, gatehouse.WrapError(gatehouse.CodeBadRequest, err,
			"the passkey could not be verified (origin, relying party, challenge or signature)")
	}
	attachment := string(parsed.AuthenticatorAttachment)
	if name == "" {
		name = "Passkey"
		if AMR(attachment, cred.Flags.BackupEligible) == AMRHard {
			name = "Security key"
		}
	}
	c := gatehouse.WebAuthnCredential{
		ID: gatehouse.NewID(), UserID: userID, CredentialID: cred.ID, PublicKey: cred.PublicKey,
		AttestationType: cred.AttestationType, AAGUID: cred.Authenticator.AAGUID, SignCount: cred.Authenticator.SignCount,
		Transports: make([]string, 0, len(cred.Transport)), BackupEligible: cred.Flags.BackupEligible,
		BackupState: cred.Flags.BackupState, Attachment: attachment, Name: name, CreatedAt: s.now(),
	}
	for _, t := range cred.Transport {
		c.Transports = append(c.Transports, string(t))
	}
	err = s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CreateWebAuthnCredential(ctx, c); err != nil {
			return err
		}
		_, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventUserPasskeyAdded, UserID: userID, ActorID: userID,
			Data: map[string]any{"passkey_id": c.ID, "name": c.Name, "attachment": c.Attachment}})
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return gatehouse.WebAuthnCredential{}, errExists
	}
	if err != nil {
		return gatehouse.WebAuthnCredential{}, fmt.Errorf("store passkey: %w", err)
	}
	return c, nil
}

// loginState is what the cache holds for a begun sign-in.
type loginState struct {
	Session webauthn.SessionData `json:"session"`
	// UserID is the hinted account ("" for a discoverable sign-in).
	UserID string `json:"user_id,omitempty"`
	// StandIn marks a sign-in begun for an email without passkeys: no
	// assertion can finish it.
	StandIn bool `json:"stand_in,omitempty"`
}

// BeginLogin starts a passkey sign-in and answers the challenge id and the
// options for navigator.credentials.get() (under "publicKey"). With an
// email the options allow that account's passkeys; an email with no
// account or no passkeys gets the same shape, with a stand-in credential
// derived from the email, so the answer does not reveal accounts. Without
// one the allow list is empty: a discoverable (usernameless) sign-in.
func (s *Service) BeginLogin(ctx context.Context, email string) (string, *protocol.CredentialAssertion, error) {
	if s.opts.Off {
		return "", nil, errOff
	}
	var (
		assertion *protocol.CredentialAssertion
		st        loginState
		sd        *webauthn.SessionData
		err       error
	)
	if email == "" {
		assertion, sd, err = s.wa.BeginDiscoverableLogin()
	} else {
		addr, perr := gatehouse.ParseEmail(email)
		if perr != nil {
			return "", nil, perr
		}
		var u waUser
		if found, ferr := s.store.GetUserByEmail(ctx, addr); ferr == nil {
			u, err = s.loadUser(ctx, found.ID)
			if err != nil {
				return "", nil, err
			}
		} else if !errors.Is(ferr, store.ErrNotFound) {
			return "", nil, ferr
		}
		if len(u.creds) > 0 {
			st.UserID = u.u.ID
			assertion, sd, err = s.wa.BeginLogin(u)
		} else {
			st.StandIn = true
			assertion, sd, err = s.wa.BeginDiscoverableLogin(webauthn.WithAllowedCredentials([]protocol.CredentialDescriptor{{
				Type: protocol.PublicKeyCredentialType, CredentialID: s.standIn(addr.String()),
				Transport: []protocol.AuthenticatorTransport{protocol.Internal, protocol.Hybrid},
			}}))
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	st.Session = *sd
	id, _ := token.NewOpaque()
	if err := s.put(ctx, ceremonyKey("login", id), st); err != nil {
		return "", nil, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	return id, assertion, nil
}

// FinishLogin verifies the browser's assertion for a begun sign-in and
// answers who signed in (amr "hwk" or "swk", method "passkey") and whether
// the authenticator verified the person: with user verification (the UV
// flag: a PIN or biometric on top of the key) the passkey is two factors
// and no MFA challenge follows; with user presence only it is one, like a
// password. The caller starts the session. Errors: 422 for a credential
// that does not parse, 400 invalid_token for an unknown, used or expired
// challenge, 401 invalid_credentials when the assertion does not verify or
// its sign counter went backwards (also a security.alert event).
func (s *Service) FinishLogin(ctx context.Context, challengeID string, credential json.RawMessage, meta gatehouse.ClientInfo) (p gatehouse.PendingSignIn, verified bool, err error) {
	if s.opts.Off {
		return p, false, errOff
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return p, false, malformed(err)
	}
	var st loginState
	if err := s.take(ctx, ceremonyKey("login", challengeID), &st); err != nil {
		return p, false, err
	}
	if st.StandIn {
		return p, false, errAssertion
	}
	c, err := s.store.GetWebAuthnCredentialByCredentialID(ctx, parsed.RawID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && st.UserID != "" && c.UserID != st.UserID) {
		return p, false, errAssertion
	}
	if err != nil {
		return p, false, err
	}
	u, err := s.loadUser(ctx, c.UserID)
	if err != nil {
		return p, false, err
	}
	var cred *webauthn.Credential
	if st.UserID != "" {
		cred, err = s.wa.ValidateLogin(u, st.Session, parsed)
	} else {
		_, cred, err = s.wa.ValidatePasskeyLogin(func(_, userHandle []byte) (webauthn.User, error) {
			if string(userHandle) != u.u.ID {
				return nil, errors.New("user handle does not own the credential")
			}
			return u, nil
		}, st.Session, parsed)
	}
	if err != nil {
		s.opts.Logger.InfoContext(ctx, "passkey sign-in refused", "user_id", u.u.ID, "passkey_id", c.ID, "reason", reason(err))
		return p, false, errAssertion
	}
	counter := parsed.Response.AuthenticatorData.Counter
	moved := false
	if !cred.Authenticator.CloneWarning {
		moved, err = s.store.UseWebAuthnCredential(ctx, c.ID, counter, cred.Flags.BackupState, s.now())
		if err != nil {
			return p, false, err
		}
	}
	if !moved {
		if err := s.cloneAlert(ctx, c, counter, meta); err != nil {
			return p, false, err
		}
		return p, false, errAssertion
	}
	attachment := string(parsed.AuthenticatorAttachment)
	if attachment == "" {
		attachment = c.Attachment
	}
	p = gatehouse.PendingSignIn{UserID: u.u.ID, Client: meta, AMR: []string{AMR(attachment, c.BackupEligible)}, Method: Method}
	// Only a touch (user presence) is possession of the key: one factor.
	return p, parsed.Response.AuthenticatorData.Flags.HasUserVerified(), nil
}

// cloneAlert records an assertion whose counter did not move forward: the
// authenticator may have been cloned.
func (s *Service) cloneAlert(ctx context.Context, c gatehouse.WebAuthnCredential, counter uint32, meta gatehouse.ClientInfo) error {
	s.opts.Logger.WarnContext(ctx, "passkey sign counter went backwards; possible cloned authenticator",
		"user_id", c.UserID, "passkey_id", c.ID, "stored_count", c.SignCount, "presented_count", counter)
	return s.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := s.events.Emit(ctx, tx, gatehouse.Event{Type: gatehouse.EventSecurityAlert, UserID: c.UserID,
			Data: map[string]any{"reason": "passkey_clone_suspected", "passkey_id": c.ID, "stored_count": c.SignCount,
				"presented_count": counter, "ip_address": meta.IP, "user_agent": meta.UserAgent}})
		return err
	})
}

// reason is a refusal's cause for the log (the library's details, which
// name the failed check and hold no secrets).
func reason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return truncate(pe.Details+" "+pe.DevInfo, 300)
	}
	return truncate(err.Error(), 300)
}
