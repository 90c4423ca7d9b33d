package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-webauthn/webauthn/protocol"

	"github.com/gatehouse-auth/gatehouse"
)

// TagPasskeys groups the WebAuthn operations.
const TagPasskeys = "Passkeys"

// Passkeys runs WebAuthn ceremonies and manages a user's passkeys (a
// *passkey.Service). Somebody else's passkey is not_found.
type Passkeys interface {
	BeginRegistration(ctx context.Context, userID string) (*protocol.CredentialCreation, error)
	FinishRegistration(ctx context.Context, userID string, credential json.RawMessage, name string) (gatehouse.WebAuthnCredential, error)
	BeginLogin(ctx context.Context, email string) (string, *protocol.CredentialAssertion, error)
	List(ctx context.Context, userID string) ([]gatehouse.WebAuthnCredential, error)
	Rename(ctx context.Context, userID, id, name string) (gatehouse.WebAuthnCredential, error)
	Delete(ctx context.Context, userID, id string) error
}

// Passkey is the API's view of a registered WebAuthn credential.
type Passkey struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at" doc:"Null until the first sign-in with it."`
	Attachment     string     `json:"attachment" doc:"platform, cross-platform, or empty when the browser did not say."`
	Transports     []string   `json:"transports" doc:"How the browser reaches the authenticator: usb, nfc, ble, internal, hybrid."`
	BackupEligible bool       `json:"backup_eligible" doc:"A synced passkey (it may be copied to the user's other devices)."`
	BackupState    bool       `json:"backup_state" doc:"The passkey is currently backed up."`
}

func passkeyBody(c gatehouse.WebAuthnCredential) Passkey {
	return Passkey{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt.UTC(), LastUsedAt: optTime(c.LastUsedAt),
		Attachment: c.Attachment, Transports: c.Transports, BackupEligible: c.BackupEligible, BackupState: c.BackupState}
}

type passkeyOutput struct {
	Status int
	Body   Passkey
}

type passkeyList struct {
	Body struct {
		Items      []Passkey `json:"items"`
		NextCursor *string   `json:"next_cursor" doc:"Pass as cursor for the next page; null on the last page."`
	}
}

type passkeyIDInput struct {
	ID string `path:"id" maxLength:"64"`
}

type registerBeginOutput struct {
	Body struct {
		Options json.RawMessage `json:"options" doc:"CredentialCreationOptions: {publicKey: PublicKeyCredentialCreationOptions}, binary members base64url."`
	}
}

type loginBeginOutput struct {
	Body struct {
		ChallengeID string          `json:"challenge_id" doc:"Opaque, single use; send it to /auth/webauthn/authenticate/finish."`
		Options     json.RawMessage `json:"options" doc:"CredentialRequestOptions: {publicKey: PublicKeyCredentialRequestOptions}, binary members base64url."`
	}
}

// passkeysOffDoc ends the description of each ceremony: a server whose
// public URL is an IP address runs without passkeys (WebAuthn needs a
// domain).
const passkeysOffDoc = " 404 not_found when passkeys are off on this server (its public URL is an IP address and no relying party id is configured)."

func (s *Server) registerWebAuthn() {
	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "webauthn-register-begin", Method: http.MethodPost, Path: "/auth/webauthn/register/begin",
		Tags: []string{TagPasskeys}, Summary: "Start registering a passkey",
		Description: "Answers options for navigator.credentials.create(): PublicKeyCredentialCreationOptions under publicKey " +
			"(resident key and user verification preferred; ES256, RS256 and EdDSA; the caller's passkeys excluded). " +
			"Finish within 5 minutes at /auth/webauthn/register/finish. A new passkey signs in without the password or MFA, " +
			"so this needs a sign-in within the last 5 minutes: a stolen access token cannot add one. " +
			"Errors: 403 recent_auth_required;" + passkeysOffDoc,
	}), func(ctx context.Context, _ *struct{}) (*registerBeginOutput, error) {
		p := mustPrincipal(ctx)
		if err := s.accounts.RequireRecentAuth(ctx, p.UserID, p.AuthTime, ""); err != nil {
			return nil, Problem(err)
		}
		creation, err := s.passkeys.BeginRegistration(ctx, p.UserID)
		if err != nil {
			return nil, Problem(err)
		}
		raw, err := json.Marshal(creation)
		if err != nil {
			return nil, Problem(err)
		}
		out := &registerBeginOutput{}
		out.Body.Options = raw
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "webauthn-register-finish", Method: http.MethodPost, Path: "/auth/webauthn/register/finish",
		Tags: []string{TagPasskeys}, Summary: "Finish registering a passkey",
		Description: "Verifies the browser's answer (challenge, origin, relying party id, attestation) and stores the passkey. " +
			"Errors: 400 invalid_token when the registration was not begun, expired or was finished already; " +
			"400 bad_request when the answer does not verify; 409 conflict when the passkey is registered already; " +
			"422 validation_failed when credential is not a WebAuthn response;" + passkeysOffDoc,
		DefaultStatus: http.StatusCreated,
	}), func(ctx context.Context, in *struct {
		Body struct {
			Credential json.RawMessage `json:"credential" doc:"The PublicKeyCredential as the browser produces it (its toJSON() form: id, rawId, type, response with base64url members, authenticatorAttachment, clientExtensionResults)."`
			Name       string          `json:"name,omitempty" maxLength:"100" doc:"Default: Passkey, or Security key for a roaming authenticator."`
		}
	}) (*passkeyOutput, error) {
		c, err := s.passkeys.FinishRegistration(ctx, mustPrincipal(ctx).UserID, in.Body.Credential, in.Body.Name)
		if err != nil {
			return nil, Problem(err)
		}
		return &passkeyOutput{Status: http.StatusCreated, Body: passkeyBody(c)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "webauthn-authenticate-begin", Method: http.MethodPost, Path: "/auth/webauthn/authenticate/begin",
		Tags: []string{TagPasskeys}, Summary: "Start signing in with a passkey",
		Description: "With email: the options allow that account's passkeys (an unknown email gets the same shape, " +
			"so the answer does not reveal accounts). Without: a discoverable (usernameless) sign-in, empty allow list. " +
			"Options go to navigator.credentials.get(); finish within 5 minutes with challenge_id. Errors:" + passkeysOffDoc,
	}, func(ctx context.Context, in *struct {
		Body *struct {
			Email string `json:"email,omitempty" maxLength:"320" doc:"Leave out for a discoverable (usernameless) sign-in."`
		}
	}) (*loginBeginOutput, error) {
		email := ""
		if in.Body != nil {
			email = in.Body.Email
		}
		id, assertion, err := s.passkeys.BeginLogin(ctx, email)
		if err != nil {
			return nil, Problem(err)
		}
		raw, err := json.Marshal(assertion)
		if err != nil {
			return nil, Problem(err)
		}
		out := &loginBeginOutput{}
		out.Body.ChallengeID, out.Body.Options = id, raw
		return out, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "webauthn-authenticate-finish", Method: http.MethodPost, Path: "/auth/webauthn/authenticate/finish",
		Tags: []string{TagPasskeys}, Summary: "Finish signing in with a passkey",
		Description: "Verifies the assertion. With user verification (the authenticator checked a PIN or biometric: the UV " +
			"flag) it answers tokens for a session marked mfa: such a passkey is phishing-resistant multi-factor authentication " +
			"on its own, so no MFA challenge follows. With user presence only (UV not set) the passkey is one factor, like a " +
			"password: an account with MFA gets an MFAChallenge to answer at /auth/mfa/verify, and the session is not marked mfa. " +
			"The access token's amr is [\"hwk\"] for a roaming, device-bound authenticator (a security key) and [\"swk\"] for " +
			"platform authenticators and synced passkeys (plus the second factor's value after an MFA challenge). " +
			"Errors: 400 invalid_token for an unknown, used or expired challenge_id; 401 invalid_credentials when the " +
			"assertion does not verify or its sign counter went backwards (a possible clone, reported as security.alert); " +
			"422 validation_failed when credential is not a WebAuthn response; 423 account_locked;" + passkeysOffDoc,
	}, func(ctx context.Context, in *struct {
		UserAgent string `header:"User-Agent"`
		Body      struct {
			ChallengeID string          `json:"challenge_id" minLength:"1" maxLength:"256"`
			Credential  json.RawMessage `json:"credential" doc:"The PublicKeyCredential as the browser produces it (its toJSON() form: id, rawId, type, response with base64url members, authenticatorAttachment, clientExtensionResults)."`
			DeviceID    string          `json:"device_id,omitempty" maxLength:"128" doc:"A stable id the client keeps for this device."`
		}
	}) (*signInOutput, error) {
		t, err := s.signIn.Passkey(ctx, in.Body.ChallengeID, in.Body.Credential, clientMeta(ctx, in.UserAgent, in.Body.DeviceID))
		if err != nil {
			return nil, Problem(err)
		}
		return signInBody(t, s.now()), nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "webauthn-list-credentials", Method: http.MethodGet, Path: "/auth/webauthn/credentials",
		Tags: []string{TagPasskeys}, Summary: "List my passkeys",
		Description: "Oldest first, a page at a time. A cursor whose passkey has been deleted since is 422 validation_failed: start again without it.",
	}), func(ctx context.Context, in *pageInput) (*passkeyList, error) {
		list, err := s.passkeys.List(ctx, mustPrincipal(ctx).UserID)
		if err != nil {
			return nil, Problem(err)
		}
		out := &passkeyList{}
		out.Body.Items, out.Body.NextCursor, err = pageList(list, in, passkeyBody,
			func(c gatehouse.WebAuthnCredential) string { return c.ID })
		if err != nil {
			return nil, Problem(err)
		}
		return out, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "webauthn-rename-credential", Method: http.MethodPatch, Path: "/auth/webauthn/credentials/{id}",
		Tags: []string{TagPasskeys}, Summary: "Rename a passkey", Description: "Errors: 404 not_found (also for somebody else's).",
	}), func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body struct {
			Name string `json:"name" minLength:"1" maxLength:"100"`
		}
	}) (*passkeyOutput, error) {
		c, err := s.passkeys.Rename(ctx, mustPrincipal(ctx).UserID, in.ID, in.Body.Name)
		if err != nil {
			return nil, Problem(err)
		}
		return &passkeyOutput{Status: http.StatusOK, Body: passkeyBody(c)}, nil
	})

	huma.Register(s.api, s.bearer(huma.Operation{
		OperationID: "webauthn-delete-credential", Method: http.MethodDelete, Path: "/auth/webauthn/credentials/{id}",
		Tags: []string{TagPasskeys}, Summary: "Delete a passkey",
		Description: "Errors: 404 not_found (also for somebody else's); 409 last_login_method when it is the only way " +
			"left to sign in (no password, no other passkey, no linked social account).",
		DefaultStatus: http.StatusNoContent,
	}), func(ctx context.Context, in *passkeyIDInput) (*noContent, error) {
		if err := s.passkeys.Delete(ctx, mustPrincipal(ctx).UserID, in.ID); err != nil {
			return nil, Problem(err)
		}
		return &noContent{}, nil
	})
}
