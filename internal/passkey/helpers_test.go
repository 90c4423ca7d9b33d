package passkey_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-auth/gatehouse/internal/app/apptest"
	"github.com/gatehouse-auth/gatehouse/internal/passkey/passkeytest"
)

// origin is the page origin apptest's public URL (http://gatehouse.test)
// gives the relying party.
const origin = "http://gatehouse.test"

// options re-encodes a begin answer's options for the authenticator.
func options(t *testing.T, r *apptest.Response) []byte {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	raw, err := json.Marshal(r.JSON["options"])
	require.NoError(t, err)
	return raw
}

// publicKey is the options' publicKey member.
func publicKey(t *testing.T, r *apptest.Response) map[string]any {
	t.Helper()
	pk, ok := r.JSON["options"].(map[string]any)["publicKey"].(map[string]any)
	require.True(t, ok, string(r.Raw))
	return pk
}

// register runs both registration steps with a and returns the finish
// answer.
func register(t *testing.T, e *apptest.Env, a *passkeytest.Authenticator, access, name string) (*apptest.Response, *passkeytest.Credential) {
	t.Helper()
	opts := options(t, e.Do("POST", "/auth/webauthn/register/begin", nil, access))
	cred, c, err := a.Create(opts)
	require.NoError(t, err)
	body := map[string]any{"credential": json.RawMessage(cred)}
	if name != "" {
		body["name"] = name
	}
	return e.Do("POST", "/auth/webauthn/register/finish", body, access), c
}

// mustRegister registers a passkey on a and fails the test unless it is
// stored.
func mustRegister(t *testing.T, e *apptest.Env, a *passkeytest.Authenticator, access string) *passkeytest.Credential {
	t.Helper()
	r, c := register(t, e, a, access, "")
	require.Equal(t, http.StatusCreated, r.Status, string(r.Raw))
	return c
}

// userWithPasskey registers an account, signs it in with its password and
// registers a platform passkey for it.
func userWithPasskey(t *testing.T, e *apptest.Env, email string) (string, apptest.Tokens, *passkeytest.Authenticator, *passkeytest.Credential) {
	t.Helper()
	userID, tok := signedIn(e, email)
	a := passkeytest.New(origin)
	return userID, tok, a, mustRegister(t, e, a, tok.Access)
}

// begin starts a sign-in (email may be empty: discoverable) and returns
// the challenge id and options.
func begin(t *testing.T, e *apptest.Env, email string) (string, []byte) {
	t.Helper()
	body := map[string]any{}
	if email != "" {
		body["email"] = email
	}
	r := e.Do("POST", "/auth/webauthn/authenticate/begin", body, "")
	opts := options(t, r)
	require.NotEmpty(t, r.Str("challenge_id"))
	return r.Str("challenge_id"), opts
}

func finish(e *apptest.Env, challengeID string, assertion []byte) *apptest.Response {
	return e.Do("POST", "/auth/webauthn/authenticate/finish",
		map[string]any{"challenge_id": challengeID, "credential": json.RawMessage(assertion)}, "")
}

// login signs in with a's passkey and returns the answer.
func login(t *testing.T, e *apptest.Env, a *passkeytest.Authenticator, email string) *apptest.Response {
	t.Helper()
	id, opts := begin(t, e, email)
	assertion, err := a.Get(opts, nil)
	require.NoError(t, err)
	return finish(e, id, assertion)
}

// signedIn registers an account and signs it in with its password.
func signedIn(e *apptest.Env, email string) (string, apptest.Tokens) {
	id := e.Register(email, apptest.StrongPassword)
	return id, e.Login(email, apptest.StrongPassword)
}

// currentSession finds the session the token speaks for.
func currentSession(t *testing.T, e *apptest.Env, access string) map[string]any {
	t.Helper()
	r := e.Do("GET", "/sessions", nil, access)
	require.Equal(t, http.StatusOK, r.Status, string(r.Raw))
	for _, s := range r.JSON["items"].([]any) {
		if m := s.(map[string]any); m["current"] == true {
			return m
		}
	}
	t.Fatal("no current session")
	return nil
}
